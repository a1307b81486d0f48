"""SARIF 2.1.0 output: rule descriptors from the catalog, results located by file, archive
member and byte offset, stable fingerprints, and incomplete scans as tool notifications."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..engine import ScanRun
from ..model import FileResult, Issue, IssueSeverity
from ..rules import RULES, Rule

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {IssueSeverity.CRITICAL: "error", IssueSeverity.WARNING: "warning", IssueSeverity.INFO: "note",
          IssueSeverity.DEBUG: "none"}
_POS_SUFFIX = re.compile(r"\s*\(pos \d+\)$")
_NUMBERS = re.compile(r"\d+")


def render_sarif(run: ScanRun, root: str | None = None) -> dict[str, Any]:
    root_path = Path(root or os.getcwd()).resolve()
    rules = list(RULES.values())
    index = {rule.code: i for i, rule in enumerate(rules)}
    results = [_result(issue, file, root_path, index) for file in run.files for issue in file.issues]
    notifications = [_notification(file, root_path) for file in run.files if not file.complete]
    return {
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
    absolute = Path(path).resolve()
    try:
        relative = absolute.relative_to(root)
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": quote(relative.as_posix()), "uriBaseId": "SRCROOT"}


def _member(issue: Issue, file: FileResult) -> str | None:
    """The archive member an issue sits in: what follows 'file:' in its location."""
    location = _POS_SUFFIX.sub("", issue.location or "")
    if location.startswith(file.path + ":"):
        return location[len(file.path) + 1:] or None
    return None


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
        "partialFingerprints": {"modelaudit/v1": _fingerprint(issue, file, root, member)},
        "properties": {"severity": issue.severity.value, "details": issue.details},
    }
    if issue.rule_code in index:
        result["ruleIndex"] = index[issue.rule_code]
    return result


def _fingerprint(issue: Issue, file: FileResult, root: Path, member: str | None) -> str:
    """Stable across unrelated edits: no byte offsets, no counts, no absolute paths."""
    uri = _artifact(file.path, root)["uri"]
    stable = _NUMBERS.sub("#", _POS_SUFFIX.sub("", issue.message))
    key = "\x00".join((issue.rule_code, uri, member or "", stable))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _notification(file: FileResult, root: Path) -> dict[str, Any]:
    reasons = "; ".join(i.message for i in file.issues if RULES.get(i.rule_code) and RULES[i.rule_code].coverage)
    return {
        "level": "warning",
        "message": {"text": f"{file.path} was not fully scanned" + (f": {reasons}" if reasons else "")},
        "locations": [{"physicalLocation": {"artifactLocation": _artifact(file.path, root)}}],
    }
