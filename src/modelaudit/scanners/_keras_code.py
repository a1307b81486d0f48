"""What a serialized Lambda function refers to, read from its marshal bytes without loading them.

Keras stores a Lambda's code as base64 of `marshal.dumps(func.__code__)`. Unmarshalling
builds a live code object, so this module never does it: it walks the bytes looking for
marshal's string records (type byte, length, text) and keeps the ones that are printable.
Names (`co_names`), constants and variable names all show up that way, which is enough to
see whether a function reaches os, subprocess, eval or open.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from ._keras_names import DANGEROUS_CODE_NAMES
from ._metadata_checks import code_snippet

MAX_CODE_BYTES = 1024 * 1024  # honest lambdas are a few hundred bytes
MAX_STRINGS = 20_000
_SHORT = frozenset(b"zZ")  # short ASCII strings: one length byte
_LONG = frozenset(b"aAuts")  # ASCII, interned, unicode, bytes: four length bytes
_FLAG_REF = 0x80
_CODE_TYPE = ord("c")


@dataclass
class CodeSummary:
    size: int
    marshalled_code: bool  # starts like a marshalled code object
    strings: list[str] = field(default_factory=list)
    dangerous: list[str] = field(default_factory=list)  # dangerous names and code-like constants

    def referenced(self, limit: int = 20) -> list[str]:
        """The identifiers the code names, in order, without repeats."""
        seen: dict[str, None] = {}
        for text in self.strings:
            if text.isidentifier() and text not in seen:
                seen[text] = None
        return list(seen)[:limit]


def decode_code(code: str) -> bytes:
    """The raw bytes Keras' func_load would unmarshal: base64, or the text itself when that fails."""
    try:
        return base64.b64decode(code.encode("ascii"), validate=False)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return code.encode("raw_unicode_escape")


def summarize(raw: bytes, extra_strings: list[str] | tuple[str, ...] = ()) -> CodeSummary:
    raw = raw[:MAX_CODE_BYTES]
    summary = CodeSummary(len(raw), bool(raw) and (raw[0] & ~_FLAG_REF) == _CODE_TYPE)
    summary.strings = marshal_strings(raw) + list(extra_strings)
    seen: set[str] = set()
    for text in summary.strings:
        hit = text if text in DANGEROUS_CODE_NAMES else code_snippet(text)
        if hit and hit not in seen:
            seen.add(hit)
            summary.dangerous.append(hit)
    return summary


def marshal_strings(raw: bytes) -> list[str]:
    """Printable strings found at marshal string records anywhere in `raw` (overlapping scan)."""
    out: list[str] = []
    n = len(raw)
    for i in range(n):
        kind = raw[i] & ~_FLAG_REF
        if kind in _SHORT and i + 1 < n:
            start, length = i + 2, raw[i + 1]
        elif kind in _LONG and i + 5 <= n:
            start, length = i + 5, int.from_bytes(raw[i + 1:i + 5], "little")
        else:
            continue
        if not 0 < length <= 65536 or start + length > n:
            continue
        text = _printable(raw[start:start + length])
        if text is not None:
            out.append(text)
            if len(out) >= MAX_STRINGS:
                break
    return out


def _printable(chunk: bytes) -> str | None:
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if all(c.isprintable() or c in "\t\r\n" for c in text) else None
