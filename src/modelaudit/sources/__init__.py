"""Remote sources resolve targets to local, read-only files before the walk.

Supported here: Hugging Face (hf://, https://huggingface.co/…, https://hf.co/…; see huggingface.py),
S3 and R2 objects and prefixes (s3://, r2://; see s3.py), Google Cloud Storage objects and prefixes
(gs://; see gcs.py) — both need the `cloud` extra —, JFrog Artifactory files and folders
(https://HOST/artifactory/REPO/PATH; see jfrog.py) and plain HTTPS URLs of one model file (http:// only to
loopback), MLflow registry models (models:/NAME/VERSION, …/latest, …@ALIAS; see mlflow.py, extra `mlflow`)
and DVC pointer files (*.dvc, resolved to the data they name; see dvc.py, extra `dvc`), also those a
directory walk meets, from local copies only.
Folder-like targets fetch only scannable files (selection.py).

`open_targets` downloads (or takes from the cache, see cache.py) and yields walk entries for local files;
with --stream (ScanConfig.stream) each remote file is downloaded only when the scan asks for it and deleted
before the next one (`Targets.batches`). `Targets.relocate` is the one place where downloaded paths are
mapped back to remote URIs in results. Failures never raise: they become entries with a problem (MA-S010,
MA-S001 for size) located at the URI.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import ScanConfig
    from ..model import FileResult
    from ..walk import Entry
    from .progress import Bars

REMOTE_PREFIXES = ("hf://", "s3://", "gs://", "r2://", "models:/", "http://", "https://")


def is_remote(target: str) -> bool:
    return target.startswith(REMOTE_PREFIXES)


def is_fetchable(target: str) -> bool:
    """Remote targets this version downloads (the others are reported as unsupported)."""
    return target.startswith(("hf://", "s3://", "r2://", "gs://", "models:/", "http://", "https://"))


def unsupported_message(target: str) -> str:
    return (f"remote source {target} cannot be fetched by this version of modelaudit; "
            "download the model and scan the local files")


# --- credentials --------------------------------------------------------------------------------------------


def read_dotenv(path: str) -> dict[str, str]:
    """KEY=VALUE lines as python-dotenv reads them: comments, `export`, quotes, inline ` #` comments."""
    values: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return values
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def hf_token() -> str | None:
    """HF_TOKEN from the environment, else from a .env file in the working directory."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(name):
            return os.environ[name].strip()
    dotenv = read_dotenv(os.path.join(os.getcwd(), ".env"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if dotenv.get(name):
            return dotenv[name].strip()
    return None


# --- resolving targets ----------------------------------------------------------------------------------------


@dataclass
class Targets:
    entries: list[Entry]
    #: (local path prefix, remote URI) pairs; the local side is a unique temporary path
    mappings: list[tuple[str, str]] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    #: --stream: remote entries produced one download at a time (see batches)
    streamed: list[Iterator[Entry]] = field(default_factory=list)

    def batches(self) -> Iterator[list[Entry]]:
        """Entries to plan and scan together: all at once, or with --stream the local ones first and then
        one downloaded file per batch, which is deleted when the next batch is asked for."""
        if self.entries or not self.streamed:
            yield self.entries
        for stream in self.streamed:
            for entry in stream:
                yield [entry]

    def relocate(self, files: list[FileResult]) -> list[FileResult]:
        """Report downloaded files under their remote URIs (paths, locations, messages, details)."""
        if not self.mappings and not self.secrets:
            return files
        return [_relocate_result(f, self._fix) for f in files]

    def display(self, path: str) -> str:
        """How progress output names a file: downloads by their remote URIs."""
        return self._fix(path) if self.mappings or self.secrets else path

    def _fix(self, text: str) -> str:
        for local, uri in self.mappings:
            if local in text:
                text = text.replace(local, uri)
        for secret in self.secrets:
            if secret and secret in text:
                text = text.replace(secret, "***")
        return text


def _relocate_result(f: FileResult, fix) -> FileResult:  # noqa: ANN001
    def deep(value: Any) -> Any:
        if isinstance(value, str):
            return fix(value)
        if isinstance(value, dict):
            return {k: deep(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(deep(v) for v in value)
        return value

    return replace(
        f, path=fix(f.path),
        issues=tuple(replace(i, message=fix(i.message), location=deep(i.location), details=deep(i.details))
                     for i in f.issues),
        checks=tuple(replace(c, message=fix(c.message), location=deep(c.location)) for c in f.checks),
        assets=tuple(replace(a, path=fix(a.path)) for a in f.assets))


@contextmanager
def open_targets(paths: list[str], config: ScanConfig, cache_dir: str | None = None,
                 bars: Bars | None = None) -> Iterator[Targets]:
    """Resolve every target to walk entries; downloads live until the context ends (no-cache: deleted).
    `bars` draws download progress (progress.terminal_bars); silent by default."""
    from ..walk import expand

    # local paths only: walked once; DVC pointers met in a directory need the slower path below
    walked = {} if any(_resolved_here(p) for p in paths) else {p: list(expand([p])) for p in paths}
    if walked and not any(_has_pointer(entries) for entries in walked.values()):
        yield Targets([e for p in paths for e in walked[p]])
        return
    store = None

    def get_store():  # noqa: ANN202 - created at the first target that needs one
        nonlocal store
        if store is None:
            from .cache import Store
            from .http import stall_timeout

            store = Store(config.cache, cache_dir, stream=config.stream, bars=bars,
                          timeout=stall_timeout(config.limits.timeout))
        return store

    targets = Targets([])
    token = hf_token()
    if token:
        targets.secrets.append(token)
    if any(_is_jfrog(p) for p in paths):
        from .jfrog import credentials

        targets.secrets.extend(c.secret for c in [credentials(config)] if c is not None)
    if any(p.startswith("models:/") for p in paths):
        from .mlflow import secrets

        targets.secrets.extend(secrets())
    try:
        for target in paths:
            if not _resolved_here(target):
                entries = walked.get(target) or list(expand([target]))
                if _has_pointer(entries):
                    from .dvc_local import resolve_walked

                    entries = resolve_walked(entries, config, get_store, targets.mappings)
                targets.entries.extend(entries)
                continue
            get_store()
            found = _guarded(target, lambda t=target: _fetch(t, config, store, token, targets.mappings),
                             targets.secrets)
            if config.stream:
                targets.streamed.append(_one_at_a_time(found, store))
            else:
                targets.entries.extend(found)
        yield targets
    finally:
        if store is not None:
            store.close()


def _guarded(target: str, fetch: Callable[[], Iterable[Entry]], secrets: list[str]) -> Iterator[Entry]:
    """The entries of one remote target; a failure, whenever it happens, becomes an entry with a problem."""
    from ..walk import Entry

    try:
        yield from fetch()
    except Exception as exc:  # noqa: BLE001 - a failed download is a finding, never a traceback
        from ..errors import MissingDependency
        from .http import SourceError

        message = str(exc) if isinstance(exc, (SourceError, MissingDependency)) else \
            f"cannot fetch {_display(target)}: {type(exc).__name__}: {exc}"
        for secret in secrets:
            if secret:
                message = message.replace(secret, "***")
        code = "MA-S006" if isinstance(exc, MissingDependency) else getattr(exc, "rule_code", "MA-S010")
        yield Entry(_display(target), True, message, code)


def _one_at_a_time(entries: Iterator[Entry], store) -> Iterator[Entry]:  # noqa: ANN001
    """--stream: once the scan asks for the next entry, the previous download is deleted (only files the
    store downloaded: a local file a source points at is never touched)."""
    for entry in entries:
        yield entry
        if entry.problem is None and entry.path.startswith(store.work + os.sep):
            store.discard(entry.path)


def _display(target: str) -> str:
    from .http import redact_url

    return target if target.startswith(("hf://", "s3://", "r2://", "gs://", "models:/")) else redact_url(target)


def _resolved_here(target: str) -> bool:
    """Remote targets this version downloads, and DVC pointer files (local, but they name other data)."""
    if is_fetchable(target):
        return True
    if not target.rstrip("/").endswith(".dvc"):
        return False  # spare every local scan the import of the DVC reader and its HTTP stack
    from .dvc import is_pointer

    return is_pointer(target)


def _has_pointer(entries: list[Entry]) -> bool:
    """A directory walk met a file named `*.dvc` or `dvc.lock` (checked by name only: most scans have none)."""
    return any(not e.explicit and e.problem is None and e.path.endswith((".dvc", "dvc.lock")) for e in entries)


def _is_jfrog(target: str) -> bool:
    from .jfrog import is_jfrog_target

    return is_jfrog_target(target)


def _fetch(target: str, config: ScanConfig, store, token: str | None,  # noqa: ANN001
           mappings: list[tuple[str, str]]) -> Iterable[Entry]:
    """The entries of one remote target: a list, or a generator that downloads as it is consumed."""
    from ..walk import Entry
    from . import huggingface as hf
    import urllib.parse  # remote targets only: local scans skip it

    from .http import HttpError, SourceError, check_plain_url, redact_url

    max_bytes = config.limits.max_file_size
    if not is_remote(target):
        from . import dvc

        return dvc.fetch_entries(target, config, store, mappings)
    if target.startswith(("s3://", "r2://")):
        from .s3 import fetch_entries

        return fetch_entries(target, config, store, mappings)
    if target.startswith("gs://"):
        from . import gcs

        return gcs.fetch_entries(target, config, store, mappings)
    if _is_jfrog(target):
        from . import jfrog

        return jfrog.fetch_entries(target, config, store, mappings)
    if target.startswith("models:/"):
        from . import mlflow

        return mlflow.fetch_entries(target, config, store, mappings)
    if not hf.is_hf_target(target):
        check_plain_url(target)
        url = redact_url(target)
        name = urllib.parse.unquote(urllib.parse.urlsplit(target).path.rsplit("/", 1)[-1])
        dest = os.path.join(store.new_dir(), _safe_name(name))
        try:
            store.fetch(None, target, dest, None, max_bytes, None)
        except HttpError as exc:
            raise SourceError(f"cannot download {url}: HTTP {exc.status}") from None
        except OSError as exc:
            raise SourceError(f"cannot download {url}: {getattr(exc, 'reason', None) or exc}") from None
        mappings.append((dest, url))
        return [Entry(dest, explicit=True)]
    return _fetch_hf(hf.parse(target), config, store, token, mappings)


def _fetch_hf(t, config: ScanConfig, store, token: str | None,  # noqa: ANN001
              mappings: list[tuple[str, str]]) -> Iterator[Entry]:
    from ..walk import Entry
    from . import huggingface as hf
    from .http import HttpError, SourceError
    from .selection import log_skipped

    max_bytes = config.limits.max_file_size
    listing = hf.list_files(t, token)
    log_skipped([t.uri(p) for p, _size in listing.skipped])
    view = store.new_dir()
    mappings.append((view, t.uri_base))
    for path in listing.unsafe:
        yield Entry(t.uri(path), True, f"file name {path!r} cannot be saved as a file; not scanned", "MA-S010")
    wanted = []
    for rf in listing.files:
        if max_bytes and rf.size is not None and rf.size > max_bytes:
            yield Entry(t.uri(rf.path), True, f"File too large to download: {rf.size} bytes "
                        f"(max: {max_bytes}); not scanned", "MA-S001")
        else:
            wanted.append(rf)
    if not listing.files:
        yield Entry(t.uri_base, True, f"no scannable files in {t.repo_id} "
                    f"({len(listing.skipped)} other file(s) not fetched)", "MA-S010")
    store.check_space_for([rf.size for rf in wanted if not store.has(rf.key, rf.size)])
    for rf in wanted:
        dest = os.path.join(view, *rf.path.split("/"))
        try:
            store.fetch(rf.key, rf.url, dest, token, max_bytes, rf.size)
        except HttpError as exc:
            yield Entry(t.uri(rf.path), True, "cannot download: " + hf.explain(
                exc, replace(t, filename=rf.path), token), "MA-S010")
            continue
        except SourceError as exc:
            yield Entry(t.uri(rf.path), True, str(exc), exc.rule_code)
            continue
        except OSError as exc:
            yield Entry(t.uri(rf.path), True, f"cannot download: {getattr(exc, 'reason', None) or exc}",
                        "MA-S010")
            continue
        yield Entry(dest, explicit=bool(t.filename))


def _safe_name(name: str) -> str:
    name = posixpath.basename(name.replace("\\", "/")).lstrip(".") or "download"
    return name[:200]


# --- dry run --------------------------------------------------------------------------------------------------


def plan_remote(target: str, config: ScanConfig, cache_dir: str | None = None) -> list[dict[str, Any]]:
    """What a scan of `target` would fetch, from the API's file metadata; downloads nothing."""
    from . import huggingface as hf
    from .cache import default_cache_dir
    from .http import SourceError, check_plain_url, redact_url
    from .objects import plan_row as row
    from .selection import SKIPPED_REASON

    if not is_fetchable(target):
        return [row(target, None, unsupported_message(target))]
    if target.startswith(("s3://", "r2://")):
        from .s3 import plan

        return plan(target, config, cache_dir)
    if target.startswith("gs://"):
        from . import gcs

        return gcs.plan(target, config, cache_dir)
    if _is_jfrog(target):
        from . import jfrog

        return jfrog.plan(target, config, cache_dir)
    if target.startswith("models:/"):
        from . import mlflow

        return mlflow.plan(target, config, cache_dir)
    token = hf_token()
    try:
        if not hf.is_hf_target(target):
            check_plain_url(target)
            return [row(redact_url(target), None, None, True)]
        t = hf.parse(target)
        listing = hf.list_files(t, token)
    except SourceError as exc:
        message = str(exc).replace(token, "***") if token else str(exc)
        return [row(_display(target), None, message)]
    blobs = os.path.join(cache_dir or default_cache_dir(), "blobs")
    max_bytes = config.limits.max_file_size
    rows = []
    for rf in listing.files:
        if max_bytes and rf.size is not None and rf.size > max_bytes:
            rows.append(row(t.uri(rf.path), rf.size, f"too large to download (max: {max_bytes})"))
            continue
        cached = bool(config.cache and rf.key and os.path.isfile(os.path.join(blobs, rf.key))
                      and (rf.size is None or os.path.getsize(os.path.join(blobs, rf.key)) == rf.size))
        rows.append(row(t.uri(rf.path), rf.size, None, not cached) | {"cached": cached})
    rows.extend(row(t.uri(p), size, SKIPPED_REASON) for p, size in listing.skipped)
    rows.extend(row(t.uri(p), None, "cannot be saved as a file; not fetched") for p in listing.unsafe)
    return rows


def render_dry_run(paths: list[str], config: ScanConfig, as_json: bool, cache_dir: str | None = None) -> str:
    """The dry-run listing for targets that include remote ones (local ones as listing.render_dry_run)."""
    import json

    from ..listing import DRY_RUN_RESULT, _dvc_note, render_dry_run as render_local
    from ..report.json import dumps

    plan: list[dict[str, Any]] = []
    for target in paths:
        if is_remote(target):
            plan.extend(plan_remote(target, config, cache_dir))
        else:
            plan.extend(json.loads(render_local([target], config, True))["files"])
    fetched = [p for p in plan if p.get("download")]
    download_bytes = sum(p["size"] or 0 for p in fetched)
    if as_json:
        return dumps({"dry_run": True, **DRY_RUN_RESULT, "files": plan, "files_total": len(plan),
                      "bytes_total": sum(p["size"] or 0 for p in plan if not p["skipped"]),
                      "download_files": len(fetched), "download_bytes": download_bytes})
    lines = []
    for p in plan:
        size = f"{p['size']} bytes" if p["size"] is not None else "- bytes"
        what = p["skipped"] or ("download" if p.get("download") else "cached" if p.get("cached") else
                                ",".join(p["scanners"]) or "no scanner")
        lines.append(f"{p['path']}  {p['format'] or '-'}  {size}  {what}{_dvc_note(p)}")
    lines.append(f"Dry run: {sum(1 for p in plan if not p['skipped'])} file(s) would be scanned; "
                 f"{len(fetched)} would be downloaded ({download_bytes} bytes); nothing was downloaded.")
    return "\n".join(lines) + "\n"
