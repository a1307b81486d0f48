"""JSON output: the documented result dictionary, compact and machine-greppable."""

from __future__ import annotations

import json
from typing import Any

from ..engine import ScanRun
from .data import report_dict


def render_json(run: ScanRun, indent: int | None = None) -> str:
    return dumps(report_dict(run), indent)


def dumps(data: Any, indent: int | None = None) -> str:
    # Compact separators keep '"severity":"critical"' greppable, as CI recipes expect.
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(data, indent=indent, separators=separators, default=_fallback, ensure_ascii=False) + "\n"


def _fallback(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("latin-1")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)
