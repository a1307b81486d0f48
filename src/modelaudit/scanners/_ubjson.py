"""A bounded UBJSON reader (the binary JSON XGBoost writes), written from the UBJSON draft 12 spec.

Values become Python values, except strongly typed numeric arrays (`[$d#…`), which stay as
TypedArray over the buffer: XGBoost stores every tree array that way, and only their lengths and
(for child indices) integer values are ever needed. Depth, element counts and every declared
length are checked against the bytes that remain before anything is read.
"""

from __future__ import annotations

import struct
from typing import Any

MAX_DEPTH = 64
MAX_VALUES = 20_000_000
_NUM = {b"i": ">b", b"U": ">B", b"I": ">h", b"l": ">i", b"L": ">q", b"d": ">f", b"D": ">d"}


class UbjsonError(ValueError):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at offset {offset}")


class TypedArray:
    """A typed UBJSON array left in the buffer: its length, and its values on demand."""

    def __init__(self, buf: Any, start: int, count: int, fmt: str) -> None:
        self.buf, self.start, self.count, self.fmt = buf, start, count, fmt

    def __len__(self) -> int:
        return self.count

    def values(self) -> list[Any]:
        return list(struct.unpack_from(f">{self.count}{self.fmt[1]}", self.buf, self.start)) if self.count else []


class Reader:
    def __init__(self, buf: Any, tick: Any = None) -> None:
        self.buf, self.pos, self.end, self.values, self.tick = buf, 0, len(buf), 0, tick

    def _take(self, n: int) -> int:
        if n < 0 or self.pos + n > self.end:
            raise UbjsonError(f"value needs {n} bytes but {self.end - self.pos} remain", self.pos)
        at = self.pos
        self.pos += n
        return at

    def _marker(self) -> bytes:
        while True:
            at = self._take(1)
            m = bytes(self.buf[at:at + 1])
            if m != b"N":  # no-op padding
                return m

    def _number(self, m: bytes) -> Any:
        fmt = _NUM[m]
        return struct.unpack_from(fmt, self.buf, self._take(struct.calcsize(fmt)))[0]

    def _length(self) -> int:
        m = self._marker()
        if m not in (b"i", b"U", b"I", b"l", b"L"):
            raise UbjsonError(f"length has marker {m!r}, not an integer", self.pos - 1)
        n = self._number(m)
        if n < 0:
            raise UbjsonError(f"negative length {n}", self.pos)
        return n

    def _string(self) -> str:
        n = self._length()
        at = self._take(n)
        return bytes(self.buf[at:at + n]).decode("utf-8", "replace")

    def read(self, depth: int = 0, marker: bytes | None = None) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            raise UbjsonError(f"more than {MAX_VALUES} values", self.pos)
        if self.tick is not None and self.values % 65536 == 0:
            self.tick()
        m = marker or self._marker()
        if m in _NUM:
            return self._number(m)
        if m in (b"S", b"H"):
            return self._string()
        if m == b"C":
            at = self._take(1)
            return chr(self.buf[at])
        if m in (b"Z", b"T", b"F"):
            return {b"Z": None, b"T": True, b"F": False}[m]
        if m in (b"[", b"{"):
            if depth >= MAX_DEPTH:
                raise UbjsonError(f"containers nest deeper than {MAX_DEPTH}", self.pos)
            return self._container(m, depth + 1)
        raise UbjsonError(f"unknown marker {m!r}", self.pos - 1)

    def _container(self, m: bytes, depth: int) -> Any:
        typ, count = None, None
        if self.buf[self.pos:self.pos + 1] == b"$":
            self.pos += 1
            typ = self._marker()
            if self.buf[self.pos:self.pos + 1] != b"#":
                raise UbjsonError("typed container without a count", self.pos)
        if self.buf[self.pos:self.pos + 1] == b"#":
            self.pos += 1
            count = self._length()
            per = struct.calcsize(_NUM[typ]) if typ in _NUM else 1
            if count * per > self.end - self.pos:
                raise UbjsonError(f"container declares {count} elements but {self.end - self.pos} bytes remain",
                                  self.pos)
        if m == b"[" and typ in _NUM:
            arr = TypedArray(self.buf, self.pos, count or 0, _NUM[typ])
            self._take((count or 0) * struct.calcsize(_NUM[typ]))
            return arr
        if m == b"[":
            out: list[Any] = []
            while count is None or len(out) < count:
                if count is None and self.buf[self.pos:self.pos + 1] == b"]":
                    self.pos += 1
                    break
                out.append(self.read(depth, typ))
            return out
        obj: dict[str, Any] = {}
        read = 0
        while count is None or read < count:
            if count is None and self.buf[self.pos:self.pos + 1] == b"}":
                self.pos += 1
                break
            key = self._string()
            if key in obj:
                raise UbjsonError(f"object repeats the key {key!r}", self.pos)
            obj[key] = self.read(depth, typ)
            read += 1
        return obj
