"""DVC pointer files (`model.pkl.dvc`): scan the data a pointer names, not the pointer.

Each output of the pointer is looked for, in this order, in the workspace, in the repository's DVC cache
and in its remote (the output's own `remote:`, else the default one), and the first copy whose md5 is the
one the pointer records is scanned. A copy that exists but hashes differently is a MA-S017 finding and is
passed over. Directory outputs (md5 `….dir`) name a JSON listing of `{"md5", "relpath"}` entries, itself
stored by its md5; every file in it is found and checked the same way.

Objects live at `<root>/files/md5/ab/cdef…` for DVC 3 pointers (`hash: md5`) and at `<root>/ab/cdef…` for
older ones, whose text files were hashed with CRLF turned into LF. Remotes: local folders (read in place)
and S3-compatible stores (boto3; `endpointurl`, `region`, `profile` and keys from .dvc/config and
config.local, else the standard AWS variables). Downloads are kept in the cache under their md5.

Pointers met in a directory walk, and the dry-run rows of a pointer, are in dvc_local.py.

Nothing of dvc itself is imported: the pointer is read with PyYAML (extra `dvc`) and the config with a
small parser, so scanning never runs a DVC repository's code or hooks. Findings are located at the
output's path next to the pointer (`models/model.pkl` for `models/model.pkl.dvc`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependency
from .http import TIMEOUT, LimitedWriter, SourceError

if TYPE_CHECKING:
    from ..config import ScanConfig
    from ..walk import Entry
    from .cache import Store

SUFFIX = ".dvc"
_MAX_POINTER = 1024 * 1024  # pointer files are a few lines
_MAX_LISTING = 256 * 1024 * 1024  # a .dir listing: about 100 bytes per file
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_CHUNK = 1 << 20
MISMATCH = "MA-S017"


class NotPointer(SourceError):
    """A `.dvc` file that is no DVC pointer (not YAML, no `outs`): in a directory it is just a file."""


def is_pointer(target: str) -> bool:
    """A local file named `something.dvc` (the `.dvc` folder of a repository is not one)."""
    name = os.path.basename(target.rstrip("/"))
    return len(name) > len(SUFFIX) and name.endswith(SUFFIX) and os.path.isfile(target)


# --- the pointer and the repository ---------------------------------------------------------------------


@dataclass(frozen=True)
class Out:
    path: str  # as the pointer writes it, relative to the pointer's folder
    md5: str  # 32 hex digits
    is_dir: bool
    size: int | None
    legacy: bool  # no `hash: md5`: the DVC 2 object layout and text hashing
    remote: str | None
    nfiles: int | None = None  # directory outputs: how many files the listing names


def load_yaml(path: str, what: str) -> Any:
    """One of DVC's small YAML files (`what`: "DVC pointer file", "DVC lock file"), read within a bound;
    NotPointer when it is too large or not YAML."""
    try:
        import yaml
    except ImportError as exc:
        raise MissingDependency("PyYAML", "dvc", f"{what}s") from exc
    with open(path, "rb") as fh:
        raw = fh.read(_MAX_POINTER + 1)
    if len(raw) > _MAX_POINTER:
        raise NotPointer(f"{path} is larger than {_MAX_POINTER} bytes: not a {what}")
    try:
        return yaml.safe_load(raw)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise NotPointer(f"{path} is not a valid {what}: {str(exc).splitlines()[0]}") from None


def read_pointer(path: str) -> list[Out]:
    doc = load_yaml(path, "DVC pointer file")
    outs = doc.get("outs") if isinstance(doc, dict) else None
    if not isinstance(outs, list) or not outs:
        raise NotPointer(f"{path} is not a DVC pointer file: it has no `outs` list")
    # repeated entries (YAML aliases make thousands cheaply) are read once
    return list(dict.fromkeys(_out(path, item) for item in outs))


def _out(pointer: str, item: Any) -> Out:
    if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not item["path"]:
        raise SourceError(f"{pointer}: an entry of `outs` has no path")
    md5 = item.get("md5")
    if md5 is None:
        raise SourceError(f"{pointer}: no md5 is recorded for {item['path']} (run `dvc commit`); nothing to verify")
    md5 = str(md5).lower()
    is_dir = md5.endswith(".dir")
    hex_ = md5[:-4] if is_dir else md5
    if not _MD5.match(hex_):
        raise SourceError(f"{pointer}: {item['path']} has an invalid md5 {str(item.get('md5'))[:80]!r}")
    size, nfiles = (_count(item.get(k)) for k in ("size", "nfiles"))
    remote = item.get("remote")
    return Out(item["path"], hex_, is_dir, size, item.get("hash") != "md5", remote if isinstance(remote, str) else None,
               nfiles)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


@dataclass
class Repo:
    root: str | None  # the folder holding .dvc/ (None: a pointer outside any repository)
    cache_dir: str | None = None
    remotes: dict[str, dict[str, str]] = field(default_factory=dict)
    default_remote: str | None = None


def find_repo(pointer: str) -> Repo:
    folder = os.path.dirname(os.path.abspath(pointer))
    for _ in range(64):
        meta = os.path.join(folder, ".dvc")
        if os.path.isdir(meta):
            return _load_repo(folder, meta)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return Repo(None)


def _load_repo(root: str, meta: str) -> Repo:
    config: dict[str, dict[str, str]] = {}
    for name in ("config", "config.local"):  # the local file overrides the shared one, key by key
        for section, values in read_config(os.path.join(meta, name)).items():
            config.setdefault(section, {}).update(values)
    remotes = {}
    for section, values in config.items():
        match = re.fullmatch(r'remote\s+"(.+)"', section)
        if match:
            remotes[match.group(1)] = values
    cache = config.get("cache", {}).get("dir")
    cache_dir = os.path.normpath(os.path.join(meta, cache)) if cache else os.path.join(meta, "cache")
    return Repo(root, cache_dir, remotes, config.get("core", {}).get("remote") or None)


def read_config(path: str) -> dict[str, dict[str, str]]:
    """The INI subset DVC writes: `[core]`, `['remote "name"']` headers and `key = value` lines."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read(_MAX_POINTER).splitlines()
    except (OSError, UnicodeDecodeError):
        return sections
    for raw in lines:
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(_unquote(line[1:-1].strip()), {})
        elif "=" in line and current is not None:
            key, _, value = line.partition("=")
            current[key.strip()] = _unquote(value.strip())
    return sections


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


