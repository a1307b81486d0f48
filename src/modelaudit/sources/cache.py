"""Where remote files land: a content-addressed cache (blobs named by their hash, reused across scans),
or with --no-cache a temporary directory removed after the scan. Scans read per-scan views made of hard
links (copies where links are not possible) so that files keep their remote names."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from .http import SourceError, download
from .progress import NO_BARS, Bars

#: sha256-/gitsha1-: content hashes; s3etag-: sha256 of endpoint, bucket, key, ETag and size (sources/s3.py);
#: gcsgen-: sha256 of endpoint, bucket, name, generation and size (sources/gcs.py); dvcmd5-: the md5 a DVC
#: pointer records, checked on download (sources/dvc.py); mlflow-: sha256 of artifact URL, ETag and length
#: (sources/mlflow.py)
_KEY_RE = re.compile(r"^((sha256|gitsha1|s3etag|gcsgen|mlflow)-[0-9a-f]{40,64}|dvcmd5-[0-9a-f]{32})$")
#: free space kept on top of what a download needs
DISK_MARGIN = 64 * 1024**2


def default_cache_dir() -> str:
    explicit = os.environ.get("MODELAUDIT_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "modelaudit")


class Store:
    def __init__(self, cache: bool = True, cache_dir: str | None = None, stream: bool = False,
                 bars: Bars | None = None, timeout: float | None = None) -> None:
        self.cache = cache
        self.timeout = timeout  # seconds a download may stall (None: the HTTP default)
        #: --stream: files are scanned and deleted one at a time, so nothing new is kept in the cache
        self.stream = stream
        self.bars = bars or NO_BARS
        if cache:
            root = cache_dir or default_cache_dir()
            self.blobs = os.path.join(root, "blobs")
            os.makedirs(self.blobs, exist_ok=True)
            tmp_parent = os.path.join(root, "tmp")
            os.makedirs(tmp_parent, exist_ok=True)
            self.work = tempfile.mkdtemp(prefix="scan-", dir=tmp_parent)
        else:
            self.work = tempfile.mkdtemp(prefix="modelaudit-")
            self.blobs = os.path.join(self.work, "blobs")
            os.makedirs(self.blobs)
        self.downloads = 0

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def new_dir(self) -> str:
        return tempfile.mkdtemp(prefix="view-", dir=self.work)

    def blob_path(self, key: str | None) -> str | None:
        if not key or not _KEY_RE.match(key):
            return None
        return os.path.join(self.blobs, key)

    def has(self, key: str | None, size: int | None) -> bool:
        path = self.blob_path(key)
        if not self.cache or path is None or not os.path.isfile(path):
            return False
        return size is None or os.path.getsize(path) == size

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.work).free

    def check_space_for(self, sizes: list[int | None]) -> None:
        """Free-disk check before any download: all files at once, or the largest one with --stream."""
        known = [s or 0 for s in sizes]
        self.check_space((max(known) if known else 0) if self.stream else sum(known))

    def keep_blob(self, key: str | None) -> str | None:
        """Where a finished download of `key` is kept (None: not kept, as with --stream)."""
        return None if self.stream else self.blob_path(key)

    def discard(self, path: str) -> None:
        """--stream: remove a scanned file (its cached original, if any, stays)."""
        try:
            os.unlink(path)
        except OSError:
            pass

    def check_space(self, needed: int) -> None:
        free = self.free_bytes()
        if needed + DISK_MARGIN > free:
            raise SourceError(f"not enough free disk space to download {needed} bytes "
                              f"({free} bytes free in {os.path.dirname(self.blobs)}); nothing was downloaded")

    def fetch(self, key: str | None, url: str, dest: str, token: str | None, max_bytes: int,
              size: int | None) -> None:
        """Put the file at `dest`, from the cache when its hash is known and present, else downloaded."""
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        blob = self.blob_path(key)
        if blob is not None and self.has(key, size):
            _place(blob, dest)
            return
        with self.partial() as partial:
            with self.bars.bar(os.path.basename(dest), size) as bar:
                got = download(url, partial, token=token, max_bytes=max_bytes, expected_size=size,
                               on_chunk=bar.advance, timeout=self.timeout)
            if size is not None and got.size != size:
                raise SourceError(f"download of {os.path.basename(dest)} was {got.size} bytes, expected {size}")
            if key and key.startswith("sha256-") and got.sha256 != key[7:]:
                raise SourceError(f"download of {os.path.basename(dest)} does not match its sha256 {key[7:]}")
            if key and key.startswith("gitsha1-") and got.git_sha1 != key[8:]:
                raise SourceError(f"download of {os.path.basename(dest)} does not match its git blob id {key[8:]}")
            publish(partial, None if self.stream else blob, dest)

    def new_partial(self) -> str:
        """A fresh path in the work folder for a download in progress."""
        self.downloads += 1
        return os.path.join(self.work, f"partial-{os.getpid()}-{self.downloads - 1}")

    @contextmanager
    def partial(self) -> Iterator[str]:
        """A fresh path to download into; whatever is still there when the block ends (a download that
        failed or was not published) is removed, so a half-written file is never scanned or cached."""
        path = self.new_partial()
        try:
            yield path
        finally:
            if os.path.exists(path):
                os.unlink(path)


def publish(partial: str, blob: str | None, dest: str) -> None:
    """Move a finished download into the cache (read-only) and link it at `dest`, or just to `dest`."""
    if blob is not None:
        os.chmod(partial, 0o444)
        os.replace(partial, blob)
        _place(blob, dest)
    else:
        os.replace(partial, dest)


def _place(blob: str, dest: str) -> None:
    try:
        os.link(blob, dest)
    except OSError:
        shutil.copyfile(blob, dest)
