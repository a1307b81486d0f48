"""Python source as a flat token list, read with `tokenize` alone (nothing is compiled).

`ast.parse` would compile the text (it raises the `compile` audit event and runs CPython's
parser on hostile input); the token stream is enough to resolve imports, follow dotted names
and find calls with their arguments. Comments and layout tokens are dropped, string literals
are decoded without evaluation, and f-string replacement fields are lexed on their own so
code hidden in them is seen too.
"""

from __future__ import annotations

import codecs
import io
import keyword
import re
import sys
import tokenize
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

codecs.lookup("unicode-escape")  # string literals are decoded with it: load it up front

MAX_FSTRING_DEPTH = 4
MAX_TOKENS = 1_000_000  # honest model code has tens of thousands; each token costs ~150 bytes and ~10 µs
# codecs that give ASCII bytes another meaning (UTF-7 "+AAo-" is a newline): a way to hide code
HIDING_ENCODINGS = frozenset({"utf-7", "unicode-escape", "raw-unicode-escape", "punycode", "idna", "hz",
                              "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"})
KEYWORDS = frozenset(keyword.kwlist)
_SKIPPED = frozenset({tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING,
                      tokenize.ENDMARKER})
_FSTRING_START = getattr(tokenize, "FSTRING_START", -1)
_FSTRING_MIDDLE = getattr(tokenize, "FSTRING_MIDDLE", -2)
_FSTRING_END = getattr(tokenize, "FSTRING_END", -3)
# Before 3.12 an f-string is one STRING token and each replacement field is lexed on its own. Fields that
# hold only names, numbers and operators on one line are lexed by _plain_field with tokenize's own pattern
# (the same tokens, without a tokenize run per field); anything else goes through tokenize.
_FIELDS_BY_HAND = sys.version_info < (3, 12)
_PSEUDO = re.compile(tokenize.PseudoToken, re.UNICODE) if _FIELDS_BY_HAND else None
_PLAIN_FIELD = re.compile(r"[\x20-\x22\x24-\x5b\x5d-\x7e\t\f]*")  # printable ASCII but '#' and '\\'


