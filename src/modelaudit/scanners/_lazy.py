"""Built-in scanners as lazy stand-ins, so a scan imports only the scanners its files need.

Importing every scanner module costs more than scanning a typical checkpoint. The registry
therefore holds, for each built-in scanner, a small subclass of BaseScanner that knows the
scanner's name and formats (all the engine needs to choose scanners) and imports the real
module the first time anything else is asked of it: an instance, its description, its
extensions. tests/test_lazy_registry.py checks the table below against the real classes.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import BaseScanner

# (module under modelaudit.scanners, class, scanner name, formats) in registry order.
BUILTINS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("pickle", "PickleScanner", "pickle", ("pickle",)),
    ("pytorch", "PyTorchScanner", "pytorch", ("pytorch_zip", "pytorch_legacy")),
    ("numpy", "NumpyScanner", "numpy", ("numpy", "npz")),
    ("safetensors", "SafetensorsScanner", "safetensors", ("safetensors",)),
    ("gguf", "GgufScanner", "gguf", ("gguf", "ggml")),
    ("onnx", "OnnxScanner", "onnx", ("onnx",)),
    ("tensorflow", "TensorFlowScanner", "tensorflow", ("pb", "pbtxt")),
    ("tflite", "TFLiteScanner", "tflite", ("tflite",)),
    ("executorch", "ExecuTorchScanner", "executorch", ("executorch",)),
    ("keras", "KerasH5Scanner", "keras_h5", ("hdf5",)),
    ("keras", "KerasZipScanner", "keras_zip", ("keras_zip",)),
    ("compressed", "CompressedScanner", "compressed", ("zlib", "gzip", "bzip2", "xz", "lzma", "joblib_zfile",
                                                     "lz4", "zstd")),
    ("torchserve", "TorchServeScanner", "torchserve", ("torchserve",)),
    ("containers", "ZipScanner", "zip", ("zip",)),
    ("tar", "TarScanner", "tar", ("tar",)),
    ("sevenzip", "SevenZipScanner", "sevenzip", ("7z",)),
    ("pmml", "PmmlScanner", "pmml", ("xml", "pmml")),
    ("msgpack", "MsgpackScanner", "msgpack", ("msgpack",)),
    ("boosters", "XGBoostScanner", "xgboost", ("xgboost_json", "xgboost_ubj", "xgboost_binary")),
    ("boosters", "LightGBMScanner", "lightgbm", ("lightgbm",)),
    ("boosters", "CatBoostScanner", "catboost", ("catboost",)),
    ("simple", "ExecutableScanner", "executable", ("executable",)),
    # JSON that detect.py names hf_config (config.json …); other JSON stays with TextScanner
    ("hf_config", "HfConfigScanner", "hf_config", ("hf_config", "chat_template")),
    ("python_code", "PythonCodeScanner", "python", ("python",)),
    ("python_code", "ScriptScanner", "script", ("script",)),
    ("python_code", "BytecodeScanner", "pyc", ("python_bytecode",)),
    ("simple", "TextScanner", "text", ("text", "json", "yaml", "empty")),
)

def _from_real(attr: str) -> property:
    # A property on the metaclass is a data descriptor, so it wins over the value LazyScanner inherits
    # from BaseScanner; every other class attribute is read at normal speed.
    def get(cls: Any) -> Any:
        return getattr(cls.real(), attr) if cls._target else getattr(BaseScanner, attr)

    return property(get)


class _LazyMeta(type):
    """Class-level reads of a stand-in's description, extensions and dependency go to the real class."""

    description = _from_real("description")
    supported_extensions = _from_real("supported_extensions")
    dependency = _from_real("dependency")

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.real()(*args, **kwargs)


class LazyScanner(BaseScanner, metaclass=_LazyMeta):
    _target: tuple[str, str] | None = None  # (module, class) of the real scanner

    @classmethod
    def real(cls) -> type[BaseScanner]:
        # resolved once: the engine instantiates a scanner for every archive member it reads
        resolved = cls.__dict__.get("_resolved")
        if resolved is None:
            module, qualname = cls._target  # type: ignore[misc]
            resolved = getattr(importlib.import_module(f"{__package__}.{module}"), qualname)
            cls._resolved = resolved
        return resolved

    @classmethod
    def is_builtin_style(cls) -> bool:
        return True

    @classmethod
    def can_handle(cls, path: str) -> bool:
        return cls.real().can_handle(path)

    def check(self, blob: Any, result: Any, ctx: Any) -> None:  # never reached: instances are real scanners
        raise NotImplementedError


def stand_ins() -> dict[str, type[BaseScanner]]:
    """One stand-in per built-in scanner, keyed by class name, in registry order."""
    made: dict[str, type[BaseScanner]] = {}
    for module, qualname, name, formats in BUILTINS:
        made[qualname] = _LazyMeta(qualname, (LazyScanner,), {
            "name": name, "formats": formats, "_target": (module, qualname),
            "__module__": __package__, "__qualname__": qualname,
        })
    return made
