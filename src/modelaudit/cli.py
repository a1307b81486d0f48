"""Command line: a thin click layer over the engine.

`modelaudit PATHS…` is the same as `modelaudit scan PATHS…`. Heavy modules are imported
inside the commands so that `modelaudit --version` starts fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from click.core import ParameterSource

from . import __version__

class DefaultGroup(click.Group):
    """A group that runs `scan` when the first argument is not a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["scan", *args]
        return super().parse_args(ctx, args)


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def _size(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    from .config import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="modelaudit", message="%(prog)s, version %(version)s")
def main() -> None:
    """Static security scanner for machine-learning model files."""


@main.command()
@click.argument("paths", nargs=-1)
@click.option("-f", "--format", "output_format", type=click.Choice(["text", "json", "sarif"]), default="text",
              show_default=True, help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report to a file.")
@click.option("-b", "--blacklist", multiple=True, help="Report model names or paths matching this pattern.")
@click.option("--max-file-size", callback=_size, help="Skip files larger than this (bytes or 500MB, 2GB…).")
@click.option("--max-total-size", callback=_size, help="Stop after scanning this many bytes in total.")
@click.option("--max-size", callback=_size, help="Alias of --max-file-size accepting units (10GB, 500MB).")
@click.option("-t", "--timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
              help="Seconds allowed per file.")
@click.option("-j", "--jobs", type=click.IntRange(min=1),
              help="Files scanned in parallel, each in its own worker process.  [default: number of CPUs]")
@click.option("--max-decompressed", callback=_size,
              help="Bytes that everything inside one file may inflate to (archives, compressed streams).")
@click.option("--max-memory", callback=_size,
              help="Memory cap of each worker process (bytes or 2GB, 512MiB…; 0: none).  [default: 4GiB]")
@click.option("--isolation/--no-isolation", default=True, show_default=True,
              help="Scan each file in a worker process that is killed past the timeout or memory cap; "
                   "--no-isolation scans in this process, one file at a time (for debugging).")
@click.option("-v", "--verbose", is_flag=True, help="Show details, info findings and debug logs (stderr).")
@click.option("-q", "--quiet", is_flag=True, help="Only findings and the verdict.")
@click.option("--strict", is_flag=True, help="Also report files of unknown format found in directories.")
@click.option("--progress/--no-progress", default=None, help="Show progress on stderr (default: on a terminal).")
@click.option("--dry-run", "--preview", "dry_run", is_flag=True, help="List what would be scanned, scan nothing.")
@click.option("--cache/--no-cache", default=True, help="Use the download cache for remote models.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Directory of the download cache.")
@click.option("--stream", is_flag=True, help="Download, scan and delete remote files one at a time.")
@click.option("--scanners", "--include-scanner", "scanners", multiple=True,
              help="Only run these scanners (repeatable, comma-separated).")
@click.option("--exclude-scanner", multiple=True, help="Do not run these scanners (repeatable, comma-separated).")
@click.option("--list-scanners", is_flag=True, help="List the available scanners and exit.")
@click.option("-s", "--suppress", multiple=True, help="Drop findings with this rule code (repeatable).")
@click.option("-S", "--severity", "severity_overrides", multiple=True,
              help="Override a rule's severity: CODE=critical|warning|info|debug (repeatable).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Policy file ([tool.modelaudit] in pyproject.toml, or .modelaudit.toml).  [default: the "
                   "nearest one above the targets, else above the working directory]")
@click.option("--no-config", is_flag=True, help="Read no policy file.")
@click.option("--baseline", type=click.Path(dir_okay=False),
              help="Accept the findings recorded in this baseline file: only new findings fail the scan.")
@click.option("--write-baseline", type=click.Path(dir_okay=False),
              help="Record the current findings in this baseline file (then compare with it).")
@click.option("--sbom", type=click.Path(dir_okay=False),
              help="Also write a CycloneDX 1.6 SBOM (JSON) to this file; needs modelaudit[sbom].")
@click.option("--profile", help="Scan profile name (accepted for compatibility).")
@click.option("--registry-uri", help="MLflow registry URI for models:/ targets.")
@click.option("--jfrog-api-token", help="JFrog Artifactory API token.")
@click.option("--jfrog-access-token", help="JFrog Artifactory access token.")
@click.option("--max-download-size", callback=_size, hidden=True)
@click.option("--all-files", "--no-skip-files", "all_files", is_flag=True, hidden=True)
@click.option("--selective", "--skip-files", "selective", is_flag=True, hidden=True)
@click.option("--strict-license", is_flag=True, hidden=True)
@click.option("--no-large-model-support", is_flag=True, hidden=True)
@click.option("--progress-log", hidden=True)
@click.option("--progress-format", hidden=True)
@click.option("--progress-interval", hidden=True)
def scan(paths: tuple[str, ...], output_format: str, output: str | None, **opts: Any) -> None:
    """Scan model files and directories for dangerous content.

    Exit codes: 0 no findings, 1 warning or critical findings, 2 scan errors or incomplete coverage.
    """
    _setup_logging(opts["verbose"])
    if opts["list_scanners"]:
        from .listing import render_scanners

        click.echo(render_scanners(output_format == "json"), nl=False)
        return
    if not paths:
        raise click.UsageError("give at least one file or directory to scan")
    if opts["sbom"]:
        _sbom_ready()
    review = _plan_review(list(paths), opts)
    config = _build_config(opts, review.policy)
    if opts["sbom"]:  # the SBOM needs hashes, members and licences recorded while files are read
        from dataclasses import replace

        config = replace(config, inventory=True)
    if opts["dry_run"]:
        from .sources import is_remote

        if any(is_remote(p) for p in paths):
            from .sources import render_dry_run as render_remote

            _emit(render_remote(list(paths), config, output_format == "json", opts["cache_dir"]), output)
            return
        from .listing import render_dry_run

        _emit(render_dry_run(list(paths), config, output_format == "json"), output)
        return
    _run_scan(list(paths), config, output_format, output, opts, review)


def _plan_review(paths: list[str], opts: dict[str, Any]):  # noqa: ANN202 - policy.Review, imported lazily
    """The policy file and baseline for this scan (see policy.py for the lookup order)."""
    from .errors import ConfigError
    from .policy import plan_review

    if opts["no_config"] and opts["config_file"]:
        raise click.UsageError("--config and --no-config exclude each other")
    try:
        return plan_review(paths, False if opts["no_config"] else (opts["config_file"] or True),
                           opts["baseline"], opts["write_baseline"])
    except ConfigError as exc:
        _fail(str(exc))


def _build_config(opts: dict[str, Any], policy=None):  # noqa: ANN001, ANN202 - ScanConfig, imported lazily
    from .config import config_from_kwargs, default_jobs
    from .policy import merge_options

    overrides = []
    for item in opts["severity_overrides"]:
        code, sep, level = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not CODE=LEVEL", param_hint="--severity")
        overrides.append((code.strip(), level.strip()))
    if not opts["isolation"] and (opts["jobs"] or 1) > 1:
        raise click.UsageError("--jobs needs worker processes; it cannot be combined with --no-isolation")
    jobs = opts["jobs"] or (default_jobs() if opts["isolation"] else 1)
    # flags left at their defaults are None, so the policy file's values apply (policy.merge_options)
    timeout_given = click.get_current_context().get_parameter_source("timeout") is not ParameterSource.DEFAULT
    try:
        config = config_from_kwargs(**merge_options(policy, dict(
            blacklist_patterns=opts["blacklist"],
            max_file_size=opts["max_size"] if opts["max_size"] is not None else opts["max_file_size"],
            max_total_size=opts["max_total_size"], timeout=opts["timeout"] if timeout_given else None,
            strict=opts["strict"] or None,
            scanners=_split(opts["scanners"]), exclude_scanners=_split(opts["exclude_scanner"]),
            suppress=_split(opts["suppress"]), severity_overrides=overrides, cache=opts["cache"],
            stream=opts["stream"], isolation=opts["isolation"], jobs=jobs, max_memory=opts["max_memory"],
            max_decompressed=opts["max_decompressed"], jfrog_api_token=opts["jfrog_api_token"],
            jfrog_access_token=opts["jfrog_access_token"], registry_uri=opts["registry_uri"])))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _check_codes(config)
    return config


def _check_codes(config) -> None:  # noqa: ANN001
    from .rules import RULES
    from .scanners import SCANNER_REGISTRY

    unknown = [c for c in (*config.suppress, *(c for c, _ in config.severity_overrides)) if c not in RULES]
    if unknown:
        raise click.UsageError(f"unknown rule code(s): {', '.join(unknown)} (see `modelaudit rules`)")
    names = {cls.name for cls in SCANNER_REGISTRY}
    missing = [n for n in (*config.scanners, *config.exclude_scanners) if n not in names]
    if missing:
        raise click.UsageError(f"unknown scanner(s): {', '.join(missing)} (see --list-scanners)")


def _run_scan(paths: list[str], config, output_format: str, output: str | None, opts: dict[str, Any],  # noqa: ANN001
              review=None) -> None:  # noqa: ANN001
    from .engine import scan_paths
    from .report.data import exit_code

    show_progress = opts["progress"]
    if show_progress is None:
        show_progress = sys.stderr.isatty() and not opts["quiet"] and not os.environ.get("CI")
    run = scan_paths(paths, config, progress=_progress_printer() if show_progress else None,
                     cache_dir=opts["cache_dir"], download_progress=bool(show_progress) and not opts["quiet"])
    if review is not None:
        _finish_review(review, run, opts["quiet"])
    if output_format == "json":
        from .report.json import render_json

        text = render_json(run)
    elif output_format == "sarif":
        from .report.json import dumps
        from .report.sarif import render_sarif

        text = dumps(render_sarif(run), indent=2)
    else:
        from .report.text import render_text

        text = render_text(run, color=_use_color(output), verbose=opts["verbose"], quiet=opts["quiet"])
    _emit(text, output)
    if output and not opts["quiet"]:
        from .report.text import render_text

        click.echo(render_text(run, color=_use_color(None, sys.stderr), quiet=True), err=True, nl=False)
    if opts["sbom"]:
        _write_sbom(run, opts["sbom"], opts["quiet"])
    sys.exit(exit_code(run))


def _sbom_ready() -> None:
    from .report.sbom import SbomError, require_cyclonedx

    try:
        require_cyclonedx()
    except SbomError as exc:
        _fail(str(exc))


def _write_sbom(run, path: str, quiet: bool) -> None:  # noqa: ANN001
    from .report.sbom import SbomError, write_sbom

    try:
        write_sbom(run, path)
    except SbomError as exc:
        _fail(str(exc))
    if not quiet:
        click.echo(f"SBOM written: {path} (CycloneDX 1.6)", err=True)


def _finish_review(review, run, quiet: bool) -> None:  # noqa: ANN001
    """Policy suppressions, then the baseline: write it and/or compare with it."""
    from .errors import ConfigError

    try:
        review.finish(run)
    except ConfigError as exc:
        _fail(str(exc))
    if review.write_baseline and not quiet:
        known = run.baseline.new + run.baseline.unchanged
        click.echo(f"Baseline written: {review.write_baseline} ({known} finding(s))", err=True)


def _emit(text: str, output: str | None) -> None:
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        click.echo(text, nl=False)


def _progress_printer():  # noqa: ANN202
    def show(done: int, total: int | None, path: str) -> None:
        if path:
            click.echo(f"\r[{done + 1}/{total or '?'}] {path[-70:]:<70}", err=True, nl=False)
        else:
            click.echo("\r" + " " * 80 + "\r", err=True, nl=False)

    return show


def _use_color(output: str | None, stream: Any = None) -> bool:
    if output or os.environ.get("NO_COLOR"):
        return False
    return bool(os.environ.get("FORCE_COLOR")) or (stream or sys.stdout).isatty()


def _setup_logging(verbose: bool) -> None:
    import logging

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


@main.command()
@click.argument("code", required=False)
@click.option("-f", "--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def rules(code: str | None, output_format: str) -> None:
    """List the rule catalog, or explain one rule code."""
    from .listing import render_rules

    try:
        click.echo(render_rules(code, output_format == "json"), nl=False)
    except KeyError as exc:
        _fail(str(exc.args[0]))


if __name__ == "__main__":  # pragma: no cover
    main()
