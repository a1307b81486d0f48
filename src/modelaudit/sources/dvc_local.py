"""DVC pointers met in a directory walk, and the dry-run rows of a pointer (see dvc.py for the pointer,
the repository and where objects live).

A directory scan reads what is on this machine: an output present in the workspace is scanned there by
the walk and checked against its pointer; one that is not is taken from the DVC cache (verified) and
scanned under its output's path. Data that could only come from a remote is never downloaded by a
directory scan: it is reported as not scanned (MA-S010, so the scan is never clean) with the way to get it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependency
from .dvc import (MISMATCH, SUFFIX, Found, LocalRemote, NotPointer, Out, Resolver, _found_entries, _inside,
                  _read_listing, file_md5, object_names, read_pointer, recorded_md5)
from .dvc_lock import LOCK_NAME, is_lock, read_lock
from .http import SourceError

if TYPE_CHECKING:
    from ..config import ScanConfig
    from ..walk import Entry
    from .cache import Store


def walked_pointer(entry: Entry) -> bool:
    """A file named `something.dvc` or `dvc.lock` found by a directory walk (cheap: no reading)."""
    name = os.path.basename(entry.path)
    return not entry.explicit and entry.problem is None and (
        (len(name) > len(SUFFIX) and name.endswith(SUFFIX)) or name == LOCK_NAME)


def read_outs(path: str) -> list[Out]:
    """The outputs a `.dvc` pointer or a `dvc.lock` records."""
    return read_lock(path) if is_lock(path) else read_pointer(path)


def resolve_walked(entries: list[Entry], config: ScanConfig, get_store: Callable[[], Store],
                   mappings: list[tuple[str, str]]) -> list[Entry]:
    """The entries of one directory walk with each DVC pointer replaced by the data it names."""
    seen = {os.path.normpath(e.path) for e in entries}  # what the walk scans (or reports) already
    replaced: dict[int, list[Entry]] = {}
    caches: set[str] = set()
    for index, entry in enumerate(entries):
        if walked_pointer(entry):
            resolved = _walked_pointer_entries(entry.path, config, get_store, mappings, seen, caches)
            if resolved is not None:
                replaced[index] = resolved
    out: list[Entry] = []
    for index, entry in enumerate(entries):
        if index in replaced:
            out.extend(replaced[index])
        elif not any(_inside(os.path.abspath(entry.path), cache) for cache in caches):
            out.append(entry)  # a cache kept elsewhere than .dvc/cache: its objects come through pointers
    return out


def _walked_pointer_entries(pointer: str, config: ScanConfig, get_store: Callable[[], Store],
                            mappings: list[tuple[str, str]], seen: set[str], caches: set[str]) -> list[Entry] | None:
    """What one pointer stands for in a directory scan; None for a `.dvc` file that is no pointer."""
    from ..walk import Entry

    try:
        outs = read_outs(pointer)
    except NotPointer:
        return None
    except MissingDependency as exc:
        return [Entry(pointer, False, f"{exc}; the data this DVC pointer names was not checked", "MA-S006")]
    except SourceError as exc:
        return [Entry(pointer, False, str(exc), exc.rule_code)]
    resolver = Resolver(pointer, config, None)
    if resolver.repo.cache_dir and os.path.normpath(resolver.repo.cache_dir) != os.path.join(
            os.path.normpath(resolver.repo.root or ""), ".dvc", "cache"):
        caches.add(os.path.abspath(resolver.repo.cache_dir))
    walk = _Walk(resolver, get_store, mappings, seen)
    found: list[Entry] = []
    for out in outs:
        try:
            found.extend(walk.output(out))
        except (OSError, SourceError) as exc:  # an unreadable copy or listing: that output is not scanned
            found.append(Entry(pointer, False, f"cannot check the data of {pointer} ({out.path}): "
                               f"{getattr(exc, 'strerror', None) or exc}", getattr(exc, "rule_code", "MA-S010")))
    return found


@dataclass
class _Walk:
    resolver: Resolver
    get_store: Callable[[], Store]
    mappings: list[tuple[str, str]]
    seen: set[str]

    @property
    def pointer(self) -> str:
        return self.resolver.pointer

    def output(self, out: Out) -> Iterator[Entry]:
        from ..walk import Entry

        where = _output_path(self.pointer, out)
        limit = self.resolver.repo.root or os.path.dirname(os.path.abspath(self.pointer))
        if os.path.isabs(out.path) or not _inside(os.path.abspath(where), limit):
            yield Entry(where, False, f"{self.pointer} points outside its repository ({out.path}); not followed",
                        "MA-S010")
        elif not out.is_dir:
            if os.path.isfile(where):
                yield from self.workspace_file(where, out.md5, out.legacy)
                return
            if self.once(where):
                return
            found = self.resolver.local(out.md5, False, out.legacy, where, None)
            absent = found.path is None and not found.problems
            yield from self.found(found, where)
            if absent:
                yield Entry(where, False, _not_local(self.resolver, out, where), "MA-S010")
        else:
            yield from self.directory(out, where)

    def once(self, where: str) -> bool:
        """True when another pointer already named this output (it is taken from the cache once)."""
        key = os.path.normpath(where)
        if key in self.seen:
            return True
        self.seen.add(key)
        return False

    def workspace_file(self, path: str, md5: str, legacy: bool) -> Iterator[Entry]:
        """Scanned as it is (by the walk); a copy other than the recorded version is reported."""
        from ..walk import Entry

        if md5 not in file_md5(path, legacy):
            yield Entry(path, False, f"the workspace copy of {path} does not match the md5 {md5} recorded in "
                        f"{self.pointer}: it was scanned as it is, the recorded version was not "
                        f"({_check_recorded(self.pointer)})", MISMATCH)
        if os.path.normpath(path) not in self.seen:  # outside the scanned folder, or in one the walk skips
            self.seen.add(os.path.normpath(path))
            yield Entry(path, explicit=False)

    def found(self, found: Found, where: str) -> Iterator[Entry]:
        from ..walk import Entry

        config = self.resolver.config
        if found.path is not None and config.exclude_paths:
            from ..policy import path_matches

            if path_matches(where, config.exclude_paths):
                found.path = None  # excluded by the policy: an entry at its real path lets the scan say so
                yield Entry(where, explicit=False)
        yield from _found_entries(self.get_store() if found.path else None, found, where, self.mappings,
                                  explicit=False)

    def directory(self, out: Out, where: str) -> Iterator[Entry]:
        from ..walk import Entry, expand

        listing = self.resolver.local(out.md5, True, out.legacy, where, None)
        yield from (Entry(loc, False, msg, code) for loc, msg, code in listing.problems)
        if listing.path is None:
            if os.path.isdir(where):  # the files are scanned as they are; check them as a whole
                yield from self.workspace_folder(out, where)
                yield from (e for e in expand([where]) if os.path.normpath(e.path) not in self.seen)
            elif not listing.problems:
                yield Entry(where, False, _not_local(self.resolver, out, where), "MA-S010")
            return
        try:
            files = _read_listing(listing.path, self.resolver.config.limits.max_members)
        except SourceError as exc:
            yield Entry(where, False, str(exc), exc.rule_code)
            return
        missing = []
        for md5, rel in files:
            file_where = os.path.join(where, *rel.split("/"))
            if os.path.isfile(file_where):
                yield from self.workspace_file(file_where, md5, out.legacy)
                continue
            if self.once(file_where):
                continue
            found = self.resolver.local(md5, False, out.legacy, file_where, None)
            if found.path is None and not found.problems:
                missing.append(rel)
            yield from self.found(found, file_where)
        if missing:
            yield Entry(where, False, _not_local(self.resolver, out, where, missing, len(files)), "MA-S010")

    def workspace_folder(self, out: Out, where: str) -> Iterator[Entry]:
        """Without the listing in the cache, the folder is hashed the way `dvc add` does (a JSON list of
        md5 and relpath, sorted by relpath) and compared with the pointer's md5."""
        from ..walk import Entry

        files = []
        for dirpath, dirnames, filenames in os.walk(where):
            dirnames.sort()
            for name in filenames:
                path = os.path.join(dirpath, name)
                if os.path.isfile(path):
                    files.append(path)
            if len(files) > self.resolver.config.limits.max_members:
                return  # too many to hash here; the walk scans them all the same
        listing = sorted(({"md5": recorded_md5(p, out.legacy), "relpath": os.path.relpath(p, where).replace(os.sep, "/")}
                          for p in files), key=lambda item: item["relpath"])
        digest = hashlib.md5(json.dumps(listing, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
        if digest != out.md5:
            yield Entry(where, False, f"the workspace folder {where} does not match the md5 {out.md5}.dir recorded "
                        f"in {self.pointer} (files were added, removed or changed since `dvc add`, and the DVC "
                        "cache has no listing to tell which): its files were scanned as they are, the recorded "
                        f"version was not ({_check_recorded(self.pointer)})", MISMATCH)


def _output_path(pointer: str, out: Out) -> str:
    """The output's path as the walk names files (`./model.pkl` next to `./model.pkl.dvc`)."""
    parts = out.path.split("/")
    path = os.path.join(os.path.dirname(pointer), *parts)
    return os.path.normpath(path) if any(p in ("", ".", "..") for p in parts) else path


def _not_local(resolver: Resolver, out: Out, where: str, missing: list[str] | None = None,
               total: int | None = None) -> str:
    """Why DVC-tracked data was not scanned by a directory scan, and how to have it scanned."""
    if missing is not None:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        what = f"{len(missing)} of the {total} files of {where} ({shown}) were"
    else:
        amount = ([f"{out.nfiles} files"] if out.is_dir and out.nfiles is not None else []) + \
            ([f"{out.size} bytes"] if out.size is not None else [])
        what = f"{where} ({', '.join(amount)}) was" if amount else f"{where} was"
    fetch = "run `dvc pull`" if is_lock(resolver.pointer) else \
        f"scan {resolver.pointer} itself to fetch and check it, or run `dvc pull`"
    return (f"{what} not scanned: the data is not in the workspace or the DVC cache, {_source(resolver, out)}; "
            f"{fetch} and scan again")


def _check_recorded(pointer: str) -> str:
    """How to have the version a pointer or lock file records checked, for messages."""
    if is_lock(pointer):
        return "`dvc checkout` restores it from the cache, `dvc repro` makes it again"
    return f"scan {pointer} to check that one"


def _source(resolver: Resolver, out: Out) -> str:
    """Where the data could still come from, for messages."""
    name = out.remote or resolver.repo.default_remote
    url = resolver.repo.remotes.get(name or "", {}).get("url")
    if resolver.repo.root is None:
        return "and no DVC repository (.dvc folder) was found above the pointer"
    if name and url:
        from .http import redact_url

        shown = redact_url(url) if "://" in url else \
            os.path.normpath(os.path.join(resolver.repo.root, ".dvc", os.path.expanduser(url)))
        return f"so it can only come from DVC remote {name!r} ({shown}), which a directory scan does not download from"
    if name:
        return f"and DVC remote {name!r} is not configured"
    return "and no DVC remote is configured"


# --- dry run ----------------------------------------------------------------------------------------------


def plan_pointer(pointer: str, config: ScanConfig, explicit: bool) -> list[dict[str, Any]] | None:
    """Dry-run rows for the data a pointer names: path, size (from the pointer), format and where a scan
    would take it from (`dvc.from`: workspace, cache or remote). Reads headers of local copies only, hashes
    nothing and contacts no remote. A directory scan (`explicit` false) downloads nothing, so there data
    that is only in a remote is listed as skipped. None: not a pointer (listed as the file it is)."""
    try:
        outs = read_outs(pointer)
    except NotPointer as exc:
        return [_row(pointer, None, None, str(exc))] if explicit else None
    except (SourceError, MissingDependency) as exc:
        return [_row(pointer, None, None, str(exc))]
    resolver = Resolver(pointer, config, None)
    rows = []
    for out in outs:
        where = _output_path(pointer, out)
        limit = resolver.repo.root or os.path.dirname(os.path.abspath(pointer))
        if os.path.isabs(out.path) or not _inside(os.path.abspath(where), limit):
            rows.append(_row(where, out.size, None, f"{pointer} points outside its repository; not followed"))
            continue
        rows.extend(_plan_out(resolver, out, where, explicit))
    return rows


def _plan_out(resolver: Resolver, out: Out, where: str, explicit: bool) -> Iterator[dict[str, Any]]:
    if not out.is_dir:
        yield _plan_file(resolver, out, out.md5, where, out.size, explicit)
        return
    listing = next((p for p in _local_objects(resolver, out, out.md5, True, explicit) if os.path.isfile(p)), None)
    files = None
    if listing is not None:
        try:
            files = _read_listing(listing, resolver.config.limits.max_members)
        except SourceError:
            files = None  # the scan reports it; here the folder is listed as one item
    if files is None:
        if os.path.isdir(where) and not explicit:
            return  # a directory scan lists the workspace files themselves
        yield _plan_file(resolver, out, out.md5, where, out.size, explicit, is_dir=True)
        return
    for md5, rel in files:
        yield _plan_file(resolver, out, md5, os.path.join(where, *rel.split("/")), None, explicit)


def _plan_file(resolver: Resolver, out: Out, md5: str, where: str, size: int | None, explicit: bool,
               is_dir: bool = False) -> dict[str, Any]:
    from ..detect import HEAD_SIZE, detect
    from ..engine import _select

    name = out.remote or resolver.repo.default_remote
    local = where if os.path.isfile(where) and not is_dir else None
    source = "workspace" if local else None
    if local is None:
        local = next((p for p in _local_objects(resolver, out, md5, is_dir, explicit) if os.path.isfile(p)), None)
        source = "cache" if local and local in resolver.cache_objects(md5, is_dir, out.legacy) else \
            "remote" if local else None
    if is_dir and local:
        local = None  # the listing is there but unreadable: the folder's files are not known
    info = {"pointer": resolver.pointer, "md5": md5 + (".dir" if is_dir else ""), "from": source or "remote",
            "remote": name if source in (None, "remote") else None}
    if local is None:
        if not explicit:
            how = "run `dvc pull`" if is_lock(resolver.pointer) else f"scan {resolver.pointer} itself, or run `dvc pull`"
            return _row(where, size, info, f"not in the workspace or the DVC cache, {_source(resolver, out)}; {how}")
        try:
            remote = resolver.remote(out.remote)
        except SourceError as exc:
            return _row(where, size, info, str(exc))
        if remote is None:
            return _row(where, size, info, "not in the workspace or the DVC cache, and no DVC remote is configured")
        if isinstance(remote, LocalRemote):
            return _row(where, size, info, f"not in the workspace, the DVC cache or {remote.describe()}")
        return _row(where, size, info, None, download=True)
    with open(local, "rb") as fh:
        head = fh.read(HEAD_SIZE)
    size = size if size is not None else os.path.getsize(local)
    fmt = detect(head, os.path.basename(where), size).format
    return _row(where, size, info, None) | {"format": fmt, "scanners": [c.name for c in _select(fmt, where, resolver.config)]}


def _local_objects(resolver: Resolver, out: Out, md5: str, is_dir: bool, explicit: bool) -> list[str]:
    """Copies of an object on this machine: the DVC cache, and for a named pointer a folder remote."""
    paths = resolver.cache_objects(md5, is_dir, out.legacy)
    if explicit:
        try:
            remote = resolver.remote(out.remote)
        except SourceError:
            remote = None
        if isinstance(remote, LocalRemote):
            paths += [p for n in object_names(md5, is_dir, out.legacy) if (p := remote.local_path(n))]
    return paths


def _row(path: str, size: int | None, info: dict[str, Any] | None, skipped: str | None,
         download: bool = False) -> dict[str, Any]:
    row = {"path": path, "size": size, "format": None, "scanners": [], "skipped": skipped, "download": download}
    return row | ({"dvc": info} if info else {})
