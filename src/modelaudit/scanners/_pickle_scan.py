"""Run the opcode walker over a region of a blob and turn its findings into issues.

Shared by every pickle-bearing format (raw pickles, torch, joblib, numpy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceeded, ScanError
from ._pickle_vm import PickleWalker, WalkOutcome

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext
    from .base import ScanResult


_EMBEDDED = "<data passed to "


def walk_pickle(buf: Any, blob: Blob, result: ScanResult, ctx: ScanContext, *, start: int = 0,
                end: int | None = None, max_streams: int | None = None, label: str | None = None) -> WalkOutcome:
    """Walk the pickle(s) in buf[start:end]; report findings located in `blob`."""
    where = label or blob.location

    def on_embedded(data: bytes, pos: int, via: str) -> None:
        depth = blob.location.count(_EMBEDDED) + 1  # pickles inside pickles, however they are wrapped
        if depth > ctx.limits.max_nested_pickle_depth:
            result.report("MA-S012", f"Data passed to {via} is nested {depth} pickles deep (limit "
                          f"{ctx.limits.max_nested_pickle_depth}); not scanned", f"{where} (pos {pos})",
                          {"position": pos, "loader": via, "size": len(data), "depth": depth})
            result.mark_incomplete()
            return
        child = blob.child(data, f"{_EMBEDDED}{via} at pos {pos}>")
        result.report("MA-P012", f"Embedded data passed to {via} was scanned ({len(data)} bytes)",
                      f"{where} (pos {pos})", {"position": pos, "loader": via, "size": len(data), "depth": depth})
        ctx.scan_member(child, result)

    walker = PickleWalker(buf, start, end, max_stack=ctx.limits.max_pickle_stack,
                          max_memo=ctx.limits.max_pickle_memo, check_deadline=ctx.check_deadline,
                          on_embedded=on_embedded)
    try:
        outcome = walker.run(max_streams=max_streams)
    except ScanError as exc:
        _emit(walker.findings, where, result)
        if isinstance(exc, BudgetExceeded):
            result.report(exc.rule_code, str(exc), where)
            result.mark_incomplete()
            return WalkOutcome(walker.findings, 0, walker.start, str(exc))
        raise
    _emit(outcome.findings, where, result)
    if outcome.error is not None:
        result.report("MA-P006", f"Malformed pickle stream: {outcome.error} at position {outcome.error_pos}",
                      f"{where} (pos {outcome.error_pos})",
                      {"position": outcome.error_pos, "error": outcome.error, "complete_streams": outcome.streams})
    result.bytes_scanned += (outcome.end - start)
    return outcome


def _emit(findings: list, where: str, result: ScanResult) -> None:
    for f in findings:
        result.report(f.rule_code, f.message, f"{where} (pos {f.pos})", f.details, why=f.why)


def record_check(result: ScanResult, name: str, before: int, location: str) -> None:
    """A passed/failed check summarising the findings added since index `before`."""
    new = [i for i in result.issues[before:] if i.severity.rank >= 2]
    if new:
        result.add_check(name, False, f"{len(new)} finding(s)", location)
    else:
        result.add_check(name, True, "no dangerous or unknown references", location)
