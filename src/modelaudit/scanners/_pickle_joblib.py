"""How the walker reads joblib files: the array data joblib writes inline after each
NumpyArrayWrapper is stepped over exactly (object arrays are one more pickle), and the
same bytes are also walked the way plain pickle.load would read them.

A mixin of PickleWalker (see _pickle_vm), which supplies the stack machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceeded
from ._joblib_arrays import layout
from ._pickle_data_ops import Malformed
from ._pickle_values import Call, Finding

_SHADOW_OPCODES = 1 << 20
_SHADOW_KEEP = frozenset({"MA-P001", "MA-P003", "MA-P009"})


class JoblibArrays:
    if TYPE_CHECKING:
        findings: list[Finding]
        end: int
        _stopped: bool
        _pos: int
        _shadow_budget: int | None
        _stream_named_globals: bool
        _global_findings: dict[tuple[str, str], Finding]
        globals_seen: dict[str, int]

        def _read(self, pos: int, n: int) -> tuple[bytes, int]: ...
        def _run_stream(self, pos: int, fresh: bool = True) -> int: ...
        def _report(self, finding: Finding) -> None: ...
        def _vm_fork(self) -> Any: ...
        def _vm_swap(self) -> Any: ...
        def _vm_restore(self, saved: Any) -> None: ...

    def _skip_joblib_array(self, target: Call, state: Any, pos: int) -> int:
        """joblib writes the array right after its wrapper; step over it like NumpyUnpickler."""
        shape = layout(state)
        if shape is None or shape.nbytes < 0:  # a negative dimension would send the walk backwards
            raise Malformed("joblib array wrapper without a readable shape and dtype")
        self._shadow_walk(pos)
        if shape.has_object:  # object arrays are one more pickle, loaded in place, never padded
            saved = self._vm_swap()
            pos = self._run_stream(pos)
            self._vm_restore(saved)
            return pos
        if shape.aligned:  # one byte giving the padding length, then the padding
            raw, pos = self._read(pos, 1)
            pos += raw[0]
        if pos + shape.nbytes > self.end:
            raise Malformed("joblib array data was truncated")
        return pos + shape.nbytes

    def _shadow_walk(self, pos: int) -> None:
        """pickle.load, unlike joblib.load, reads the bytes after a wrapper as opcodes, with the
        current stack and memo: a file can be an array to joblib and a payload to pickle. Walk
        that reading too; honest array data stops parsing within a few bytes."""
        if self._shadow_budget is not None:
            return
        saved = (self._stream_named_globals, self._pos, dict(self._global_findings), dict(self.globals_seen))
        vm = self._vm_fork()
        self._shadow_budget = _SHADOW_OPCODES
        before = len(self.findings)
        try:
            self._run_stream(pos, fresh=False)
        except Malformed:
            pass
        except BudgetExceeded as exc:
            self._report(Finding("MA-P009", str(exc), pos, {"position": pos}))
        finally:
            self._shadow_budget = None
            self._vm_restore(vm)
            self._stream_named_globals, self._pos, self._global_findings, self.globals_seen = saved
        # Honest array bytes parse as a few stray opcodes over the carried stack; only a named
        # dangerous target (or running out of budget) means something in them.
        shadow = self.findings[before:]
        del self.findings[before:]
        for finding in shadow:
            if finding.rule_code in _SHADOW_KEEP:
                finding.details["reading"] = "bytes joblib reads as array data, which pickle.load runs as opcodes"
                self.findings.append(finding)
