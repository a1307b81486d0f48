"""safetensors: validated from the header alone, so a 100 GB file costs one small read.

Checks the header length, JSON validity, duplicate keys, dtypes, that shape x dtype
matches each tensor's byte range, that ranges are contiguous, non-overlapping and inside
the file, and that __metadata__ holds only strings without code or credentials.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from ._findings import CappedFindings
from . import _instantiate as instantiate
from ._metadata_checks import check_metadata_value, shown
from .base import BaseScanner

MAX_HEADER = 100 * 1024 * 1024
# bits per element of every dtype the safetensors format defines
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64,
    "F64": 64, "I64": 64, "U64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


class SafetensorsScanner(BaseScanner):
    name = "safetensors"
    description = "safetensors header, tensor layout and metadata validated without reading tensor data"
    supported_extensions = [".safetensors"]
    formats = ("safetensors",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        findings = CappedFindings(result, blob.location)
        try:
            self._check(blob, findings, ctx)
        finally:
            findings.flush()

    def _check(self, blob, findings: CappedFindings, ctx) -> None:  # noqa: ANN001
        result, where = findings.result, blob.location
        head = blob.head(8)
        header_len = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        if len(head) < 8 or header_len > MAX_HEADER or 8 + header_len > blob.size:
            _unreadable(findings, f"safetensors header length {header_len} is out of bounds (file is {blob.size} "
                        "bytes)", {"header_length": header_len})
            return
        raw = blob.head(8 + header_len)[8:]
        result.bytes_scanned += 8 + header_len
        try:
            header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
        except _Duplicate as exc:
            _unreadable(findings, f"safetensors header repeats the key {shown(exc.args[0])}; readers disagree on "
                        "which copy wins", {"key": shown(exc.args[0])})
            return
        except RecursionError:
            _unreadable(findings, "safetensors header nests deeper than the JSON parser allows", {})
            return
        except (UnicodeDecodeError, ValueError) as exc:
            _unreadable(findings, f"safetensors header is not valid JSON: {exc}", {"error": str(exc)})
            return
        if not isinstance(header, dict):
            _unreadable(findings, "safetensors header is not a JSON object", {})
            return
        metadata = header.pop("__metadata__", None)
        ctx.note_metadata(blob, metadata)
        self._check_metadata(metadata, findings)
        self._check_layout(header, blob.size - 8 - header_len, findings, ctx)
        ok = not any(findings.counts[code] for code in ("MA-F001", "MA-F002", "MA-C001", "MA-C002"))
        result.add_check("safetensors header", ok, f"{len(header)} tensors, layout and metadata checked", where)

    def _check_layout(self, tensors: dict[str, Any], data_size: int, emit: CappedFindings, ctx) -> None:  # noqa: ANN001
        spans = []
        for index, (name, info) in enumerate(tensors.items()):
            if index % 4096 == 4095:
                ctx.check_deadline()
            problem = _tensor_problem(info)
            if problem:
                emit("MA-F002", f"Tensor {shown(name)}: {problem}", {"tensor": shown(name)})
                continue
            start, end = info["data_offsets"]
            spans.append((start, end, name))
        spans.sort()
        cursor = 0
        for start, end, name in spans:
            if start != cursor:
                kind = "overlaps the previous tensor" if start < cursor else f"leaves a gap of {start - cursor} bytes"
                emit("MA-F002", f"Tensor {shown(name)} {kind} at offset {start}",
                     {"tensor": shown(name), "offset": start})
            cursor = max(cursor, end)
        if cursor > data_size:
            emit("MA-F002", f"Tensor data ends at {cursor} but the file holds only {data_size} data bytes",
                 {"data_end": cursor, "data_size": data_size})
        elif cursor < data_size:
            emit("MA-F002", f"{data_size - cursor} bytes after the last tensor are not described by the header "
                 "(hidden data)", {"data_end": cursor, "data_size": data_size})

    def _check_metadata(self, metadata: Any, emit: CappedFindings) -> None:
        if metadata is None:
            return
        if not isinstance(metadata, dict):
            emit("MA-F001", "__metadata__ must be an object of strings")
            return
        for key, value in metadata.items():
            if not isinstance(value, str):
                emit("MA-F001", f"__metadata__ value for {shown(key)} is not a string", {"key": shown(key)})
                continue
            check_metadata_value(emit, key, value)
            if value.lstrip().startswith("{") and "_target_" in value:  # a config some loaders instantiate
                instantiate.check_text(value, emit, yaml_allowed=False)


def _unreadable(findings: CappedFindings, message: str, details: dict[str, Any]) -> None:
    """The header cannot be read: nothing after it was checked."""
    findings("MA-F001", message, details)
    findings.result.mark_incomplete()


def _tensor_problem(info: Any) -> str | None:
    if not isinstance(info, dict):
        return "entry is not an object"
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        return f"unknown dtype {shown(dtype)}"
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        return f"invalid shape {shown(shape)}"
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]):
        return f"invalid data_offsets {shown(offsets)}"
    span = offsets[1] - offsets[0]
    count = 0 if 0 in shape else 1
    for dim in shape if count else ():
        count *= dim
        if count > 8 * span:  # more elements than the span has bits: stop before the product grows huge
            return f"shape of {len(shape)} dimensions of {dtype} needs more than the {span} bytes data_offsets span"
    bits = count * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != span:
        needed = f"{bits // 8}" + (f".{bits % 8 * 125:03d}".rstrip("0") if bits % 8 else "")
        return f"shape {shown(shape)} of {dtype} needs {needed} bytes but data_offsets span {span}"
    return None