# --- where objects live ---------------------------------------------------------------------------------


def object_names(md5: str, is_dir: bool, legacy: bool) -> list[str]:
    """Object paths below a cache or remote root, the pointer's own layout first."""
    name = md5 + (".dir" if is_dir else "")
    new, old = f"files/md5/{name[:2]}/{name[2:]}", f"{name[:2]}/{name[2:]}"
    return [old, new] if legacy else [new, old]


def file_md5(path: str, legacy: bool) -> set[str]:
    """The md5 of the bytes; for legacy pointers also that of text with CRLF line ends made LF."""
    return set(_md5s(path, legacy))


def recorded_md5(path: str, legacy: bool) -> str:
    """The md5 `dvc add` records for the file (DVC 2 hashed text files with LF line ends)."""
    return _md5s(path, legacy)[-1]


def _md5s(path: str, legacy: bool) -> tuple[str, ...]:
    plain = hashlib.md5(usedforsecurity=False)
    unix = hashlib.md5(usedforsecurity=False) if legacy else None
    with open(path, "rb") as fh:
        first = True
        while chunk := fh.read(_CHUNK):
            if first and b"\0" in chunk[:8000]:
                unix = None  # binary: DVC 2 hashed it as is
            first = False
            plain.update(chunk)
            if unix is not None:
                unix.update(chunk.replace(b"\r\n", b"\n"))  # a CR LF split across chunks stays; rare
    return (plain.hexdigest(),) + ((unix.hexdigest(),) if unix is not None else ())


class LocalRemote:
    def __init__(self, name: str, root: str) -> None:
        self.name, self.root = name, root

    def describe(self) -> str:
        return f"remote {self.name!r} ({self.root})"

    def local_path(self, rel: str) -> str | None:
        path = os.path.join(self.root, *rel.split("/"))
        return path if os.path.isfile(path) else None


