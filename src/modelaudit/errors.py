"""Exception bases, one per seam. Third-party errors are translated at the boundary."""

from __future__ import annotations


class ModelAuditError(Exception):
    """Base of every error modelaudit raises on purpose."""


class ConfigError(ModelAuditError):
    """Invalid user configuration."""


class ScanError(ModelAuditError):
    """A scanner could not finish reading a blob."""


class ScanTimeout(ScanError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"Scan timeout after {seconds:g} seconds")
        self.seconds = seconds


class BudgetExceeded(ScanError):
    """A size, count or depth budget ran out."""

    def __init__(self, message: str, rule_code: str = "MA-P009") -> None:
        super().__init__(message)
        self.rule_code = rule_code


class MissingDependency(ScanError):
    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{package} not installed, cannot scan {purpose}. "
            f"Install it with: pip install 'modelaudit[{extra}]'"
        )
        self.package = package
        self.extra = extra
