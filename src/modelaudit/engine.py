"""The scan loop: for each file, budgets, format detection, scanners, nesting.

This is the only module that catches broad exceptions: whatever a scanner raises on
hostile input becomes a finding and an incomplete result, never a crash.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .blob import Blob
from .config import ScanConfig
from .context import ScanContext
from .errors import BudgetExceeded, MissingDependency, ScanTimeout
from .model import Asset, Check, FileResult, Issue, IssueSeverity
from .rules import RULES
from .scanners import SCANNER_REGISTRY, load_entry_point_scanners
from .scanners.base import BaseScanner, ScanResult
from .walk import Entry

if TYPE_CHECKING:
    from .inventory import Inventory  # imported when --sbom asks for it (hashing, provenance)

log = logging.getLogger("modelaudit")

ProgressHook = Callable[[int, int | None, str], None]

# Zip-based formats: their scanners read the archive already, no hidden-zip check needed.
_ZIP_FORMATS = frozenset({"zip", "pytorch_zip", "npz", "keras_zip", "torchserve", "torchscript"})
# Formats that need no scanner to be reported clean.
_NOT_SCANNED_QUIETLY = frozenset({"text", "json", "yaml", "xml", "script", "empty", "python", "hf_config",
                                  "chat_template"})


@dataclass
class ScanRun:
    config: ScanConfig
    files: list[FileResult] = field(default_factory=list)
    start_time: float = field(default_factory=time.time)
    duration: float = 0.0
    total_bytes: int = 0
    notes: list[str] = field(default_factory=list)
    # set by the policy file and the baseline (see policy.py, baseline.py), read by the reporters
    excluded: list[str] = field(default_factory=list)  # files skipped by exclude patterns
    config_file: str | None = None
    suppressed: list[Any] = field(default_factory=list)  # policy.Suppressed: accepted findings, with a reason
    baseline: Any = None  # baseline.Comparison


@dataclass(frozen=True)
class Task:
    """One top-level file to scan, with the parent's budget decisions made before dispatch."""

    path: str
    explicit: bool = True
    size: int | None = None
    #: the total the scan would reach with this file when that passes max_total_size (file not scanned)
    over_total: int | None = None


Planned = FileResult | Task  # a result known without reading the file (bad path), or a file to scan


def scan_paths(paths: list[str], config: ScanConfig, progress: ProgressHook | None = None,
               cache_dir: str | None = None, download_progress: bool = False) -> ScanRun:
    """Scan files and directories; results come back in the order of the inputs.

    With `config.uses_workers` each file is read in a worker process (see isolation.py): a parser that
    hangs in native code or exhausts memory costs that file, not the scan. Otherwise files are scanned
    in this process, where only the cooperative deadline (ScanContext.check_deadline) applies.
    `download_progress` draws download bars on stderr when it is a terminal (sources/progress.py).
    """
    run = ScanRun(config)
    started = time.monotonic()
    run.notes.extend(load_entry_point_scanners())
    from .sources import open_targets
    from .sources.progress import terminal_bars

    # remote targets are downloaded (or taken from the cache) first, or with --stream one file per batch;
    # results name them by their URIs
    done = 0
    with open_targets(paths, config, cache_dir, terminal_bars(download_progress)) as targets:
        for entries in targets.batches():
            planned = plan(entries, config, run)
            hook = progress
            if progress:  # downloads are shown by their URIs; while streaming the total is not known
                hook = lambda i, total, path, base=done: progress(  # noqa: E731
                    base + i, None if targets.streamed else total, targets.display(path))
            run.files.extend(_scan_planned(planned, config, hook, run))
            done += len(planned)
        run.files = targets.relocate(run.files)
    if progress:
        progress(done, done, "")
    run.duration = time.monotonic() - started
    return run


def _scan_planned(planned: list[Planned], config: ScanConfig, progress: ProgressHook | None,
                  run: ScanRun) -> list[FileResult]:
    if config.uses_workers:
        from .isolation import scan_isolated

        return scan_isolated(planned, config, progress, run.notes)
    out = []
    for index, item in enumerate(planned):
        if progress:
            progress(index, len(planned), item.path)
        out.append(item if isinstance(item, FileResult) else scan_task(item, config))
    return out


