"""Baselines: accept known findings by fingerprint, so that only new findings fail a scan.

A fingerprint names a finding by what it is and where it sits, not by how the file happens to be
laid out today: the rule code, the file's path relative to the scan root (the working directory),
the archive member, and the message with byte offsets, numbers and the file's own path taken out.
The SARIF reporter publishes the same value as `partialFingerprints`, so a baseline and code
scanning agree on what "the same finding" is.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .engine import ScanRun
    from .model import Issue

FORMAT_VERSION = 1
FINGERPRINT_KEY = "modelaudit/v1"  # the partialFingerprints key in SARIF
NEW, UNCHANGED, ABSENT = "new", "unchanged", "absent"

_POS_SUFFIX = re.compile(r"\s*\(pos \d+\)$")
_NUMBERS = re.compile(r"\d+")


class BaselineError(ConfigError):
    """The baseline file is missing, unreadable or not a modelaudit baseline."""


# --- fingerprints -------------------------------------------------------------------------------------------


def relative_path(path: str, root: str | Path | None = None) -> str:
    """The file's path relative to root (default: the working directory), '/'-separated; URIs stay."""
    if "://" in path:
        return path
    base = Path(root or os.getcwd()).resolve()
    absolute = Path(path).resolve()
    try:
        return absolute.relative_to(base).as_posix()
    except ValueError:
        return absolute.as_posix()


def archive_member(issue: Issue, file_path: str) -> str | None:
    """The archive member an issue sits in: what follows 'file:' in its location."""
    location = _POS_SUFFIX.sub("", issue.location or "")
    if location.startswith(file_path + ":"):
        return location[len(file_path) + 1:] or None
    return None


def stable_message(issue: Issue, file_path: str) -> str:
    """The message without what changes on unrelated edits or elsewhere: offsets, counts, the file's path."""
    text = _POS_SUFFIX.sub("", issue.message)
    for spelling in sorted({file_path, os.path.abspath(file_path)}, key=len, reverse=True):
        text = text.replace(spelling, "<file>")
    return _NUMBERS.sub("#", text)


def fingerprint(issue: Issue, file_path: str, root: str | Path | None = None) -> str:
    """Stable across unrelated edits, machines and checkout locations (see the module docstring)."""
    key = "\x00".join((issue.rule_code, relative_path(file_path, root), archive_member(issue, file_path) or "",
                       stable_message(issue, file_path)))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


# --- the baseline file --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    fingerprint: str
    rule_code: str
    path: str
    member: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "rule_code": self.rule_code, "path": self.path,
                "member": self.member, "message": self.message}


@dataclass(frozen=True)
class Baseline:
    path: str
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Comparison:
    """How a scan compares with a baseline; `absent` lists known findings no longer found."""

    file: str
    new: int
    unchanged: int
    absent: tuple[Entry, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "new": self.new, "unchanged": self.unchanged,
                "absent": [e.to_dict() for e in self.absent]}


def entries(run: ScanRun, root: str | Path | None = None) -> list[Entry]:
    out = [Entry(fingerprint(issue, file.path, root), issue.rule_code, relative_path(file.path, root),
                 archive_member(issue, file.path), issue.message)
           for file in run.files for issue in file.issues]
    return sorted(out, key=lambda e: (e.path, e.member or "", e.rule_code, e.fingerprint))


def write_baseline(run: ScanRun, path: str, root: str | Path | None = None) -> int:
    """Write every current finding; no timestamps or absolute paths, so an unchanged scan rewrites the same bytes."""
    found = entries(run, root)
    data = {"modelaudit_baseline": FORMAT_VERSION, "findings": [e.to_dict() for e in found]}
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
    except OSError as exc:
        raise BaselineError(f"cannot write baseline file {path}: {exc.strerror or exc}") from None
    return len(found)


def load_baseline(path: str) -> Baseline:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise BaselineError(f"baseline file not found: {path} (create it with --write-baseline {path})") from None
    except OSError as exc:
        raise BaselineError(f"cannot read baseline file {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{path}: not a modelaudit baseline (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or "modelaudit_baseline" not in data:
        raise BaselineError(f"{path}: not a modelaudit baseline (no \"modelaudit_baseline\" key; "
                            "write one with --write-baseline)")
    if data["modelaudit_baseline"] != FORMAT_VERSION:
        raise BaselineError(f"{path}: baseline format {data['modelaudit_baseline']!r} is not supported "
                            f"(this version reads format {FORMAT_VERSION}); rewrite it with --write-baseline")
    findings = data.get("findings")
    if not isinstance(findings, list):
        raise BaselineError(f"{path}: \"findings\" must be a list")
    out = []
    for number, item in enumerate(findings, 1):
        try:
            out.append(Entry(str(item["fingerprint"]), str(item["rule_code"]), str(item["path"]),
                             item.get("member"), str(item.get("message", ""))))
        except (KeyError, TypeError, AttributeError):
            raise BaselineError(f"{path}: finding #{number} needs fingerprint, rule_code and path") from None
    return Baseline(os.path.abspath(path), tuple(out))


# --- comparing ----------------------------------------------------------------------------------------------


def apply_baseline(run: ScanRun, baseline: Baseline, root: str | Path | None = None) -> Comparison:
    """Mark each finding new or unchanged. Fingerprints are counted: a second copy of a known finding is new.

    Known findings not seen again are `absent` when their file was scanned or no longer exists.
    """
    remaining = Counter(e.fingerprint for e in baseline.entries)
    counts = Counter[str]()
    for index, file in enumerate(run.files):
        marked = []
        for issue in file.issues:
            key = fingerprint(issue, file.path, root)
            state = UNCHANGED if remaining[key] > 0 else NEW
            remaining[key] -= state == UNCHANGED
            counts[state] += 1
            marked.append(replace(issue, baseline=state))
        run.files[index] = replace(file, issues=tuple(marked))
    scanned = {relative_path(f.path, root) for f in run.files}
    base = Path(root or os.getcwd())
    absent = []
    for entry in baseline.entries:
        if remaining[entry.fingerprint] > 0 and (entry.path in scanned or _gone(base, entry.path)):
            remaining[entry.fingerprint] -= 1
            absent.append(entry)
    run.baseline = Comparison(baseline.path, counts[NEW], counts[UNCHANGED], tuple(absent))
    return run.baseline


def _gone(base: Path, path: str) -> bool:
    return "://" not in path and not (base / path).exists()
