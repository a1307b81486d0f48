"""Human-readable report: grouped by file, coloured by severity, with the why and a verdict."""

from __future__ import annotations

import click

from ..engine import ScanRun, is_security_finding
from ..model import FileResult, Issue, IssueSeverity
from .data import EXIT_FINDINGS, EXIT_INCOMPLETE, exit_code

_LIST_CLEAN_UP_TO = 50  # clean files are listed for small scans, summarised for big ones
_STYLE = {
    IssueSeverity.CRITICAL: ("CRITICAL", "red"),
    IssueSeverity.WARNING: ("WARNING", "yellow"),
    IssueSeverity.INFO: ("INFO", "blue"),
    IssueSeverity.DEBUG: ("DEBUG", "white"),
}


def render_text(run: ScanRun, *, color: bool, verbose: bool = False, quiet: bool = False) -> str:
    def style(text: str, **kw: object) -> str:
        return click.style(text, **kw) if color else text  # type: ignore[arg-type]

    lines: list[str] = [] if quiet else _policy_header(run)
    for file in run.files:
        shown = [i for i in file.issues if verbose or i.severity.rank >= IssueSeverity.INFO.rank]
        if quiet:
            shown = [i for i in shown if i.severity.rank >= IssueSeverity.WARNING.rank]
        known = sum(1 for i in shown if i.baseline == "unchanged")
        if not verbose:  # findings accepted by the baseline are counted in the summary, listed with -v
            shown = [i for i in shown if i.baseline != "unchanged"]
        if not shown and file.complete:
            if not quiet and (verbose or len(run.files) <= _LIST_CLEAN_UP_TO):
                verdict = f"✓ no new findings ({known} baselined)" if known else "✓ clean"
                lines.append(_file_header(file, style) + "  " + style(verdict, fg="green"))
            continue
        lines.append(_file_header(file, style))
        for issue in sorted(shown, key=lambda i: -i.severity.rank):
            lines.extend(_issue_lines(issue, file.path, style, verbose))
        if not file.complete and not quiet:
            lines.append("  " + style("not fully scanned", fg="magenta"))
    if verbose:
        lines.extend(f"{style('suppressed', dim=True)} {s.issue.message}  [{s.issue.rule_code}] {s.path}: {s.reason}"
                     for s in run.suppressed)
    lines.append(_summary(run))
    lines.append(_verdict(run, style))
    return "\n".join(lines) + "\n"


def _file_header(file: FileResult, style) -> str:  # noqa: ANN001
    tag = f" [{file.format}]" if file.format else ""
    return style(file.path, bold=True) + style(tag, dim=True)


def _issue_lines(issue: Issue, path: str, style, verbose: bool) -> list[str]:  # noqa: ANN001
    label, colour = _STYLE[issue.severity]
    where = issue.location or ""
    if where.startswith(path):
        where = where[len(path):].lstrip()
    head = f"  {style(f'{label:<8}', fg=colour, bold=True)} {issue.message}"
    if where:
        head += style(f"  {where}", dim=True)
    head += style(f"  [{issue.rule_code}]" + (" baselined" if issue.baseline == "unchanged" else ""), dim=True)
    lines = [head]
    call = issue.details.get("call_args")
    if call is not None:
        lines.append(style(f"           called with: {call}", dim=True))
    if issue.why and (verbose or issue.severity.rank >= IssueSeverity.WARNING.rank):
        lines.append(style(f"           why: {issue.why}", dim=True))
    if verbose and issue.details:
        detail = ", ".join(f"{k}={v}" for k, v in issue.details.items())
        lines.append(style(f"           {detail[:400]}", dim=True))
    return lines


def _summary(run: ScanRun) -> str:
    counts = {s: 0 for s in IssueSeverity}
    for file in run.files:
        for issue in file.issues:
            counts[issue.severity] += issue.baseline != "unchanged"
    incomplete = sum(1 for f in run.files if not f.complete)
    scanned = sum(f.bytes_scanned for f in run.files)
    parts = [f"{len(run.files)} file(s)", f"{_human(scanned)} scanned", f"{run.duration:.2f}s",
             f"{counts[IssueSeverity.CRITICAL]} critical", f"{counts[IssueSeverity.WARNING]} warning(s)",
             f"{counts[IssueSeverity.INFO]} info"]
    if incomplete:
        parts.append(f"{incomplete} incomplete")
    parts.extend(_policy_counts(run))
    return "Summary: " + " · ".join(parts)


def _policy_header(run: ScanRun) -> list[str]:
    lines = []
    if run.config_file:
        lines.append(f"Policy: {run.config_file}")
    if run.baseline is not None:
        lines.append(f"Baseline: {run.baseline.file}")
    return lines


def _policy_counts(run: ScanRun) -> list[str]:
    parts = []
    if run.baseline is not None:
        parts.append(f"{run.baseline.new} new, {run.baseline.unchanged} baselined, {len(run.baseline.absent)} no longer found")
    if run.suppressed:
        parts.append(f"{len(run.suppressed)} suppressed by policy")
    if run.excluded:
        parts.append(f"{len(run.excluded)} excluded by policy")
    return parts


def _verdict(run: ScanRun, style) -> str:  # noqa: ANN001
    code = exit_code(run)
    if code == EXIT_FINDINGS:
        worst = max((i.severity for f in run.files for i in f.issues if is_security_finding(i)),
                    key=lambda s: s.rank)
        if worst is IssueSeverity.CRITICAL:
            return style("✗ Security issues found: do not load these models until they are reviewed", fg="red", bold=True)
        return style("⚠ Warnings found: review them before loading these models", fg="yellow", bold=True)
    if code == EXIT_INCOMPLETE:
        return style("! Scan incomplete: some files could not be fully scanned (see above)", fg="magenta", bold=True)
    return style("✓ No security issues found", fg="green", bold=True)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"
