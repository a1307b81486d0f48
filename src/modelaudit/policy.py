"""The policy file: `[tool.modelaudit]` in pyproject.toml, or a `.modelaudit.toml`.

Which file is used (the first rule that applies wins):
  1. `--no-config` (API: policy=None/False): none;
  2. `--config FILE` (API: policy="FILE"): that file;
  3. the nearest policy file at or above the scan targets' directories (all targets must agree);
  4. the nearest policy file at or above the working directory.
In one directory `.modelaudit.toml` wins over `pyproject.toml`; a pyproject.toml without a
`[tool.modelaudit]` table is not a policy file and the search goes on upwards.

Path patterns (`exclude`, `suppress.paths`) are relative to the directory of the policy file, like
.gitignore patterns: a pattern with a `/` is anchored there, a bare name matches a file or directory of
that name at any depth, `*` also matches across `/`, and a pattern naming a directory covers all below it.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .engine import ScanRun
    from .model import Issue


POLICY_NAME = ".modelaudit.toml"
PYPROJECT = "pyproject.toml"

_SIZE_KEYS = {"max-file-size": "max_file_size", "max-total-size": "max_total_size",
              "max-decompressed": "max_decompressed", "max-memory": "max_memory"}
_KEYS = (*_SIZE_KEYS, "timeout", "strict", "blacklist", "exclude", "suppress", "severity", "baseline")
_SUPPRESS_KEYS = ("code", "reason", "paths")


class PolicyError(ConfigError):
    """The policy file cannot be found, read or understood."""


@dataclass(frozen=True)
class Suppression:
    """Findings of these rule codes are accepted (for the given paths, else everywhere), for a reason."""

    codes: tuple[str, ...]
    reason: str
    paths: tuple[str, ...] = ()  # absolute patterns (see expand_pattern); empty: every path

    def covers(self, issue: Issue, path: str) -> bool:
        return issue.rule_code in self.codes and (not self.paths or path_matches(path, self.paths))


@dataclass(frozen=True)
class Policy:
    path: str  # the file that was read (absolute)
    #: config_from_kwargs arguments the file sets (limits, strict, blacklist_patterns, exclude_paths,
    #: severity_overrides)
    options: tuple[tuple[str, Any], ...] = ()
    suppressions: tuple[Suppression, ...] = ()
    baseline: str | None = None  # absolute path

    def suppression_for(self, issue: Issue, path: str) -> Suppression | None:
        return next((s for s in self.suppressions if s.covers(issue, path)), None)


@dataclass(frozen=True)
class Suppressed:
    """A finding a policy suppression accepted: kept for the record, never counted."""

    issue: Issue
    path: str  # the top-level file it was found in
    reason: str


# --- finding the file ---------------------------------------------------------------------------------------


def find_policy(targets: list[str], cwd: str | None = None) -> str | None:
    """The policy file for these targets (rules 3 and 4 above), or None."""
    found: list[str] = []
    for target in targets:
        if "://" in target or target.startswith("models:/"):
            continue  # remote targets have no directory of their own
        absolute = os.path.abspath(target)
        hit = nearest_policy(absolute if os.path.isdir(absolute) else os.path.dirname(absolute))
        if hit and hit not in found:
            found.append(hit)
    if len(found) > 1:
        raise PolicyError("the scan targets lie under different policy files (" + ", ".join(found)
                          + "); choose one with --config FILE or use --no-config")
    return found[0] if found else nearest_policy(os.path.abspath(cwd or os.getcwd()))


def nearest_policy(directory: str) -> str | None:
    current = directory
    while True:
        candidate = os.path.join(current, POLICY_NAME)
        if os.path.isfile(candidate):
            return candidate
        candidate = os.path.join(current, PYPROJECT)
        if os.path.isfile(candidate) and _has_tool_table(candidate):
            return candidate
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _has_tool_table(pyproject: str) -> bool:
    try:
        with open(pyproject, "rb") as fh:
            raw = fh.read()
    except OSError:
        return False
    if b"modelaudit" not in raw and b"\\u" not in raw.lower():
        return False  # cannot name our table (a quoted key may spell it with \u escapes): not parsed
    try:
        data = _parse_toml(raw, pyproject)
    except PolicyError:
        # a broken pyproject.toml matters only when it was meant to carry our table
        if b"tool.modelaudit" in raw:
            raise
        return False
    return isinstance(data.get("tool"), dict) and "modelaudit" in data["tool"]


# --- reading it ---------------------------------------------------------------------------------------------


def load_policy(path: str) -> Policy:
    """Read and validate a policy file; every problem is a PolicyError naming the file and the key."""
    path = os.path.abspath(path)
    data = _read_toml(path)
    tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
    if os.path.basename(path) == PYPROJECT or (set(data) == {"tool"} and "modelaudit" in tool):
        table = tool.get("modelaudit")
        if not isinstance(table, dict):
            raise PolicyError(f"{path}: no [tool.modelaudit] table")
        where = f"{path} [tool.modelaudit]"
    else:
        table, where = data, path
    return _parse(table, path, where)


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise PolicyError(f"policy file not found: {path}") from None
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from None
    return _parse_toml(raw, path)


def _parse_toml(raw: bytes, path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: invalid TOML: {exc}") from None


def _parse(table: dict[str, Any], path: str, where: str) -> Policy:
    from .config import parse_size

    _check_keys(table, _KEYS, where)
    root = os.path.dirname(path)
    options: list[tuple[str, Any]] = []
    for key, name in _SIZE_KEYS.items():
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise PolicyError(f"{where} {key}: expected a size such as 1073741824 or \"1GB\", got {value!r}")
            try:
                options.append((name, parse_size(value)))
            except ValueError as exc:
                raise PolicyError(f"{where} {key}: {exc}") from None
    if "timeout" in table:
        value = table["timeout"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise PolicyError(f"{where} timeout: expected a positive number of seconds, got {value!r}")
        options.append(("timeout", float(value)))
    if "strict" in table:
        if not isinstance(table["strict"], bool):
            raise PolicyError(f"{where} strict: expected true or false, got {table['strict']!r}")
        options.append(("strict", table["strict"]))
    if "blacklist" in table:
        options.append(("blacklist_patterns", _strings(table["blacklist"], f"{where} blacklist")))
    if "exclude" in table:
        patterns = _strings(table["exclude"], f"{where} exclude")
        options.append(("exclude_paths", tuple(p for pat in patterns for p in _anchored(pat, root))))
    if "severity" in table:
        options.append(("severity_overrides", _severities(table["severity"], f"{where} severity")))
    suppressions = _suppressions(table.get("suppress", []), root, f"{where} suppress")
    baseline = table.get("baseline")
    if baseline is not None and (not isinstance(baseline, str) or not baseline.strip()):
        raise PolicyError(f"{where} baseline: expected the path of a baseline file, got {baseline!r}")
    return Policy(path, tuple(options), suppressions, os.path.join(root, baseline) if baseline else None)


def _check_keys(table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            import difflib  # only for a message about an unknown key

            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(allowed)})"
            raise PolicyError(f"{where}: unknown key {key!r}{hint}")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PolicyError(f"{where}: expected a list of non-empty strings, got {value!r}")
    return tuple(v.strip() for v in value)


def _codes(value: Any, where: str) -> tuple[str, ...]:
    from .rules import RULES

    codes = _strings(value, where)
    unknown = [c for c in codes if c not in RULES]
    if unknown:
        raise PolicyError(f"{where}: unknown rule code(s) {', '.join(unknown)} (see `modelaudit rules`)")
    return codes


def _severities(value: Any, where: str) -> tuple[tuple[str, Any], ...]:
    from .model import IssueSeverity

    if not isinstance(value, dict):
        raise PolicyError(f"{where}: expected a table of CODE = \"level\", got {value!r}")
    _codes(list(value), where)
    out = []
    for code, level in value.items():
        try:
            out.append((code, IssueSeverity.parse(level if isinstance(level, str) else repr(level))))
        except ValueError as exc:
            raise PolicyError(f"{where} {code}: {exc}") from None
    return tuple(out)


def _suppressions(value: Any, root: str, where: str) -> tuple[Suppression, ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise PolicyError(f"{where}: expected [[suppress]] tables with code and reason, got {value!r}")
    out = []
    for number, entry in enumerate(value, 1):
        here = f"{where} #{number}"
        _check_keys(entry, _SUPPRESS_KEYS, here)
        if "code" not in entry:
            raise PolicyError(f"{here}: needs a rule code (code = \"MA-…\" or a list)")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise PolicyError(f"{here}: a suppression needs a reason (reason = \"why this is acceptable\")")
        patterns = _strings(entry["paths"], f"{here} paths") if "paths" in entry else ()
        out.append(Suppression(_codes(entry["code"], f"{here} code"), reason.strip(),
                               tuple(p for pat in patterns for p in _anchored(pat, root))))
    return tuple(out)


# --- path patterns ------------------------------------------------------------------------------------------


def _anchored(pattern: str, root: str) -> list[str]:
    """A policy pattern made absolute; a leading `/` anchors a bare name to the policy's directory."""
    return expand_pattern(pattern.lstrip("/"), root, anchored=pattern.startswith("/"))


