"""The scanner plugin contract: BaseScanner and ScanResult.

Custom scanners subclass BaseScanner, implement `can_handle(path)` and `scan(path)`,
and are registered by appending the class to `modelaudit.scanners.SCANNER_REGISTRY`
(or through the `modelaudit.scanners` entry point group). Built-in scanners also
implement `check(blob, result, ctx)`, which the engine uses for files and for members
of containers alike.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from ..model import Check, CheckStatus, Issue, IssueSeverity
from ..rules import RULES

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

__all__ = ["BaseScanner", "ScanResult", "IssueSeverity"]

PLUGIN_RULE = "MA-X001"


class ScanResult:
    """Findings, checks and coverage of one scanner run (mutable while scanning)."""

    def __init__(self, scanner_name: str = "unknown") -> None:
        self.scanner_name = scanner_name
        self.issues: list[Issue] = []
        self.checks: list[Check] = []
        self.bytes_scanned = 0
        self.success = True
        self.complete = True
        self.start_time = time.time()
        self.end_time: float | None = None
        self.metadata: dict[str, Any] = {}

    def add_issue(
        self,
        message: str,
        severity: IssueSeverity | str = IssueSeverity.WARNING,
        location: str | None = None,
        details: dict[str, Any] | None = None,
        why: str | None = None,
        rule_code: str | None = None,
    ) -> Issue:
        code = rule_code or PLUGIN_RULE
        rule = RULES.get(code)
        issue = Issue(
            message=message,
            severity=IssueSeverity.parse(severity),
            rule_code=code,
            location=location,
            details=dict(details or {}),
            why=why or (rule.why if rule and rule_code else None),
            scanner=self.scanner_name,
        )
        self.issues.append(issue)
        return issue

    def report(self, rule_code: str, message: str, location: str | None = None,
               details: dict[str, Any] | None = None, severity: IssueSeverity | None = None,
               why: str | None = None) -> Issue:
        """Add a finding whose default severity and explanation come from the rule catalog."""
        rule = RULES[rule_code]
        return self.add_issue(message, severity or rule.severity, location, details, why or rule.why, rule_code)

    def add_check(self, name: str, passed: bool | None, message: str, location: str | None = None,
                  rule_code: str | None = None) -> None:
        status = CheckStatus.SKIPPED if passed is None else (CheckStatus.PASSED if passed else CheckStatus.FAILED)
        self.checks.append(Check(name, status, message, location, rule_code))

    def mark_incomplete(self) -> None:
        self.complete = False

    def merge(self, other: ScanResult) -> None:
        self.issues.extend(other.issues)
        self.checks.extend(other.checks)
        self.bytes_scanned += other.bytes_scanned
        self.complete = self.complete and other.complete
        self.success = self.success and other.success

    def finish(self, success: bool = True) -> None:
        self.success = self.success and bool(success)
        self.end_time = time.time()

    @property
    def has_errors(self) -> bool:
        return not self.success

    @property
    def duration(self) -> float:
        return (self.end_time or time.time()) - self.start_time


class BaseScanner:
    """Base class of every scanner."""

    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    supported_extensions: ClassVar[list[str]] = []
    #: formats (ids from modelaudit.detect) this scanner reads; empty for path-based plugins
    formats: ClassVar[tuple[str, ...]] = ()
    #: optional dependency as (package, extra), shown by --list-scanners
    dependency: ClassVar[tuple[str, str] | None] = None

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})

    @classmethod
    def can_handle(cls, path: str) -> bool:
        if cls.formats:
            from ..detect import detect_path

            return detect_path(path).format in cls.formats
        return path.lower().endswith(tuple(ext.lower() for ext in cls.supported_extensions))

    @classmethod
    def is_builtin_style(cls) -> bool:
        """True when the scanner reads blobs through `check` (file or container member)."""
        return cls.check is not BaseScanner.check

    def _create_result(self) -> ScanResult:
        return ScanResult(scanner_name=self.name)

    def check(self, blob: Blob, result: ScanResult, ctx: ScanContext) -> None:
        raise NotImplementedError

    def scan(self, path: str) -> ScanResult:
        """Scan one file on its own (the engine adds budgets, nesting and reporting)."""
        from ..blob import Blob
        from ..config import ScanConfig
        from ..context import ScanContext

        result = self._create_result()
        blob = Blob.from_path(path)
        self.check(blob, result, ScanContext.standalone(ScanConfig()))
        result.bytes_scanned = max(result.bytes_scanned, blob.size)
        result.finish(success=True)
        return result
