"""Spans of Python tokens: the parts of an import statement, the arguments of a call, and the constant
strings and paths an argument spells. Shared by the static analysis (_python_static)."""

from __future__ import annotations

from ._python_lex import Tok

Args = list[tuple[int, int]]  # (start, end) token ranges of call arguments


def split(toks: list[Tok], sep: str) -> list[list[Tok]]:
    parts: list[list[Tok]] = [[]]
    for t in toks:
        if t.kind == "op" and t.text == sep:
            parts.append([])
        else:
            parts[-1].append(t)
    return [p for p in parts if p]


def dotted(part: list[Tok]) -> str:
    out = []
    for t in part:
        if t.kind == "name" and t.text == "as":
            break
        out.append(t.text)
    return "".join(out)


def alias(part: list[Tok]) -> str | None:
    for k, t in enumerate(part[:-1]):
        if t.kind == "name" and t.text == "as":
            return part[k + 1].text
    return None


def arguments(open_: int, close: int, commas: list[int]) -> Args:
    bounds = [open_, *commas, close]
    return [(a + 1, b) for a, b in zip(bounds, bounds[1:]) if b > a + 1]


def is_keyword(toks: list[Tok], arg: tuple[int, int]) -> bool:
    start, end = arg
    return (end - start >= 2 and toks[start].kind == "name" and toks[start + 1].kind == "op"
            and toks[start + 1].text == "=") or toks[start].text in ("*", "**")


def positional(toks: list[Tok], args: Args) -> Args:
    return [a for a in args if not is_keyword(toks, a)]


def keyword(toks: list[Tok], args: Args, name: str) -> tuple[int, int] | None:
    for start, end in args:
        if is_keyword(toks, (start, end)) and toks[start].text == name:
            return start + 2, end
    return None


def span_text(toks: list[Tok], span: tuple[int, int]) -> str:
    return "".join(t.text for t in toks[span[0]:span[1]])


def const_string(toks: list[Tok], start: int, end: int) -> str | bytes | None:
    """The value of `'a' 'b'`, `'a' + 'b'` or `('a')`; None for anything computed."""
    while end - start > 2 and toks[start].text == "(" and toks[end - 1].text == ")":
        start, end = start + 1, end - 1  # a loop, not recursion: parentheses may nest thousands deep
    if start >= end:
        return None
    pieces: list[str | bytes] = []
    expect_literal = True
    for i in range(start, end):  # not a slice: most arguments stop at their first token
        tok = toks[i]
        if tok.kind == "str" and tok.value is not None:
            pieces.append(tok.value)  # after '+' or as implicit concatenation
            expect_literal = False
        elif not expect_literal and tok.kind == "op" and tok.text == "+":
            expect_literal = True
        else:
            return None
    if expect_literal or len({type(p) for p in pieces}) != 1:
        return None
    return pieces[0][:0].join(pieces)  # type: ignore[arg-type]


def path_text(toks: list[Tok], start: int, end: int) -> str | None:
    """The absolute or home-relative path an argument names (joined from its literals), else None."""
    literals = [t.value.decode("latin-1") if isinstance(t.value, bytes) else t.value
                for t in toks[start:end] if t.kind in ("str", "fstr") and t.value is not None]
    if literals and is_absolute(literals[0]):
        return "/".join(literals) if len(literals) > 1 else literals[0]
    if any(t.text == "expanduser" for t in toks[start:end]):
        return "~/" + "/".join(literals)
    return None


def is_absolute(path: str) -> bool:
    return path.startswith(("/", "~", "\\\\")) or (len(path) > 2 and path[1] == ":" and path[2] in "\\/")
