"""Scanner registry. Append a BaseScanner subclass to SCANNER_REGISTRY to register it;
installed packages can also register through the `modelaudit.scanners` entry point group."""

from __future__ import annotations

from .base import BaseScanner, IssueSeverity, ScanResult
from .boosters import CatBoostScanner, LightGBMScanner, XGBoostScanner
from .compressed import CompressedScanner
from .containers import ZipScanner
from .gguf import GgufScanner
from .hf_config import HfConfigScanner
from .keras import KerasH5Scanner, KerasZipScanner
from .msgpack import MsgpackScanner
from .numpy import NumpyScanner
from .onnx import OnnxScanner
from .pickle import PickleScanner
from .pmml import PmmlScanner
from .python_code import BytecodeScanner, PythonCodeScanner, ScriptScanner
from .pytorch import PyTorchScanner
from .safetensors import SafetensorsScanner
from .sevenzip import SevenZipScanner
from .simple import ExecutableScanner, TextScanner
from .tar import TarScanner
from .tensorflow import TensorFlowScanner
from .tflite import TFLiteScanner
from .torchserve import TorchServeScanner

SCANNER_REGISTRY: list[type[BaseScanner]] = [
    PickleScanner,
    PyTorchScanner,
    NumpyScanner,
    SafetensorsScanner,
    GgufScanner,
    OnnxScanner,
    TensorFlowScanner,
    TFLiteScanner,
    KerasH5Scanner,
    KerasZipScanner,
    CompressedScanner,
    TorchServeScanner,
    ZipScanner,
    TarScanner,
    SevenZipScanner,
    PmmlScanner,
    MsgpackScanner,
    XGBoostScanner,
    LightGBMScanner,
    CatBoostScanner,
    ExecutableScanner,
    HfConfigScanner,  # JSON that detect.py names hf_config (config.json …); other JSON stays with TextScanner
    PythonCodeScanner,
    ScriptScanner,
    BytecodeScanner,
    TextScanner,
]

ENTRY_POINT_GROUP = "modelaudit.scanners"
_entry_points_loaded = False


def load_entry_point_scanners() -> list[str]:
    """Register scanners that installed plugins advertise; returns problems as messages."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return []
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    problems = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the scan
            problems.append(f"could not load scanner plugin {ep.name}: {exc}")
            continue
        if isinstance(cls, type) and issubclass(cls, BaseScanner) and cls not in SCANNER_REGISTRY:
            SCANNER_REGISTRY.append(cls)
    return problems


__all__ = ["SCANNER_REGISTRY", "BaseScanner", "ScanResult", "IssueSeverity", "load_entry_point_scanners"]
