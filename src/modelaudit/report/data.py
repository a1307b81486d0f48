"""The documented result dictionary (JSON output and Python API) and the exit code."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..engine import ScanRun, is_security_finding
from ..model import CheckStatus, IssueSeverity

EXIT_CLEAN, EXIT_FINDINGS, EXIT_INCOMPLETE = 0, 1, 2


def exit_code(run: ScanRun) -> int:
    """0 clean, 1 warning/critical findings, 2 incomplete coverage or errors with nothing worse."""
    if any(is_security_finding(i) for f in run.files for i in f.issues):
        return EXIT_FINDINGS
    if any(not f.complete for f in run.files):
        return EXIT_INCOMPLETE
    return EXIT_CLEAN


def report_dict(run: ScanRun) -> dict[str, Any]:
    issues = [i for f in run.files for i in f.issues]
    checks = [c for f in run.files for c in f.checks]
    scanners: list[str] = []
    for f in run.files:
        scanners.extend(s for s in f.scanners if s not in scanners)
    counts = {s.value: 0 for s in IssueSeverity}
    for issue in issues:
        counts[issue.severity.value] += 1
    incomplete = [f.path for f in run.files if not f.complete]
    passed = sum(1 for c in checks if c.status is CheckStatus.PASSED)
    failed = sum(1 for c in checks if c.status is CheckStatus.FAILED)
    return {
        "modelaudit_version": __version__,
        "scanner_names": scanners,
        "start_time": run.start_time,
        "bytes_scanned": sum(f.bytes_scanned for f in run.files),
        "issues": [i.to_dict() for i in issues],
        "checks": [c.to_dict() for c in checks],
        "total_checks": len(checks),
        "passed_checks": passed,
        "failed_checks": failed,
        "skipped_checks": len(checks) - passed - failed,
        "has_errors": bool(incomplete),
        "success": not incomplete,
        "files_scanned": len(run.files),
        "incomplete_files": incomplete,
        "duration": run.duration,
        "assets": [a.to_dict() for f in run.files for a in f.assets],
        "summary": {"by_severity": counts, "exit_code": exit_code(run)},
        **policy_dict(run),
    }


def policy_dict(run: ScanRun) -> dict[str, Any]:
    """The policy file used, what it excluded and suppressed (with reasons), and the baseline comparison."""
    out: dict[str, Any] = {
        "config_file": run.config_file,
        "excluded_files": list(run.excluded),
        "suppressed_issues": [{**s.issue.to_dict(), "suppression": {"reason": s.reason}} for s in run.suppressed],
    }
    if run.baseline is not None:
        out["baseline"] = run.baseline.to_dict()
    return out
