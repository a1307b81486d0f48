"""A small, bounded reader for the protobuf text format (``.pbtxt``), without protobuf.

`parse` turns the text into a generic tree (field name -> list of values, where a value is a
nested dict, the bytes of a quoted string, or the text of a bare token); `convert` shapes that
tree like `_protobuf.Reader` output for a schema, so the same checks read binary and text files.
Nesting, the number of tokens and string lengths are budgeted; errors carry a line number.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import BudgetExceeded
from ._protobuf import Message, Spec

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n\f\v]+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<name>-?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<number>-?\.?[0-9][0-9A-Za-z_.+-]*)
  | (?P<punct>[{}<>:,;\[\]/])
""", re.X)
_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))", re.S)
_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_CLOSE = {"{": "}", "<": ">"}
_CHECK_EVERY = 4096


class TextFormatError(ValueError):
    """The text is not well-formed protobuf text format."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"{message} on line {line}")
        self.reason = message
        self.line = line


@dataclass(frozen=True)
class TextLimits:
    max_depth: int = 100
    max_tokens: int = 20_000_000
    max_string: int = 64 * 1024


def unescape(body: str, limit: int) -> bytes:
    """The bytes a quoted string denotes (C-style escapes, as protobuf writes them)."""
    out, pos = bytearray(), 0
    for match in _ESCAPE.finditer(body):
        out += body[pos:match.start()].encode("utf-8", "surrogatepass")
        octal, hexa, short, long, char = match.groups()
        if octal:
            out.append(int(octal, 8) & 0xFF)
        elif hexa:
            out.append(int(hexa, 16))
        elif short or long:
            out += chr(min(int(short or long, 16), 0x10FFFF)).encode("utf-8", "surrogatepass")
        else:
            out += _SIMPLE.get(char, char).encode("utf-8", "surrogatepass")
        pos = match.end()
        if len(out) >= limit:
            return bytes(out[:limit])
    out += body[pos:].encode("utf-8", "surrogatepass")
    return bytes(out[:limit])


class _Parser:
    def __init__(self, text: str, limits: TextLimits, tick: Callable[[], None] | None) -> None:
        self.text, self.limits, self.tick = text, limits, tick
        self.pos, self.tokens, self.truncated = 0, 0, 0
        self.pending: tuple[str, str] | None = None

    def error(self, message: str) -> TextFormatError:
        return TextFormatError(message, self.text.count("\n", 0, self.pos) + 1)

    def next(self) -> tuple[str, str] | None:
        if self.pending is not None:
            token, self.pending = self.pending, None
            return token
        text, end = self.text, len(self.text)
        while self.pos < end:
            match = _TOKEN.match(text, self.pos)
            if match is None:
                raise self.error(f"unexpected character {text[self.pos]!r}")
            self.pos = match.end()
            if match.lastgroup != "space":
                self._count()
                return match.lastgroup, match.group()
        return None

    def _count(self) -> None:
        self.tokens += 1
        if self.tokens % _CHECK_EVERY == 0:
            if self.tokens > self.limits.max_tokens:
                raise BudgetExceeded(f"text protobuf holds more than {self.limits.max_tokens} tokens; the rest "
                                     "was not read", "MA-T109")
            if self.tick is not None:
                self.tick()

    def push_back(self, token: tuple[str, str]) -> None:
        self.pending = token

    def field_name(self, token: tuple[str, str]) -> str:
        kind, value = token
        if kind == "name":
            return value
        if value != "[":
            raise self.error(f"expected a field name, found {value!r}")
        parts = []  # [type.googleapis.com/pkg.Message] extension or Any expansion
        while True:
            token = self.next()
            if token is None:
                raise self.error("unterminated [name]")
            if token[1] == "]":
                return "[" + "".join(parts) + "]"
            parts.append(token[1])

    def scalar(self, token: tuple[str, str]) -> bytes | str:
        kind, value = token
        if kind in ("number", "name"):
            return value
        if kind != "string":
            raise self.error(f"expected a value, found {value!r}")
        pieces = []
        while token is not None and token[0] == "string":  # adjacent strings are concatenated
            pieces.append(unescape(token[1][1:-1], self.limits.max_string))
            token = self.next()
        if token is not None:
            self.push_back(token)
        joined = b"".join(pieces)
        if len(joined) > self.limits.max_string:
            self.truncated += 1
        return joined[:self.limits.max_string]

    def parse(self) -> dict[str, list]:
        root: dict[str, list] = {}
        frames: list[tuple[dict, str, str | None]] = [(root, "", None)]  # (message, closer, list field)
        while True:
            token = self.next()
            message, closer, listed = frames[-1]
            if token is None:
                if len(frames) > 1:
                    raise self.error("the text ends inside a message")
                return root
            if token[0] == "punct" and token[1] == closer:
                frames.pop()
            elif token[0] == "punct" and token[1] in ",;":
                continue
            elif listed is not None:
                self._value(message, listed, token, frames)
            else:
                name = self.field_name(token)
                token = self.next()
                if token is not None and token[1] == ":":
                    token = self.next()
                if token is None:
                    raise self.error(f"field {name!r} has no value")
                if token[1] == "[":
                    self._depth(frames)
                    frames.append((message, "]", name))
                else:
                    self._value(message, name, token, frames)

    def _value(self, message: dict, name: str, token: tuple[str, str], frames: list) -> None:
        if token[0] == "punct" and token[1] in _CLOSE:
            self._depth(frames)
            child: dict[str, list] = {}
            message.setdefault(name, []).append(child)
            frames.append((child, _CLOSE[token[1]], None))
        else:
            message.setdefault(name, []).append(self.scalar(token))

    def _depth(self, frames: list) -> None:
        if len(frames) > self.limits.max_depth:
            raise self.error(f"messages nested deeper than {self.limits.max_depth} levels")


def parse(text: str, limits: TextLimits = TextLimits(), tick: Callable[[], None] | None = None) -> dict[str, list]:
    """The generic tree of a text-format message; raises TextFormatError or BudgetExceeded."""
    return _Parser(text, limits, tick).parse()


_BY_NAME: dict[int, dict[str, Spec]] = {}


def convert(tree: dict[str, list], schema: Message) -> dict[str, Any]:
    """The tree shaped like `Reader` output for `schema` (unknown fields are dropped, as by the reader)."""
    names = _BY_NAME.get(id(schema))
    if names is None:
        names = _BY_NAME[id(schema)] = {spec.name: spec for spec in schema.fields.values()}
    out: dict[str, Any] = {}
    for name, values in tree.items():
        spec = names.get(name)
        if spec is None:
            continue
        if spec.count:
            out[name] = len(values)
        elif spec.message is not None:
            children = [convert(v, spec.message) for v in values if isinstance(v, dict)]
            if spec.repeated:
                out[name] = children
            elif children:
                merged: dict[str, Any] = {}
                for child in children:
                    merged.update(child)
                out[name] = merged
        else:
            scalars = [_scalar(spec.kind, v) for v in values if not isinstance(v, dict)]
            if spec.repeated:
                out[name] = scalars
            elif scalars:
                out[name] = scalars[-1]
    return out


def _scalar(kind: str, value: bytes | str) -> Any:
    if kind == "string":
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if kind == "bytes":
        return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if kind == "bool":
        return text.lower() in ("true", "t", "1")
    if kind in ("float", "double"):
        try:
            return float(text.rstrip("fF"))
        except ValueError:
            return text
    try:
        return int(text, 0)
    except ValueError:
        return text  # an enum value written by name (DT_STRING), kept as text
