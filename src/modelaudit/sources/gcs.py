"""Google Cloud Storage objects: gs://bucket/key and gs://bucket/prefix/ (every scannable object below it).

google-cloud-storage is imported lazily (extra `cloud`). Credentials: GOOGLE_APPLICATION_CREDENTIALS (a
service-account or authorized-user file) or the other application default credentials (gcloud's ADC file,
the metadata server); without any, public buckets are read anonymously. STORAGE_EMULATOR_HOST points the
client at an emulator, which gets anonymous requests unless GOOGLE_APPLICATION_CREDENTIALS is set.
Sizes and generations come from the object metadata before anything is downloaded, so --max-size and
--dry-run never fetch bytes; the library checks each download against the object's CRC32C/MD5, and the
cache keys a download by bucket, name, generation and size (see cache.py).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependency
from .http import TIMEOUT, LimitedWriter, SourceError, stall_timeout
from .objects import BucketObject, BucketTarget, parse_bucket as parse

if TYPE_CHECKING:
    from ..config import ScanConfig
    from ..walk import Entry
    from .cache import Store

_READ_ONLY = ("https://www.googleapis.com/auth/devstorage.read_only",)
_CREDENTIALS_HINT = ("set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run "
                     "`gcloud auth application-default login`")


@dataclass
class Client:
    api: Any  # google.cloud.storage.Client
    anonymous: bool  # no credentials were found: only public objects are readable
    retry: Any
    timeout: tuple[float, float]


def client(timeout: float = TIMEOUT) -> Client:
    """A storage client with the application default credentials (anonymous when there are none);
    `timeout`: seconds a request may stall (http.stall_timeout)."""
    try:
        import google.auth
        from google.api_core.retry import Retry
        from google.auth.credentials import AnonymousCredentials
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import storage
        from google.cloud.storage.retry import DEFAULT_RETRY
    except ImportError as exc:
        raise MissingDependency("google-cloud-storage", "cloud", "Google Cloud Storage objects") from exc
    # transient failures are retried, but never for longer than one request may take
    retry: Retry = DEFAULT_RETRY.with_timeout(min(timeout, 30.0))
    timeouts = (min(timeout, 30.0), timeout)
    key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator and not key_file:
        return Client(storage.Client(project="modelaudit", credentials=AnonymousCredentials()), True, retry,
                      timeouts)
    try:
        credentials, project = google.auth.default(scopes=_READ_ONLY)
    except DefaultCredentialsError as exc:
        if key_file:
            raise SourceError(f"GOOGLE_APPLICATION_CREDENTIALS ({key_file}) cannot be used: {exc}") from None
        return Client(storage.Client(project="modelaudit", credentials=AnonymousCredentials()), True, retry,
                      timeouts)
    except Exception as exc:  # noqa: BLE001 - a broken credentials setup is a message, never a traceback
        raise SourceError(f"cannot load Google Cloud credentials: {type(exc).__name__}: {exc}") from None
    return Client(storage.Client(project=project or "modelaudit", credentials=credentials), False, retry,
                  timeouts)


def explain(exc: Exception, t: BucketTarget, cli: Client, key: str | None = None) -> str:
    """A user-facing message for a Google client error (no tracebacks, no tokens)."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as aexc

    where = t.uri(key if key is not None else t.key)
    if isinstance(exc, aexc.RefreshError):
        return (f"Google Cloud rejected the credentials for {where}: {_first_line(exc)}; check "
                "GOOGLE_APPLICATION_CREDENTIALS (or renew application default credentials)")
    if cli.anonymous and isinstance(exc, aexc.InvalidOperation):
        # a 401 makes the client refresh its credentials, which anonymous ones cannot do
        return (f"access denied to {where} (HTTP 401) without credentials: the object is not public; "
                f"{_CREDENTIALS_HINT}")
    if isinstance(exc, aexc.GoogleAuthError):
        return f"cannot authenticate to Google Cloud for {where}: {_first_line(exc)}"
    if isinstance(exc, (gexc.Unauthorized, gexc.Forbidden)):
        status = 401 if isinstance(exc, gexc.Unauthorized) else 403
        if cli.anonymous:
            return (f"access denied to {where} (HTTP {status}) without credentials: the object is not public; "
                    f"{_CREDENTIALS_HINT}")
        return (f"access denied to {where} (HTTP {status}): the credentials lack storage.objects.get / "
                "storage.objects.list on this bucket; check GOOGLE_APPLICATION_CREDENTIALS and the bucket's IAM")
    if isinstance(exc, gexc.NotFound):
        if not _bucket_exists(cli, t):
            return f"no such bucket: {t.bucket} (HTTP 404) for {where}"
        return f"no such object: {where} (HTTP 404)"
    if isinstance(exc, gexc.RetryError):
        return f"cannot reach Google Cloud Storage for {where}: {_first_line(exc.cause or exc)}"
    if isinstance(exc, gexc.GoogleAPICallError):
        return f"cannot read {where}: HTTP {exc.code} {exc.message}".rstrip()
    return f"cannot read {where}: {type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _bucket_exists(cli: Client, t: BucketTarget) -> bool:
    from google.api_core import exceptions as gexc

    try:
        return cli.api.lookup_bucket(t.bucket, timeout=cli.timeout, retry=cli.retry) is not None
    except gexc.GoogleAPICallError:
        return True  # may read objects without bucket metadata rights: say "no such object" then