class S3Remote:
    def __init__(self, name: str, url: str, settings: dict[str, str]) -> None:
        self.name, self.url = name, url.rstrip("/")
        bucket_prefix = self.url[len("s3://"):]
        self.bucket, _, self.prefix = bucket_prefix.partition("/")
        self.settings = settings
        self._client: Any = None

    def describe(self) -> str:
        return f"remote {self.name!r} ({self.url})"

    def local_path(self, rel: str) -> str | None:
        return None

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError as exc:
                raise MissingDependency("boto3", "dvc", "DVC remotes on S3") from exc
            s = self.settings
            session = boto3.session.Session(profile_name=s.get("profile") or None)
            endpoint = (s.get("endpointurl") or os.environ.get("AWS_ENDPOINT_URL_S3")
                        or os.environ.get("AWS_ENDPOINT_URL") or None)
            keys = {"aws_access_key_id": s.get("access_key_id"), "aws_secret_access_key": s.get("secret_access_key"),
                    "aws_session_token": s.get("session_token")}
            self._client = session.client(
                "s3", endpoint_url=endpoint, region_name=s.get("region") or None,
                config=Config(connect_timeout=min(TIMEOUT, 30), read_timeout=TIMEOUT,
                              retries={"max_attempts": 3, "mode": "standard"}),
                **{k: v for k, v in keys.items() if v})
        return self._client


def open_remote(repo: Repo, name: str | None) -> LocalRemote | S3Remote | None:
    """The named (or default) remote of the repository; SourceError for one this version cannot read."""
    name = name or repo.default_remote
    if not name or repo.root is None:
        return None
    settings = repo.remotes.get(name)
    if settings is None or not settings.get("url"):
        raise SourceError(f"the DVC remote {name!r} is not configured in {os.path.join(repo.root, '.dvc', 'config')}")
    url = settings["url"]
    if url.startswith("s3://"):
        return S3Remote(name, url, settings)
    if url.startswith("file://"):
        url = url[len("file://"):]
    if "://" in url:
        raise SourceError(f"DVC remote {name!r} ({url.split('://')[0]}://) is not supported here: run `dvc pull` "
                          "and scan the workspace files")
    # relative remote paths are relative to the folder of the config file (.dvc/)
    return LocalRemote(name, os.path.normpath(os.path.join(repo.root, ".dvc", os.path.expanduser(url))))


# --- finding a verified copy ----------------------------------------------------------------------------


@dataclass
class Found:
    path: str | None = None  # a local file whose md5 matched
    #: "workspace" (scanned where it is), "object" (a read-only object of the DVC cache or a local remote,
    #: scanned through a link under its output's name) or "store" (placed in a folder of the scan by us)
    kind: str = ""
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (location, message, rule code)


