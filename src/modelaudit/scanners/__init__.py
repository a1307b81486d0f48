"""Scanner registry. Append a BaseScanner subclass to SCANNER_REGISTRY to register it;
installed packages can also register through the `modelaudit.scanners` entry point group."""

from __future__ import annotations

import os
import sys

from ._lazy import stand_ins
from .base import BaseScanner, IssueSeverity, ScanResult

# Built-in scanners are stand-ins that import their module on first use (see _lazy.py); a scan of
# one checkpoint should not pay for importing the ONNX, TensorFlow or GGUF readers.
_BUILTIN = stand_ins()
globals().update(_BUILTIN)
SCANNER_REGISTRY: list[type[BaseScanner]] = list(_BUILTIN.values())

ENTRY_POINT_GROUP = "modelaudit.scanners"
_entry_points_loaded = False


def load_entry_point_scanners() -> list[str]:
    """Register scanners that installed plugins advertise; returns problems as messages."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return []
    _entry_points_loaded = True
    if not _plugins_advertised():
        return []
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


def _plugins_advertised() -> bool:
    """Cheap look for a distribution that names our entry point group before importlib.metadata runs.

    importlib.metadata costs tens of milliseconds to import and to index every installed
    distribution, which is most of a small scan's start-up; almost no environment has a plugin.
    Anything unusual on sys.path (a zip, an unreadable folder) sends us the exact way."""
    marker = f"[{ENTRY_POINT_GROUP}]".encode()
    for entry in sys.path:
        folder = entry or "."
        if not os.path.isdir(folder):
            if os.path.exists(folder):
                return True  # a zip or egg file: only importlib.metadata knows how to look inside
            continue
        try:
            names = os.listdir(folder)
        except OSError:
            return True
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                try:
                    with open(os.path.join(folder, name, "entry_points.txt"), "rb") as fh:
                        if marker in fh.read():
                            return True
                except OSError:
                    continue
    return False


__all__ = ["SCANNER_REGISTRY", "BaseScanner", "ScanResult", "IssueSeverity", "load_entry_point_scanners"]
