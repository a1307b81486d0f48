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
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependency
from .http import TIMEOUT, LimitedWriter, SourceError, refuse_announced, stall_timeout
from .objects import BucketObject, BucketTarget, parse_bucket as parse

if TYPE_CHECKING:
    from ..config import ScanConfig
    from ..walk import Entry
    from .cache import Store

SCHEMES = ("s3://", "r2://")
_DENIED = frozenset({"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
                     "ExpiredToken", "InvalidToken", "AccountProblem"})
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


def is_s3_target(target: str) -> bool:
    return target.startswith(SCHEMES)


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


def explain(exc: Exception, t: BucketTarget, key: str | None = None, cli: Any = None) -> str:
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


def _bucket_exists(cli: Any, t: BucketTarget) -> bool:
    try:
        cli.head_bucket(Bucket=t.bucket)
    except Exception as exc:  # noqa: BLE001
        response = getattr(exc, "response", None) or {}
        return str((response.get("Error") or {}).get("Code")) not in ("404", "NoSuchBucket", "NotFound")
    return True


def list_objects(t: BucketTarget, cli: Any) -> list[BucketObject]:
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
                objects = _list(t.as_prefix(), cli)
                if objects:
                    return [BucketObject(o.key, t.key.rsplit("/", 1)[-1] + "/" + o.rel, o.size, o.version)
                            for o in objects]
                raise SourceError(explain(exc, t, cli=cli)) from None
            size = head.get("ContentLength")
            return [BucketObject(t.key, t.key.rsplit("/", 1)[-1], size if isinstance(size, int) else None,
                             _etag(head.get("ETag")))]
        objects = _list(t, cli)
    except SourceError:
        raise
    except (ClientError, BotoCoreError) as exc:
        raise SourceError(explain(exc, t, cli=cli)) from None
    if not objects:
        raise SourceError(f"no objects under {t.uri(t.key)}")
    return objects


def _list(t: BucketTarget, cli: Any) -> list[BucketObject]:
    out = []
    for page in cli.get_paginator("list_objects_v2").paginate(Bucket=t.bucket, Prefix=t.key):
        for item in page.get("Contents", []) or []:
            key = item.get("Key")
            if not isinstance(key, str) or key.endswith("/"):
                continue  # folder markers
            rel = key[len(t.key):]
            size = item.get("Size")
            out.append(BucketObject(key, rel, size if isinstance(size, int) else None, _etag(item.get("ETag"))))
    return out


def cache_key(t: BucketTarget, obj: BucketObject) -> str | None:
    """Cache name of an object version: hash of endpoint, bucket, key, ETag and size (None without an ETag)."""
    if not obj.version or obj.size is None:
        return None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or t.scheme
    ident = "\n".join((endpoint, t.scheme, t.bucket, obj.key, str(obj.version), str(obj.size)))
    return "s3etag-" + hashlib.sha256(ident.encode()).hexdigest()


def fetch_entries(target: str, config: ScanConfig, store: Store, mappings: list[tuple[str, str]]) -> Iterator[Entry]:
    """Download the object(s) of an s3:// / r2:// target into the store as they are asked for; problems
    become entries at the URI."""
    from botocore.exceptions import BotoCoreError, ClientError

    from .objects import Fetcher, fetch_bucket

    t = parse(target)
    cli = client(t.scheme, stall_timeout(config.limits.timeout))
    max_bytes = config.limits.max_file_size

    def client_error(exc: Exception, obj: BucketObject) -> str | None:
        return explain(exc, t, obj.key, cli) if isinstance(exc, (ClientError, BotoCoreError)) else None

    how = Fetcher(uri=lambda o: t.uri(o.key), cache_key=lambda o: cache_key(t, o),
                  download=lambda o, dest: _download(cli, t, o, store, dest, max_bytes), explain=client_error,
                  unsaveable=lambda o: f"object key {o.key!r}")
    yield from fetch_bucket(t, list_objects(t, cli), how, store, max_bytes, mappings)


def _download(cli: Any, t: BucketTarget, obj: BucketObject, store: Store, dest: str, max_bytes: int) -> None:
    from .cache import publish
    from .objects import check_size

    extra = {"IfMatch": f'"{obj.version}"'} if obj.version else {}
    with store.partial() as partial:
        resp = cli.get_object(Bucket=t.bucket, Key=obj.key, **extra)
        length = resp.get("ContentLength")
        refuse_announced(length if isinstance(length, int) else None, max_bytes)
        body = resp["Body"]
        try:
            with open(partial, "wb") as out, store.bars.bar(t.uri(obj.key), obj.size) as bar:
                size = LimitedWriter(out, max_bytes, bar.advance).copy(body.read)
        finally:
            body.close()
        check_size(t.uri(obj.key), size, obj.size)
        publish(partial, store.keep_blob(cache_key(t, obj)), dest)


def plan(target: str, config: ScanConfig, cache_dir: str | None = None) -> list[dict[str, Any]]:
    """Dry-run rows for an s3:// / r2:// target, from HEAD / list sizes; downloads nothing."""
    from .objects import plan_row, plan_rows, select_bucket_objects

    try:
        t = parse(target)
        _single, objects, skipped = select_bucket_objects(
            t, list_objects(t, client(t.scheme, stall_timeout(config.limits.timeout))))
    except (SourceError, MissingDependency) as exc:
        return [plan_row(target, None, str(exc))]
    return plan_rows(objects, skipped, config, cache_dir, lambda o: t.uri(o.key), lambda o: cache_key(t, o))
