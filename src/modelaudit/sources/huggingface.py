"""Hugging Face Hub models: hf://org/model, https://huggingface.co/org/model (hf.co too), single-name
models, revisions (@rev, /tree/rev) and single files (/resolve/REV/FILE, /blob/REV/FILE).

Talks to the Hub API at HF_ENDPOINT (default https://huggingface.co) with the standard library:
`GET /api/models/{repo}/revision/{rev}?blobs=true` for the file list, sizes and hashes, then
`GET /{repo}/resolve/{commit}/{file}` per file. Only scannable files are fetched (selection.py).
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field

from .http import HttpError, SourceError, get_json, redact_url
from .selection import SCANNABLE_NAMES, SCANNABLE_SUFFIXES, is_scannable  # noqa: F401 - shared with other sources

HF_HOSTS = frozenset({"huggingface.co", "www.huggingface.co", "hf.co"})
_URL_KINDS = ("resolve", "blob", "tree")


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


@dataclass(frozen=True)
class HfTarget:
    repo_id: str
    revision: str | None = None  # None: the default branch
    filename: str | None = None  # one file of the repo
    subfolder: str | None = None  # /tree/rev/sub: only files below it

    @property
    def uri_base(self) -> str:
        rev = f"@{self.revision}" if self.revision and self.revision != "main" else ""
        return f"hf://{self.repo_id}{rev}"

    def uri(self, path: str) -> str:
        return f"{self.uri_base}/{path}"


def is_hf_target(target: str) -> bool:
    if target.startswith("hf://"):
        return True
    parts = urllib.parse.urlsplit(target)
    return parts.scheme in ("http", "https") and (parts.hostname or "").lower() in HF_HOSTS


def parse(target: str) -> HfTarget:
    """Split a Hugging Face target into repo, revision and file; raises SourceError when malformed."""
    if target.startswith("hf://"):
        rest = target[5:].split("?", 1)[0].split("#", 1)[0].strip("/")
        segs = [urllib.parse.unquote(s) for s in rest.split("/") if s]
        if len(segs) >= 2 and segs[1] in _URL_KINDS or len(segs) >= 3 and segs[2] in _URL_KINDS:
            return _parse_segments(segs, target)
        repo, rev = _split_rev(segs[:2] if len(segs) >= 2 else segs, target)
        filename = "/".join(segs[2:]) or None
        return _checked(HfTarget(repo, rev, filename), target)
    segs = [urllib.parse.unquote(s) for s in urllib.parse.urlsplit(target).path.split("/") if s]
    return _parse_segments(segs, target)


def _parse_segments(segs: list[str], target: str) -> HfTarget:
    if segs and segs[0] in ("datasets", "spaces"):
        raise SourceError(f"{target}: Hugging Face {segs[0]} are not supported; give a model repository")
    if segs and segs[0] == "models":
        segs = segs[1:]
    kind_at = next((i for i in (1, 2) if len(segs) > i and segs[i] in _URL_KINDS), None)
    if kind_at is None:
        repo, rev = _split_rev(segs, target)
        return _checked(HfTarget(repo, rev), target)
    repo = "/".join(segs[:kind_at])
    kind, rest = segs[kind_at], segs[kind_at + 1:]
    if not rest:
        raise SourceError(f"{target}: no revision after /{kind}/")
    rev, path = rest[0], "/".join(rest[1:])
    if kind == "tree":
        return _checked(HfTarget(repo, rev, subfolder=path or None), target)
    if not path:
        raise SourceError(f"{target}: no file after /{kind}/{rev}/")
    return _checked(HfTarget(repo, rev, path), target)


def _split_rev(segs: list[str], target: str) -> tuple[str, str | None]:
    if not segs or len(segs) > 2:
        raise SourceError(f"{target} is not a Hugging Face model (expected ORG/MODEL or MODEL)")
    repo = "/".join(segs)
    rev = None
    if "@" in repo:
        repo, rev = repo.split("@", 1)
    return repo, rev or None


def _checked(t: HfTarget, target: str) -> HfTarget:
    segs = t.repo_id.split("/")
    if not t.repo_id or len(segs) > 2 or any(s in ("", ".", "..") for s in segs):
        raise SourceError(f"{target} is not a Hugging Face model (expected ORG/MODEL or MODEL)")
    for path in (t.filename, t.subfolder):
        if path and any(s in ("", ".", "..") for s in path.split("/")):
            raise SourceError(f"{target}: invalid file path {path!r}")
    return t


# --- the Hub API ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int | None
    key: str | None  # content address in the cache (sha256-… for LFS files, gitsha1-… otherwise)
    url: str


@dataclass(frozen=True)
class Listing:
    commit: str
    files: list[RemoteFile]  # to fetch
    skipped: list[tuple[str, int | None]]  # present but not scannable
    unsafe: list[str] = field(default_factory=list)  # names that cannot be saved below the view ("../x")


def list_files(t: HfTarget, token: str | None) -> Listing:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise SourceError(f"HF_HUB_OFFLINE is set: {t.repo_id} was not fetched from the Hugging Face Hub")
    ep = endpoint()
    rev = t.revision or "main"
    api = f"{ep}/api/models/{t.repo_id}/revision/{urllib.parse.quote(rev, safe='')}?blobs=true"
    try:
        info = get_json(api, token)
    except HttpError as exc:
        raise SourceError(explain(exc, t, token)) from None
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot reach the Hugging Face Hub at {redact_url(ep)} for {t.repo_id}: "
                          f"{_reason(exc)}") from None
    if not isinstance(info, dict) or not isinstance(info.get("siblings"), list):
        raise SourceError(f"unexpected answer from {redact_url(api)} for {t.repo_id}")
    commit = str(info.get("sha") or rev)
    files, skipped, unsafe = [], [], []
    by_path = {}
    for sib in info["siblings"]:
        if not isinstance(sib, dict) or not isinstance(sib.get("rfilename"), str):
            continue
        path = sib["rfilename"]
        if any(s in ("", ".", "..") for s in path.split("/")):
            unsafe.append(path)  # never written outside the view, and reported
            continue
        lfs = sib.get("lfs") if isinstance(sib.get("lfs"), dict) else None
        size = sib.get("size") if isinstance(sib.get("size"), int) else (lfs or {}).get("size")
        if lfs and isinstance(lfs.get("sha256"), str):
            key = f"sha256-{lfs['sha256'].lower()}"
        elif isinstance(sib.get("blobId"), str):
            key = f"gitsha1-{sib['blobId'].lower()}"
        else:
            key = None
        url = f"{ep}/{t.repo_id}/resolve/{urllib.parse.quote(commit, safe='')}/{urllib.parse.quote(path)}"
        by_path[path] = RemoteFile(path, size, key, url)
    if t.filename:
        if t.filename not in by_path:
            raise SourceError(f"file {t.filename} not found in {t.repo_id} at revision {rev}")
        return Listing(commit, [by_path[t.filename]], [])
    prefix = f"{t.subfolder.rstrip('/')}/" if t.subfolder else ""
    for path, rf in sorted(by_path.items()):
        if not path.startswith(prefix):
            continue
        (files.append(rf) if is_scannable(path) else skipped.append((path, rf.size)))
    if prefix and not files and not skipped:
        raise SourceError(f"folder {t.subfolder} not found in {t.repo_id} at revision {rev}")
    return Listing(commit, files, skipped, unsafe[:100])


def explain(exc: HttpError, t: HfTarget, token: str | None) -> str:
    code = exc.headers.get("x-error-code", "")
    message = exc.headers.get("x-error-message", "")
    rev = t.revision or "main"
    if code == "GatedRepo":
        return (f"{t.repo_id} is a gated repository: accept its conditions on the Hub and set HF_TOKEN "
                f"(environment or .env) to a token of an account with access (HTTP {exc.status})")
    if code == "RevisionNotFound":
        return f"revision {rev} not found in {t.repo_id} (HTTP {exc.status})"
    if code == "EntryNotFound":
        return f"file {t.filename or ''} not found in {t.repo_id} at revision {rev} (HTTP {exc.status})"
    if exc.status == 401 and token and (code != "RepoNotFound" or "invalid" in message.lower()):
        return (f"Hugging Face rejected the token in HF_TOKEN for {t.repo_id}: invalid credentials "
                f"(HTTP 401); check or renew HF_TOKEN")
    if exc.status == 401:
        return (f"repository {t.repo_id} not found, or private: set HF_TOKEN (environment or .env) to a token "
                f"with access (HTTP 401)")
    if exc.status == 403:
        return f"access to {t.repo_id} denied for this HF_TOKEN (HTTP 403)"
    if exc.status == 404 or code == "RepoNotFound":
        return f"repository {t.repo_id} not found on {redact_url(endpoint())} (HTTP {exc.status})"
    return f"Hugging Face Hub answered HTTP {exc.status} for {t.repo_id}"


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc) or type(exc).__name__
