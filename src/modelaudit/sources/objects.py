"""Fetching the files of a remote listing: the part the object sources share (S3/R2, GCS, Artifactory,
MLflow). Before any download every listed object is checked for a name that can be saved below the scan
folder, against --max-size and, all together, against the free disk space; then each is taken from the
cache or downloaded when the scan asks for it, and a failure becomes an entry located at its URI. A source
keeps what is its own: listing, client, credentials, the download itself and the wording of its errors,
which it hands over as a `Fetcher`. The dry run's rows come from the same listing (`plan_rows`). The bucket
stores (s3://, r2://, gs://) also share their target, their listing record and the choice of what to fetch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .http import SourceError

if TYPE_CHECKING:
    from ..config import ScanConfig
    from ..walk import Entry
    from .cache import Store


class Listed(Protocol):
    """What the shared steps read from a source's listing record."""

    @property
    def rel(self) -> str: ...  # "/"-separated path below the target: where the file lands

    @property
    def size(self) -> int | None: ...  # as listed (None: unknown)


T = TypeVar("T", bound=Listed)


def safe_rel(rel: str) -> bool:
    """A relative path that stays below the folder it is joined to (no "", "." or ".." segment)."""
    return bool(rel) and not rel.startswith("/") and all(s not in ("", ".", "..") for s in rel.split("/"))


@dataclass(frozen=True)
class Fetcher(Generic[T]):
    """One source's answers about the objects it listed."""

    uri: Callable[[T], str]  # how findings name the object
    cache_key: Callable[[T], str | None]  # its name in the cache (cache.py); None: never taken from it
    download: Callable[[T, str], None]  # fetch it to the path; a bad download raises SourceError
    explain: Callable[[Exception, T], str | None]  # a client error in words; None: not the client's
    unsaveable: Callable[[T], str]  # how the finding for an unsafe name quotes it: "object key '../x'"
    safe: Callable[[str], bool] = safe_rel  # which relative paths may be saved


def fetch_objects(objects: Sequence[T], how: Fetcher[T], store: Store, view: str, max_bytes: int,
                  mappings: list[tuple[str, str]], explicit: bool = False) -> Iterator[Entry]:
    """Entries for the objects, each placed below `view` (from the cache or downloaded) only when the scan
    asks for it; every problem is an entry at the object's URI. `explicit`: the user named the object."""
    from ..walk import Entry
    from .cache import _place

    wanted: list[tuple[T, str]] = []
    for obj in objects:
        uri = how.uri(obj)
        if not how.safe(obj.rel):
            yield Entry(uri, True, f"{how.unsaveable(obj)} cannot be saved as a file; not scanned", "MA-S010")
        elif max_bytes and obj.size is not None and obj.size > max_bytes:
            yield Entry(uri, True, f"File too large to download: {obj.size} bytes (max: {max_bytes}); not scanned",
                        "MA-S001")
        else:
            wanted.append((obj, os.path.join(view, *obj.rel.split("/"))))
    # before the first download, for all of them (with --stream the largest); cache hits need no room
    store.check_space_for([o.size for o, _ in wanted if not store.has(how.cache_key(o), o.size)])
    for obj, dest in wanted:
        uri = how.uri(obj)
        mappings.append((dest, uri))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        key = how.cache_key(obj)
        try:
            blob = store.blob_path(key)
            if blob is not None and store.has(key, obj.size):
                _place(blob, dest)
            else:
                how.download(obj, dest)
        except SourceError as exc:
            yield Entry(uri, True, str(exc), exc.rule_code)
            continue
        except Exception as exc:  # noqa: BLE001 - the source says which errors are its client's
            message = _failure(exc, how, obj, uri)
            if message is None:
                raise  # neither the client's nor the system's: the whole target fails (sources._guarded)
            yield Entry(uri, True, message, "MA-S010")
            continue
        yield Entry(dest, explicit=explicit)


def _failure(exc: Exception, how: Fetcher[T], obj: T, uri: str) -> str | None:
    """The finding's message for a failed download, or None for an error of neither the client nor the system."""
    said = how.explain(exc, obj)
    if said is not None:
        return "cannot download: " + said
    if isinstance(exc, OSError):  # urllib's URLError keeps the cause in .reason
        return f"cannot download {uri}: {getattr(exc, 'reason', None) or exc}"
    return None


