"""Symbolic values the pickle walker keeps on its stack and memo.

Nothing here is ever a live object from the file: globals are names, calls are
records of what would be called with what.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .pickle_policy import Verdict

MAX_KEPT_ITEMS = 64  # container items remembered for argument display and analysis


class Opaque:
    """A value whose content does not matter for security analysis (numbers, big data)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "…"


OPAQUE = Opaque()


@dataclass(eq=False)
class Global:
    module: str
    name: str
    verdict: Verdict
    pos: int
    opcode: str
    # allowlisted, and a call of it needs no analysis (set by CallAnalysis.note)
    inert: bool = False

    def __repr__(self) -> str:
        return self.verdict.target


@dataclass(eq=False)
class Call:
    func: Any
    args: Any
    pos: int
    opcode: str
    value: Any = None  # what the call evaluates to, when the walker can compute it safely (decoders)
    state: Any = None  # state applied by BUILD
    discarded: bool = False  # its result was already reported as discarded (marked here, not by id)

    def __repr__(self) -> str:
        return f"{func_repr(self.func)}{short_repr(self.args)}"


@dataclass(eq=False)
class LazyBytes:
    """A large byte string kept as a window on the input rather than copied."""

    buf: Any
    start: int
    length: int

    def materialize(self) -> bytes:
        return bytes(self.buf[self.start:self.start + self.length])


@dataclass(eq=False)
class Container:
    kind: str  # list, dict, set, frozenset
    items: list[Any] = field(default_factory=list)
    count: int = 0

    def add(self, values: list[Any]) -> None:
        room = MAX_KEPT_ITEMS - len(self.items)
        if room > 0:
            self.items.extend(values[:room])
        self.count += len(values)

    def add_slice(self, stack: list[Any], start: int) -> None:
        """add(stack[start:]) without copying the slice once the kept items are full."""
        room = MAX_KEPT_ITEMS - len(self.items)
        if room > 0:
            self.items.extend(stack[start:start + room])
        self.count += len(stack) - start


@dataclass(eq=False)
class Persistent:
    pid: Any


def func_repr(func: Any) -> str:
    if isinstance(func, Global):
        return func.verdict.target
    if isinstance(func, Call):
        return f"({func!r})"
    return type(func).__name__


def short_repr(value: Any, limit: int = 200) -> str:
    text = _repr(value, 3)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _repr(value: Any, depth: int) -> str:
    if depth <= 0:
        return "…"
    if isinstance(value, tuple):
        inner = ", ".join(_repr(v, depth - 1) for v in value[:8])
        return f"({inner}{', …' if len(value) > 8 else ''}{',' if len(value) == 1 else ''})"
    if isinstance(value, Container):
        inner = ", ".join(_repr(v, depth - 1) for v in value.items[:8])
        more = ", …" if value.count > 8 else ""
        return {"list": f"[{inner}{more}]", "dict": f"{{{inner}{more}}}"}.get(value.kind, f"{value.kind}({inner})")
    if isinstance(value, LazyBytes):
        return f"<{value.length} bytes>"
    if isinstance(value, (str, bytes)):
        return repr(value[:120])
    return repr(value)


@dataclass
class Finding:
    rule_code: str
    message: str
    pos: int
    details: dict[str, Any] = field(default_factory=dict)
    why: str | None = None
