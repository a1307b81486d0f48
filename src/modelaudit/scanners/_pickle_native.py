"""The pickle walker on the native core (_walkcore.c): PurePickleWalker's results, much faster.

The C core runs the opcode loop with compact values of its own; opcodes with security meaning
call back into the act_* methods PurePickleWalker shares, with their operands materialized as
the same symbolic values the pure walker uses. The stack, marks and memo live in the core, so
the VM state hooks JoblibArrays uses are the core's save/fork/restore. Calls that need no analysis
(CallAnalysis.inert_call) are recorded by the core itself, the commonest case in checkpoints.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import BudgetExceeded
from . import _walkcore
from ._pickle_data_ops import _MAX_TUPLE, LINE_VALUES, Malformed, int_arg
from ._pickle_values import MAX_KEPT_ITEMS, OPAQUE, Call, Container, Global, LazyBytes, Persistent
from ._pickle_vm import _DEADLINE_EVERY, _EXACT_RUN, _LAZY_THRESHOLD, _MEMO_KEEP_ALL, PurePickleWalker, WalkOutcome
from ._pickle_vm import _memo_value


def _made_by_fields(cls: type, given: tuple[str, ...]) -> bool:
    """Whether setting `given` on object.__new__(cls) makes what cls(*values) makes: a plain dataclass whose
    first fields are `given`, whose other fields have plain defaults, and with no __post_init__."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
        return False
    fields = dataclasses.fields(cls)
    return (tuple(f.name for f in fields[:len(given)]) == given and not cls.__dataclass_params__.frozen
            and all(f.default is not dataclasses.MISSING for f in fields[len(given):]))


_SETUP = {"malformed": Malformed, "budget_exceeded": BudgetExceeded, "opaque": OPAQUE, "container": Container,
          "lazy_bytes": LazyBytes, "persistent": Persistent, "line_values": LINE_VALUES, "int_arg": int_arg,
          "memo_value": _memo_value, "max_kept": MAX_KEPT_ITEMS, "max_tuple": _MAX_TUPLE,
          "lazy_threshold": _LAZY_THRESHOLD, "exact_run": _EXACT_RUN, "deadline_every": _DEADLINE_EVERY,
          "memo_keep_all": _MEMO_KEEP_ALL, "global_cls": Global, "call_cls": Call,
          "direct": _made_by_fields(Call, ("func", "args", "pos", "opcode")) and _made_by_fields(Persistent, ("pid",))}


def configure(**overrides: Any) -> None:
    """Hand the core the walker's classes and limits (tests lower limits to reach rare paths)."""
    _walkcore.setup(**{**_SETUP, **overrides})


configure()


class NativePickleWalker(PurePickleWalker):
    native = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._core = _walkcore.Core(self.max_stack, self.max_memo)
        self.memo_size = 0

    def run(self, max_streams: int | None = None) -> WalkOutcome:
        try:
            return super().run(max_streams)
        finally:
            self.memo_size = self._core.memo_size()
            self._core.clear()  # the walk's values are not needed once the outcome is known

    def _run_stream(self, pos: int, fresh: bool = True) -> int:
        if fresh:
            self._stream_named_globals = False
        return self._core.run(self, pos, fresh)

    def _vm_fork(self) -> Any:
        return self._core.fork()

    def _vm_swap(self) -> Any:
        return self._core.save()

    def _vm_restore(self, saved: Any) -> None:
        self._core.restore(saved)