class Resolver:
    """Finds verified copies of the objects of one pointer's outputs."""

    def __init__(self, pointer: str, config: ScanConfig, store: Store | None) -> None:
        self.pointer, self.config, self.store = pointer, config, store
        self.repo = find_repo(pointer)
        self._remotes: dict[str | None, Any] = {}

    def remote(self, name: str | None) -> LocalRemote | S3Remote | None:
        if name not in self._remotes:
            self._remotes[name] = open_remote(self.repo, name)
        return self._remotes[name]

    def find(self, md5: str, is_dir: bool, legacy: bool, where: str, workspace: str | None,
             remote_name: str | None, size: int | None = None) -> Found:
        """A copy of object `md5` (`where` names it in messages): the workspace file, then the cache, then
        the remote. Copies that hash differently are recorded as problems and passed over."""
        remote = self.remote(remote_name)
        found = self.local(md5, is_dir, legacy, where, workspace, remote if isinstance(remote, LocalRemote) else None)
        if found.path:
            return found
        assert self.store is not None
        key = f"dvcmd5-{md5}" if not is_dir else None
        if key and self.store.has(key, size):
            found.path, found.kind = self._place(self.store.blob_path(key), where), "store"
            return found
        if isinstance(remote, S3Remote):
            self._download(remote, md5, is_dir, legacy, where, size, key, found)
            if found.path:
                return found
        if any(code == MISMATCH for _, _, code in found.problems):
            return found  # copies exist, none is the recorded version: the MA-S017 findings say so
        places = ["the workspace"] if workspace is not None else []
        places += ["the DVC cache"] if self.repo.cache_dir else []
        places += [remote.describe()] if remote is not None else []
        hint = "" if remote is not None else "; no DVC remote is configured"
        found.problems.append((where, f"{where} (md5 {md5}) is not in {' or '.join(places) or 'any known place'}"
                               f"{hint}; run `dvc pull` or `dvc push`, or scan the file itself", "MA-S010"))
        return found

    def local(self, md5: str, is_dir: bool, legacy: bool, where: str, workspace: str | None,
              remote: LocalRemote | None = None) -> Found:
        """A verified copy in the workspace, the DVC cache or a folder remote; reads nothing else."""
        found = Found()
        candidates: list[tuple[str, str]] = []
        if workspace is not None and os.path.isfile(workspace):
            candidates.append(("the workspace copy", workspace))
        candidates += [("the DVC cache object", p) for p in self.cache_objects(md5, is_dir, legacy)]
        if remote is not None:
            candidates += [(f"the object in {remote.describe()}", p) for n in object_names(md5, is_dir, legacy)
                           if (p := remote.local_path(n))]
        for label, path in candidates:
            if not os.path.isfile(path):
                continue
            if md5 in file_md5(path, legacy and not is_dir):
                found.path, found.kind = path, "workspace" if path == workspace else "object"
                return found
            found.problems.append((where, f"{label} of {where} ({path}) does not match the md5 {md5} recorded "
                                   f"in {self.pointer}; not scanned", MISMATCH))
        return found

    def cache_objects(self, md5: str, is_dir: bool, legacy: bool) -> list[str]:
        """Where the object would be in the repository's DVC cache (it may not be there)."""
        if not self.repo.cache_dir:
            return []
        return [os.path.join(self.repo.cache_dir, *n.split("/")) for n in object_names(md5, is_dir, legacy)]

    def _place(self, blob: str, where: str) -> str:
        from .cache import _place

        dest = os.path.join(self.store.new_dir(), _safe_name(where))
        _place(blob, dest)
        return dest

    def _download(self, remote: S3Remote, md5: str, is_dir: bool, legacy: bool, where: str, size: int | None,
                  key: str | None, found: Found) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        from .cache import publish

        max_bytes = self.config.limits.max_file_size if not is_dir else _MAX_LISTING
        if max_bytes and size is not None and size > max_bytes:
            found.problems.append((where, f"File too large to download: {size} bytes (max: {max_bytes}); "
                                   "not scanned", "MA-S001"))
            return
        self.store.check_space(size or 0)
        cli = remote.client()
        for name in object_names(md5, is_dir, legacy):
            uri = f"s3://{remote.bucket}/{remote.key(name)}"
            partial = self.store.new_partial()
            try:
                try:
                    resp = cli.get_object(Bucket=remote.bucket, Key=remote.key(name))
                except ClientError as exc:
                    code = str((exc.response.get("Error") or {}).get("Code"))
                    if code in ("NoSuchKey", "404", "NotFound"):
                        continue
                    raise SourceError(f"cannot read {uri} from DVC {remote.describe()}: {_s3_reason(exc)}") from None
                digest = hashlib.md5(usedforsecurity=False)
                with open(partial, "wb") as out, self.store.bars.bar(where, size) as bar:
                    body = resp["Body"]
                    try:
                        LimitedWriter(out, max_bytes, bar.advance, (digest,), "; not scanned").copy(body.read)
                    finally:
                        body.close()
                if digest.hexdigest() != md5 and not (legacy and md5 in file_md5(partial, True)):
                    found.problems.append((where, f"the object {uri} in DVC {remote.describe()} does not match the "
                                           f"md5 {md5} recorded in {self.pointer}; not scanned", MISMATCH))
                    continue
                dest = os.path.join(self.store.new_dir(), _safe_name(where))
                publish(partial, self.store.keep_blob(key), dest)
                found.path, found.kind = dest, "store"
                return
            except SourceError as exc:
                found.problems.append((where, str(exc), exc.rule_code))
                return
            except (ClientError, BotoCoreError) as exc:
                found.problems.append((where, f"cannot read {uri} from DVC {remote.describe()}: {_s3_reason(exc)}",
                                       "MA-S010"))
                return
            finally:
                if os.path.exists(partial):
                    os.unlink(partial)


