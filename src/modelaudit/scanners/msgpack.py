"""Flax checkpoints and other msgpack files, read by a bounded walker written from the msgpack spec.

No object is built: the walker follows the byte stream with an explicit stack, so depth, container
sizes (each element needs at least one byte, so a container cannot declare more than remain), string
and binary lengths, and the total element count are checked before anything is allocated. Extension
types other than Flax's (1 ndarray, 2 complex, 3 numpy scalar) are reported; Flax ndarray payloads
are themselves decoded and their shape x dtype checked against the data; binaries that look like
pickles are reported and scanned as nested pickles.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from .. import pickle_ops
from ._metadata_checks import code_snippet, credential_kind
from .base import BaseScanner

MAX_DEPTH = 64
MAX_ELEMENTS = 50_000_000
MAX_FINDINGS = 50
MAX_PATH = 400  # characters of a value's key path kept (the end of it)
FLAX_EXT = {1: "ndarray", 2: "native_complex", 3: "npscalar"}
_DTYPE_BITS = {"bool": 8, "int8": 8, "uint8": 8, "int16": 16, "uint16": 16, "float16": 16, "bfloat16": 16,
               "int32": 32, "uint32": 32, "float32": 32, "int64": 64, "uint64": 64, "float64": 64,
               "complex64": 64, "complex128": 128}
_OTHER_DTYPE = re.compile(r"^(float8_\w+|u?int[24]|float4_\w+|float6_\w+)$")


class MsgpackError(ValueError):
    def __init__(self, message: str, offset: int, limit: bool = False) -> None:
        super().__init__(f"{message} at offset {offset}")
        self.limit = limit


# fixed-size heads: marker -> (kind, bytes of the length or value that follow)
_FIXED = {0xC0: ("nil", 0), 0xC2: ("bool", 0), 0xC3: ("bool", 0), 0xCA: ("float", 4), 0xCB: ("float", 8),
          0xCC: ("int", 1), 0xCD: ("int", 2), 0xCE: ("int", 4), 0xCF: ("int", 8), 0xD0: ("int", 1),
          0xD1: ("int", 2), 0xD2: ("int", 4), 0xD3: ("int", 8)}
_SIZED = {0xC4: ("bin", 1), 0xC5: ("bin", 2), 0xC6: ("bin", 4), 0xD9: ("str", 1), 0xDA: ("str", 2),
          0xDB: ("str", 4), 0xDC: ("array", 2), 0xDD: ("array", 4), 0xDE: ("map", 2), 0xDF: ("map", 4),
          0xC7: ("ext", 1), 0xC8: ("ext", 2), 0xC9: ("ext", 4)}
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}


def _plain_sizes() -> list[int]:
    """Bytes taken by each marker's value when the scanner has nothing to check in it (0: it has): numbers,
    nil, booleans, empty containers and strings shorter than the 16 characters code checks start at."""
    sizes = [0] * 256
    for m in [*range(0x00, 0x80), *range(0xE0, 0x100), 0xC0, 0xC2, 0xC3, 0x80, 0x90]:
        sizes[m] = 1
    for m in range(0xA0, 0xB0):  # fixstr of 0-15 bytes
        sizes[m] = 1 + (m & 0x1F)
    for m, (_, n) in _FIXED.items():
        sizes[m] = 1 + n
    return sizes


_PLAIN_SIZE = _plain_sizes()
# runs of plain values matched in C: one-byte values of any kind, or repeats of one multi-byte marker
_ONE_BYTE_RUN = re.compile(b"[" + b"".join(re.escape(bytes([m])) for m in range(256) if _PLAIN_SIZE[m] == 1) + b"]*")
_PLAIN_RUN = [_ONE_BYTE_RUN if size == 1 else
              re.compile(b"(?:" + re.escape(bytes([m])) + b".{%d})*" % (size - 1), re.DOTALL) if size else None
              for m, size in enumerate(_PLAIN_SIZE)]


class Walker:
    """Iterates over one msgpack object in buf[start:end], yielding (kind, key path, value span)."""

    def __init__(self, buf: Any, start: int = 0, end: int | None = None, max_depth: int = MAX_DEPTH,
                 max_elements: int | None = None) -> None:
        self.buf, self.pos, self.end, self.max_depth = buf, start, len(buf) if end is None else end, max_depth
        self.elements = 0
        # walk() yields every value while this many have been read (the caller stops past it)
        self.max_elements = max_elements

    def _take(self, n: int) -> int:
        if self.pos + n > self.end:
            raise MsgpackError(f"value needs {n} bytes but only {self.end - self.pos} remain", self.pos)
        at = self.pos
        self.pos += n
        return at

    def _uint(self, n: int) -> int:
        at = self._take(n)
        return int.from_bytes(self.buf[at:at + n], "big")

    def head(self) -> tuple[str, int, Any]:
        """Read one value's head: (kind, offset, length | count | scalar); strings and bins are skipped."""
        at = self._take(1)
        m = self.buf[at]
        self.elements += 1
        if m <= 0x7F or m >= 0xE0:
            return "int", at, m
        if 0x80 <= m <= 0x8F:
            return self._container("map", at, m & 0x0F)
        if 0x90 <= m <= 0x9F:
            return self._container("array", at, m & 0x0F)
        if 0xA0 <= m <= 0xBF:
            return "str", at, self._blob(m & 0x1F)
        if m in _FIXED:
            kind, n = _FIXED[m]
            self._take(n)
            return kind, at, m
        if m in _FIXEXT:
            code = self._uint(1)
            return "ext", at, (code - 256 if code > 127 else code, self._blob(_FIXEXT[m]))
        if m in _SIZED:
            kind, n = _SIZED[m]
            length = self._uint(n)
            if kind in ("array", "map"):
                return self._container(kind, at, length)
            if kind == "ext":
                code = self._uint(1)
                return "ext", at, (code - 256 if code > 127 else code, self._blob(length))
            return kind, at, self._blob(length)
        raise MsgpackError(f"reserved marker 0x{m:02x}", at)

    def _container(self, kind: str, at: int, count: int) -> tuple[str, int, int]:
        need = count * (2 if kind == "map" else 1)
        if need > self.end - self.pos:
            raise MsgpackError(f"{kind} declares {count} entries but only {self.end - self.pos} bytes remain", at,
                               limit=True)
        return kind, at, count

    def _blob(self, length: int) -> tuple[int, int]:
        if length > self.end - self.pos:
            raise MsgpackError(f"string or binary claims {length} bytes but only {self.end - self.pos} remain",
                               self.pos, limit=True)
        return self._take(length), length

    def walk(self, tick: Any = None):  # noqa: ANN201 - generator of (kind, path, offset, info)
        """Depth-first over one object with an explicit stack; paths name map keys and array indices."""
        stack: list[list[Any]] = []  # [kind, remaining, path, index, key, expecting_key]
        while True:
            if stack and stack[-1][0] == "array" and self.pos < self.end and _PLAIN_SIZE[self.buf[self.pos]]:
                top = stack[-1]
                skipped = self._skip_plain(top[1])
                if skipped:  # numbers and short strings: nothing to yield (a float array holds millions)
                    top[1], top[3] = top[1] - skipped, top[3] + skipped
                    if tick is not None and self.elements // 65536 != (self.elements - skipped) // 65536:
                        tick()
                    while stack and stack[-1][1] == 0:
                        stack.pop()
                    if not stack:
                        return
                    continue
            if stack and stack[-1][0] == "map" and stack[-1][5]:
                kind, at, info = self.head()
                if kind in ("map", "array"):
                    raise MsgpackError("map key is a container", at)
                stack[-1][4], stack[-1][5] = self._key_text(kind, info), False
                yield "key", stack[-1][2], at, (kind, info)
                continue
            kind, at, info = self.head()
            here = ""
            if stack:
                top = stack[-1]
                here = f"{top[2]}/{top[4]}" if top[0] == "map" else f"{top[2]}[{top[3]}]"
                if len(here) > MAX_PATH:  # deep paths of long keys would cost their length for every value
                    here = "..." + here[-MAX_PATH:]
                top[1], top[3], top[5] = top[1] - 1, top[3] + 1, True
            yield kind, here, at, info
            if kind in ("map", "array") and info:
                if len(stack) >= self.max_depth:
                    raise MsgpackError(f"containers nest deeper than {self.max_depth}", at, limit=True)
                stack.append([kind, info, here, 0, "", True])
            if tick is not None and self.elements % 65536 == 0:
                tick()
            while stack and stack[-1][1] == 0:
                stack.pop()
            if not stack:
                return

    def _skip_plain(self, count: int) -> int:
        """Step over up to `count` values with nothing to check (_PLAIN_SIZE), stopping before any other value,
        before one the data cuts short (head() reports it) and at max_elements; the number stepped over."""
        if self.max_elements is not None and count > self.max_elements - self.elements:
            count = self.max_elements - self.elements
        buf, pos, end, left = self.buf, self.pos, self.end, count
        sizes = _PLAIN_SIZE
        while left > 0 and pos < end:
            marker = buf[pos]
            size = sizes[marker]
            if not size or pos + size > end:
                break
            after = pos + size
            if left == 1 or after >= end or (buf[after] != marker if size > 1 else sizes[buf[after]] != 1):
                pos, left = after, left - 1  # a run of one: not worth a regex call
                continue
            stop = pos + left * size
            run = _PLAIN_RUN[marker].match(buf, pos, stop if stop < end else end)  # type: ignore[union-attr]
            taken = (run.end() - pos) // size
            pos += taken * size
            left -= taken
        self.pos = pos
        self.elements += count - left
        return count - left

    def _key_text(self, kind: str, info: Any) -> str:
        if kind == "str":
            at, n = info
            return bytes(self.buf[at:at + min(n, 200)]).decode("utf-8", "replace")
        return str(info if kind == "int" else kind)


