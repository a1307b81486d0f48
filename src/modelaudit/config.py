"""Scan configuration: validated once where user input enters, then frozen."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Any

from .model import IssueSeverity

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}
_IUNITS = {"ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4, "pi": 1024**5}


def parse_size(text: str | int) -> int:
    """'10GB' -> 10_000_000_000, '500MiB' -> 524_288_000, '123' -> 123."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError("size must not be negative")
        return text
    match = _SIZE_RE.match(str(text))
    if not match:
        raise ValueError(f"invalid size {text!r} (examples: 1073741824, 500MB, 10GB, 2GiB)")
    number, unit = match.group(1), (match.group(2) or "").lower()
    if unit.endswith("b") and len(unit) > 1:
        unit = unit[:-1]
    factor = _IUNITS.get(unit) or _UNITS.get(unit)
    if factor is None:
        raise ValueError(f"invalid size unit in {text!r}")
    return int(float(number) * factor)


DEFAULT_MAX_MEMORY = 4 * 1024**3


def default_jobs() -> int:
    """The number of CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Limits:
    """Budgets that bound every parser. 0 means unlimited for the user-facing sizes."""

    max_file_size: int = 0
    max_total_size: int = 0
    timeout: float = 300.0
    max_depth: int = 8  # nesting of containers (zip in zip, pickle in pickle …)
    max_decompressed: int = 8 * 1024**3  # bytes all decompression inside one top-level file may produce
    max_pickle_stack: int = 5_000_000
    max_pickle_memo: int = 5_000_000
    max_nested_pickle_depth: int = 4
    max_members: int = 100_000
    #: memory each worker process may allocate beyond what it held at start (RLIMIT_DATA, with RLIMIT_AS as
    #: a backstop; files mapped for reading do not count); 0: no cap. Only for scans in worker processes.
    max_memory: int = DEFAULT_MAX_MEMORY

    def __post_init__(self) -> None:
        for name in ("max_file_size", "max_total_size", "max_depth", "max_decompressed", "max_members",
                     "max_memory"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


@dataclass(frozen=True)
class ScanConfig:
    limits: Limits = field(default_factory=Limits)
    blacklist_patterns: tuple[str, ...] = ()
    strict: bool = False
    scanners: tuple[str, ...] = ()  # empty: all
    exclude_scanners: tuple[str, ...] = ()
    suppress: frozenset[str] = frozenset()
    severity_overrides: tuple[tuple[str, IssueSeverity], ...] = ()
    cache: bool = True
    stream: bool = False
    #: scan each file in a worker process (memory cap, deadline enforced by killing the worker)
    isolation: bool = False
    #: number of worker processes; more than 1 implies isolation
    jobs: int = 1
    #: record SHA-256, archive members and stated licences of every file (for --sbom; see inventory.py)
    inventory: bool = False
    #: JFrog Artifactory credentials given on the command line (else JFROG_* from the environment or .env)
    jfrog_api_token: str | None = field(default=None, repr=False)
    jfrog_access_token: str | None = field(default=None, repr=False)
    #: MLflow registry for models:/ targets given on the command line (else MLFLOW_REGISTRY_URI / MLFLOW_TRACKING_URI)
    registry_uri: str | None = None
    #: absolute fnmatch patterns (policy.expand_pattern) of files not to scan at all
    exclude_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ValueError("jobs must be at least 1")

    @property
    def uses_workers(self) -> bool:
        return self.isolation or self.jobs > 1

    def with_limits(self, **changes: Any) -> ScanConfig:
        return replace(self, limits=replace(self.limits, **changes))


_LIMIT_KEYS = {f for f in Limits.__dataclass_fields__}


def config_from_kwargs(**kwargs: Any) -> ScanConfig:
    """Build a ScanConfig from the keyword arguments of the documented Python API."""
    limit_args: dict[str, Any] = {}
    args: dict[str, Any] = {}
    for key, value in kwargs.items():
        if value is None:
            continue
        if key == "max_size":
            key, value = "max_file_size", parse_size(value)
        if key in _LIMIT_KEYS:
            if key in ("max_file_size", "max_total_size", "max_decompressed", "max_memory"):
                value = parse_size(value)
            limit_args[key] = value
        elif key == "blacklist_patterns":
            args[key] = tuple(value)
        elif key in ("scanners", "exclude_scanners"):
            args[key] = tuple(value)
        elif key == "suppress":
            args[key] = frozenset(value)
        elif key == "severity_overrides":
            items = value.items() if isinstance(value, dict) else value
            args[key] = tuple((code, IssueSeverity.parse(level)) for code, level in items)
        elif key in ("strict", "cache", "stream", "isolation", "inventory"):
            args[key] = bool(value)
        elif key == "jobs":
            args[key] = int(value)
        elif key == "registry_uri":
            args[key] = str(value).strip() or None
        elif key in ("jfrog_api_token", "jfrog_access_token"):
            args[key] = str(value).strip() or None
        elif key == "exclude_paths":
            from .policy import expand_pattern

            patterns = [value] if isinstance(value, str) else value
            args[key] = tuple(p for pat in patterns for p in expand_pattern(pat, os.getcwd()))
        else:
            raise TypeError(f"unknown scan option {key!r}")
    return ScanConfig(limits=Limits(**limit_args), **args)
