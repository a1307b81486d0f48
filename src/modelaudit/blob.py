"""Blob: bytes to scan, from a file on disk or from inside a container."""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import BinaryIO

from .detect import HEAD_SIZE, Detection, detect

_HEAD_KEPT = HEAD_SIZE  # the start of a file is read once, as much as detection looks at


@dataclass(frozen=True)
class Blob:
    """Something to scan. `location` is what users see; `path` is set for real files."""

    location: str
    size: int
    path: str | None = None
    data: bytes | memoryview | None = None
    depth: int = 0
    name: str = ""  # file or member name, used for extension hints
    embedded: bool = False  # a stream inside the content (not an archive member): not listed in inventories

    @classmethod
    def from_path(cls, path: str, location: str | None = None, depth: int = 0) -> Blob:
        return cls(location=location or path, size=os.path.getsize(path), path=path, depth=depth,
                   name=os.path.basename(path))

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, location: str, name: str = "", depth: int = 0) -> Blob:
        return cls(location=location, size=len(data), data=data, depth=depth, name=name or location)

    def child(self, data: bytes | memoryview, member: str) -> Blob:
        """A stream embedded in this blob (pickle payload, HDF5 user block, serialized module …)."""
        return Blob(location=f"{self.location}:{member}", size=len(data), data=data, depth=self.depth + 1,
                    name=member, embedded=True)

    def head(self, n: int) -> bytes:
        if self.data is not None:
            return bytes(self.data[:n])
        if n <= _HEAD_KEPT:
            return self._start[:n]
        return self._read_start(n)

    @cached_property
    def _start(self) -> bytes:
        """The file's first bytes, read once: detection and then the scanners each look at the start."""
        return self._read_start(_HEAD_KEPT)

    def tail(self, n: int) -> bytes:
        """The last `n` bytes (all of them when the blob is smaller)."""
        start = max(0, self.size - n)
        if self.data is not None:
            return bytes(self.data[start:])
        if self.size <= _HEAD_KEPT:
            return self._start[start:]  # a small file: the start, already read, is all of it
        assert self.path is not None
        with open(self.path, "rb") as fh:
            fh.seek(start)
            return fh.read(n)

    @cached_property
    def detection(self) -> Detection:
        """The format by content (detect.py), decided once for the engine, the inventory and the scanners."""
        return detect(self.head(HEAD_SIZE), self.name, self.size)

    def _read_start(self, n: int) -> bytes:
        assert self.path is not None
        with open(self.path, "rb") as fh:
            return fh.read(n)

    @contextmanager
    def buffer(self) -> Iterator[bytes | memoryview | mmap.mmap]:
        """The whole content as a buffer without copying a file into memory (mmap)."""
        if self.data is not None:
            yield self.data
            return
        if self.size <= _HEAD_KEPT:
            yield self._start  # a small file: the start, already read, is all of it
            return
        assert self.path is not None
        with open(self.path, "rb") as fh:
            if self.size == 0:
                yield b""
                return
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                yield mapped

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        if self.data is not None:
            import io

            yield io.BytesIO(self.data)
            return
        assert self.path is not None
        with open(self.path, "rb") as fh:
            yield fh