def plan(entries: list[Entry], config: ScanConfig, run: ScanRun) -> list[Planned]:
    """Turn walked entries into tasks, charging the total size budget in input order."""
    out: list[Planned] = []
    for entry in entries:
        if config.exclude_paths and _excluded(entry.path, config):
            run.excluded.append(entry.path)
            continue
        if entry.problem:
            out.append(_problem_result(entry.path, entry.rule_code or "MA-S010", entry.problem))
            continue
        size = _size(entry.path)
        out.append(Task(entry.path, entry.explicit, size, _charge_total(size, config, run)))
    return out


def _excluded(path: str, config: ScanConfig) -> bool:
    from .policy import path_matches

    return path_matches(path, config.exclude_paths)


def _charge_total(size: int | None, config: ScanConfig, run: ScanRun) -> int | None:
    """Count a file against max_total_size; returns the would-be total when it does not fit."""
    limits = config.limits
    if size is None or (limits.max_file_size and size > limits.max_file_size):
        return None  # unreadable or too large: reported by the scan, never counted
    if limits.max_total_size and run.total_bytes + size > limits.max_total_size:
        return run.total_bytes + size
    run.total_bytes += size
    return None


def scan_file(path: str, config: ScanConfig, run: ScanRun | None = None, explicit: bool = True) -> FileResult:
    """Scan one file in this process; with `run`, its size is charged to the run's total budget."""
    size = _size(path)
    over_total = _charge_total(size, config, run) if run is not None else None
    return scan_task(Task(path, explicit, size, over_total), config)


def scan_task(task: Task, config: ScanConfig) -> FileResult:
    """Scan one planned file in this process (the body of a worker, too)."""
    path = task.path
    started = time.monotonic()
    result = ScanResult("engine")
    scanners_used: list[str] = []
    fmt = "unknown"
    inventory = None
    if config.inventory:
        from .inventory import Inventory

        inventory = Inventory(path)
    size = None
    try:
        blob = Blob.from_path(path)
        size = blob.size
        fmt = _scan_top(blob, result, config, task.over_total, task.explicit, scanners_used, inventory)
    except OSError as exc:
        result.report("MA-S010", f"Cannot read file: {exc.strerror or exc}", path, {"error": str(exc)})
        result.mark_incomplete()
    issues = _apply_policy(result.issues, config)
    asset = Asset(path, fmt, size if size is not None else _size(path))
    return FileResult(path=path, format=fmt, scanners=tuple(scanners_used), issues=tuple(issues),
                      checks=tuple(result.checks), bytes_scanned=result.bytes_scanned,
                      complete=result.complete, assets=(inventory.asset(asset) if inventory else asset,),
                      duration=time.monotonic() - started)


def _scan_top(blob: Blob, result: ScanResult, config: ScanConfig, over_total: int | None, explicit: bool,
              scanners_used: list[str], inventory: Inventory | None = None) -> str:
    limits = config.limits
    _check_blacklist(blob.location, config, result)
    if limits.max_file_size and blob.size > limits.max_file_size:
        result.report("MA-S001", f"File too large to scan: {blob.size} bytes (max: {limits.max_file_size})",
                      blob.location, {"size": blob.size, "max_file_size": limits.max_file_size})
        result.mark_incomplete()
        return blob.detection.format
    if over_total is not None:
        result.report("MA-S002", f"Total scan size limit reached: {over_total} bytes "
                      f"(max: {limits.max_total_size})", blob.location, {"max_total_size": limits.max_total_size})
        result.mark_incomplete()
        return "unknown"
    ctx = ScanContext.standalone(config)
    ctx.inventory = inventory
    ctx.nested = lambda child, res, c: _scan_blob(child, res, c, scanners_used, explicit=False)
    return _scan_blob(blob, result, ctx, scanners_used, explicit=explicit, path=blob.path)


def scan_nested_blob(blob: Blob, result: ScanResult, ctx: ScanContext) -> None:
    _scan_blob(blob, result, ctx, [], explicit=False)


