"""JFrog Artifactory files and folders: https://HOST[/PREFIX]/artifactory/REPO/PATH (a folder scans every
scannable file below it, found with the storage API's deep listing).

Only the read-only REST API is used, with the standard library: `GET {base}/api/storage/{repo}/{path}`
tells file from folder and gives the size and sha256, `?list&deep=1` lists a folder, and
`GET {base}/{repo}/{path}` downloads. Credentials: --jfrog-access-token / --jfrog-api-token, else
JFROG_ACCESS_TOKEN / JFROG_API_TOKEN from the environment, else from a .env file in the working directory.
An access token is sent as `Authorization: Bearer`, an API key as `X-JFrog-Art-Api`, only to the
Artifactory origin. Every download is checked against the sha256 Artifactory reports (storage API and the
X-Checksum-Sha256 header); a mismatch is a MA-S016 finding and the file is not scanned.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .http import HttpError, SourceError, download, is_loopback, open_url, redact_url, stall_timeout

if TYPE_CHECKING:
    from ..config import ScanConfig
    from ..walk import Entry
    from .cache import Store

log = logging.getLogger("modelaudit.sources")
_CONTEXT = "artifactory"
_SHA256_LEN = 64


def is_jfrog_target(target: str) -> bool:
    """An http(s) URL with an /artifactory/REPO/… path (not the REST API itself)."""
    parts = urllib.parse.urlsplit(target)
    if parts.scheme not in ("http", "https"):
        return False
    segs = [s for s in parts.path.split("/") if s]
    if _CONTEXT not in segs:
        return False
    after = segs[segs.index(_CONTEXT) + 1:]
    return bool(after) and after[0] != "api"


# --- credentials ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    kind: str  # "access" (Bearer) or "api" (X-JFrog-Art-Api)
    secret: str
    origin: str  # where it came from, for messages: "--jfrog-api-token", "JFROG_API_TOKEN", ".env …"

    @property
    def headers(self) -> dict[str, str]:
        if self.kind == "access":
            return {"Authorization": f"Bearer {self.secret}"}
        return {"X-JFrog-Art-Api": self.secret}


def credentials(config: ScanConfig) -> Credentials | None:
    """The first place that has a token wins (flags, environment, .env); an access token before an API key."""
    from . import read_dotenv

    dotenv = read_dotenv(os.path.join(os.getcwd(), ".env"))
    levels = (
        (config.jfrog_access_token, config.jfrog_api_token, "--jfrog-access-token", "--jfrog-api-token"),
        (os.environ.get("JFROG_ACCESS_TOKEN"), os.environ.get("JFROG_API_TOKEN"), "JFROG_ACCESS_TOKEN",
         "JFROG_API_TOKEN"),
        (dotenv.get("JFROG_ACCESS_TOKEN"), dotenv.get("JFROG_API_TOKEN"), "JFROG_ACCESS_TOKEN in .env",
         "JFROG_API_TOKEN in .env"),
    )
    for access, api, access_origin, api_origin in levels:
        if access and access.strip():
            return Credentials("access", access.strip(), access_origin)
        if api and api.strip():
            return Credentials("api", api.strip(), api_origin)
    return None


# --- targets -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JfrogTarget:
    base: str  # scheme://host[:port][/prefix]/artifactory
    repo: str
    path: str  # "" for the repository root

    def url(self, path: str) -> str:
        return f"{self.base}/{urllib.parse.quote(self.repo)}/{urllib.parse.quote(path)}".rstrip("/")

    def storage_url(self, path: str, query: str = "") -> str:
        url = f"{self.base}/api/storage/{urllib.parse.quote(self.repo)}/{urllib.parse.quote(path)}".rstrip("/")
        return f"{url}?{query}" if query else url

    def uri(self, path: str) -> str:
        """How findings name a file: its download URL without credentials or query."""
        return redact_url(self.url(path))


def parse(target: str) -> JfrogTarget:
    parts = urllib.parse.urlsplit(target)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise SourceError(f"refusing plain http:// for {redact_url(target)}; use https:// (tokens would be "
                          "sent in clear text)")
    segs = [urllib.parse.unquote(s) for s in parts.path.split("/") if s]
    at = segs.index(_CONTEXT)
    if len(segs) <= at + 1:
        raise SourceError(f"{redact_url(target)} does not name an Artifactory repository")
    path_segs = segs[at + 2:]
    if any(s in (".", "..") or "\\" in s for s in path_segs):
        raise SourceError(f"{redact_url(target)}: invalid path")
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    prefix = "/".join(urllib.parse.quote(s) for s in segs[:at + 1])
    return JfrogTarget(f"{parts.scheme}://{host}/{prefix}", segs[at + 1], "/".join(path_segs))


@dataclass(frozen=True)
class RemoteFile:
    path: str  # in the repository
    rel: str  # below the target (the file name for a single file)
    size: int | None
    sha256: str | None


def _sha256(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == _SHA256_LEN and all(c in "0123456789abcdef" for c in value.lower()):
        return value.lower()
    return None


def _size(value: Any) -> int | None:
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)  # the file-info answer gives the size as a string
    return None


def explain(exc: HttpError, where: str, creds: Credentials | None, repo: str) -> str:
    if exc.status == 401 and creds is None:
        return (f"Artifactory requires authentication for {where} (HTTP 401): set JFROG_API_TOKEN or "
                "JFROG_ACCESS_TOKEN (environment or .env), or pass --jfrog-api-token / --jfrog-access-token")
    if exc.status == 401:
        return (f"Artifactory rejected the token from {creds.origin} for {where} (HTTP 401, bad credentials); "
                "check or renew it")
    if exc.status == 403:
        return f"access denied to {where} (HTTP 403): the token may not read repository {repo}"
    if exc.status == 404:
        return f"not found in Artifactory: {where} (HTTP 404)"
    return f"Artifactory answered HTTP {exc.status} for {where}"


def _get_json(url: str, creds: Credentials | None, timeout: float) -> Any:
    import json

    with open_url(url, headers=creds.headers if creds else None, timeout=timeout) as resp:
        return json.loads(resp.read(64 * 1024 * 1024))


def list_files(t: JfrogTarget, creds: Credentials | None, timeout: float) -> tuple[bool, list[RemoteFile]]:
    """(single file, files): one file's info, or a folder's deep listing; raises SourceError."""
    where = t.uri(t.path)
    try:
        info = _get_json(t.storage_url(t.path), creds, timeout)
        if isinstance(info, dict) and "children" not in info and t.path:
            name = t.path.rsplit("/", 1)[-1]
            checksums = info.get("checksums") if isinstance(info.get("checksums"), dict) else {}
            return True, [RemoteFile(t.path, name, _size(info.get("size")), _sha256(checksums.get("sha256")))]
        listing = _get_json(t.storage_url(t.path, "list&deep=1&listFolders=0"), creds, timeout)
    except HttpError as exc:
        raise SourceError(explain(exc, where, creds, t.repo)) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SourceError(f"cannot reach Artifactory at {redact_url(t.base)} for {where}: {reason}") from None
    if not isinstance(listing, dict) or not isinstance(listing.get("files"), list):
        raise SourceError(f"unexpected answer from the Artifactory storage API for {where}")
    files = []
    for item in listing["files"]:
        if not isinstance(item, dict) or item.get("folder") or not isinstance(item.get("uri"), str):
            continue
        rel = item["uri"].lstrip("/")
        path = f"{t.path}/{rel}" if t.path else rel
        files.append(RemoteFile(path, rel, _size(item.get("size")), _sha256(item.get("sha2"))))
    if not files:
        raise SourceError(f"no files under {where}")
    return False, files


def _safe_rel(rel: str) -> bool:
    from .objects import safe_rel

    return safe_rel(rel) and "\\" not in rel  # as parse() refuses it in the target's path


def _select(t: JfrogTarget, single: bool, files: list[RemoteFile]) -> tuple[list[RemoteFile], list[RemoteFile]]:
    from .selection import split_scannable

    if single:
        return files, []
    keep, skip = split_scannable(files, lambda f: f.path)
    if not keep:
        raise SourceError(f"no scannable files under {t.uri(t.path)} ({len(skip)} other file(s) not fetched)")
    return keep, skip


def _timeout(config: ScanConfig) -> float:
    return stall_timeout(config.limits.timeout)


def fetch_entries(target: str, config: ScanConfig, store: Store,
                  mappings: list[tuple[str, str]]) -> Iterator[Entry]:
    """Download the file(s) of an Artifactory URL as they are asked for; problems become entries at the URI."""
    from .objects import Fetcher, fetch_objects
    from .selection import log_skipped

    t = parse(target)
    creds = credentials(config)
    timeout = _timeout(config)
    single, found = list_files(t, creds, timeout)
    files, skipped = _select(t, single, found)
    log_skipped([t.uri(f.path) for f in skipped])
    max_bytes = config.limits.max_file_size

    def download(rf: RemoteFile, dest: str) -> None:
        _download(t, rf, creds, store, dest, max_bytes, timeout)

    def client_error(exc: Exception, rf: RemoteFile) -> str | None:
        return explain(exc, t.uri(rf.path), creds, t.repo) if isinstance(exc, HttpError) else None

    how = Fetcher(uri=lambda rf: t.uri(rf.path), cache_key=_key, download=download, explain=client_error,
                  unsaveable=lambda rf: f"listed path {rf.path!r}", safe=_safe_rel)
    yield from fetch_objects(files, how, store, store.new_dir(), max_bytes, mappings, explicit=single)


def _key(rf: RemoteFile) -> str | None:
    return f"sha256-{rf.sha256}" if rf.sha256 else None


def _download(t: JfrogTarget, rf: RemoteFile, creds: Credentials | None, store: Store, dest: str,
              max_bytes: int, timeout: float) -> None:
    from .cache import publish
    from .objects import check_size

    uri = t.uri(rf.path)
    with store.partial() as partial:
        with store.bars.bar(uri, rf.size) as bar:
            got = download(t.url(rf.path), partial, max_bytes=max_bytes, headers=creds.headers if creds else None,
                           on_chunk=bar.advance, timeout=timeout)
        claimed = {"storage API": rf.sha256, "X-Checksum-Sha256": _sha256(got.headers.get("x-checksum-sha256"))}
        for source, sha in claimed.items():
            if sha and sha != got.sha256:
                raise SourceError(f"checksum mismatch for {uri}: Artifactory's {source} says sha256 {sha}, the "
                                  f"downloaded bytes hash to {got.sha256}; the file was not scanned", "MA-S016")
        if not any(claimed.values()):
            log.warning("Artifactory sent no sha256 for %s; the download could not be verified", uri)
        check_size(uri, got.size, rf.size, "MA-S016")
        publish(partial, store.keep_blob(f"sha256-{got.sha256}"), dest)


def plan(target: str, config: ScanConfig, cache_dir: str | None = None) -> list[dict[str, Any]]:
    """Dry-run rows for an Artifactory URL, from the storage API; downloads nothing."""
    from .objects import plan_row, plan_rows

    creds = credentials(config)
    try:
        t = parse(target)
        single, found = list_files(t, creds, _timeout(config))
        files, skipped = _select(t, single, found)
    except SourceError as exc:
        message = str(exc).replace(creds.secret, "***") if creds else str(exc)
        return [plan_row(redact_url(target), None, message)]
    return plan_rows(files, skipped, config, cache_dir, lambda rf: t.uri(rf.path), _key)