class MsgpackScanner(BaseScanner):
    name = "msgpack"
    description = "Flax / msgpack checkpoints: structure limits, extension types, ndarray layout, embedded pickles"
    supported_extensions = [".msgpack"]
    formats = ("msgpack",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        where = blob.location
        before = len(result.issues)
        with blob.buffer() as buf:
            walker = Walker(buf, max_elements=MAX_ELEMENTS)
            try:
                counts = self._walk(walker, buf, blob, result, ctx)
            except MsgpackError as exc:
                code = "MA-X112" if exc.limit else "MA-X111"
                result.report(code, f"msgpack stream is malformed: {exc}", where, {"error": str(exc)})
                result.mark_incomplete()
                return
            result.bytes_scanned += walker.pos
            if walker.pos < len(buf):
                result.report("MA-X111", f"{len(buf) - walker.pos} bytes follow the msgpack object (flax's "
                              "unpacker refuses extra data; hidden content)", where,
                              {"object_end": walker.pos, "size": len(buf)})
        ok = not any(i.severity.rank >= 2 for i in result.issues[before:])
        result.add_check("msgpack structure", ok, f"{walker.elements} values, {counts} arrays checked", where)

    def _walk(self, walker: Walker, buf: Any, blob, result, ctx) -> int:  # noqa: ANN001
        arrays = findings = pickles = 0
        for kind, path, _at, info in walker.walk(ctx.check_deadline):
            if walker.elements > MAX_ELEMENTS:
                raise MsgpackError(f"more than {MAX_ELEMENTS} values", walker.pos, limit=True)
            if kind == "bin":  # probed past the cap too: warnings in front must not hide a pickle
                start, length = info
                if length >= 2 and pickle_ops.probe(bytes(buf[start:start + min(length, 4096)])):
                    pickles += 1
                    if pickles <= MAX_FINDINGS:
                        self._scan_pickle(buf, start, length, path, blob, result, ctx)
                continue
            if findings >= MAX_FINDINGS:
                continue
            before = len(result.issues)
            if kind == "ext":
                code, (start, length) = info
                arrays += code == 1
                self._check_ext(buf, code, start, length, path, blob, result)
            elif kind == "str" and info[1] >= 16:
                start, length = info
                text = bytes(buf[start:start + min(length, 65536)]).decode("utf-8", "replace")
                snippet, cred = code_snippet(text), credential_kind(text)
                if snippet:
                    result.report("MA-C001", f"String at {path!r} contains code-like text ({snippet!r})",
                                  f"{blob.location}:{path}", {"match": snippet})
                if cred:
                    result.report("MA-C002", f"String at {path!r} contains what looks like a {cred}",
                                  f"{blob.location}:{path}", {"kind": cred})
            findings += len(result.issues) - before
        if pickles > MAX_FINDINGS:
            result.report("MA-X114", f"{pickles - MAX_FINDINGS} more binary values hold pickle streams; they were "
                          "not scanned", blob.location, {"unscanned": pickles - MAX_FINDINGS})
            result.mark_incomplete()
        return arrays

    @staticmethod
    def _scan_pickle(buf: Any, start: int, length: int, path: str, blob, result, ctx) -> None:  # noqa: ANN001
        where = f"{blob.location}:{path}"
        result.report("MA-X114", f"Binary value at {path!r} holds a pickle stream ({length} bytes)", where,
                      {"path": path, "length": length})
        ctx.scan_member(blob.child(bytes(buf[start:start + length]), path or "msgpack-bin"), result)

    def _check_ext(self, buf: Any, code: int, start: int, length: int, path: str, blob, result) -> None:  # noqa: ANN001
        where = f"{blob.location}:{path}"
        if code not in FLAX_EXT:
            result.report("MA-X113", f"Extension type {code} at {path!r} ({length} bytes) is not one Flax writes",
                          where, {"ext_type": code, "length": length})
            return
        problem = _flax_payload_problem(buf, code, start, length)
        if problem:
            result.report("MA-X111", f"Flax {FLAX_EXT[code]} at {path!r}: {problem}", where,
                          {"ext_type": code, "path": path})


def _read_value(w: Walker, buf: Any, depth: int = 0) -> Any:
    """A small scalar, string or list of scalars from an ext payload (shape tuples, dtype names)."""
    kind, at, info = w.head()
    if kind == "array":
        if info > 64:
            raise MsgpackError("array too long for an ext header", at)
        if depth >= w.max_depth:  # Flax payloads nest two deep: (shape tuple, dtype, data)
            raise MsgpackError(f"arrays nest deeper than {w.max_depth}", at)
        return [_read_value(w, buf, depth + 1) for _ in range(info)]
    if kind == "int":
        m = info
        if m <= 0x7F:
            return m
        if m >= 0xE0:
            return m - 256
        fmt = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}[m]
        return struct.unpack_from(fmt, buf, w.pos - struct.calcsize(fmt))[0]
    if kind == "str":
        s, n = info
        return bytes(buf[s:s + min(n, 256)]).decode("utf-8", "replace")
    if kind == "bin":
        return ("bin", info[1])
    return kind


