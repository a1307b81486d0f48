"""A bounded reader for FlatBuffers, written from the format's specification.

A flatbuffer is a tree of tables reached through 32-bit offsets: the root offset at byte 0, a
signed offset from each table back to its vtable (16-bit field offsets), and unsigned offsets from
a field to the vectors, strings and tables it refers to. Every one of them is checked here against
the buffer before it is followed, the number of tables and vector elements read is budgeted, and
the caller's deadline is checked as the budget is spent. Nothing is copied except the scalars and
strings asked for; a vector is returned as (start, count) over the buffer. Strings and blobs copied
out are budgeted in bytes too: many offsets may point at one long string, and each read copies it.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import BudgetExceeded

_CHECK_EVERY = 4096


class FlatBufferError(ValueError):
    """An offset or length of the flatbuffer points outside it, or a vtable is malformed."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at offset {offset}")
        self.reason = message
        self.offset = offset


class Table(NamedTuple):
    pos: int  # the table's first byte (its vtable offset)
    vtable: int
    vsize: int  # bytes of the vtable, header included
    tsize: int  # bytes of the table's inline data


@dataclass(frozen=True)
class FlatLimits:
    max_tables: int = 5_000_000
    max_elements: int = 20_000_000  # vector elements read into Python values
    max_string: int = 64 * 1024
    max_copied: int = 128 * 1024 * 1024  # bytes of strings and blobs copied out, aliased reads counted each time


class FlatBuffer:
    """Bounded access to one flatbuffer in `buf` (bytes, memoryview or mmap)."""

    def __init__(self, buf: Any, limits: FlatLimits = FlatLimits(), tick: Callable[[], None] | None = None,
                 budget_rule: str = "MA-T207") -> None:
        self.buf, self.end, self.limits, self.tick, self.budget_rule = buf, len(buf), limits, tick, budget_rule
        self.tables_read = self.elements = self.copied = 0
        self._next_tick = _CHECK_EVERY

    # --- scalars --------------------------------------------------------------------------
    def unpack(self, fmt: str, pos: int) -> Any:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > self.end:
            raise FlatBufferError(f"{size}-byte value outside the {self.end}-byte buffer", pos)
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def u32(self, pos: int) -> int:
        return self.unpack("<I", pos)

    def target(self, pos: int, what: str) -> int:
        """Follow the unsigned offset stored at `pos`."""
        dest = pos + self.u32(pos)
        if dest + 4 > self.end:
            raise FlatBufferError(f"{what} at {dest} lies outside the {self.end}-byte buffer", pos)
        return dest

    # --- tables ---------------------------------------------------------------------------
    def root(self) -> Table:
        return self.table(self.target(0, "root table"), "root table")

    def table(self, pos: int, what: str) -> Table:
        self._spend(tables=1)
        vtable = pos - self.unpack("<i", pos)
        if vtable < 0 or vtable + 4 > self.end:
            raise FlatBufferError(f"vtable of {what} at {vtable} lies outside the buffer", pos)
        vsize, tsize = self.unpack("<H", vtable), self.unpack("<H", vtable + 2)
        if vsize < 4 or vsize % 2 or vtable + vsize > self.end:
            raise FlatBufferError(f"vtable of {what} has an invalid size {vsize}", vtable)
        if tsize < 4 or pos + tsize > self.end:
            raise FlatBufferError(f"{what} claims {tsize} bytes past the end of the buffer", pos)
        return Table(pos, vtable, vsize, tsize)

    def field(self, table: Table, index: int, size: int) -> int | None:
        """Position of field `index` (None when absent), checked to fit in the table."""
        slot = 4 + 2 * index
        if slot + 2 > table.vsize:
            return None
        offset = self.unpack("<H", table.vtable + slot)
        if offset == 0:
            return None
        if offset < 4 or offset + size > table.tsize:
            raise FlatBufferError(f"field {index} at offset {offset} lies outside its {table.tsize}-byte table",
                                  table.pos)
        return table.pos + offset

    def scalar(self, table: Table, index: int, fmt: str, default: Any = 0) -> Any:
        pos = self.field(table, index, struct.calcsize(fmt))
        return default if pos is None else self.unpack(fmt, pos)

    def child(self, table: Table, index: int, what: str) -> Table | None:
        pos = self.field(table, index, 4)
        return None if pos is None else self.table(self.target(pos, what), what)

    # --- vectors and strings --------------------------------------------------------------
    def vector(self, table: Table, index: int, elem_size: int, what: str) -> tuple[int, int] | None:
        """(first element, count) of a vector field, checked to lie inside the buffer."""
        pos = self.field(table, index, 4)
        if pos is None:
            return None
        start = self.target(pos, what)
        count = self.u32(start)
        if start + 4 + count * elem_size > self.end:
            raise FlatBufferError(f"{what} declares {count} elements past the end of the buffer", start)
        return start + 4, count

    def tables(self, table: Table, index: int, what: str) -> list[Table]:
        found = self.vector(table, index, 4, what)
        if found is None:
            return []
        start, count = found
        self._spend(elements=count)
        return [self.table(self.target(start + 4 * i, what), what) for i in range(count)]

    def numbers(self, table: Table, index: int, fmt: str, what: str) -> list[int] | array:
        size = struct.calcsize("<" + fmt)
        found = self.vector(table, index, size, what)
        if found is None:
            return []
        start, count = found
        self._spend(elements=count)
        values = array(fmt)  # 4 or 8 bytes an element, where a list of ints costs 36 or more
        if values.itemsize != size:
            return list(struct.unpack_from(f"<{count}{fmt}", self.buf, start))
        values.frombytes(self.buf[start:start + count * size])
        if sys.byteorder == "big":
            values.byteswap()
        return values

    def string(self, table: Table, index: int, what: str) -> str | None:
        found = self.vector(table, index, 1, what)
        if found is None:
            return None
        start, count = found
        return self.blob(start, min(count, self.limits.max_string)).decode("utf-8", "replace")

    def blob(self, start: int, length: int) -> bytes:
        """A copy of buf[start:start + length] (checked by the caller), charged to the byte budget."""
        self._spend(copied=length)
        return bytes(self.buf[start:start + length])

    def _spend(self, tables: int = 0, elements: int = 0, copied: int = 0) -> None:
        self.tables_read += tables
        self.elements += elements
        self.copied += copied
        limits = self.limits
        if (self.tables_read > limits.max_tables or self.elements > limits.max_elements
                or self.copied > limits.max_copied):
            raise BudgetExceeded(f"flatbuffer holds more than {limits.max_tables} tables, {limits.max_elements} "
                                 f"vector elements or {limits.max_copied} bytes of strings; the rest was not read",
                                 self.budget_rule)
        progress = self.tables_read + self.elements + self.copied // 1024
        if progress >= self._next_tick:
            self._next_tick = progress + _CHECK_EVERY
            if self.tick is not None:
                self.tick()
