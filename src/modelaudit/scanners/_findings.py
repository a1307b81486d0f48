"""Findings of one file, capped per rule code so a hostile file cannot flood the report."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model import IssueSeverity
    from .base import ScanResult

MAX_PER_CODE = 25  # findings of one code per file; the rest are counted in one summary


class CappedFindings:
    """Call it (or .emit) to report; .flush (or .close) adds one summary per rule past the cap."""

    def __init__(self, result: ScanResult, where: str, incomplete_codes: tuple[str, ...] = (),
                 cap: int = MAX_PER_CODE) -> None:
        self.result, self.where, self.cap = result, where, cap
        self.incomplete_codes = incomplete_codes
        self.counts: Counter[str] = Counter()

    def emit(self, code: str, message: str, details: dict[str, Any] | None = None,
             severity: IssueSeverity | None = None) -> None:
        self.counts[code] += 1
        if self.counts[code] <= self.cap:
            self.result.report(code, message, self.where, dict(details or {}), severity)
        if code in self.incomplete_codes:
            self.result.mark_incomplete()

    __call__ = emit

    def flush(self) -> None:
        for code, count in sorted(self.counts.items()):
            if count > self.cap:
                self.result.report(code, f"{count - self.cap} more {code} findings in this file were not "
                                   "listed", self.where, {"suppressed": count - self.cap})

    close = flush

    def seen(self, codes: tuple[str, ...]) -> bool:
        return any(self.counts[c] for c in codes)

    def total(self) -> int:
        return sum(self.counts.values())
