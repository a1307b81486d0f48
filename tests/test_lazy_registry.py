"""The built-in registry holds stand-ins that import each scanner module only when it is used."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

from modelaudit.scanners import SCANNER_REGISTRY, BaseScanner
from modelaudit.scanners._lazy import BUILTINS, LazyScanner


def test_catalog_matches_the_real_scanner_classes():
    stand_ins = [cls for cls in SCANNER_REGISTRY if issubclass(cls, LazyScanner)]
    assert len(stand_ins) == len(BUILTINS)
    for stand_in, (module, qualname, name, formats) in zip(stand_ins, BUILTINS):
        real = getattr(importlib.import_module(f"modelaudit.scanners.{module}"), qualname)
        assert issubclass(real, BaseScanner) and not issubclass(real, LazyScanner)
        assert (stand_in.name, stand_in.formats) == (real.name, real.formats) == (name, formats)
        assert stand_in.description == real.description
        assert stand_in.supported_extensions == real.supported_extensions
        assert stand_in.dependency == real.dependency
        assert type(stand_in()) is real


def test_every_scanner_module_is_in_the_catalog():
    import pkgutil

    import modelaudit.scanners as package

    listed = {module for module, *_ in BUILTINS}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name in ("base",):
            continue
        module = importlib.import_module(f"modelaudit.scanners.{info.name}")
        scanners = [obj for obj in vars(module).values() if isinstance(obj, type) and issubclass(obj, BaseScanner)
                    and obj.__module__ == module.__name__]
        if scanners:
            assert info.name in listed, f"{info.name} defines scanners missing from _lazy.BUILTINS"


def test_scanning_a_pickle_imports_no_unrelated_scanner(tmp_path):
    import pickle

    target = tmp_path / "weights.pkl"
    target.write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    code = (
        "import json, sys\n"
        "from modelaudit.core import scan_model_directory_or_file\n"
        f"r = scan_model_directory_or_file({str(target)!r})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('modelaudit.scanners.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    assert "modelaudit.scanners.pickle" in loaded
    for unrelated in ("onnx", "tensorflow", "gguf", "keras", "boosters", "tflite", "msgpack", "pmml"):
        assert f"modelaudit.scanners.{unrelated}" not in loaded
