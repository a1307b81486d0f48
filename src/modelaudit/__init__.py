"""modelaudit: a static security scanner for machine-learning model files.

The public API is imported lazily so that `modelaudit --version` starts fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "scan_model_directory_or_file",
    "scan_files",
    "BaseScanner",
    "ScanResult",
    "IssueSeverity",
    "SCANNER_REGISTRY",
    "RULES",
]

_LAZY = {
    "scan_model_directory_or_file": "modelaudit.core",
    "scan_files": "modelaudit.core",
    "BaseScanner": "modelaudit.scanners.base",
    "ScanResult": "modelaudit.scanners.base",
    "IssueSeverity": "modelaudit.model",
    "SCANNER_REGISTRY": "modelaudit.scanners",
    "RULES": "modelaudit.rules",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelaudit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
