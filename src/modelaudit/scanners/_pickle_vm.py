"""The symbolic pickle opcode walker: the one place pickle bytes are interpreted.

It follows the stack, the mark stack and the memo the way CPython's unpickler does,
but every value is symbolic (see _pickle_values): globals are resolved to names and
classified, calls are recorded, nothing is imported or called. It stops exactly where
the real unpickler would raise, and keeps walking stacked pickles after a STOP. Opcodes
that only move data (scalars, text, containers) live in the DataOpcodes mixin
(_pickle_data_ops), those that name globals and make calls in CallOpcodes (_pickle_call_ops);
this module keeps the driver, the stack and the memo.

PurePickleWalker is the reference. PickleWalker is NativePickleWalker (_pickle_native: the
same walker with its opcode loop in the C extension _walkcore, results identical) when the
extension is built, unless MODELAUDIT_PURE_PYTHON=1; otherwise it is PurePickleWalker.
"""

from __future__ import annotations

import gc
import os
import re
import struct
from collections.abc import Callable
from functools import cached_property, lru_cache
from dataclasses import dataclass, field
from typing import Any

from ..errors import BudgetExceeded
from ._pickle_call_ops import CallOpcodes
from ._pickle_data_ops import DataOpcodes, Malformed, int_arg as _int_arg
from ._pickle_joblib import JoblibArrays
from ._pickle_values import OPAQUE, Container, Finding, LazyBytes
from ._pickle_calls import CallAnalysis

_LAZY_THRESHOLD = 64 * 1024
_DEADLINE_EVERY = 1 << 15
# Runs of plain numeric pushes are skipped by the regex engine: they never affect analysis.
# Short runs keep their values (array shapes, sizes); long ones become OPAQUE.
_NUMERIC_RUNS = {
    ord("K"): (re.compile(rb"(?:K.)+", re.S), 2, "<", "B"),
    ord("M"): (re.compile(rb"(?:M..)+", re.S), 3, "<", "H"),
    ord("J"): (re.compile(rb"(?:J....)+", re.S), 5, "<", "i"),
    ord("G"): (re.compile(rb"(?:G.{8})+", re.S), 9, ">", "d"),
}
_EXACT_RUN = 64
_MAX_TUPLE = 1024
_FLOAT = struct.Struct(">d")
_INT4 = struct.Struct("<i")
# Opcodes that push a constant; handled inline by the hot loop.
_INLINE_CONSTANTS: dict[int, Callable[[], Any]] = {
    0x5D: lambda: Container("list"), 0x7D: lambda: Container("dict"), 0x29: tuple,
    0x4E: lambda: None, 0x88: lambda: True, 0x89: lambda: False,
}


# Past this many memo entries only values that can matter later are kept: globals, calls and
# the short dotted names STACK_GLOBAL may fetch back. Data becomes OPAQUE so memory stays bounded.
_MEMO_KEEP_ALL = 200_000
_NAME_LIKE = re.compile(r"[A-Za-z_][\w.]{0,127}")


def _memo_value(value: Any) -> Any:
    if type(value) is str:
        return value if _NAME_LIKE.fullmatch(value) else OPAQUE
    if type(value) in (Container, tuple, bytes, LazyBytes, int, float):
        return OPAQUE
    return value


@lru_cache(maxsize=1024)
def _run_struct(op: int, n: int) -> struct.Struct:
    _, _, order, code = _NUMERIC_RUNS[op]
    return struct.Struct(order + ("x" + code) * n)


@dataclass
class WalkOutcome:
    findings: list[Finding]
    streams: int
    end: int
    error: str | None = None
    error_pos: int | None = None
    opcodes: int = 0
    globals: dict[str, int] = field(default_factory=dict)


EmbeddedHook = Callable[[bytes, int, str], None]