def _scan_blob(blob: Blob, result: ScanResult, ctx: ScanContext, scanners_used: list[str], *, explicit: bool,
               path: str | None = None) -> str:
    if blob.depth > ctx.limits.max_depth:
        result.report("MA-S012", f"Nesting deeper than {ctx.limits.max_depth} levels; not scanned", blob.location)
        result.mark_incomplete()
        return "unknown"
    detection = blob.detection
    fmt = detection.format
    ctx.record(blob, fmt)
    if detection.mismatch:
        result.report("MA-S007", f"File type validation failed: extension indicates {detection.expected} but "
                      f"magic bytes indicate {fmt}. This could indicate file spoofing, corruption, or a security "
                      "threat.", blob.location, {"extension": detection.extension, "expected": detection.expected,
                                                 "detected": fmt})
    elif detection.extension == ".bin" and fmt not in ("unknown", "empty"):
        result.report("MA-S008", f"Detected {fmt} format in .bin file", blob.location, {"format": fmt})
    scanners = _select(fmt, path, ctx.config) if path is not None else _member_scanners(fmt, ctx)
    if not scanners:
        if fmt not in _NOT_SCANNED_QUIETLY and (explicit or ctx.config.strict or fmt != "unknown"):
            what = "Unknown or unhandled format" if fmt == "unknown" else f"Unknown or unhandled format: {fmt}"
            result.report("MA-S004", f"{what} (no installed scanner reads it)", blob.location, {"format": fmt})
            result.mark_incomplete()
        return fmt
    for scanner_cls in scanners:
        if scanner_cls.name not in scanners_used:
            scanners_used.append(scanner_cls.name)
        _run_scanner(scanner_cls, blob, result, ctx)
    if fmt not in _ZIP_FORMATS:
        _scan_hidden_zip(blob, fmt, result, ctx, scanners_used)
    return fmt


def _scan_hidden_zip(blob: Blob, fmt: str, result: ScanResult, ctx: ScanContext, scanners_used: list[str]) -> None:
    """A zip behind other data is read by zipfile-based loaders: report it and scan it too.
    TFLite files carry such a zip of associated files by design: it is scanned, not reported."""
    from .scanners._zip import zip_fills_tar_member, zip_prefix_length

    prefix = zip_prefix_length(blob)
    if prefix is None or (fmt == "tar" and zip_fills_tar_member(blob, prefix)):
        return
    if fmt != "tflite":
        result.report("MA-A004", f"A zip archive follows {prefix} bytes of other data: loaders that read from the start "
                      "and loaders that find the zip from its end see different content; both were scanned",
                      blob.location, {"prefix_bytes": prefix})
    for scanner_cls in _member_scanners("zip", ctx):
        if scanner_cls.name not in scanners_used:
            scanners_used.append(scanner_cls.name)
        _run_scanner(scanner_cls, blob, result, ctx)


def _select(fmt: str, path: str | None, config: ScanConfig) -> list[type[BaseScanner]]:
    chosen = []
    for cls in SCANNER_REGISTRY:
        if cls.formats:
            if fmt not in cls.formats or not cls.is_builtin_style():
                continue  # the test that rules out most classes, so it comes first
        elif path is None:
            continue  # a plugin that matches by path has no path to look at
        if (config.scanners and cls.name not in config.scanners) or cls.name in config.exclude_scanners:
            continue
        if cls.formats or _plugin_handles(cls, path):
            chosen.append(cls)
    return chosen


def _member_scanners(fmt: str, ctx: ScanContext) -> list[type[BaseScanner]]:
    """_select without path plugins (members, streams, a zip behind a file), chosen once per top-level file."""
    chosen = ctx.member_scanners.get(fmt)
    if chosen is None:
        chosen = ctx.member_scanners[fmt] = _select(fmt, None, ctx.config)
    return chosen


def _plugin_handles(cls: type[BaseScanner], path: str) -> bool:
    try:
        return bool(cls.can_handle(path))
    except Exception:  # noqa: BLE001 - a plugin's can_handle must not break the scan
        log.debug("can_handle of %s failed", cls.name, exc_info=True)
        return False