def list_objects(t: BucketTarget, cli: Client) -> list[BucketObject]:
    """The object, or every object under the prefix; raises SourceError with a clear message."""
    try:
        if not t.is_prefix:
            blob = cli.api.bucket(t.bucket).get_blob(t.key, timeout=cli.timeout, retry=cli.retry)
            if blob is not None:
                return [BucketObject(blob.name, t.key.rsplit("/", 1)[-1], blob.size, blob.generation)]
            # gs://bucket/folder without the slash: scan the folder when it holds objects
            objects = _list(t.as_prefix(), cli)
            if objects:
                name = t.key.rsplit("/", 1)[-1]
                return [BucketObject(o.key, f"{name}/{o.rel}", o.size, o.version) for o in objects]
            if not _bucket_exists(cli, t):
                raise SourceError(f"no such bucket: {t.bucket} (HTTP 404) for {t.uri(t.key)}")
            raise SourceError(f"no such object: {t.uri(t.key)} (HTTP 404)")
        objects = _list(t, cli)
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - translated at the boundary
        raise SourceError(explain(exc, t, cli)) from None
    if not objects:
        raise SourceError(f"no objects under {t.uri(t.key)}")
    return objects


def _list(t: BucketTarget, cli: Client) -> list[BucketObject]:
    out = []
    for blob in cli.api.list_blobs(t.bucket, prefix=t.key, timeout=cli.timeout, retry=cli.retry):
        if not isinstance(blob.name, str) or blob.name.endswith("/"):
            continue  # folder placeholders
        out.append(BucketObject(blob.name, blob.name[len(t.key):], blob.size, blob.generation))
    return out


def cache_key(t: BucketTarget, obj: BucketObject) -> str | None:
    """Cache name of an object version: a generation is never reused for other content."""
    if obj.version is None or obj.size is None:
        return None
    endpoint = os.environ.get("STORAGE_EMULATOR_HOST") or "gs"
    ident = "\n".join((endpoint, t.bucket, obj.key, str(obj.version), str(obj.size)))
    return "gcsgen-" + hashlib.sha256(ident.encode()).hexdigest()


def fetch_entries(target: str, config: ScanConfig, store: Store,
                  mappings: list[tuple[str, str]]) -> Iterator[Entry]:
    """Download the object(s) of a gs:// target as they are asked for; problems become entries at the URI."""
    from .objects import Fetcher, fetch_bucket

    t = parse(target)
    cli = client(stall_timeout(config.limits.timeout))
    max_bytes = config.limits.max_file_size

    def client_error(exc: Exception, obj: BucketObject) -> str | None:
        # the client raises many kinds; system errors (OSError) are worded by the shared loop
        return None if isinstance(exc, OSError) else explain(exc, t, cli, obj.key)

    how = Fetcher(uri=lambda o: t.uri(o.key), cache_key=lambda o: cache_key(t, o),
                  download=lambda o, dest: _download(cli, t, o, store, dest, max_bytes), explain=client_error,
                  unsaveable=lambda o: f"object name {o.key!r}")
    yield from fetch_bucket(t, list_objects(t, cli), how, store, max_bytes, mappings)


def _download(cli: Client, t: BucketTarget, obj: BucketObject, store: Store, dest: str, max_bytes: int) -> None:
    from google.resumable_media.common import DataCorruption

    from .cache import publish
    from .objects import check_size

    with store.partial() as partial:
        remote = cli.api.bucket(t.bucket).blob(obj.key)
        with open(partial, "wb") as out, store.bars.bar(t.uri(obj.key), obj.size) as bar:
            sink = LimitedWriter(out, max_bytes, bar.advance)  # the file object the client writes into
            try:
                # the listed generation: an object replaced meanwhile fails instead of mixing versions
                remote.download_to_file(sink, if_generation_match=obj.version, timeout=cli.timeout,
                                        retry=cli.retry, checksum="auto")
            except DataCorruption:
                raise SourceError(f"download of {t.uri(obj.key)} does not match the checksum Google Cloud "
                                  "Storage reported; not scanned") from None
        check_size(t.uri(obj.key), sink.size, obj.size)
        publish(partial, store.keep_blob(cache_key(t, obj)), dest)


def plan(target: str, config: ScanConfig, cache_dir: str | None = None) -> list[dict[str, Any]]:
    """Dry-run rows for a gs:// target, from the object metadata; downloads nothing."""
    from .objects import plan_row, plan_rows, select_bucket_objects

    try:
        t = parse(target)
        _single, objects, skipped = select_bucket_objects(
            t, list_objects(t, client(stall_timeout(config.limits.timeout))))
    except (SourceError, MissingDependency) as exc:
        return [plan_row(target, None, str(exc))]
    return plan_rows(objects, skipped, config, cache_dir, lambda o: t.uri(o.key), lambda o: cache_key(t, o))