class SourceError(Exception):
    """The bytes are not Python source that the interpreter would read."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class Tok:
    """One token: kind (name, op, str, fstr, num, newline, other), text, position and literal value."""

    __slots__ = ("kind", "text", "line", "col", "value")

    def __init__(self, kind: str, text: str, line: int, col: int = 0, value: str | bytes | None = None) -> None:
        self.kind, self.text, self.line, self.col = kind, text, line, col
        #: decoded literal (str tokens); the literal text before the first replacement field (fstr tokens)
        self.value = value

    def __repr__(self) -> str:
        return f"Tok({self.kind}, {self.text!r}, line {self.line})"


@dataclass
class Lexed:
    tokens: list[Tok]
    fragments: list[list[Tok]] = field(default_factory=list)  # f-string replacement fields
    error: SourceError | None = None  # tokenizing stopped here; tokens before it are kept
    truncated: bool = False  # MAX_TOKENS reached: the tokens after it were not read
    #: identifiers written with compatibility characters (NFKC folds 'ｅｘｅｃ' to 'exec'): (text, line)
    disguised: list[tuple[str, int]] = field(default_factory=list)
    #: f-string fields read so far (their text, or their tokens on 3.12+): a repeated field adds nothing,
    #: since the findings and names it gives are kept with the line they are first seen on
    seen_fields: set[object] = field(default_factory=set)


def decode_source(data: bytes) -> tuple[str, str]:
    """The text the interpreter would read (declared encoding, universal newlines) and the encoding."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, LookupError) as exc:
        raise SourceError(f"encoding declaration is not usable: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SourceError(f"bytes at offset {exc.start} are not valid {exc.encoding}") from None
    if "\x00" in text:
        raise SourceError("source contains NUL bytes")
    return text.replace("\r\n", "\n").replace("\r", "\n"), codecs.lookup(encoding).name


def lex(text: str, depth: int = 0, deadline: Callable[[], None] | None = None) -> Lexed:
    out = Lexed([])
    try:
        _collect(tokenize.generate_tokens(io.StringIO(text).readline), out, depth, deadline)
    except (tokenize.TokenError, SyntaxError) as exc:  # IndentationError is a SyntaxError
        line = exc.args[1][0] if isinstance(exc, tokenize.TokenError) and len(exc.args) > 1 else \
            getattr(exc, "lineno", None)
        out.error = SourceError(str(exc.args[0] if exc.args else exc), line)
    return out


def _collect(stream, out: Lexed, depth: int, deadline: Callable[[], None] | None) -> None:  # noqa: ANN001
    fstring: list[tokenize.TokenInfo] | None = None
    nesting = 0
    for count, tok in enumerate(stream):
        if deadline is not None and count % 8192 == 0:
            deadline()
        if tok.type == _FSTRING_START:  # Python 3.12+: f-strings arrive as token runs
            nesting += 1
            if nesting == 1:
                fstring = [tok]
                continue
        if fstring is not None:
            fstring.append(tok)
            if tok.type == _FSTRING_END:
                nesting -= 1
                if nesting == 0:
                    _add_fstring_run(fstring, out)
                    fstring = None
            continue
        if tok.type in _SKIPPED:
            continue
        if len(out.tokens) >= MAX_TOKENS:
            out.truncated = True
            return
        out.tokens.append(_convert(tok, out, depth))


def _convert(tok: tokenize.TokenInfo, out: Lexed, depth: int) -> Tok:
    line, col = tok.start
    if tok.type == tokenize.NAME:
        if tok.string.isascii():
            return Tok("name", tok.string, line, col)
        name = unicodedata.normalize("NFKC", tok.string)  # what the interpreter binds and looks up
        if name != tok.string:
            out.disguised.append((tok.string, line))
        return Tok("name", name, line, col)
    if tok.type == tokenize.OP:
        return Tok("op", tok.string, line, col)
    if tok.type == tokenize.NEWLINE:
        return Tok("newline", "", line, col)
    if tok.type == tokenize.NUMBER:
        return Tok("num", tok.string, line, col)
    if tok.type == tokenize.STRING:
        prefix, quote, body = split_literal(tok.string)
        if "f" in prefix.lower():
            if depth < MAX_FSTRING_DEPTH:
                for piece in fstring_fields(body):
                    if _FIELDS_BY_HAND:
                        if piece in out.seen_fields:
                            continue
                        plain = _plain_field(piece, line)
                        if plain is not None:
                            out.seen_fields.add(piece)
                            out.fragments.append(plain)
                            continue
                    out.fragments.append(_shift(lex(piece, depth + 1), line, out))
            return Tok("fstr", tok.string, line, col, body.split("{", 1)[0])
        return Tok("str", tok.string, line, col, literal_value(prefix, body))
    return Tok("other", tok.string, line, col)


def _shift(inner: Lexed, line: int, out: Lexed) -> list[Tok]:
    out.fragments.extend(inner.fragments)
    out.disguised.extend((text, line) for text, _ in inner.disguised)
    return [Tok(t.kind, t.text, line, t.col, t.value) for t in inner.tokens]


def _plain_field(piece: str, line: int) -> list[Tok] | None:
    """The tokens tokenize gives for a one-line ASCII field without backslashes or comments (`x!r:>{w}`,
    `d['k']`), read with tokenize's own pattern and loop; None for any other field, which lex() reads.
    ERRORTOKEN stands for what no pattern matches; the closing NEWLINE comes only when the brackets
    balance (tokenize fails at the end otherwise); triple-quoted and nested f-strings go to lex()."""
    if not _PLAIN_FIELD.fullmatch(piece):
        return None
    out: list[Tok] = []
    end = len(piece)
    pos = end - len(piece.lstrip(" \t\f"))
    if pos == end:
        return out  # a blank line: tokenize reads no token
    parens = 0
    match = _PSEUDO.match  # type: ignore[union-attr]
    while pos < end:
        found = match(piece, pos)
        if found is None:
            out.append(Tok("other", piece[pos], line, pos))
            pos += 1
            continue
        start, pos = found.span(1)
        if start == pos:
            continue
        text, initial = piece[start:pos], piece[start]
        if initial in "0123456789" or (initial == "." and text != "." and text != "..."):
            out.append(Tok("num", text, line, start))
        elif text in tokenize.triple_quoted:
            return None
        elif initial in tokenize.single_quoted or text[:2] in tokenize.single_quoted or \
                text[:3] in tokenize.single_quoted:
            prefix, _, body = split_literal(text)
            if "f" in prefix.lower():
                return None
            out.append(Tok("str", text, line, start, literal_value(prefix, body)))
        elif initial.isidentifier():
            out.append(Tok("name", text, line, start))
        else:
            parens += 1 if initial in "([{" else -1 if initial in ")]}" else 0
            out.append(Tok("op", text, line, start))
    if parens == 0:
        out.append(Tok("newline", "", line, end))
    return out


def _add_fstring_run(run: list[tokenize.TokenInfo], out: Lexed) -> None:
    line, col = run[0].start
    middles = [t.string for t in run if t.type == _FSTRING_MIDDLE]
    prefix = run[1].string if len(run) > 1 and run[1].type == _FSTRING_MIDDLE else ""
    inner = [t for t in run[1:-1] if t.type not in (_FSTRING_MIDDLE, _FSTRING_START, _FSTRING_END)
             and t.type not in _SKIPPED]
    key = tuple((t.type, t.string) for t in inner)
    if inner and key not in out.seen_fields:
        out.seen_fields.add(key)
        sub = Lexed([])
        sub.tokens = [_convert(t, sub, MAX_FSTRING_DEPTH) for t in inner]
        out.fragments.append(sub.tokens)
    out.tokens.append(Tok("fstr", "".join(middles), line, col, prefix))


def split_literal(text: str) -> tuple[str, str, str]:
    """('rb', "'", body) for rb'body'."""
    i = 0
    while i < len(text) and text[i] not in "'\"":
        i += 1
    prefix, rest = text[:i], text[i:]
    quote = rest[:3] if rest[:3] in ("'''", '"""') else rest[:1]
    return prefix, quote, rest[len(quote):len(rest) - len(quote)] if len(rest) >= 2 * len(quote) else ""


def literal_value(prefix: str, body: str) -> str | bytes | None:
    """The value of a string literal, decoded by hand; None when an escape is invalid."""
    lower = prefix.lower()
    try:
        text = body if "r" in lower else body.encode("latin-1", "backslashreplace").decode("unicode-escape")
        return text.encode("latin-1") if "b" in lower else text
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None


def fstring_fields(body: str) -> list[str]:
    """The replacement fields of an f-string body ('{x!r:>{w}}' gives 'x!r:>{w}'), braces balanced. A quote
    opens a string that runs to the same quote; search() and find() step over the characters in between."""
    fields, i, n = [], 0, len(body)
    while (i := body.find("{", i)) >= 0:
        if body.startswith("{{", i):
            i += 2
            continue
        depth, j = 1, i + 1
        while depth:
            found = _FIELD_MARK.search(body, j)
            if found is None:
                j = n
                break
            ch, j = found.group(), found.end()
            if ch in "'\"":
                close = body.find(ch, j)
                if close < 0:
                    j = n
                    break
                j = close + 1
            elif ch in "{[(":
                depth += 1
            else:
                depth -= 1
        fields.append(body[i + 1:j - 1 if depth == 0 else j])
        i = j
    return fields


_FIELD_MARK = re.compile(r"""[][{}()'"]""")


def brackets(tokens: list[Tok]) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Matching closer of every opener, and the top-level commas inside each opener."""
    match: dict[int, int] = {}
    commas: dict[int, list[int]] = {}
    stack: list[int] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for i, tok in enumerate(tokens):
        if tok.kind != "op":
            if tok is FRAGMENT_END:
                stack.clear()  # brackets never pair across f-string fields
            continue
        if tok.text in "([{":
            stack.append(i)
        elif tok.text in pairs:
            if stack and tokens[stack[-1]].text == pairs[tok.text]:
                match[stack.pop()] = i
        elif tok.text == "," and stack:
            commas.setdefault(stack[-1], []).append(i)
    return match, commas


FRAGMENT_END = Tok("newline", "", 0)  # put after each f-string field when the fields are read as one list


def statements(tokens: list[Tok]) -> list[tuple[int, int]]:
    """Token ranges of simple statements: split at NEWLINE, at ';' and after compound headers."""
    out, start, depth = [], 0, 0
    compound = False
    for i, tok in enumerate(tokens):
        if tok.kind == "op" and tok.text in "([{":
            depth += 1
        elif tok.kind == "op" and tok.text in ")]}":
            depth = max(0, depth - 1)
        if i == start:
            compound = tok.kind == "name" and tok.text in _COMPOUND
        boundary = tok.kind == "newline" or (depth == 0 and tok.kind == "op" and tok.text == ";")
        header_end = compound and depth == 0 and tok.kind == "op" and tok.text == ":"
        if boundary or header_end:
            if i > start:
                out.append((start, i if boundary else i + 1))
            start, compound = i + 1, False
    if start < len(tokens):
        out.append((start, len(tokens)))
    return out


_COMPOUND = frozenset({"if", "elif", "else", "try", "except", "finally", "while", "for", "with", "def",
                       "class", "async"})
