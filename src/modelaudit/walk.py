"""Expand the user's paths into files, never following links out of a scanned root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", "node_modules", ".mypy_cache",
                        ".pytest_cache", ".tox"})
_DVC_SKIP = frozenset({"cache", "tmp"})


@dataclass(frozen=True)
class Entry:
    path: str
    explicit: bool  # named by the user rather than found in a directory
    problem: str | None = None  # why it cannot be scanned (missing, link outside the root …)
    rule_code: str | None = None


def expand(paths: list[str]) -> Iterator[Entry]:
    from .sources import is_remote, unsupported_message

    for path in paths:
        if is_remote(path):
            yield Entry(path, True, unsupported_message(path), "MA-S010")
        elif os.path.isdir(path):
            yield from _walk_dir(path)
        elif os.path.exists(path):
            yield Entry(path, explicit=True)
        elif os.path.islink(path):
            yield Entry(path, True, "broken symbolic link", "MA-S010")
        else:
            yield Entry(path, True, "path does not exist", "MA-S010")


def _walk_dir(root: str) -> Iterator[Entry]:
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        # directory links are never followed, so nothing outside the root is reached through one;
        # one that points outside is reported (inside, its files are reached by their real path)
        for name in sorted(d for d in dirnames if os.path.islink(os.path.join(dirpath, d))):
            target = os.path.realpath(os.path.join(dirpath, name))
            if not _inside(target, real_root):
                yield Entry(os.path.join(dirpath, name), False,
                            f"symbolic link to {target} outside the scanned directory", "MA-S011")
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not os.path.islink(os.path.join(dirpath, d)))
        if os.path.basename(dirpath) == ".dvc" and dirpath != root:
            # DVC's object cache and scratch space: the objects are scanned through their pointers, under
            # their real names (sources/dvc.py); naming the folder itself scans it as it is
            dirnames[:] = [d for d in dirnames if d not in _DVC_SKIP]
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                target = os.path.realpath(full)
                if not _inside(target, real_root):
                    yield Entry(full, False, f"symbolic link to {target} outside the scanned directory", "MA-S011")
                    continue
                if not os.path.isfile(target):
                    continue
            elif not os.path.isfile(full):
                continue  # sockets, fifos, devices
            yield Entry(full, explicit=False)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