def _flax_payload_problem(buf: Any, code: int, start: int, length: int) -> str | None:
    w = Walker(buf, start, start + length, max_depth=4)
    try:
        value = _read_value(w, buf)
    except (MsgpackError, KeyError) as exc:
        return f"payload is not valid msgpack ({exc})"
    if w.pos != start + length:
        return f"{start + length - w.pos} bytes follow the payload"
    if code == 2:
        return None if isinstance(value, list) and len(value) == 2 else "complex payload is not a (real, imag) pair"
    if code == 3:
        ok = isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
        return None if ok and _dtype_known(value[0]) else f"numpy scalar payload {str(value)[:80]} is malformed"
    if not (isinstance(value, list) and len(value) == 3):
        return "ndarray payload is not (shape, dtype, data)"
    shape, dtype, data = value
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        return f"invalid shape {str(shape)[:80]}"
    if not isinstance(dtype, str) or not _dtype_known(dtype):
        return f"unknown dtype {str(dtype)[:40]!r}"
    if not (isinstance(data, tuple) and data[0] == "bin"):
        return "array data is not a binary value"
    count = 1
    for d in shape:
        count *= d
    bits = _DTYPE_BITS.get(dtype)
    if bits is not None and count * bits // 8 != data[1]:
        return f"shape {shape} of {dtype} needs {count * bits // 8} bytes but the data holds {data[1]}"
    return None


def _dtype_known(name: str) -> bool:
    return name in _DTYPE_BITS or bool(_OTHER_DTYPE.match(name))
