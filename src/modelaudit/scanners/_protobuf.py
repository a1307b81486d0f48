"""A bounded reader for the protobuf wire format, driven by small declarative schemas.

Nothing here imports protobuf. Every length is checked against the buffer, nesting and
field counts are budgeted, and length-delimited payloads the schema marks as ``bytes``
come back as `Span` offsets, so a multi-gigabyte tensor is never copied: the reader works
on bytes, memoryviews and mmaps alike.

Decoding follows the parser's merge rules: a repeated field appends, a singular scalar is
overwritten by a later copy, and a singular message seen twice is merged field by field
(so a second ``graph`` adds its nodes to the first, as protobuf itself does). A field that
arrives with a wire type its schema does not expect is skipped like an unknown field.

Errors raise `ProtobufError` with the offset. Messages are filled in place (a child dict is
attached to its parent before it is read), so whatever was decoded before an error or an
exhausted budget is still reachable from the root for the caller to inspect.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import BudgetExceeded

VARINT, FIXED64, LEN, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5
_MAX_VARINT_BYTES = 10
_HIGH_BYTES = bytes(range(0x80, 0x100))
_COUNT_CHUNK = 1 << 20
_CHECK_EVERY = 4096  # fields between budget and deadline checks

#: the wire type of each kind (a repeated scalar may also arrive packed, as one LEN field)
_KIND_WIRE = {
    "int": VARINT, "uint": VARINT, "sint": VARINT, "bool": VARINT, "enum": VARINT,
    "fixed32": FIXED32, "float": FIXED32, "fixed64": FIXED64, "double": FIXED64,
    "string": LEN, "bytes": LEN, "message": LEN,
}


class ProtobufError(ValueError):
    """The bytes are not a well-formed protobuf message."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at offset {offset}")
        self.reason = message
        self.offset = offset


class Span(NamedTuple):
    """Where a length-delimited payload lies in the buffer (never copied)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


class Field(NamedTuple):
    """The layout of the tuples `Reader.fields` yields."""

    number: int
    wire: int
    value: int  # the scalar for VARINT/FIXED*, the payload length for LEN, 0 for groups
    start: int  # payload start (the value's first byte)
    end: int  # first byte after the field


@dataclass(frozen=True)
class Spec:
    """One field of a schema. ``count`` keeps only the number of elements of a repeated scalar."""

    name: str
    kind: str
    repeated: bool = False
    message: Message | None = None
    count: bool = False
    wire: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "wire", _KIND_WIRE[self.kind])


ONE, REPEATED, COUNT = "one", "repeated", "count"


class Message:
    """A schema: field number -> Spec. Defined after creation so schemas can be recursive."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fields: dict[int, Spec] = {}

    def define(self, **specs: tuple) -> Message:
        """define(name=(number, kind_or_message[, ONE|REPEATED|COUNT])) — a schema in one call.

        COUNT keeps only the number of elements of a repeated field (packed or not)."""
        for name, (number, kind, *rest) in specs.items():
            mode = rest[0] if rest else ONE
            sub = kind if isinstance(kind, Message) else None
            self.fields[number] = Spec(name, "message" if sub else kind, mode == REPEATED, sub, mode == COUNT)
        return self


@dataclass(frozen=True)
class ReadLimits:
    max_depth: int = 100  # protobuf's own default recursion limit
    max_fields: int = 10_000_000  # decoded fields cost ~70 bytes each in Python
    max_string: int = 64 * 1024  # longer strings are cut (and flagged in `Reader.truncated`)


