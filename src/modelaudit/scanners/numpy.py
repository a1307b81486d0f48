"""NumPy .npy arrays (header, size, object arrays' pickles) and .npz archives."""

from __future__ import annotations

import re
import struct
from typing import Any

from ._literal import LiteralError, parse_literal
from ._metadata_checks import shown
from ._pickle_scan import record_check, walk_pickle
from ._zip import scan_members
from .base import BaseScanner

_KIND_SIZES = {"b": 1, "?": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8, "Q": 8,
               "e": 2, "f": 4, "d": 8, "g": 16, "F": 8, "D": 16, "G": 32}
_DESCR = re.compile(r"^[<>|=]?([a-zA-Z?])([0-9]{0,18})(?:\[[0-9A-Za-z]+\])?$")  # ASCII only, as numpy reads it
MAX_HEADER = 1024 * 1024
MAX_ITEMSIZE = 1 << 63  # numpy's own limit on one element: larger sub-array fields are refused


class NpyHeader:
    def __init__(self, descr: Any, fortran: bool, shape: tuple[int, ...], data_offset: int) -> None:
        self.descr, self.fortran, self.shape, self.data_offset = descr, fortran, shape, data_offset


def parse_header(head: bytes) -> NpyHeader:
    if not head.startswith(b"\x93NUMPY") or len(head) < 8:
        raise ValueError("missing NUMPY magic")
    major, minor = head[6], head[7]
    if minor != 0 or major not in (1, 2, 3):  # numpy refuses any other version
        raise ValueError(f"unsupported .npy version {major}.{minor}")
    if len(head) < (10 if major == 1 else 12):
        raise ValueError("header length is cut off")
    if major == 1:
        (length,), start = struct.unpack_from("<H", head, 8), 10
    else:
        (length,), start = struct.unpack_from("<I", head, 8), 12
    if length > MAX_HEADER or start + length > len(head):
        raise ValueError("header length runs past the file")
    text = head[start:start + length].decode("utf-8" if major == 3 else "latin-1")
    try:
        fields = parse_literal(text)
    except LiteralError as exc:
        raise ValueError(f"header is not a literal dict: {exc}") from None
    if not isinstance(fields, dict) or not {"descr", "fortran_order", "shape"} <= set(fields):
        raise ValueError("header lacks descr, fortran_order or shape")
    shape = fields["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ValueError(f"invalid shape {shape!r}")
    return NpyHeader(fields["descr"], bool(fields["fortran_order"]), shape, start + length)


def descr_has_object(descr: Any, depth: int = 0) -> bool:
    if depth > 16:
        return True
    if isinstance(descr, str):  # "O", "|O8", and the names np.dtype also accepts: "object", "object_"
        return descr.lstrip("<>|=").startswith(("O", "object"))
    if isinstance(descr, tuple):  # numpy reads a (base, shape) pair as a sub-array dtype
        return bool(descr) and descr_has_object(descr[0], depth + 1)
    if isinstance(descr, list):
        return any(isinstance(f, tuple) and len(f) >= 2 and descr_has_object(f[1], depth + 1) for f in descr)
    return False


def descr_itemsize(descr: Any, depth: int = 0) -> int | None:
    if depth > 16:
        return None
    if isinstance(descr, str):
        match = _DESCR.match(descr)
        if not match:
            return None
        kind, digits = match.groups()
        if digits:
            return int(digits) * (4 if kind == "U" else 1)
        return _KIND_SIZES.get(kind)
    if isinstance(descr, list):
        total = 0
        for field in descr:
            if not isinstance(field, tuple) or len(field) < 2:
                return None
            size = descr_itemsize(field[1], depth + 1)
            count = _field_count(field[2] if len(field) > 2 else ())
            if size is None or count is None:
                return None
            total += size * count
            if total > MAX_ITEMSIZE:
                return None
        return total
    return None


def _field_count(shape: Any) -> int | None:
    """Elements of a sub-array field (its shape is an int or a tuple of ints); None when invalid."""
    dims = (shape,) if isinstance(shape, int) else shape
    if not isinstance(dims, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in dims):
        return None
    count = 0 if 0 in dims else 1
    for dim in dims if count else ():
        count *= dim
        if count > MAX_ITEMSIZE:
            return None
    return count


def implied_size(header: NpyHeader, itemsize: int, limit: int) -> int | None:
    """Header plus data bytes the header describes; None when that is more than `limit`."""
    total = 0 if 0 in header.shape else itemsize
    for dim in header.shape if total else ():
        total *= dim
        if header.data_offset + total > limit:  # stop before a hostile shape makes a huge product
            return None
    return header.data_offset + total if header.data_offset + total <= limit else None


class NumpyScanner(BaseScanner):
    name = "numpy"
    description = "NumPy .npy arrays (header and size checks, object-array pickles) and .npz archives"
    supported_extensions = [".npy", ".npz"]
    formats = ("numpy", "npz")

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        if blob.head(6) == b"\x93NUMPY":
            self._check_npy(blob, result, ctx)
        else:
            self._check_npz(blob, result, ctx)

    def _check_npy(self, blob, result, ctx) -> None:  # noqa: ANN001
        try:
            header = parse_header(blob.head(MAX_HEADER + 16))
        except ValueError as exc:
            result.report("MA-N002", f"Malformed NumPy header: {exc}", blob.location, {"error": str(exc)})
            result.mark_incomplete()  # what the data holds is unknown
            return
        result.bytes_scanned += header.data_offset
        if descr_has_object(header.descr):
            result.report("MA-N001", "NumPy array with object dtype: its data is a pickle (needs allow_pickle=True)",
                          blob.location, {"dtype": shown(header.descr), "shape": list(header.shape[:32])})
            before = len(result.issues)
            with blob.buffer() as buf:
                walk_pickle(buf, blob, result, ctx, start=header.data_offset, max_streams=1)
            record_check(result, "numpy object array pickle", before, blob.location)
            return
        itemsize = descr_itemsize(header.descr)
        if itemsize is None:
            result.report("MA-N002", f"Unrecognised NumPy dtype {shown(header.descr)}", blob.location)
            result.mark_incomplete()
            return
        expected = implied_size(header, itemsize, blob.size)
        if expected is None:
            result.report("MA-N002", f"NumPy array data is truncated: header implies more than the {blob.size} "
                          "bytes of the file", blob.location, {"actual_size": blob.size})
        elif expected != blob.size:
            result.report("MA-N002", f"NumPy array data is followed by extra data: header implies {expected} bytes, "
                          f"file has {blob.size}", blob.location, {"expected_size": expected, "actual_size": blob.size})
        else:
            result.add_check("numpy header and size", True, "header, dtype and size are consistent", blob.location)

    def _check_npz(self, blob, result, ctx) -> None:  # noqa: ANN001
        scan_members(blob, result, ctx)
