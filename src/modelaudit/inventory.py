"""What one top-level file holds, recorded while it is scanned: the SHA-256 and size of the file and
of every archive member read, and what each says about its licence and origin (provenance.py).

Kept only when ScanConfig.inventory asks (the --sbom output needs it), because hashing reads every
byte of a file, which a header-only scan of a safetensors or GGUF file otherwise never does. Members
are hashed from the bytes the scan already holds (in memory, or spooled to a private temporary file),
so nothing is read from the archive twice; the top-level file is hashed in one sequential pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from .blob import Blob
from .errors import ScanTimeout
from .model import Asset
from .provenance import from_file, from_metadata, merge

_CHUNK = 4 * 1024 * 1024

Tick = Callable[[], None]


def sha256_file(path: str, tick: Tick | None = None) -> str:
    """SHA-256 of a file, read in large chunks into one reused buffer; `tick` runs per chunk."""
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(buffer)
            if not n:
                break
            digest.update(view[:n])
            if tick is not None:
                tick()
    return digest.hexdigest()


def sha256_blob(blob: Blob, tick: Tick | None = None) -> str:
    if blob.data is not None:
        return hashlib.sha256(blob.data).hexdigest()
    assert blob.path is not None
    return sha256_file(blob.path, tick)


class Inventory:
    """Members and provenance of the file at `top`; blobs are keyed by their location relative to it."""

    def __init__(self, top: str) -> None:
        self.top = top
        self._members: dict[str, Asset] = {}
        self._provenance: dict[str, dict[str, Any]] = {}
        self._tick: Tick | None = None
        self.read = False  # the file itself was read (not skipped for its size or the total budget)

    def _relative(self, location: str) -> str | None:
        if location == self.top:
            return ""
        if location.startswith(self.top + ":"):
            return location[len(self.top) + 1:]
        return None

    def record(self, blob: Blob, fmt: str | None, tick: Tick | None = None) -> None:
        """A blob the scan read: the file itself (provenance only) or an archive member (hash, size, format)."""
        rel = self._relative(blob.location)
        if rel is None or blob.embedded:
            return
        self._tick = self._tick or tick
        if rel == "":
            self.read = True
        elif rel not in self._members:
            if fmt is None:
                fmt = blob.detection.format
            self._members[rel] = Asset(rel, fmt, blob.size, sha256_blob(blob, tick))
        elif fmt is not None and self._members[rel].type != fmt:
            old = self._members[rel]
            self._members[rel] = Asset(rel, fmt, old.size, old.sha256)
        else:
            return  # already seen: its provenance was taken the first time
        facts = from_file(blob.name, fmt or self._members[rel].type, blob.head, blob.size)
        if facts:
            self._add(rel, facts)

    def note_metadata(self, blob: Blob, metadata: object) -> None:
        rel = self._relative(blob.location)
        facts = from_metadata(metadata) if rel is not None else None
        if facts:
            self._add(rel, facts)

    def _add(self, rel: str, facts: dict[str, Any]) -> None:
        self._provenance[rel] = merge(self._provenance.get(rel, {}), facts)

    def asset(self, top: Asset) -> Asset:
        """The file's asset with its SHA-256 (unless the time budget ran out first), members and provenance."""
        sha = None
        if self.read:
            try:
                sha = sha256_file(self.top, self._tick)
            except (OSError, ScanTimeout):
                sha = None
        members = tuple(Asset(m.path, m.type, m.size, m.sha256, provenance=self._provenance.get(rel, {}))
                        for rel, m in self._members.items())
        return Asset(top.path, top.type, top.size, sha, members, self._provenance.get("", {}))