@dataclass
class Reader:
    buf: Any  # bytes, memoryview or mmap
    limits: ReadLimits = field(default_factory=ReadLimits)
    tick: Callable[[], None] | None = None  # called every few thousand fields (deadline checks)
    budget_rule: str | None = None  # rule code of the BudgetExceeded raised (its default when None)
    fields_read: int = 0
    truncated: int = 0  # strings cut at max_string
    skipped: int = 0  # payload bytes handed out as Spans, never read
    _next_stop: int = field(default=0, repr=False)  # fields_read at which to check budget and deadline

    def __post_init__(self) -> None:
        self._next_stop = min(_CHECK_EVERY, self.limits.max_fields + 1)

    # --- wire level ----------------------------------------------------------------
    def varint(self, pos: int, end: int) -> tuple[int, int]:
        if pos < end:
            byte = self.buf[pos]
            if byte < 0x80:  # the common one-byte case, without the loop
                return byte, pos + 1
        result = shift = 0
        for i in range(_MAX_VARINT_BYTES):
            if pos + i >= end:
                raise ProtobufError("truncated varint", pos)
            byte = self.buf[pos + i]
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result & 0xFFFFFFFFFFFFFFFF, pos + i + 1
            shift += 7
        raise ProtobufError("varint longer than 10 bytes", pos)

    def fields(self, start: int, end: int, depth: int = 0) -> Iterator[tuple[int, int, int, int, int]]:
        """Every field of the message in buf[start:end], each checked against the bounds.

        Yields plain (number, wire, value, start, end) tuples, laid out as `Field`, for speed."""
        varint, pos = self.varint, start
        while pos < end:
            key_at = pos
            key, pos = varint(pos, end)
            number, wire = key >> 3, key & 7
            if number == 0 or number > 0x1FFFFFFF:
                raise ProtobufError(f"invalid field number {number}", key_at)
            self.fields_read += 1
            if self.fields_read >= self._next_stop:
                self._checkpoint()
            if wire == LEN:
                length, body = varint(pos, end)
                nxt = body + length
                if nxt > end:
                    raise ProtobufError(f"field {number} declares {length} bytes but only {end - body} remain", pos)
                yield number, wire, length, body, nxt
            elif wire == VARINT:
                value, nxt = varint(pos, end)
                yield number, wire, value, pos, nxt
            elif wire in (FIXED64, FIXED32):
                nxt = pos + (8 if wire == FIXED64 else 4)
                if nxt > end:
                    raise ProtobufError(f"field {number} runs past the end of its message", pos)
                yield number, wire, int.from_bytes(self.buf[pos:nxt], "little"), pos, nxt
            elif wire == START_GROUP:
                nxt = self._skip_group(number, pos, end, depth + 1)
                yield number, wire, 0, pos, nxt
            elif wire == END_GROUP:
                raise ProtobufError(f"end-group for field {number} without a start", key_at)
            else:
                raise ProtobufError(f"invalid wire type {wire} for field {number}", key_at)
            pos = nxt

    def _skip_group(self, number: int, pos: int, end: int, depth: int) -> int:
        if depth > self.limits.max_depth:
            raise ProtobufError(f"groups nested deeper than {self.limits.max_depth}", pos)
        while pos < end:
            key_at = pos
            key, after = self.varint(pos, end)
            if key & 7 == END_GROUP:
                if key >> 3 != number:
                    raise ProtobufError(f"end-group {key >> 3} closes group {number}", key_at)
                return after
            pos = next(iter(self.fields(key_at, end, depth)))[4]
        raise ProtobufError(f"group {number} is not closed", pos)

    def _count(self, n: int) -> None:
        self.fields_read += n
        if self.fields_read >= self._next_stop:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Every 4096 fields, and where the budget ends: the field budget and the caller's deadline."""
        if self.fields_read > self.limits.max_fields:
            message = f"protobuf holds more than {self.limits.max_fields} fields; the rest was not read"
            raise BudgetExceeded(message, self.budget_rule) if self.budget_rule else BudgetExceeded(message)
        if self.tick is not None:
            self.tick()
        self._next_stop = min(self.fields_read + _CHECK_EVERY, self.limits.max_fields + 1)

    # --- schema level --------------------------------------------------------------
    def decode(self, schema: Message, start: int = 0, end: int | None = None,
               out: dict[str, Any] | None = None) -> tuple[dict, ProtobufError | None]:
        """Decode buf[start:end] into `out`; returns it and the error that stopped it (or None).

        Budget and deadline exceptions propagate; pass `out` to keep what was read before them."""
        root: dict[str, Any] = {} if out is None else out
        try:
            self.fill(schema, start, len(self.buf) if end is None else end, root, 0)
        except ProtobufError as exc:
            return root, exc
        return root, None

    def fill(self, schema: Message, start: int, end: int, out: dict[str, Any], depth: int) -> None:
        if depth > self.limits.max_depth:
            raise ProtobufError(f"messages nested deeper than {self.limits.max_depth} levels", start)
        specs = schema.fields
        for number, wire, value, body, nxt in self.fields(start, end, depth):
            spec = specs.get(number)
            if spec is None:
                continue
            if wire != spec.wire:
                if wire == LEN and (spec.repeated or spec.count):
                    self._packed(spec, Field(number, wire, value, body, nxt), out)
                continue  # otherwise the parser keeps it as an unknown field
            if spec.count:
                out[spec.name] = out.get(spec.name, 0) + 1
            elif spec.message is not None:
                if spec.repeated:
                    child: dict[str, Any] = {}
                    out.setdefault(spec.name, []).append(child)
                else:
                    child = out.setdefault(spec.name, {})
                self.fill(spec.message, body, nxt, child, depth + 1)
            elif spec.repeated:
                out.setdefault(spec.name, []).append(self._scalar(spec.kind, value, body, nxt))
            else:
                out[spec.name] = self._scalar(spec.kind, value, body, nxt)

    def _scalar(self, kind: str, value: int, start: int, end: int) -> Any:
        if kind == "bytes":
            self.skipped += end - start
            return Span(start, end)
        if kind == "string":
            cut = min(end, start + self.limits.max_string)
            if cut < end:
                self.truncated += 1
            return bytes(self.buf[start:cut]).decode("utf-8", "replace")
        return scalar_value(kind, value)

    def _packed(self, spec: Spec, f: Field, out: dict[str, Any]) -> None:
        if spec.wire != VARINT:
            size = 4 if spec.wire == FIXED32 else 8
            if f.value % size:
                raise ProtobufError(f"packed field {f.number} is {f.value} bytes, not a multiple of {size}", f.start)
            if spec.count:
                out[spec.name] = out.get(spec.name, 0) + f.value // size
                return
            self._count(f.value // size)  # the budget before the values are built
            fmt = "<I" if size == 4 else "<Q"
            values = [scalar_value(spec.kind, struct.unpack_from(fmt, self.buf, p)[0])
                      for p in range(f.start, f.end, size)]
        elif spec.count:
            out[spec.name] = out.get(spec.name, 0) + self._count_varints(f.start, f.end)
            return
        else:
            self._count(self._count_varints(f.start, f.end))
            values, pos = [], f.start
            while pos < f.end:
                raw, pos = self.varint(pos, f.end)
                values.append(scalar_value(spec.kind, raw))
                if self.tick is not None and len(values) % _CHECK_EVERY == 0:
                    self.tick()
        out.setdefault(spec.name, []).extend(values)

    def _count_varints(self, start: int, end: int) -> int:
        """Number of varints in a packed run: the bytes without the continuation bit."""
        if start < end and self.buf[end - 1] >= 0x80:
            raise ProtobufError("packed varints end inside a varint", end - 1)
        total = 0
        for pos in range(start, end, _COUNT_CHUNK):
            chunk = bytes(self.buf[pos:min(end, pos + _COUNT_CHUNK)])
            total += len(chunk.translate(None, _HIGH_BYTES))
            if self.tick is not None:
                self.tick()
        return total


def scalar_value(kind: str, raw: int) -> Any:
    """Interpret a raw varint or fixed value as the schema's scalar kind."""
    if kind in ("int", "enum"):
        return raw - (1 << 64) if raw >= 1 << 63 else raw
    if kind == "sint":
        return (raw >> 1) ^ -(raw & 1)
    if kind == "bool":
        return raw != 0
    if kind == "float":
        return struct.unpack("<f", raw.to_bytes(4, "little"))[0]
    if kind == "double":
        return struct.unpack("<d", raw.to_bytes(8, "little"))[0]
    return raw  # uint, fixed32, fixed64
