"""S3 and Cloudflare R2 objects: s3://bucket/key, s3://bucket/prefix/ (every object below it) and
r2://bucket/key (the S3 API at AWS_ENDPOINT_URL, region "auto").

boto3 is imported lazily (extra `cloud`). Credentials come from boto3's default chain (environment
variables, shared credentials/config files, profiles); the endpoint from AWS_ENDPOINT_URL. Sizes and ETags
come from HEAD / ListObjectsV2 before anything is downloaded, so --max-size and --dry-run never fetch bytes.
Downloads land in the cache keyed by endpoint, bucket, key, ETag and size (see cache.py). A prefix fetches
only scannable files (selection.py); a key the user names is always fetched.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependency
from .http import TIMEOUT, SourceError, stall_timeout

if TYPE_CHECKING:
    from ..config import ScanConfig
    from ..walk import Entry
    from .cache import Store

SCHEMES = ("s3://", "r2://")
_CHUNK = 1 << 20
_DENIED = frozenset({"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
                     "ExpiredToken", "InvalidToken", "AccountProblem"})
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


def is_s3_target(target: str) -> bool:
    return target.startswith(SCHEMES)


@dataclass(frozen=True)
class S3Target:
    scheme: str  # "s3" or "r2"
    bucket: str
    key: str  # "" or ending in "/": a prefix

    @property
    def is_prefix(self) -> bool:
        return not self.key or self.key.endswith("/")

    def uri(self, key: str) -> str:
        return f"{self.scheme}://{self.bucket}/{key}"


@dataclass(frozen=True)
class S3Object:
    key: str
    rel: str  # path below the target (the file name for a single object)
    size: int | None
    etag: str | None


def parse(target: str) -> S3Target:
    scheme, _, rest = target.partition("://")
    bucket, _, key = rest.partition("/")
    if not bucket or any(c in bucket for c in "?#\\ "):
        raise SourceError(f"{target} does not name a bucket "
                          f"(expected {scheme}://BUCKET/KEY or {scheme}://BUCKET/PREFIX/)")
    return S3Target(scheme, bucket, key)


def client(scheme: str, timeout: float = TIMEOUT) -> Any:
    """A boto3 S3 client with the default credential chain; r2 needs AWS_ENDPOINT_URL and uses region auto.
    `timeout`: seconds a request may stall (http.stall_timeout)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise MissingDependency("boto3", "cloud", "S3 and R2 objects") from exc
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    kwargs: dict[str, Any] = {}
    if scheme == "r2":
        if not endpoint:
            raise SourceError("r2:// needs the account's S3 endpoint: set "
                              "AWS_ENDPOINT_URL=https://<account_id>.r2.cloudflarestorage.com")
        kwargs["region_name"] = "auto"
    config = Config(connect_timeout=min(timeout, 30), read_timeout=timeout,
                    retries={"max_attempts": 3, "mode": "standard"})
    try:
        return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config, **kwargs)
    except Exception as exc:  # noqa: BLE001 - bad profile, bad endpoint: a message, never a traceback
        raise SourceError(f"cannot set up the {scheme.upper()} client: {type(exc).__name__}: {exc}") from None


