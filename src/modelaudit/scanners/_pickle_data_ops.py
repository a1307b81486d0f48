"""Pickle opcodes that only move data: scalars, text and bytes, tuples, lists, dicts, sets.

A mixin of PickleWalker (see _pickle_vm), which supplies the stack, the argument readers
(_read, _line, _sized, _data, _text) and the call analysis used when containers are
extended with calls. Errors are raised exactly where the real unpickler raises.
"""

from __future__ import annotations

import codecs
import struct
from typing import TYPE_CHECKING, Any

from ._pickle_values import OPAQUE, Call, Container, Global, Persistent

_MAX_TUPLE = 1024


class Malformed(Exception):
    """The real unpickler would raise here."""


def int_arg(raw: bytes) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise Malformed(f"invalid integer argument {raw[:40]!r}") from None


# Values of the protocol 0 text opcodes, from their argument line (shared with the native core).
def int_value(raw: bytes) -> Any:
    text = raw.strip()
    return {b"00": False, b"01": True}.get(text) if text in (b"00", b"01") else int_arg(raw)


def long_value(raw: bytes) -> int:
    return int_arg(raw.rstrip(b"L"))


def float_value(raw: bytes) -> float:
    try:
        return float(raw)
    except ValueError:
        raise Malformed("could not convert string to float") from None


def string_value(raw: bytes) -> str:
    raw = raw.rstrip(b"\r")
    if len(raw) < 2 or raw[:1] not in (b"'", b'"') or raw[-1:] != raw[:1]:
        raise Malformed("the STRING opcode argument must be quoted")
    try:
        value = codecs.escape_decode(raw[1:-1])[0]
    except ValueError:
        raise Malformed("invalid escape in STRING argument") from None
    return value.decode("latin-1")


def unicode_value(raw: bytes) -> str:
    try:
        return raw.decode("raw-unicode-escape")
    except UnicodeDecodeError:
        raise Malformed("invalid UNICODE argument") from None


LINE_VALUES = {ord("I"): int_value, ord("L"): long_value, ord("F"): float_value, ord("S"): string_value,
               ord("V"): unicode_value}


