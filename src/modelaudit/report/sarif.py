"""SARIF 2.1.0 output: rule descriptors from the catalog, results located by file, archive
member and byte offset, stable fingerprints, and incomplete scans as tool notifications."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..baseline import ABSENT, FINGERPRINT_KEY, archive_member, fingerprint
from ..engine import ScanRun
from ..model import FileResult, Issue, IssueSeverity
from ..rules import RULES, Rule

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {IssueSeverity.CRITICAL: "error", IssueSeverity.WARNING: "warning", IssueSeverity.INFO: "note",
          IssueSeverity.DEBUG: "none"}


def render_sarif(run: ScanRun, root: str | None = None) -> dict[str, Any]:
    root_path = Path(root or os.getcwd()).resolve()
    rules = list(RULES.values())
    index = {rule.code: i for i, rule in enumerate(rules)}
    results = [_result(issue, file, root_path, index) for file in run.files for issue in file.issues]
    results.extend(_policy_results(run, root_path, index))
    notifications = [_notification(file, root_path) for file in run.files if not file.complete]
    sarif = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "modelaudit",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": [_descriptor(rule) for rule in rules],
            }},
            "originalUriBaseIds": {"SRCROOT": {"uri": root_path.as_uri() + "/"}},
            "invocations": [{
                "executionSuccessful": not notifications,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    }
    properties = _run_properties(run)
    if properties:
        sarif["runs"][0]["properties"] = properties
    return sarif


def _run_properties(run: ScanRun) -> dict[str, Any]:
    """The policy file and baseline this run honoured (absolute paths, as in the JSON report)."""
    out: dict[str, Any] = {}
    if run.config_file:
        out["configFile"] = run.config_file
    if run.baseline is not None:
        out["baselineFile"] = run.baseline.file
    if run.excluded:
        out["excludedFiles"] = list(run.excluded)
    if run.baseline is not None and run.baseline.absent:
        # Kept out of `results`: code scanning does not document result.kind, and a "pass" result must not
        # come back as an alert. These are the baseline findings no longer found.
        out["absentFindings"] = [{"ruleId": e.rule_code, "message": e.message, "uri": e.path, "member": e.member,
                                  "baselineState": ABSENT, "partialFingerprints": {FINGERPRINT_KEY: e.fingerprint}}
                                 for e in run.baseline.absent]
    return out


def _policy_results(run: ScanRun, root: Path, index: dict[str, int]) -> list[dict[str, Any]]:
    """Findings the policy accepted, as suppressed results with the reason."""
    files = {f.path: f for f in run.files}
    out = []
    for accepted in run.suppressed:
        file = files.get(accepted.path) or FileResult(accepted.path, "unknown", (), (), (), 0, True)
        result = _result(accepted.issue, file, root, index)
        result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": accepted.reason}]
        out.append(result)
    return out


def _descriptor(rule: Rule) -> dict[str, Any]:
    tags = ["security"] + ([rule.cwe] if rule.cwe else [])
    return {
        "id": rule.code,
        "name": "".join(word.capitalize() for word in re.findall(r"[A-Za-z0-9]+", rule.title)),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.why},
        "help": {"text": f"{rule.title}. {rule.why} Run `modelaudit rules {rule.code}` for details."},
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {"tags": tags},
    }


def _artifact(path: str, root: Path) -> dict[str, Any]:
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", path):  # a remote target's URI (hf://, s3://, https://…)
        return {"uri": path}
    absolute = Path(path).resolve()
    try:
        relative = absolute.relative_to(root)
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": quote(relative.as_posix()), "uriBaseId": "SRCROOT"}


def _member(issue: Issue, file: FileResult) -> str | None:
    return archive_member(issue, file.path)


def _result(issue: Issue, file: FileResult, root: Path, index: dict[str, int]) -> dict[str, Any]:
    member = _member(issue, file)
    physical: dict[str, Any] = {"artifactLocation": _artifact(file.path, root)}
    position = issue.details.get("position")
    if member is None and isinstance(position, int) and position >= 0:
        physical["region"] = {"byteOffset": position}
    location: dict[str, Any] = {"physicalLocation": physical}
    if member:
        location["logicalLocations"] = [{"name": member, "kind": "member"}]
    text = issue.message if not member or member in issue.message else f"{issue.message} (in {member})"
    result: dict[str, Any] = {
        "ruleId": issue.rule_code,
        "level": _LEVEL[issue.severity],
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(issue, file.path, root)},
        "properties": {"severity": issue.severity.value, "details": issue.details},
    }
    if issue.baseline:
        result["baselineState"] = issue.baseline
    if issue.rule_code in index:
        result["ruleIndex"] = index[issue.rule_code]
    return result


def _notification(file: FileResult, root: Path) -> dict[str, Any]:
    reasons = "; ".join(i.message for i in file.issues if RULES.get(i.rule_code) and RULES[i.rule_code].coverage)
    return {
        "level": "warning",
        "message": {"text": f"{file.path} was not fully scanned" + (f": {reasons}" if reasons else "")},
        "locations": [{"physicalLocation": {"artifactLocation": _artifact(file.path, root)}}],
    }
