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
    strict, scanners, exclude_scanners, suppress, severity_overrides, and isolation, jobs, max_memory.
    Files are scanned in this process unless `isolation=True` or `jobs` > 1 asks for worker processes
    (killed past the timeout or memory cap; see modelaudit.isolation), as the command line does.
    """
    scan_config = config_from_kwargs(**config)
    run = scan_paths([os.fspath(path)], scan_config)
    return report_dict(run)


def scan_files(paths: list[str], **config: Any) -> dict[str, Any]:
    """Like scan_model_directory_or_file, for several paths at once."""
    run = scan_paths([os.fspath(p) for p in paths], config_from_kwargs(**config))
    return report_dict(run)