class PurePickleWalker(DataOpcodes, CallOpcodes, JoblibArrays):
    """The reference walker in pure Python; the native core (_pickle_native) must match it exactly."""

    def __init__(self, buf: Any, start: int = 0, end: int | None = None, *, max_stack: int = 5_000_000,
                 max_memo: int = 5_000_000, check_deadline: Callable[[], None] = lambda: None,
                 on_embedded: EmbeddedHook | None = None) -> None:
        self.buf = buf
        self.start = start
        self.end = len(buf) if end is None else end
        self.max_stack = max_stack
        self.max_memo = max_memo
        self.check_deadline = check_deadline
        self.calls = CallAnalysis(self._report, on_embedded)
        self.findings: list[Finding] = []
        self._global_findings: dict[tuple[str, str], Finding] = {}
        self.globals_seen: dict[str, int] = {}
        self.opcodes = 0
        self._shadow_budget: int | None = None  # set while reading joblib array bytes as opcodes

    @cached_property
    def _dispatch(self) -> dict[int, Callable[[int], int]]:
        """opcode -> handler; built on first use (the native core never needs it)"""
        return {code: getattr(self, "op_" + name) for code, (name, _) in _OPS.items()}

    # ------------------------------------------------------------------ driver
    def run(self, max_streams: int | None = None) -> WalkOutcome:
        # The walker builds many small acyclic objects: cyclic GC passes only cost time here.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run(max_streams)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _run(self, max_streams: int | None) -> WalkOutcome:
        pos, streams = self.start, 0
        error = error_pos = None
        while pos < self.end:
            before = len(self.findings)
            try:
                pos = self._run_stream(pos)
                streams += 1
            except Malformed as exc:
                error, error_pos = str(exc), self._pos
                if streams and len(self.findings) == before and not self._stream_named_globals:
                    error = error_pos = None  # trailing bytes after complete pickles, not a stream
                break
            if (max_streams is not None and streams >= max_streams) or not self._starts_pickle(pos):
                break
        return WalkOutcome(self.findings, streams, pos, error, error_pos, self.opcodes, self.globals_seen)

    def _starts_pickle(self, pos: int) -> bool:
        if pos >= self.end:
            return False
        from ..pickle_ops import probe

        return probe(bytes(self.buf[pos:min(self.end, pos + 4096)]))

    def _run_stream(self, pos: int, fresh: bool = True) -> int:
        if fresh:
            self.stack: list[Any] = []
            self.marks: list[int] = []
            self.memo: dict[int, Any] = {}
            self._stream_named_globals = False
        self._stopped = False
        return self._loop(pos)

    def _loop(self, pos: int) -> int:  # noqa: PLR0912, PLR0915 - the hot loop is flat on purpose
        """Walk opcodes until STOP. The commonest data opcodes are handled inline when their
        operands are ordinary; anything unusual goes through the opcode's handler method,
        which raises exactly where the real unpickler does."""
        buf, end, dispatch = self.buf, self.end, self._dispatch
        stack, marks, memo = self.stack, self.marks, self.memo
        push, memo_value = stack.append, _memo_value
        count, next_check = 0, _DEADLINE_EVERY
        while True:
            if pos >= end:
                self._pos = pos
                raise Malformed("pickle data was truncated (no STOP opcode)")
            op = buf[pos]
            count += 1
            if op == 0x4B and pos + 2 <= end:  # BININT1
                if pos + 2 < end and buf[pos + 2] == 0x4B:
                    pos, n = self._numeric(op, pos)
                    count += n - 1
                else:
                    push(buf[pos + 1])
                    pos += 2
            elif op == 0x94 and len(stack) > (marks[-1] if marks else 0):  # MEMOIZE
                n = len(memo)
                memo[n] = stack[-1] if n < _MEMO_KEEP_ALL else memo_value(stack[-1])
                pos += 1
            elif op == 0x8C and pos + 1 < end and pos + 2 + buf[pos + 1] <= end:  # SHORT_BINUNICODE
                n = buf[pos + 1]
                try:
                    push(bytes(buf[pos + 2:pos + 2 + n]).decode("utf-8", "surrogatepass"))
                except UnicodeDecodeError:
                    self._pos = pos
                    raise Malformed("invalid UTF-8 in a SHORT_BINUNICODE argument") from None
                pos += 2 + n
            elif op == 0x4D and pos + 3 <= end:  # BININT2
                if pos + 3 < end and buf[pos + 3] == 0x4D:
                    pos, n = self._numeric(op, pos)
                    count += n - 1
                else:
                    push(buf[pos + 1] | buf[pos + 2] << 8)
                    pos += 3
            elif op == 0x71 and pos + 1 < end and len(stack) > (marks[-1] if marks else 0):  # BINPUT
                memo[buf[pos + 1]] = stack[-1]
                pos += 2
            elif op == 0x47 and pos + 9 <= end and (pos + 9 == end or buf[pos + 9] != 0x47):  # one BINFLOAT
                push(_FLOAT.unpack_from(buf, pos + 1)[0])
                pos += 9
            elif op == 0x4A and pos + 5 <= end and (pos + 5 == end or buf[pos + 5] != 0x4A):  # one BININT
                push(_INT4.unpack_from(buf, pos + 1)[0])
                pos += 5
            elif op in _NUMERIC_RUNS and pos + _NUMERIC_RUNS[op][1] <= end:  # runs of BININT, BINFLOAT
                pos, n = self._numeric(op, pos)
                count += n - 1
            elif op == 0x73 and len(stack) - (marks[-1] if marks else 0) >= 3 and type(stack[-3]) is Container:
                stack[-3].add_slice(stack, len(stack) - 2)  # SETITEM into a plain dict
                del stack[-2:]
                pos += 1
            elif op == 0x74 and marks:  # TUPLE
                mark = marks.pop()
                items = stack[mark:]
                del stack[mark:]
                push(tuple(items) if len(items) <= _MAX_TUPLE else tuple(items[:_MAX_TUPLE]))
                pos += 1
            elif op == 0x28:  # MARK
                marks.append(len(stack))
                pos += 1
            elif (op == 0x65 or op == 0x75) and self._extend_inline(op):  # APPENDS, SETITEMS
                pos += 1
            elif 0x85 <= op <= 0x87 and len(stack) - (marks[-1] if marks else 0) >= op - 0x84:  # TUPLE1-3
                k = op - 0x84
                items = tuple(stack[-k:])
                del stack[-k:]
                push(items)
                pos += 1
            elif op in _INLINE_CONSTANTS:
                push(_INLINE_CONSTANTS[op]())
                pos += 1
            elif op == 0x68 and pos + 1 < end and buf[pos + 1] in memo:  # BINGET
                push(memo[buf[pos + 1]])
                pos += 2
            else:
                self._pos = pos
                handler = dispatch.get(op)
                if handler is None:
                    raise Malformed(f"invalid load key {bytes([op])!r} (unknown opcode)")
                pos = handler(pos + 1)
                if self._stopped:
                    break
            if count >= next_check:
                self._pos = pos
                next_check = count + _DEADLINE_EVERY
                self._periodic(count, pos)
        self.opcodes += count
        return pos

    def _numeric(self, op: int, pos: int) -> tuple[int, int]:
        """Push a run of same-kind numeric opcodes; long runs become OPAQUE in one step."""
        pattern, width = _NUMERIC_RUNS[op][0], _NUMERIC_RUNS[op][1]
        if self.buf[pos + width] != op if pos + width < self.end else True:
            self.stack.extend(_run_struct(op, 1).unpack_from(self.buf, pos))
            return pos + width, 1
        n = (pattern.match(self.buf, pos, self.end).end() - pos) // width
        if n > _EXACT_RUN:
            if len(self.stack) + n > self.max_stack:
                self._pos = pos
                raise BudgetExceeded(f"pickle stack exceeds {self.max_stack} entries at position {pos}")
            self.stack.extend([OPAQUE] * n)
        else:
            self.stack.extend(_run_struct(op, n).unpack_from(self.buf, pos))
        return pos + n * width, n

    def _extend_inline(self, op: int) -> bool:
        """APPENDS/SETITEMS onto a plain container; False leaves the opcode to its handler."""
        marks, stack = self.marks, self.stack
        if not marks:
            return False
        mark = marks[-1]
        fence = marks[-2] if len(marks) > 1 else 0
        if mark <= fence or type(stack[mark - 1]) is not Container or (op == 0x75 and (len(stack) - mark) % 2):
            return False
        stack[mark - 1].add_slice(stack, mark)
        del stack[mark:]
        marks.pop()
        return True

    def _periodic(self, count: int, pos: int) -> None:
        self.check_deadline()
        if self._shadow_budget is not None and count > self._shadow_budget:
            raise BudgetExceeded(f"array data at position {pos} still parses as pickle opcodes after "
                                 f"{count} opcodes; the rest of that reading was not analysed")
        if len(self.stack) > self.max_stack:
            raise BudgetExceeded(f"pickle stack exceeds {self.max_stack} entries at position {pos}")
        if len(self.memo) > self.max_memo:
            raise BudgetExceeded(f"pickle memo exceeds {self.max_memo} entries")

    # ------------------------------------------------------------------ helpers
    def _report(self, finding: Finding) -> None:
        self.findings.append(finding)

    def _read(self, pos: int, n: int) -> tuple[bytes, int]:
        if pos + n > self.end:
            raise Malformed("pickle data was truncated")
        return bytes(self.buf[pos:pos + n]), pos + n

    def _line(self, pos: int) -> tuple[bytes, int]:
        nl = self.buf.find(b"\n", pos, self.end)
        if nl < 0:
            raise Malformed("pickle data was truncated (missing newline)")
        return bytes(self.buf[pos:nl]), nl + 1

    def _sized(self, pos: int, width: int) -> tuple[int, int]:
        raw, pos = self._read(pos, width)
        length = int.from_bytes(raw, "little")
        if pos + length > self.end:
            raise Malformed("pickle data was truncated")
        return pos, length

    def _data(self, pos: int, length: int) -> Any:
        if length > _LAZY_THRESHOLD:
            return LazyBytes(self.buf, pos, length)
        return bytes(self.buf[pos:pos + length])

    def _text(self, pos: int, length: int) -> Any:
        if length > _LAZY_THRESHOLD:
            return LazyBytes(self.buf, pos, length)
        try:
            return bytes(self.buf[pos:pos + length]).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise Malformed("invalid UTF-8 in a text argument") from None

    def pop(self) -> Any:
        if not self.stack or (self.marks and len(self.stack) <= self.marks[-1]):
            raise Malformed("unpickling stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack or (self.marks and len(self.stack) <= self.marks[-1]):
            raise Malformed("unpickling stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise Malformed("could not find MARK")
        mark = self.marks.pop()
        items = self.stack[mark:]
        del self.stack[mark:]
        return items

    def push(self, value: Any) -> None:
        self.stack.append(value)

    def _memo_put(self, index: int) -> None:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise Malformed("unpickling stack underflow on memo write")
        if index < 0:
            raise Malformed("negative PUT argument")
        if len(self.memo) >= self.max_memo and index not in self.memo:
            raise BudgetExceeded(f"pickle memo exceeds {self.max_memo} entries")
        value = self.stack[-1]
        self.memo[index] = value if len(self.memo) < _MEMO_KEEP_ALL else _memo_value(value)

    # State hooks for JoblibArrays: the native walker keeps the stack, marks and memo in C.
    def _vm_fork(self) -> Any:
        """Save the VM state and continue on a copy of it."""
        saved = (self.stack, self.marks, self.memo, self._stopped)
        self.stack, self.marks, self.memo = list(self.stack), list(self.marks), dict(self.memo)
        return saved

    def _vm_swap(self) -> Any:
        """Save the VM state; the next _run_stream(fresh=True) starts an empty one."""
        return (self.stack, self.marks, self.memo, self._stopped)

    def _vm_restore(self, saved: Any) -> None:
        self.stack, self.marks, self.memo, self._stopped = saved

    def _memo_get(self, index: int) -> None:
        try:
            self.push(self.memo[index])
        except KeyError:
            raise Malformed(f"memo value not found at index {index}") from None

    # ------------------------------------------------------------------ opcodes: structure
    def op_PROTO(self, pos: int) -> int:
        raw, pos = self._read(pos, 1)
        if raw[0] > 5:
            raise Malformed(f"unsupported pickle protocol: {raw[0]}")
        return pos

    def op_FRAME(self, pos: int) -> int:
        pos, _ = self._sized(pos, 8)
        return pos

    def op_STOP(self, pos: int) -> int:
        self.pop()
        self._stopped = True
        return pos

    def op_MARK(self, pos: int) -> int:
        self.marks.append(len(self.stack))
        return pos

    def op_POP(self, pos: int) -> int:
        if self.stack and not (self.marks and len(self.stack) <= self.marks[-1]):
            self.calls.discarded([self.stack.pop()], self._pos)
        elif self.marks:
            self.pop_mark()  # the C unpickler pops a mark when the stack is empty above it
        else:
            raise Malformed("unpickling stack underflow")
        return pos

    def op_POP_MARK(self, pos: int) -> int:
        self.calls.discarded(self.pop_mark(), self._pos)
        return pos

    def op_DUP(self, pos: int) -> int:
        self.push(self.top())
        return pos

    # ------------------------------------------------------------------ opcodes: memo
    def op_PUT(self, pos: int) -> int:
        raw, pos = self._line(pos)
        self._memo_put(_int_arg(raw))
        return pos

    def op_BINPUT(self, pos: int) -> int:
        raw, pos = self._read(pos, 1)
        self._memo_put(raw[0])
        return pos

    def op_LONG_BINPUT(self, pos: int) -> int:
        raw, pos = self._read(pos, 4)
        self._memo_put(int.from_bytes(raw, "little"))
        return pos

    def op_MEMOIZE(self, pos: int) -> int:
        self._memo_put(len(self.memo))
        return pos

    def op_GET(self, pos: int) -> int:
        raw, pos = self._line(pos)
        self._memo_get(_int_arg(raw))
        return pos

    def op_BINGET(self, pos: int) -> int:
        raw, pos = self._read(pos, 1)
        self._memo_get(raw[0])
        return pos

    def op_LONG_BINGET(self, pos: int) -> int:
        raw, pos = self._read(pos, 4)
        self._memo_get(int.from_bytes(raw, "little"))
        return pos



def _op_table() -> dict[int, tuple[str, int]]:
    from ..pickle_ops import OPCODES

    return OPCODES


_OPS = _op_table()


def native_walker_class() -> type[PurePickleWalker] | None:
    """The walker backed by the C core, or None when the extension is not built."""
    try:
        from ._pickle_native import NativePickleWalker
    except ImportError:
        return None
    return NativePickleWalker


def _default_walker() -> type[PurePickleWalker]:
    """The native walker unless MODELAUDIT_PURE_PYTHON=1 asks for the pure-Python reference."""
    if os.environ.get("MODELAUDIT_PURE_PYTHON", "").strip() not in ("", "0"):
        return PurePickleWalker
    return native_walker_class() or PurePickleWalker


PickleWalker = _default_walker()