def _s3_reason(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error") or {}
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if status == 403 or err.get("Code") in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return (f"access denied (HTTP 403, {err.get('Code')}): check the remote's credentials "
                    "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or access_key_id in .dvc/config.local)")
        return f"HTTP {status or '?'} {err.get('Code') or ''} {err.get('Message') or ''}".strip()
    return f"{type(exc).__name__}: {exc}"


def _safe_name(where: str) -> str:
    return os.path.basename(where.rstrip("/")).lstrip(".") or "data"


def _safe_rel(rel: str) -> bool:
    return bool(rel) and not rel.startswith("/") and "\\" not in rel and \
        all(s not in ("", ".", "..") for s in rel.split("/"))


# --- entries for the scan -------------------------------------------------------------------------------


def fetch_entries(pointer: str, config: ScanConfig, store: Store, mappings: list[tuple[str, str]]) -> Iterator[Entry]:
    """The verified data of every output of the pointer, as walk entries located at the outputs' paths."""
    resolver = Resolver(pointer, config, store)
    base = os.path.dirname(pointer)
    for out in read_pointer(pointer):
        yield from _out_entries(resolver, out, base, mappings)


def _out_entries(resolver: Resolver, out: Out, base: str, mappings: list[tuple[str, str]]) -> Iterator[Entry]:
    from ..walk import Entry

    where = os.path.normpath(os.path.join(base, *out.path.split("/")))
    workspace = os.path.join(base, *out.path.split("/"))
    limit = resolver.repo.root or os.path.dirname(os.path.abspath(resolver.pointer))
    if os.path.isabs(out.path) or not _inside(os.path.abspath(workspace), limit):
        yield Entry(where, True, f"{resolver.pointer} points outside its repository ({out.path}); not followed",
                    "MA-S010")
        return
    if not out.is_dir:
        found = resolver.find(out.md5, False, out.legacy, where, workspace, out.remote, out.size)
        yield from _found_entries(resolver.store, found, where, mappings, explicit=True)
        return
    listing = resolver.find(out.md5, True, out.legacy, where, None, out.remote)
    yield from (Entry(loc, True, msg, code) for loc, msg, code in listing.problems)
    if listing.path is None:
        return
    try:
        files = _read_listing(listing.path, resolver.config.limits.max_members)
    except SourceError as exc:
        yield Entry(where, True, f"{exc}", exc.rule_code)
        return
    finally:
        if listing.kind == "store":
            resolver.store.discard(listing.path)
    for md5, rel in files:
        file_where = os.path.join(where, *rel.split("/"))
        found = resolver.find(md5, False, out.legacy, file_where, os.path.join(workspace, *rel.split("/")),
                              out.remote)
        yield from _found_entries(resolver.store, found, file_where, mappings, explicit=False)


def _found_entries(store: Store | None, found: Found, where: str, mappings: list[tuple[str, str]],
                   explicit: bool) -> Iterator[Entry]:
    from ..walk import Entry

    yield from (Entry(loc, True, message, code) for loc, message, code in found.problems)
    if found.path is None:
        return
    path = found.path
    if found.kind == "object":
        assert store is not None
        # scanned under the output's file name (the extension is a format hint) through a link; the
        # repository's object itself is never moved or changed
        path = os.path.join(store.new_dir(), _safe_name(where))
        try:
            os.link(found.path, path)
        except OSError:
            os.symlink(os.path.abspath(found.path), path)
    if found.kind != "workspace":
        mappings.append((path, where))
    yield Entry(path, explicit=explicit)


def _read_listing(path: str, max_entries: int) -> list[tuple[str, str]]:
    """(md5, relpath) pairs of a directory object, checked for shape and for paths that stay inside."""
    if os.path.getsize(path) > _MAX_LISTING:
        raise SourceError(f"directory listing {path} is larger than {_MAX_LISTING} bytes; not scanned")
    try:
        with open(path, encoding="utf-8") as fh:
            entries = json.load(fh)
    except (OSError, ValueError) as exc:
        raise SourceError(f"directory listing {path} is not valid JSON: {exc}") from None
    if not isinstance(entries, list):
        raise SourceError(f"directory listing {path} is not a JSON list")
    if len(entries) > max_entries:
        raise SourceError(f"directory listing {path} names {len(entries)} files, more than {max_entries}")
    out = []
    for item in entries:
        md5 = item.get("md5") if isinstance(item, dict) else None
        rel = item.get("relpath") if isinstance(item, dict) else None
        if not isinstance(md5, str) or not _MD5.match(md5.lower()) or not isinstance(rel, str) or not _safe_rel(rel):
            raise SourceError(f"directory listing {path} has an invalid entry {str(item)[:120]!r}")
        out.append((md5.lower(), rel))
    return list(dict.fromkeys(out))


def _inside(path: str, root: str) -> bool:
    path, root = os.path.normpath(path), os.path.normpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