def _run_scanner(cls: type[BaseScanner], blob: Blob, result: ScanResult, ctx: ScanContext) -> None:
    scanner = cls()
    try:
        if cls.is_builtin_style():
            sub = scanner._create_result()
            try:
                scanner.check(blob, sub, ctx)
            finally:
                result.merge(sub)
        else:
            assert blob.path is not None
            sub = scanner.scan(blob.path)
            if not isinstance(sub, ScanResult):
                raise TypeError(f"scanner {cls.name} returned {type(sub).__name__}, not ScanResult")
            result.merge(sub)
    except ScanTimeout as exc:
        result.report("MA-S003", str(exc), blob.location, {"timeout": exc.seconds, "scanner": cls.name})
        result.mark_incomplete()
    except BudgetExceeded as exc:
        result.report(exc.rule_code, str(exc), blob.location, {"scanner": cls.name})
        result.mark_incomplete()
    except MissingDependency as exc:
        result.report("MA-S006", str(exc), blob.location, {"package": exc.package, "extra": exc.extra})
        result.mark_incomplete()
    except MemoryError:
        result.report("MA-S015", f"Scanner {cls.name} ran out of memory reading this file", blob.location,
                      {"scanner": cls.name})
        result.mark_incomplete()
    except RecursionError:
        result.report("MA-S005", f"Error scanning file with {cls.name}: nesting exhausted the parser",
                      blob.location, {"scanner": cls.name})
        result.mark_incomplete()
    except Exception as exc:  # noqa: BLE001 - hostile input must never crash the run
        log.debug("scanner %s failed on %s", cls.name, blob.location, exc_info=True)
        result.report("MA-S005", f"Error scanning file with {cls.name}: {type(exc).__name__}: {exc}",
                      blob.location, {"scanner": cls.name, "exception": type(exc).__name__})
        result.mark_incomplete()
        result.success = False


def _check_blacklist(location: str, config: ScanConfig, result: ScanResult) -> None:
    lowered = location.lower()
    for pattern in config.blacklist_patterns:
        p = pattern.lower()
        hit = fnmatch.fnmatch(lowered, p) or fnmatch.fnmatch(os.path.basename(lowered), p) if any(
            c in p for c in "*?[") else p in lowered
        if hit:
            result.report("MA-S009", f"Model name matches blacklist pattern '{pattern}'", location,
                          {"pattern": pattern})


def _apply_policy(issues: list[Issue], config: ScanConfig) -> list[Issue]:
    overrides = dict(config.severity_overrides)
    out = []
    for issue in issues:
        if issue.rule_code in config.suppress:
            continue
        if issue.rule_code in overrides:
            issue = Issue(issue.message, overrides[issue.rule_code], issue.rule_code, issue.location,
                          issue.details, issue.why, issue.scanner, issue.timestamp)
        out.append(issue)
    return out


def _problem_result(path: str, code: str, message: str) -> FileResult:
    rule = RULES[code]
    text = message if path in message else f"{message}: {path}"
    issue = Issue(message=text, severity=rule.severity, rule_code=code, location=path,
                  why=rule.why, scanner="engine")
    check = Check("path readable", _status(False), message, path, code)
    return FileResult(path, "unknown", (), (issue,), (check,), 0, complete=False)


def unfinished_result(task: Task, config: ScanConfig, code: str, message: str, details: dict[str, Any],
                      duration: float = 0.0) -> FileResult:
    """A file whose scan never reported back (its worker was killed or died, or ran out of memory)."""
    result = ScanResult("engine")
    _check_blacklist(task.path, config, result)
    result.report(code, message, task.path, details)
    result.add_check("scan finished", False, message, task.path, code)
    return FileResult(task.path, "unknown", (), tuple(_apply_policy(result.issues, config)), tuple(result.checks),
                      0, complete=False, assets=(Asset(task.path, "unknown", task.size),), duration=duration)


def _status(passed: bool):  # noqa: ANN202
    from .model import CheckStatus

    return CheckStatus.PASSED if passed else CheckStatus.FAILED


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def is_security_finding(issue: Issue) -> bool:
    return (issue.severity.rank >= IssueSeverity.WARNING.rank and not RULES.get(issue.rule_code, _NOCOV).coverage
            and issue.baseline != "unchanged")


class _NoCoverage:
    coverage = False


_NOCOV = _NoCoverage()