class DataOpcodes:
    """Data opcodes; the walker supplies the stack machinery declared here."""

    if TYPE_CHECKING:
        buf: Any
        calls: Any
        _pos: int

        def push(self, value: Any) -> None: ...
        def pop(self) -> Any: ...
        def top(self) -> Any: ...
        def pop_mark(self) -> list[Any]: ...
        def _read(self, pos: int, n: int) -> tuple[bytes, int]: ...
        def _line(self, pos: int) -> tuple[bytes, int]: ...
        def _sized(self, pos: int, width: int) -> tuple[int, int]: ...
        def _data(self, pos: int, length: int) -> Any: ...
        def _text(self, pos: int, length: int) -> Any: ...

    # ------------------------------------------------------------------ opcodes: scalars
    def op_NONE(self, pos: int) -> int:
        self.push(None)
        return pos

    def op_NEWTRUE(self, pos: int) -> int:
        self.push(True)
        return pos

    def op_NEWFALSE(self, pos: int) -> int:
        self.push(False)
        return pos

    def op_INT(self, pos: int) -> int:
        raw, pos = self._line(pos)
        self.push(int_value(raw))
        return pos

    def op_LONG(self, pos: int) -> int:
        raw, pos = self._line(pos)
        self.push(long_value(raw))
        return pos

    def op_FLOAT(self, pos: int) -> int:
        raw, pos = self._line(pos)
        self.push(float_value(raw))
        return pos

    def op_BININT(self, pos: int) -> int:
        raw, pos = self._read(pos, 4)
        self.push(int.from_bytes(raw, "little", signed=True))
        return pos

    def op_BININT1(self, pos: int) -> int:
        raw, pos = self._read(pos, 1)
        self.push(raw[0])
        return pos

    def op_BININT2(self, pos: int) -> int:
        raw, pos = self._read(pos, 2)
        self.push(int.from_bytes(raw, "little"))
        return pos

    def op_BINFLOAT(self, pos: int) -> int:
        raw, pos = self._read(pos, 8)
        self.push(struct.unpack(">d", raw)[0])
        return pos

    def op_LONG1(self, pos: int) -> int:
        start, length = self._sized(pos, 1)
        self.push(int.from_bytes(self.buf[start:start + length], "little", signed=True) if length <= 64 else OPAQUE)
        return start + length

    def op_LONG4(self, pos: int) -> int:
        raw, _ = self._read(pos, 4)
        if int.from_bytes(raw, "little", signed=True) < 0:
            raise Malformed("LONG pickle has negative byte count")
        start, length = self._sized(pos, 4)
        self.push(OPAQUE)
        return start + length

    # ------------------------------------------------------------------ opcodes: strings and bytes
    def op_STRING(self, pos: int) -> int:
        raw, pos = self._line(pos)
        self.push(string_value(raw))
        return pos

    def op_UNICODE(self, pos: int) -> int:
        raw, pos = self._line(pos)
        self.push(unicode_value(raw))
        return pos

    def _push_text(self, pos: int, width: int) -> int:
        start, length = self._sized(pos, width)
        self.push(self._text(start, length))
        return start + length

    def _push_bytes(self, pos: int, width: int, as_text: bool = False) -> int:
        start, length = self._sized(pos, width)
        value = self._data(start, length)
        self.push(value.decode("latin-1") if as_text and isinstance(value, bytes) else value)
        return start + length

    def op_BINUNICODE(self, pos: int) -> int:
        return self._push_text(pos, 4)

    def op_SHORT_BINUNICODE(self, pos: int) -> int:
        return self._push_text(pos, 1)

    def op_BINUNICODE8(self, pos: int) -> int:
        return self._push_text(pos, 8)

    def op_BINSTRING(self, pos: int) -> int:
        return self._push_bytes(pos, 4, as_text=True)

    def op_SHORT_BINSTRING(self, pos: int) -> int:
        return self._push_bytes(pos, 1, as_text=True)

    def op_BINBYTES(self, pos: int) -> int:
        return self._push_bytes(pos, 4)

    def op_SHORT_BINBYTES(self, pos: int) -> int:
        return self._push_bytes(pos, 1)

    def op_BINBYTES8(self, pos: int) -> int:
        return self._push_bytes(pos, 8)

    def op_BYTEARRAY8(self, pos: int) -> int:
        return self._push_bytes(pos, 8)

    def op_NEXT_BUFFER(self, pos: int) -> int:
        self.push(OPAQUE)  # out-of-band data supplied by the loader
        return pos

    def op_READONLY_BUFFER(self, pos: int) -> int:
        self.top()
        return pos

    # ------------------------------------------------------------------ opcodes: containers
    def op_EMPTY_TUPLE(self, pos: int) -> int:
        self.push(())
        return pos

    def op_TUPLE(self, pos: int) -> int:
        items = self.pop_mark()
        # Long tuples are data; keep the head so memory stays bounded by the budget, not the file.
        self.push(tuple(items) if len(items) <= _MAX_TUPLE else tuple(items[:_MAX_TUPLE]))
        return pos

    def op_TUPLE1(self, pos: int) -> int:
        self.push((self.pop(),))
        return pos

    def op_TUPLE2(self, pos: int) -> int:
        b, a = self.pop(), self.pop()
        self.push((a, b))
        return pos

    def op_TUPLE3(self, pos: int) -> int:
        c, b, a = self.pop(), self.pop(), self.pop()
        self.push((a, b, c))
        return pos

    def op_EMPTY_LIST(self, pos: int) -> int:
        self.push(Container("list"))
        return pos

    def op_EMPTY_DICT(self, pos: int) -> int:
        self.push(Container("dict"))
        return pos

    def op_EMPTY_SET(self, pos: int) -> int:
        self.push(Container("set"))
        return pos

    def op_LIST(self, pos: int) -> int:
        items = self.pop_mark()
        lst = Container("list")
        lst.add(items)
        self.push(lst)
        return pos

    def op_DICT(self, pos: int) -> int:
        items = self.pop_mark()
        if len(items) % 2:
            raise Malformed("odd number of items for DICT")
        dct = Container("dict")
        dct.add(items)
        self.push(dct)
        return pos

    def op_FROZENSET(self, pos: int) -> int:
        items = self.pop_mark()
        fs = Container("frozenset")
        fs.add(items)
        self.push(fs)
        return pos

    def _extend(self, target: Any, items: list[Any], opcode: str) -> None:
        if isinstance(target, Container):
            target.add(items)
        elif isinstance(target, (Call, Global, Persistent)) or target is OPAQUE:
            self.calls.method_call(target, opcode, items, self._pos)
        else:
            raise Malformed(f"{opcode} on an object of type {type(target).__name__}")

    def op_APPEND(self, pos: int) -> int:
        value = self.pop()
        self._extend(self.top(), [value], "APPEND")
        return pos

    def op_APPENDS(self, pos: int) -> int:
        items = self.pop_mark()
        self._extend(self.top(), items, "APPENDS")
        return pos

    def op_ADDITEMS(self, pos: int) -> int:
        items = self.pop_mark()
        self._extend(self.top(), items, "ADDITEMS")
        return pos

    def op_SETITEM(self, pos: int) -> int:
        value, key = self.pop(), self.pop()
        self._extend(self.top(), [key, value], "SETITEM")
        return pos

    def op_SETITEMS(self, pos: int) -> int:
        items = self.pop_mark()
        if len(items) % 2:
            raise Malformed("odd number of items for SETITEMS")
        self._extend(self.top(), items, "SETITEMS")
        return pos

