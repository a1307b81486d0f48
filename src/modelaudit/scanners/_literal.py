"""A small parser for the Python literal in a .npy header (dicts, tuples, lists, strings,
numbers, True/False/None). It never compiles or evaluates the text."""

from __future__ import annotations

import re
from typing import Any

# only what Python's tokenizer accepts: ASCII blanks and digits (numpy refuses the rest)
_TOKEN = re.compile(r"""[ \t\f\r\n]*(?:(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<num>-?[0-9]+(?:\.[0-9]+)?L?)|"""
                    r"""(?P<name>True|False|None)|(?P<punct>[{}()\[\]:,]))""")
MAX_DEPTH = 32


class LiteralError(ValueError):
    pass


def parse_literal(text: str) -> Any:
    parser = _Parser(text)
    value = parser.value(0)
    if parser.peek() is not None:
        raise LiteralError("trailing content after literal")
    return value


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = []
        pos, text = 0, text.rstrip(" \t\f\r\n")
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise LiteralError(f"unexpected character at {pos}")
            self.tokens.append((match.lastgroup, match.group(match.lastgroup)))
            pos = match.end()
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise LiteralError("unexpected end of literal")
        self.i += 1
        return tok

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise LiteralError("literal nests too deeply")
        kind, text = self.take()
        if kind == "str":
            return _unquote(text)
        if kind == "num":
            if len(text) > 4300:  # Python's own limit on integer literals
                raise LiteralError("number too long")
            return float(text) if "." in text else int(text.rstrip("L"))
        if kind == "name":
            return {"True": True, "False": False, "None": None}[text]
        closer = {"{": "}", "(": ")", "[": "]"}.get(text)
        if closer is None:
            raise LiteralError(f"unexpected {text!r}")
        items: list[Any] = []
        is_tuple_comma = False
        while True:
            tok = self.peek()
            if tok is not None and tok[1] == closer:
                self.take()
                break
            key = self.value(depth + 1)
            if text == "{":
                if self.take()[1] != ":":
                    raise LiteralError("expected ':' in dict")
                items.append((key, self.value(depth + 1)))
            else:
                items.append(key)
            sep = self.take()[1]
            if sep == closer:
                break
            if sep != ",":
                raise LiteralError(f"expected ',' or {closer!r}")
            is_tuple_comma = True
        if text == "{":
            return dict(items)
        if text == "(":
            return tuple(items) if (is_tuple_comma or len(items) != 1) else items[0]
        return items


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}.get(m.group(1),
                                                                                            "\\" + m.group(1)), body)