def expand_pattern(pattern: str, root: str, anchored: bool = False) -> list[str]:
    """Absolute fnmatch patterns for one user pattern: absolute ones stay, ones with a `/` (or anchored)
    are joined to root, bare names match at any depth below root."""
    pattern = pattern.strip().rstrip("/")
    if os.path.isabs(pattern):
        return [pattern]
    base = glob.escape(os.path.abspath(root).replace(os.sep, "/")).rstrip("/")
    if anchored or "/" in pattern:
        return [f"{base}/{pattern}"]
    return [f"{base}/{pattern}", f"{base}/*/{pattern}"]


def path_matches(path: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """True when the file or one of its directories matches one of the absolute patterns."""
    if "://" in path:
        return False
    candidate = os.path.abspath(path).replace(os.sep, "/")
    while True:
        if any(fnmatch.fnmatchcase(candidate, p) for p in patterns):
            return True
        parent = candidate.rsplit("/", 1)[0]
        if not parent or parent == candidate:
            return False
        candidate = parent


# --- applying it --------------------------------------------------------------------------------------------


def merge_options(policy: Policy | None, given: dict[str, Any]) -> dict[str, Any]:
    """config_from_kwargs arguments: what was given (CLI flags, API keywords; None means not given) wins
    over the policy file; blacklist patterns and excludes add up; severity overrides merge per rule code."""
    merged = {key: value for key, value in given.items() if value is not None}
    for key, value in policy.options if policy else ():
        if key in ("blacklist_patterns", "exclude_paths"):
            merged[key] = (*value, *merged.get(key, ()))
        elif key == "severity_overrides":
            mine = merged.get(key, ())
            merged[key] = {**dict(value), **dict(mine.items() if isinstance(mine, dict) else mine)}
        elif key not in merged:
            merged[key] = value
    return merged


def apply_suppressions(run: ScanRun, policy: Policy) -> None:
    """Move the findings the policy accepts out of the results into run.suppressed, with their reason."""
    from dataclasses import replace

    run.config_file = policy.path
    if not policy.suppressions:
        return
    for index, file in enumerate(run.files):
        kept = []
        for issue in file.issues:
            rule = policy.suppression_for(issue, file.path)
            if rule is None:
                kept.append(issue)
            else:
                run.suppressed.append(Suppressed(issue, file.path, rule.reason))
        if len(kept) != len(file.issues):
            run.files[index] = replace(file, issues=tuple(kept))


@dataclass
class Review:
    """What to do around one scan: the policy, and the baseline to compare with or to write."""

    policy: Policy | None = None
    baseline: Any = None  # a loaded baseline.Baseline to compare with
    write_baseline: str | None = None

    def finish(self, run: ScanRun, root: str | None = None) -> None:
        """Apply the policy's suppressions, then write and/or compare the baseline (paths relative to root)."""
        if self.policy is not None:
            apply_suppressions(run, self.policy)
        compare_with = self.baseline
        if self.write_baseline or compare_with is not None:
            from . import baseline as baselines  # only when asked: it costs start-up time
        if self.write_baseline:
            baselines.write_baseline(run, self.write_baseline, root)
            compare_with = baselines.load_baseline(self.write_baseline)
        if compare_with is not None:
            baselines.apply_baseline(run, compare_with, root)


def plan_review(targets: list[str], policy: Any = True, baseline: Any = None,
                write_baseline: Any = None) -> Review:
    """Resolve the policy file (True: look it up; a path: that file; None/False: none) and the baseline.

    An explicit baseline wins over the policy's; with write_baseline the scan is compared with the file
    just written. The baseline to compare with is read here, before anything is scanned.
    """
    if policy is True:
        found = find_policy(targets)
        loaded = load_policy(found) if found else None
    elif policy:
        loaded = load_policy(os.fspath(policy))
    else:
        loaded = None
    chosen = os.fspath(baseline) if baseline else (loaded.baseline if loaded else None)
    target = os.fspath(write_baseline) if write_baseline else None
    if baseline and target and os.path.abspath(chosen) != os.path.abspath(target):
        raise PolicyError("--baseline and --write-baseline name different files; give one of them")
    if target:
        return Review(loaded, None, target)
    if not chosen:
        return Review(loaded, None, None)
    from . import baseline as baselines

    return Review(loaded, baselines.load_baseline(chosen), None)
