"""MLflow model registry targets: models:/NAME/VERSION, models:/NAME/latest (any case), models:/NAME/STAGE
and models:/NAME@ALIAS.

The registry is --registry-uri (ScanConfig.registry_uri), else MLFLOW_REGISTRY_URI, else MLFLOW_TRACKING_URI.
A --registry-uri is used as the tracking URI too: files of a proxied artifact store (mlflow-artifacts:/) are
served by the tracking server, and the client cannot fetch them with a registry URI alone. With no URI at
all the scan stops with a message; letting the client fall back to its default local store would create
./mlflow.db in the working directory. Basic auth comes from MLFLOW_TRACKING_USERNAME and
MLFLOW_TRACKING_PASSWORD (or a bearer MLFLOW_TRACKING_TOKEN), which the client reads itself.

The mlflow client (extra `mlflow`) is imported lazily. The version is resolved once; its files are listed
with their sizes (so --max-size and --dry-run fetch nothing) and downloaded one at a time into a folder of
the scan. The registry gives no content hash, and the files behind a version can be rewritten in place, so
an unchanged name and version do not prove unchanged bytes. Files the tracking server serves over HTTP
(mlflow-artifacts:/, the proxied store) are therefore cached by what the server says of each file: one HEAD
(the client's credentials and timeouts) gives its ETag, which the server derives from the stored file's
modification time and size, so a rewrite changes it; the cache key hashes artifact URL, ETag and length
(`mlflow-…`), and a file without an ETag is not cached. Those files are downloaded by a plain GET with the
same credentials and kept only when a second HEAD after it gives the same key (the GET's own ETag is of
another kind and cannot be compared). Files in S3 (or S3-compatible storage) are fetched by the client and
cached the same way, keyed by the object's ETag and length from HEADs made with the client's S3 client.
Other artifact stores (local paths, Azure, GCS …) are fetched by the client and never cached.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependency
from .http import LimitedWriter, SourceError, refuse_announced

if TYPE_CHECKING:
    from ..config import ScanConfig
    from ..walk import Entry
    from .cache import Store

SCHEME = "models:/"
#: a version's artifact folder is walked at most this deep and this wide
_MAX_DEPTH = 8
_MAX_FILES = 10_000
_SEGMENT = re.compile(r"^[^/@]+$")
_CHUNK = 1 << 20


def is_mlflow_target(target: str) -> bool:
    return target.startswith(SCHEME)


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str | None = None  # a number
    alias: str | None = None
    stage: str | None = None  # "latest" or a stage name (Production, Staging …)
    uri: str = ""  # as the user wrote it: findings are located below it

    def describe(self) -> str:
        if self.alias:
            return f"alias @{self.alias} of registered model {self.name!r}"
        if self.version:
            return f"version {self.version} of registered model {self.name!r}"
        if self.stage == "latest":
            return f"the latest version of registered model {self.name!r}"
        return f"the {self.stage} version of registered model {self.name!r}"


def parse(target: str) -> ModelRef:
    uri = target.rstrip("/")
    rest = uri[len(SCHEME):]
    usage = (f"{target} is not a registered model URI (expected models:/NAME/VERSION, models:/NAME/latest "
             "or models:/NAME@ALIAS)")
    if rest.startswith("/"):  # models://profile@host/… names a Databricks workspace profile
        raise SourceError(usage)
    if "/" not in rest and "@" in rest:
        name, _, alias = rest.rpartition("@")
        if _SEGMENT.match(name) and _SEGMENT.match(alias):
            return ModelRef(name, alias=alias, uri=uri)
        raise SourceError(usage)
    name, _, ref = rest.partition("/")
    if not (_SEGMENT.match(name) and _SEGMENT.match(ref)):
        raise SourceError(usage)
    if ref.isdigit():
        return ModelRef(name, version=str(int(ref)), uri=uri)
    return ModelRef(name, stage="latest" if ref.lower() == "latest" else ref, uri=uri)


def server_uris(config: ScanConfig) -> tuple[str, str]:
    """(tracking URI, registry URI) for this scan; raises SourceError when none is configured."""
    if config.registry_uri:
        return config.registry_uri, config.registry_uri
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    registry = os.environ.get("MLFLOW_REGISTRY_URI", "").strip() or tracking
    if not registry:
        raise SourceError("models:/ targets need an MLflow server: set MLFLOW_TRACKING_URI=http://HOST:PORT "
                          "or pass --registry-uri URI")
    return tracking or registry, registry


def secrets() -> list[str]:
    """Values that must never appear in output."""
    return [v for v in (os.environ.get("MLFLOW_TRACKING_PASSWORD"), os.environ.get("MLFLOW_TRACKING_TOKEN")) if v]


@contextmanager
def _client_settings(config: ScanConfig) -> Iterator[None]:
    """Bounded retries and timeouts (the client's defaults retry an unreachable server for minutes) and no
    progress bars of the client's own; the user's explicit settings win. Restored afterwards."""
    wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
              "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(min(max(config.limits.timeout, 10), 120))),
              "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    added = [k for k in wanted if k not in os.environ]
    for key in added:
        os.environ[key] = wanted[key]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation notices about stages are not the user's concern
            yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _import_client() -> tuple[Any, Any]:
    try:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise MissingDependency("mlflow", "mlflow", "MLflow registry models (models:/)") from exc
    return MlflowClient, get_artifact_repository


def _explain(exc: Exception, ref: ModelRef, registry: str, client: Any = None) -> str:
    """A user-facing message for a failed registry or artifact call (no traceback, no credentials)."""
    from .http import redact_url

    server = redact_url(registry) if "://" in registry else registry
    text = str(exc)
    code = str(getattr(exc, "error_code", "") or "")
    if re.search(r"\b401\b", text) or code == "UNAUTHENTICATED":
        if os.environ.get("MLFLOW_TRACKING_USERNAME") or os.environ.get("MLFLOW_TRACKING_TOKEN"):
            return (f"the MLflow server at {server} rejected the credentials (HTTP 401): check "
                    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)")
        return (f"the MLflow server at {server} needs credentials (HTTP 401): set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)")
    if re.search(r"\b403\b", text) or code == "PERMISSION_DENIED":
        return f"permission denied by the MLflow server at {server} for {ref.describe()} (HTTP 403)"
    if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or (code == "INVALID_PARAMETER_VALUE" and ref.alias):
        if client is not None and not _model_exists(client, ref.name):
            return f"no registered model named {ref.name!r} in the MLflow registry at {server}"
        if ref.alias:
            return f"registered model {ref.name!r} has no alias {ref.alias!r} (registry {server})"
        if ref.version:
            return f"registered model {ref.name!r} has no version {ref.version} (registry {server})"
        return f"{ref.describe()} was not found in the MLflow registry at {server}"
    if "Max retries exceeded" in text or "Connection refused" in text or "NewConnectionError" in text:
        return f"cannot reach the MLflow server at {server}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"MLflow registry {server} could not give {ref.describe()}: {first[:300]}"


def _model_exists(client: Any, name: str) -> bool:
    try:
        client.get_registered_model(name)
    except Exception as exc:  # noqa: BLE001 - only a clear "does not exist" counts as missing
        return str(getattr(exc, "error_code", "")) not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
    return True


def _resolve(client: Any, ref: ModelRef) -> Any:
    """The ModelVersion the reference names."""
    if ref.alias:
        return client.get_model_version_by_alias(ref.name, ref.alias)
    if ref.version:
        return client.get_model_version(ref.name, ref.version)
    versions = client.get_latest_versions(ref.name, None if ref.stage == "latest" else [ref.stage])
    if not versions:
        if ref.stage == "latest":
            raise SourceError(f"registered model {ref.name!r} has no versions")
        raise SourceError(f"registered model {ref.name!r} has no version in stage {ref.stage!r}")
    return max(versions, key=lambda v: int(v.version))


@dataclass(frozen=True)
class Artifact:
    path: str  # below the version's artifact root, "/"-separated
    size: int | None

    @property
    def rel(self) -> str:  # where it lands below the scan's folder: the same path
        return self.path


def _list(repo: Any, path: str | None = None, depth: int = 0, out: list[Artifact] | None = None) -> list[Artifact]:
    out = [] if out is None else out
    for info in repo.list_artifacts(path):
        if len(out) >= _MAX_FILES:
            raise SourceError(f"more than {_MAX_FILES} files in the model version; not scanned")
        if info.is_dir:
            if depth + 1 >= _MAX_DEPTH:
                raise SourceError(f"artifact folders nested deeper than {_MAX_DEPTH} levels; not scanned")
            _list(repo, info.path, depth + 1, out)
        else:
            size = info.file_size
            out.append(Artifact(info.path, int(size) if isinstance(size, int) else None))
    return out


@dataclass
class Version:
    ref: ModelRef
    version: str
    repo: Any
    files: list[Artifact]


def open_version(target: str, config: ScanConfig) -> Version:
    """Resolve the reference and list the version's files; raises SourceError / MissingDependency."""
    ref = parse(target)
    tracking, registry = server_uris(config)
    client_cls, get_repo = _import_client()
    hidden = secrets()
    with _client_settings(config):
        client = client_cls(tracking_uri=tracking, registry_uri=registry)
        try:
            mv = _resolve(client, ref)
            location = client.get_model_version_download_uri(ref.name, mv.version)
            repo = get_repo(location, tracking_uri=tracking, registry_uri=registry)
            files = _list(repo)
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated into a message at this boundary
            raise SourceError(_redact(_explain(exc, ref, registry, client), hidden)) from None
    if not files:
        raise SourceError(f"{ref.describe()} has no files")
    return Version(ref, str(mv.version), repo, files)


def _redact(text: str, hidden: list[str]) -> str:
    for value in hidden:
        text = text.replace(value, "***")
    return text


def fetch_entries(target: str, config: ScanConfig, store: Store, mappings: list[tuple[str, str]]) -> Iterator[Entry]:
    """Download the files of a registered model version as the scan asks for them; problems become entries
    located at models:/… URIs."""
    from .objects import Fetcher, fetch_objects
    from .selection import log_skipped, split_scannable

    found = open_version(target, config)
    ref, hidden = found.ref, secrets()
    view = store.new_dir()
    mappings.append((view, ref.uri))
    max_bytes = config.limits.max_file_size
    keep, skipped = split_scannable(found.files, lambda a: a.path)
    log_skipped([f"{ref.uri}/{a.path}" for a in skipped])
    if not keep:
        raise SourceError(f"no scannable files in {ref.describe()} ({len(skipped)} other file(s) not fetched)")

    def download(art: Artifact, dest: str) -> None:
        # the client picks the file name below dst_path itself; it must be the one the scan expects
        with _client_settings(config), store.bars.bar(f"{ref.uri}/{art.path}", art.size) as bar:
            got = found.repo.download_artifacts(art.path, dst_path=view)
            size = os.path.getsize(got)
            bar.advance(size)
        if os.path.realpath(got) != os.path.realpath(dest):
            raise SourceError(f"the client saved {art.path} outside the scan folder; not scanned")
        if max_bytes and size > max_bytes:
            os.unlink(dest)
            raise SourceError(f"File too large to scan: {size} bytes (max: {max_bytes})", "MA-S001")

    def any_error(exc: Exception, _art: Artifact) -> str:
        return _redact(_explain(exc, ref, server_uris(config)[1]), hidden)

    keyed = _keyed_store(found.repo, config, store.cache)

    def cache_key_of(art: Artifact) -> str | None:  # other stores: nothing tells whether the bytes changed
        return keyed.cache_key(art) if keyed is not None else None

    def fetch(art: Artifact, dest: str) -> None:
        if isinstance(keyed, Proxied):
            keyed.download(art, dest, store, max_bytes, f"{ref.uri}/{art.path}")
        elif isinstance(keyed, S3Stored):
            keyed.download(art, dest, store, download)
        else:
            download(art, dest)

    how = Fetcher(uri=lambda a: f"{ref.uri}/{a.path}", cache_key=cache_key_of, download=fetch,
                  explain=any_error, unsaveable=lambda a: f"artifact path {a.path!r}")
    yield from fetch_objects(keep, how, store, view, max_bytes, mappings)


def _keyed_store(repo: Any, config: ScanConfig, cache: bool) -> Proxied | S3Stored | None:
    """What gives the version's files cache keys: the server's HTTP proxy or S3; None for other stores."""
    served = _inner_repo(repo, "http")
    if served is not None:
        return Proxied(served.artifact_uri, config, cache)
    in_s3 = _inner_repo(repo, "s3")
    return S3Stored(in_s3, config, cache) if in_s3 is not None else None


def _inner_repo(repo: Any, kind: str) -> Any:
    """The repository below models:/ and runs:/ wrappers when it is of `kind`: "http" (the tracking server's
    mlflow-artifacts:/ proxy or an http(s):// root) or "s3"; None otherwise."""
    if kind == "http":
        from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository as wanted
    else:
        from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository as wanted

    for _ in range(4):
        if isinstance(repo, wanted):
            return repo
        repo = getattr(repo, "repo", None)
    return None


def cache_key(url: str, headers: Mapping[str, str]) -> str | None:
    """Cache name of an HTTP-served artifact: hash of its URL, ETag and length (None without both)."""
    etag, length = headers.get("ETag"), headers.get("Content-Length", "")
    if not etag or not length.isdigit():
        return None
    return "mlflow-" + hashlib.sha256("\n".join((url, etag, str(int(length)))).encode()).hexdigest()


class _KeyedByHead:
    """Cache keys from one HEAD per file (remembered; a download compares a second HEAD with it)."""

    cache: bool  # False with --no-cache: no HEAD, nothing taken from the cache
    keys: dict[str, str | None]

    def cache_key(self, art: Artifact) -> str | None:
        if not self.cache:
            return None
        if art.path not in self.keys:
            self.keys[art.path] = self._head(art)
        return self.keys[art.path]

    def _head(self, art: Artifact) -> str | None:
        raise NotImplementedError


@dataclass
class Proxied(_KeyedByHead):
    """The files of an HTTP-served artifact root, asked for with the client's credentials and timeouts."""

    root: str  # http(s)://…/api/2.0/mlflow-artifacts/artifacts/…: where the version's files are
    config: ScanConfig
    cache: bool  # False with --no-cache: no HEAD, nothing taken from the cache
    keys: dict[str, str | None] = field(default_factory=dict)  # one HEAD per file

    def url(self, path: str) -> str:
        return f"{self.root.rstrip('/')}/{path}"

    def _request(self, path: str, method: str, **kwargs: Any) -> Any:
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.request_utils import augmented_raise_for_status
        from mlflow.utils.rest_utils import http_request

        # the client's own request: its basic auth or token, retries and MLFLOW_HTTP_REQUEST_TIMEOUT
        resp = http_request(get_default_host_creds(self.root), "/" + path, method, **kwargs)
        augmented_raise_for_status(resp)
        return resp

    def _head(self, art: Artifact) -> str | None:
        try:
            with _client_settings(self.config):
                return cache_key(self.url(art.path), self._request(art.path, "HEAD").headers)
        except Exception:  # noqa: BLE001 - not cached; the download says what is wrong
            return None

    def download(self, art: Artifact, dest: str, store: Store, max_bytes: int, uri: str) -> None:
        """GET the file and keep it under the key of the HEAD before, if a HEAD after still gives that key:
        the server's GET carries an ETag of another kind, so the HEADs prove the bytes were not rewritten
        in between."""
        from .cache import publish
        from .objects import check_size

        with store.partial() as partial, _client_settings(self.config):
            with self._request(art.path, "GET", stream=True) as resp:
                refuse_announced(resp.headers.get("Content-Length", ""), max_bytes)
                with open(partial, "wb") as out, store.bars.bar(uri, art.size) as bar:
                    writer = LimitedWriter(out, max_bytes, bar.advance)
                    for chunk in resp.iter_content(_CHUNK):
                        writer.write(chunk)
                size = writer.size
            check_size(uri, size, art.size)
            key = self.cache_key(art)
            if key is not None and (store.stream or self._head(art) != key):
                key = None
            publish(partial, store.keep_blob(key), dest)


@dataclass
class S3Stored(_KeyedByHead):
    """The files of an S3 artifact root (s3://, or S3-compatible storage through MLFLOW_S3_ENDPOINT_URL),
    downloaded by the client and cached under a key of each object's ETag and length, from a HEAD made with
    the client's own S3 client (endpoint, credentials)."""

    repo: Any  # mlflow's S3ArtifactRepository
    config: ScanConfig
    cache: bool
    keys: dict[str, str | None] = field(default_factory=dict)

    def _head(self, art: Artifact) -> str | None:
        try:
            bucket, prefix = self.repo.parse_s3_compliant_uri(self.repo.artifact_uri)
            key = posixpath.join(prefix, art.path)
            with _client_settings(self.config):
                head = self.repo._get_s3_client().head_object(Bucket=bucket, Key=key)
            headers = {"ETag": head["ETag"], "Content-Length": str(head["ContentLength"])}
            return cache_key(f"s3://{bucket}/{key}", headers)
        except Exception:  # noqa: BLE001 - not cached; the download says what is wrong
            return None

    def download(self, art: Artifact, dest: str, store: Store,
                 client_download: Callable[[Artifact, str], None]) -> None:
        """The client's download, kept under the key of the HEAD before it when a HEAD after gives the same key
        (the object was not rewritten in between)."""
        from .cache import publish

        key = self.cache_key(art)
        client_download(art, dest)
        if key is None or store.stream or self._head(art) != key:
            return
        with store.partial() as partial:
            os.replace(dest, partial)
            publish(partial, store.keep_blob(key), dest)


def plan(target: str, config: ScanConfig, cache_dir: str | None = None) -> list[dict[str, Any]]:
    """Dry-run rows from the version's file listing: to download, already cached (by the same HEAD a scan
    makes) or left out; downloads nothing."""
    from .objects import plan_row, plan_rows
    from .selection import split_scannable

    try:
        found = open_version(target, config)
    except (SourceError, MissingDependency) as exc:
        return [plan_row(target, None, str(exc))]
    keep, skipped = split_scannable(found.files, lambda a: a.path)
    keyed = _keyed_store(found.repo, config, config.cache)
    return plan_rows(keep, skipped, config, cache_dir, lambda a: f"{found.ref.uri}/{a.path}",
                     lambda a: keyed.cache_key(a) if keyed is not None else None)
