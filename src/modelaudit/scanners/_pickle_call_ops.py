"""Pickle opcodes that name globals and make calls: GLOBAL, STACK_GLOBAL, INST, OBJ, REDUCE, NEWOBJ(_EX),
BUILD, EXT1-4, PERSID, BINPERSID.

A mixin of PickleWalker (see _pickle_vm), which supplies the stack, the argument readers and the call
analysis. The act_* methods do what an opcode means once its operands are off the stack; the native
core calls them with the same operands, so both walkers share this logic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._joblib_arrays import is_wrapper
from ._pickle_data_ops import Malformed
from ._pickle_values import OPAQUE, Call, Container, Finding, Global, Persistent, short_repr
from .pickle_policy import Level, classify


class CallOpcodes:
    """Globals and calls; the walker supplies the stack machinery declared here."""

    if TYPE_CHECKING:
        calls: Any
        globals_seen: dict[str, int]
        _global_findings: dict[tuple[str, str], Finding]
        _stream_named_globals: bool
        _pos: int

        def push(self, value: Any) -> None: ...
        def pop(self) -> Any: ...
        def top(self) -> Any: ...
        def pop_mark(self) -> list[Any]: ...
        def _report(self, finding: Finding) -> None: ...
        def _read(self, pos: int, n: int) -> tuple[bytes, int]: ...
        def _line(self, pos: int) -> tuple[bytes, int]: ...
        def _skip_joblib_array(self, target: Call, state: Any, pos: int) -> int: ...

    def _resolve(self, module: Any, name: Any, pos: int, opcode: str) -> Global:
        if not isinstance(module, str) or not isinstance(name, str):
            desc = f"{short_repr(module)}, {short_repr(name)}"
            self._report(Finding("MA-P007", f"STACK_GLOBAL with non-text operands ({desc}) hides its target",
                                 pos, {"position": pos, "opcode": opcode}))
            verdict = classify("<unresolved>", "<unresolved>")
            return self.calls.note(Global("<unresolved>", "<unresolved>", verdict, pos, opcode))
        verdict = classify(module, name)
        self._stream_named_globals = True
        self.globals_seen[verdict.target] = self.globals_seen.get(verdict.target, 0) + 1
        glob = self.calls.note(Global(module, name, verdict, pos, opcode))
        if verdict.level is not Level.SAFE:
            self._global_finding(glob)
        return glob

    def _global_finding(self, glob: Global) -> None:
        verdict = glob.verdict
        key = (verdict.target, verdict.rule_code)
        existing = self._global_findings.get(key)
        if existing is not None:
            existing.details["occurrences"] = existing.details.get("occurrences", 1) + 1
            return
        details = {"module": glob.module, "function": glob.name, "position": glob.pos, "opcode": glob.opcode}
        if verdict.family:
            details["family"] = verdict.family
        if verdict.level is Level.DANGEROUS:
            message = f"Suspicious module reference found: {verdict.target}"
            why = f"{verdict.why}; unpickling imports it and can call it with attacker-chosen arguments."
        else:
            message = f"Unknown global reference {verdict.target}: not among the callables honest model files use"
            why = None
        finding = Finding(verdict.rule_code, message, glob.pos, details, why)
        self._global_findings[key] = finding
        self._report(finding)

    def _call(self, func: Any, args: Any, pos: int, opcode: str) -> Call:
        if self.calls.inert_call(func, args):  # most calls of honest files: skip the analysis
            return Call(func, args, pos, opcode)
        if not isinstance(func, (Global, Call, Persistent)) and func is not OPAQUE:
            raise Malformed(f"{opcode} on a non-callable {type(func).__name__}")
        call = Call(func, args, pos, opcode)
        self.calls.record(call, self._global_findings)
        return call

    # ------------------------------------------------------------------ opcodes
    def op_GLOBAL(self, pos: int) -> int:
        module, pos = self._line(pos)
        name, pos = self._line(pos)
        self.push(self.act_global(module, name))
        return pos

    def act_global(self, module: bytes, name: bytes) -> Global:
        return self._resolve(_utf8(module), _utf8(name), self._pos, "GLOBAL")

    def op_STACK_GLOBAL(self, pos: int) -> int:
        name, module = self.pop(), self.pop()
        self.push(self.act_stack_global(module, name))
        return pos

    def act_stack_global(self, module: Any, name: Any) -> Global:
        return self._resolve(module, name, self._pos, "STACK_GLOBAL")

    def op_INST(self, pos: int) -> int:
        module, pos = self._line(pos)
        name, pos = self._line(pos)
        self.push(self.act_inst(module, name, self.pop_mark()))
        return pos

    def act_inst(self, module: bytes, name: bytes, items: list[Any]) -> Call:
        start = self._pos
        cls = self._resolve(_utf8(module), _utf8(name), start, "INST")
        return self._call(cls, tuple(items), start, "INST")

    def op_OBJ(self, pos: int) -> int:
        self.push(self.act_obj(self.pop_mark()))
        return pos

    def act_obj(self, items: list[Any]) -> Call:
        if not items:
            raise Malformed("unpickling stack underflow in OBJ")
        return self._call(items[0], tuple(items[1:]), self._pos, "OBJ")

    def op_REDUCE(self, pos: int) -> int:
        args, func = self.pop(), self.pop()
        self.push(self.act_reduce(args, func))
        return pos

    def act_reduce(self, args: Any, func: Any) -> Call:
        if isinstance(args, (str, bytes, Container, int, float)) or args is None:
            raise Malformed("REDUCE arguments must be a tuple")
        return self._call(func, args, self._pos, "REDUCE")

    def op_NEWOBJ(self, pos: int) -> int:
        args, cls = self.pop(), self.pop()
        self.push(self.act_newobj(args, cls))
        return pos

    def act_newobj(self, args: Any, cls: Any) -> Call:
        return self._call(cls, args, self._pos, "NEWOBJ")

    def op_NEWOBJ_EX(self, pos: int) -> int:
        kwargs, args, cls = self.pop(), self.pop(), self.pop()
        self.push(self.act_newobj_ex(kwargs, args, cls))
        return pos

    def act_newobj_ex(self, kwargs: Any, args: Any, cls: Any) -> Call:
        return self._call(cls, (args, kwargs), self._pos, "NEWOBJ_EX")

    def op_BUILD(self, pos: int) -> int:
        state = self.pop()
        return self.act_build(self.top(), state, pos)

    def act_build(self, target: Any, state: Any, pos: int) -> int:
        """Returns where walking resumes: after a joblib array wrapper, past its array data."""
        self.calls.build(target, state, self._pos)
        if isinstance(target, Call):
            target.state = state
            if is_wrapper(target):
                return self._skip_joblib_array(target, state, pos)
        return pos

    def _ext(self, pos: int, width: int, opcode: str) -> int:
        raw, pos = self._read(pos, width)
        self.push(self.act_ext(int.from_bytes(raw, "little"), opcode))
        return pos

    def act_ext(self, code: int, opcode: str) -> Global:
        if code <= 0:
            raise Malformed(f"EXT specifies code <= 0 ({code})")
        self._report(Finding("MA-P008", f"{opcode} refers to extension code {code}; its target is defined by the "
                             "loading process, not the file", self._pos, {"position": self._pos, "opcode": opcode,
                                                                           "code": code}))
        verdict = classify("copyreg", "_extension_registry")
        return self.calls.note(Global("copyreg", f"<extension {code}>", verdict, self._pos, opcode))

    def op_EXT1(self, pos: int) -> int:
        return self._ext(pos, 1, "EXT1")

    def op_EXT2(self, pos: int) -> int:
        return self._ext(pos, 2, "EXT2")

    def op_EXT4(self, pos: int) -> int:
        return self._ext(pos, 4, "EXT4")

    def op_PERSID(self, pos: int) -> int:
        raw, pos = self._line(pos)
        self.push(self.act_persid(raw))
        return pos

    def act_persid(self, raw: bytes) -> Persistent:
        return Persistent(raw.decode("ascii", "replace"))

    def op_BINPERSID(self, pos: int) -> int:
        self.push(Persistent(self.pop()))
        return pos


def _utf8(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")