def check_size(uri: str, got: int, listed: int | None, rule_code: str = "MA-S010") -> None:
    """A download must be as long as the listing said."""
    if listed is not None and got != listed:
        raise SourceError(f"download of {uri} was {got} bytes, expected {listed}", rule_code)


# --- buckets (s3://, r2://, gs://) -------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketTarget:
    scheme: str  # "s3", "r2" or "gs"
    bucket: str
    key: str  # "" or ending in "/": a prefix

    @property
    def is_prefix(self) -> bool:
        return not self.key or self.key.endswith("/")

    def uri(self, key: str) -> str:
        return f"{self.scheme}://{self.bucket}/{key}"

    def as_prefix(self) -> BucketTarget:
        """bucket/folder named without its slash, read as the folder."""
        return replace(self, key=self.key + "/")


@dataclass(frozen=True)
class BucketObject:
    key: str
    rel: str  # path below the target (the file name for a single object)
    size: int | None
    version: int | str | None  # the GCS generation or the S3 ETag: downloads insist on it, the cache keys by it


def parse_bucket(target: str) -> BucketTarget:
    scheme, _, rest = target.partition("://")
    bucket, _, key = rest.partition("/")
    if not bucket or any(c in bucket for c in "?#\\ "):
        raise SourceError(f"{target} does not name a bucket "
                          f"(expected {scheme}://BUCKET/KEY or {scheme}://BUCKET/PREFIX/)")
    return BucketTarget(scheme, bucket, key)


def select_bucket_objects(t: BucketTarget, objects: list[BucketObject]) -> tuple[bool, list[BucketObject],
                                                                                list[BucketObject]]:
    """(named a single object, objects to fetch, objects skipped as not scannable): a key the user names is
    always fetched, from a prefix only scannable files."""
    from .selection import split_scannable

    if not t.is_prefix and len(objects) == 1 and objects[0].key == t.key:
        return True, objects, []
    keep, skip = split_scannable(objects, lambda o: o.key)
    if not keep:
        raise SourceError(f"no scannable files under {t.uri(t.key)} ({len(skip)} other object(s) not fetched)")
    return False, keep, skip


def fetch_bucket(t: BucketTarget, listed: list[BucketObject], how: Fetcher[BucketObject], store: Store,
                 max_bytes: int, mappings: list[tuple[str, str]]) -> Iterator[Entry]:
    """fetch_objects for what a bucket target names: its key, or the scannable objects under its prefix."""
    from .selection import log_skipped

    single, objects, skipped = select_bucket_objects(t, listed)
    log_skipped([t.uri(o.key) for o in skipped])
    yield from fetch_objects(objects, how, store, store.new_dir(), max_bytes, mappings, explicit=single)


# --- dry run ----------------------------------------------------------------------------------------------


def plan_row(path: str, size: int | None, skipped: str | None, download: bool = False) -> dict[str, Any]:
    """One file of the dry-run listing of a remote target (format and scanners are known only after download)."""
    return {"path": path, "size": size, "format": None, "scanners": [], "skipped": skipped, "download": download}


def plan_rows(objects: Sequence[T], skipped: Sequence[T], config: ScanConfig, cache_dir: str | None,
              uri: Callable[[T], str], cache_key: Callable[[T], str | None]) -> list[dict[str, Any]]:
    """Dry-run rows from a listing: too large, cached or to download; then the files left out."""
    from .cache import default_cache_dir
    from .selection import SKIPPED_REASON

    blobs = os.path.join(cache_dir or default_cache_dir(), "blobs")
    max_bytes = config.limits.max_file_size
    rows = []
    for obj in objects:
        if max_bytes and obj.size is not None and obj.size > max_bytes:
            rows.append(plan_row(uri(obj), obj.size, f"too large to download (max: {max_bytes})"))
            continue
        key = cache_key(obj)
        blob = os.path.join(blobs, key) if key else None
        cached = bool(config.cache and blob and os.path.isfile(blob) and os.path.getsize(blob) == obj.size)
        rows.append(plan_row(uri(obj), obj.size, None, not cached) | {"cached": cached})
    rows.extend(plan_row(uri(o), o.size, SKIPPED_REASON) for o in skipped)
    return rows
