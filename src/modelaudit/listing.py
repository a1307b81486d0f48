"""Listings that involve no scanning: scanners, rules, and the dry-run plan."""

from __future__ import annotations

import importlib.util
import os

from .config import ScanConfig
from .report.json import dumps


def scanner_rows() -> list[dict]:
    from .scanners import SCANNER_REGISTRY, load_entry_point_scanners

    load_entry_point_scanners()
    rows = []
    for cls in SCANNER_REGISTRY:
        dep = cls.dependency
        rows.append({
            "name": cls.name,
            "description": cls.description,
            "formats": list(cls.formats),
            "extensions": list(cls.supported_extensions),
            "dependency": {"package": dep[0], "extra": dep[1]} if dep else None,
            "available": dep is None or importlib.util.find_spec(dep[0]) is not None,
        })
    return rows


def render_scanners(as_json: bool) -> str:
    rows = scanner_rows()
    if as_json:
        return dumps(rows, indent=2)
    lines = []
    for row in rows:
        dep = row["dependency"]
        needs = f"  needs: pip install 'modelaudit[{dep['extra']}]'" if dep and not row["available"] else ""
        lines.append(f"{row['name']:<12} {', '.join(row['extensions'])}{needs}")
        lines.append(f"{'':<12} {row['description']}")
    return "\n".join(lines) + "\n"


def render_rules(code: str | None, as_json: bool) -> str:
    from .rules import RULES, get_rule

    rules = [get_rule(code)] if code else list(RULES.values())
    rows = [{"code": r.code, "title": r.title, "severity": r.severity.value, "cwe": r.cwe, "why": r.why,
             "coverage": r.coverage} for r in rules]
    if as_json:
        return dumps(rows if not code else rows[0], indent=2)
    if code:
        r = rows[0]
        cwe = f" ({r['cwe']})" if r["cwe"] else ""
        return f"{r['code']}: {r['title']}{cwe}\ndefault severity: {r['severity']}\n\n{r['why']}\n"
    return "".join(f"{r['code']:<8} {r['severity']:<8} {r['title']}\n" for r in rows)


# A dry run scans nothing; these keys keep its JSON a valid, empty result for wrappers that validate
# them (promptfoo's scan-model requires issues, checks, has_errors and the check counts).
DRY_RUN_RESULT = {"issues": [], "checks": [], "has_errors": False, "total_checks": 0, "passed_checks": 0,
                  "failed_checks": 0, "files_scanned": 0, "bytes_scanned": 0}


def render_dry_run(paths: list[str], config: ScanConfig, as_json: bool) -> str:
    from .detect import detect_path
    from .engine import _select
    from .policy import path_matches
    from .walk import expand

    plan = []
    entries = list(expand(paths))
    dvc_rows = _dvc_rows(entries, config)  # a DVC pointer stands for the data it names
    for index, entry in enumerate(entries):
        if index in dvc_rows:
            plan.extend(r for r in dvc_rows[index]
                        if not (config.exclude_paths and path_matches(r["path"], config.exclude_paths)))
            continue
        if config.exclude_paths and path_matches(entry.path, config.exclude_paths):
            continue  # the policy excludes it: it would not be scanned
        item = {"path": entry.path, "size": None, "format": None, "scanners": [], "skipped": entry.problem}
        if not entry.problem:
            try:
                item["size"] = os.path.getsize(entry.path)
                fmt = detect_path(entry.path).format
                item["format"] = fmt
                item["scanners"] = [cls.name for cls in _select(fmt, entry.path, config)]
            except OSError as exc:
                item["skipped"] = str(exc)
        plan.append(item)
    _mark_tracked(plan, dvc_rows)
    fetched = [p for p in plan if p.get("download")]
    if as_json:
        extra = {"download_files": len(fetched), "download_bytes": sum(p["size"] or 0 for p in fetched)} \
            if fetched else {}
        return dumps({"dry_run": True, **DRY_RUN_RESULT, "files": plan, "files_total": len(plan),
                      "bytes_total": sum(p["size"] or 0 for p in plan), **extra})
    lines = [f"{p['path']}  {p['format'] or '-'}  {p['size'] if p['size'] is not None else '-'} bytes  "
             f"{p['skipped'] or ('download' if p.get('download') else ','.join(p['scanners']) or 'no scanner')}"
             f"{_dvc_note(p)}" for p in plan]
    fetch = f" {len(fetched)} would be downloaded from DVC remotes;" if fetched else ""
    lines.append(f"Dry run: {sum(1 for p in plan if not p['skipped'])} file(s) would be scanned;{fetch} nothing was "
                 "read past the format header.")
    return "\n".join(lines) + "\n"


def _dvc_rows(entries: list, config: ScanConfig) -> dict[int, list[dict]]:
    """Dry-run rows of the DVC pointers among the entries (named ones, and ones a directory walk met)."""
    candidates = [i for i, e in enumerate(entries) if not e.problem and os.path.isfile(e.path) and (
        (e.path.endswith(".dvc") and os.path.basename(e.path) != ".dvc")
        or (not e.explicit and os.path.basename(e.path) == "dvc.lock"))]  # lock files: walked ones only
    if not candidates:
        return {}
    from .sources.dvc_local import plan_pointer

    walked = {os.path.normpath(e.path) for e in entries}
    rows: dict[int, list[dict]] = {}
    for index in candidates:
        found = plan_pointer(entries[index].path, config, entries[index].explicit)
        if found is None:
            continue
        for row in found:  # a workspace file that the walk lists is listed once, marked as DVC-tracked
            if not entries[index].explicit and os.path.normpath(row["path"]) in walked:
                row["listed"] = True
        rows[index] = found
    return rows


def _mark_tracked(plan: list[dict], dvc_rows: dict[int, list[dict]]) -> None:
    tracked = {os.path.normpath(r["path"]): r["dvc"] for rows in dvc_rows.values() for r in rows
               if r.get("listed") and "dvc" in r}
    plan[:] = [p for p in plan if not p.pop("listed", None)]
    for p in plan:
        if os.path.normpath(p["path"]) in tracked and "dvc" not in p:
            p["dvc"] = tracked[os.path.normpath(p["path"])]


def _dvc_note(row: dict) -> str:
    info = row.get("dvc")
    if not info:
        return ""
    remote = f" {info['remote']!r}" if info["from"] == "remote" and info.get("remote") else ""
    return f"  (DVC {info['from']}{remote}, {info['pointer']})"