def _etag(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


def explain(exc: Exception, t: S3Target, key: str | None = None, cli: Any = None) -> str:
    """A user-facing message for a botocore error (no tracebacks, no credentials)."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    where = t.uri(key if key is not None else t.key)
    if isinstance(exc, NoCredentialsError):
        return (f"no credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE / ~/.aws/credentials)")
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach the {t.scheme.upper()} endpoint for {where}: {exc}"
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {}) or {}
        code = str(err.get("Code") or "")
        status = (exc.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode")
        if code in _DENIED or status == 403:
            return (f"access denied to {where} (HTTP 403{', ' + code if code and code != '403' else ''}): "
                    "check credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE) and bucket policy")
        if code == "NoSuchBucket" or (code in _NOT_FOUND and cli is not None and not _bucket_exists(cli, t)):
            return f"no such bucket: {t.bucket} (HTTP 404) for {where}"
        if code in _NOT_FOUND or status == 404:
            return f"no such key: {where} (HTTP 404)"
        return f"cannot read {where}: HTTP {status or '?'} {code} {err.get('Message') or ''}".rstrip()
    return f"cannot read {where}: {type(exc).__name__}: {exc}"


def _bucket_exists(cli: Any, t: S3Target) -> bool:
    try:
        cli.head_bucket(Bucket=t.bucket)
    except Exception as exc:  # noqa: BLE001
        response = getattr(exc, "response", None) or {}
        return str((response.get("Error") or {}).get("Code")) not in ("404", "NoSuchBucket", "NotFound")
    return True


def list_objects(t: S3Target, cli: Any) -> list[S3Object]:
    """The object (HEAD) or every object under the prefix (ListObjectsV2); raises SourceError."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if not t.is_prefix:
            try:
                head = cli.head_object(Bucket=t.bucket, Key=t.key)
            except ClientError as exc:
                code = str((exc.response.get("Error") or {}).get("Code"))
                if code not in _NOT_FOUND:
                    raise
                # s3://bucket/folder without the slash: scan the folder when it holds objects
                objects = _list(S3Target(t.scheme, t.bucket, t.key + "/"), cli)
                if objects:
                    return [S3Object(o.key, t.key.rsplit("/", 1)[-1] + "/" + o.rel, o.size, o.etag)
                            for o in objects]
                raise SourceError(explain(exc, t, cli=cli)) from None
            size = head.get("ContentLength")
            return [S3Object(t.key, t.key.rsplit("/", 1)[-1], size if isinstance(size, int) else None,
                             _etag(head.get("ETag")))]
        objects = _list(t, cli)
    except SourceError:
        raise
    except (ClientError, BotoCoreError) as exc:
        raise SourceError(explain(exc, t, cli=cli)) from None
    if not objects:
        raise SourceError(f"no objects under {t.uri(t.key)}")
    return objects


def _list(t: S3Target, cli: Any) -> list[S3Object]:
    out = []
    for page in cli.get_paginator("list_objects_v2").paginate(Bucket=t.bucket, Prefix=t.key):
        for item in page.get("Contents", []) or []:
            key = item.get("Key")
            if not isinstance(key, str) or key.endswith("/"):
                continue  # folder markers
            rel = key[len(t.key):]
            size = item.get("Size")
            out.append(S3Object(key, rel, size if isinstance(size, int) else None, _etag(item.get("ETag"))))
    return out


def cache_key(t: S3Target, obj: S3Object) -> str | None:
    """Cache name of an object version: hash of endpoint, bucket, key, ETag and size (None without an ETag)."""
    if not obj.etag or obj.size is None:
        return None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or t.scheme
    ident = "\n".join((endpoint, t.scheme, t.bucket, obj.key, obj.etag, str(obj.size)))
    return "s3etag-" + hashlib.sha256(ident.encode()).hexdigest()


def _safe_rel(rel: str) -> bool:
    return bool(rel) and not rel.startswith("/") and all(s not in ("", ".", "..") for s in rel.split("/"))


def _select(t: S3Target, objects: list[S3Object]) -> tuple[bool, list[S3Object], list[S3Object]]:
    """(single named object, objects to fetch, objects skipped as not scannable)."""
    from .selection import split_scannable

    if not t.is_prefix and len(objects) == 1 and objects[0].key == t.key:
        return True, objects, []
    keep, skip = split_scannable(objects, lambda o: o.key)
    if not keep:
        raise SourceError(f"no scannable files under {t.uri(t.key)} ({len(skip)} other object(s) not fetched)")
    return False, keep, skip


def fetch_entries(target: str, config: ScanConfig, store: Store, mappings: list[tuple[str, str]]) -> Iterator[Entry]:
    """Download the object(s) of an s3:// / r2:// target into the store as they are asked for; problems
    become entries at the URI."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ..walk import Entry
    from .cache import _place
    from .selection import log_skipped

    t = parse(target)
    cli = client(t.scheme, stall_timeout(config.limits.timeout))
    single, objects, skipped = _select(t, list_objects(t, cli))
    log_skipped([t.uri(o.key) for o in skipped])
    max_bytes = config.limits.max_file_size
    view = store.new_dir()
    wanted: list[tuple[S3Object, str]] = []
    for obj in objects:
        uri = t.uri(obj.key)
        if not _safe_rel(obj.rel):
            yield Entry(uri, True, f"object key {obj.key!r} cannot be saved as a file; not scanned", "MA-S010")
        elif max_bytes and obj.size is not None and obj.size > max_bytes:
            yield Entry(uri, True, f"File too large to download: {obj.size} bytes (max: {max_bytes}); "
                        "not scanned", "MA-S001")
        else:
            wanted.append((obj, os.path.join(view, *obj.rel.split("/"))))
    store.check_space_for([o.size for o, _ in wanted if not store.has(cache_key(t, o), o.size)])
    for obj, dest in wanted:
        uri = t.uri(obj.key)
        mappings.append((dest, uri))
        key = cache_key(t, obj)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            blob = store.blob_path(key)
            if blob is not None and store.has(key, obj.size):
                _place(blob, dest)
            else:
                _download(cli, t, obj, store, dest, store.keep_blob(key), max_bytes)
        except SourceError as exc:
            yield Entry(uri, True, str(exc), exc.rule_code)
            continue
        except (ClientError, BotoCoreError) as exc:
            yield Entry(uri, True, "cannot download: " + explain(exc, t, obj.key, cli), "MA-S010")
            continue
        except OSError as exc:
            yield Entry(uri, True, f"cannot download {uri}: {exc}", "MA-S010")
            continue
        yield Entry(dest, explicit=single)


def _download(cli: Any, t: S3Target, obj: S3Object, store: Store, dest: str, blob: str | None,
              max_bytes: int) -> None:
    from .cache import publish

    partial = store.new_partial()
    extra = {"IfMatch": f'"{obj.etag}"'} if obj.etag else {}
    try:
        resp = cli.get_object(Bucket=t.bucket, Key=obj.key, **extra)
        length = resp.get("ContentLength")
        if max_bytes and isinstance(length, int) and length > max_bytes:
            raise SourceError(f"File too large to download: {length} bytes (max: {max_bytes})", "MA-S001")
        body = resp["Body"]
        size = 0
        try:
            with open(partial, "wb") as out, store.bars.bar(t.uri(obj.key), obj.size) as bar:
                while True:
                    chunk = body.read(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if max_bytes and size > max_bytes:
                        raise SourceError(f"File too large to download: more than {max_bytes} bytes "
                                          f"(max: {max_bytes})", "MA-S001")
                    out.write(chunk)
                    bar.advance(len(chunk))
        finally:
            body.close()
        if obj.size is not None and size != obj.size:
            raise SourceError(f"download of {t.uri(obj.key)} was {size} bytes, expected {obj.size}")
        publish(partial, blob, dest)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def plan(target: str, config: ScanConfig, cache_dir: str | None = None) -> list[dict[str, Any]]:
    """Dry-run rows for an s3:// / r2:// target, from HEAD / list sizes; downloads nothing."""
    from .cache import default_cache_dir

    def row(path: str, size: int | None, skipped: str | None, download: bool = False) -> dict[str, Any]:
        return {"path": path, "size": size, "format": None, "scanners": [], "skipped": skipped,
                "download": download}

    from .selection import SKIPPED_REASON

    try:
        t = parse(target)
        _single, objects, skipped = _select(t, list_objects(t, client(t.scheme, stall_timeout(config.limits.timeout))))
    except (SourceError, MissingDependency) as exc:
        return [row(target, None, str(exc))]
    blobs = os.path.join(cache_dir or default_cache_dir(), "blobs")
    max_bytes = config.limits.max_file_size
    rows = []
    for obj in objects:
        if max_bytes and obj.size is not None and obj.size > max_bytes:
            rows.append(row(t.uri(obj.key), obj.size, f"too large to download (max: {max_bytes})"))
            continue
        key = cache_key(t, obj)
        blob = os.path.join(blobs, key) if key else None
        cached = bool(config.cache and blob and os.path.isfile(blob) and os.path.getsize(blob) == obj.size)
        rows.append(row(t.uri(obj.key), obj.size, None, not cached) | {"cached": cached})
    rows.extend(row(t.uri(o.key), o.size, SKIPPED_REASON) for o in skipped)
    return rows
