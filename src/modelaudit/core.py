"""The documented Python entry point: scan_model_directory_or_file."""

from __future__ import annotations

import os
from typing import Any

from .config import config_from_kwargs
from .engine import scan_paths
from .report.data import report_dict


def scan_model_directory_or_file(path: str | os.PathLike[str], **config: Any) -> dict[str, Any]:
    """Scan a file or directory and return the result dictionary (same shape as --format json).

    Keyword arguments: blacklist_patterns, max_file_size, max_total_size, max_size, timeout,
    strict, scanners, exclude_scanners, suppress, severity_overrides, exclude_paths, and isolation, jobs,
    max_memory. Files are scanned in this process unless `isolation=True` or `jobs` > 1 asks for worker
    processes (killed past the timeout or memory cap; see modelaudit.isolation), as the command line does.
    Remote targets (hf://, s3://, gs://, r2://, Artifactory and https:// URLs) also take `cache`, `stream`
    and `jfrog_api_token` / `jfrog_access_token`, as the flags of the same names do.

    A policy file is read only when asked: `policy=True` looks it up as the command line does (from the
    target upwards, then from the working directory), `policy="path/.modelaudit.toml"` reads that file;
    keywords win over the file. `baseline="baseline.json"` marks findings "new" or "unchanged" and
    `write_baseline="baseline.json"` records them (paths relative to the working directory). An invalid
    policy or baseline raises modelaudit.errors.ConfigError.
    """
    return _scan([os.fspath(path)], config)


def scan_files(paths: list[str], **config: Any) -> dict[str, Any]:
    """Like scan_model_directory_or_file, for several paths at once."""
    return _scan([os.fspath(p) for p in paths], config)


def _scan(paths: list[str], config: dict[str, Any]) -> dict[str, Any]:
    from .policy import merge_options, plan_review

    review = plan_review(paths, config.pop("policy", None), config.pop("baseline", None),
                         config.pop("write_baseline", None))
    run = scan_paths(paths, config_from_kwargs(**merge_options(review.policy, config)))
    review.finish(run)
    return report_dict(run)
