"""Result values: severities, issues, checks and per-file results.

These are plain frozen dataclasses; dictionaries appear only at the output edge
(`to_dict`), so detection code never formats and formatting never detects.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any


class IssueSeverity(str, enum.Enum):
    """How bad a finding is. Ordered: DEBUG < INFO < WARNING < CRITICAL."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, value: str | IssueSeverity) -> IssueSeverity:
        if isinstance(value, IssueSeverity):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {value!r} (expected one of: {names})") from None

    def __str__(self) -> str:
        return self.value


_RANK = {
    IssueSeverity.DEBUG: 0,
    IssueSeverity.INFO: 1,
    IssueSeverity.WARNING: 2,
    IssueSeverity.CRITICAL: 3,
}


@dataclass(frozen=True)
class Issue:
    """One finding: what, how bad, where, why, and the rule that made it."""

    message: str
    severity: IssueSeverity
    rule_code: str
    location: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    why: str | None = None
    scanner: str | None = None
    timestamp: float = field(default_factory=time.time)
    #: compared with a baseline: "new", or "unchanged" (known, so not counted for the exit code)
    baseline: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message": self.message,
            "severity": self.severity.value,
            "location": self.location,
            "details": self.details,
            "timestamp": self.timestamp,
            "rule_code": self.rule_code,
        }
        if self.why:
            out["why"] = self.why
        if self.scanner:
            out["scanner"] = self.scanner
        if self.baseline:
            out["baseline"] = self.baseline
        return out


class CheckStatus(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """One verification that was performed, whether or not it found anything."""

    name: str
    status: CheckStatus
    message: str
    location: str | None = None
    rule_code: str | None = None
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status.value,
            "message": self.message,
            "location": self.location,
            "timestamp": self.timestamp,
        }
        if self.rule_code:
            out["rule_code"] = self.rule_code
        return out


@dataclass(frozen=True)
class Asset:
    """A scanned file (or archive member) and the format it was read as."""

    path: str
    type: str
    size: int | None = None
    #: recorded when an inventory was asked for (ScanConfig.inventory, --sbom); see inventory.py
    sha256: str | None = None
    #: archive members read during the scan; their paths are relative to this file, ':' between levels
    members: tuple[Asset, ...] = ()
    #: licences, copyright, datasets … the content states about itself (see provenance.py)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "type": self.type}
        if self.size is not None:
            out["size"] = self.size
        if self.sha256:
            out["sha256"] = self.sha256
        if self.provenance:
            out["provenance"] = self.provenance
        if self.members:
            out["members"] = [m.to_dict() for m in self.members]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Asset:
        return cls(data["path"], data["type"], data.get("size"), data.get("sha256"),
                   tuple(cls.from_dict(m) for m in data.get("members", ())), dict(data.get("provenance", {})))


@dataclass(frozen=True)
class FileResult:
    """Everything learnt about one top-level file."""

    path: str
    format: str
    scanners: tuple[str, ...]
    issues: tuple[Issue, ...]
    checks: tuple[Check, ...]
    bytes_scanned: int
    complete: bool
    assets: tuple[Asset, ...] = ()
    duration: float = 0.0
