"""Findings of one file, capped per rule code so a hostile file cannot flood the report."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import ScanResult

MAX_PER_CODE = 25  # findings of one code per file; the rest are counted in one summary


class CappedFindings:
    def __init__(self, result: ScanResult, where: str, incomplete_codes: tuple[str, ...] = ()) -> None:
        self.result, self.where = result, where
        self.incomplete_codes = incomplete_codes
        self.counts: Counter[str] = Counter()

    def emit(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        self.counts[code] += 1
        if self.counts[code] <= MAX_PER_CODE:
            self.result.report(code, message, self.where, dict(details or {}))
        if code in self.incomplete_codes:
            self.result.mark_incomplete()

    def flush(self) -> None:
        for code, count in sorted(self.counts.items()):
            if count > MAX_PER_CODE:
                self.result.report(code, f"{count - MAX_PER_CODE} more {code} findings in this file were not "
                                   "listed", self.where, {"suppressed": count - MAX_PER_CODE})

    def seen(self, codes: tuple[str, ...]) -> bool:
        return any(self.counts[c] for c in codes)
