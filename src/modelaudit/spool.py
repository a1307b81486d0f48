"""Copy a stream into memory or a private temporary file, within a shared byte budget."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from .blob import Blob
from .errors import BudgetExceeded

IN_MEMORY_LIMIT = 32 * 1024 * 1024
_CHUNK = 1024 * 1024
TEMP_PREFIX = "modelaudit-"


class InflationExceeded(BudgetExceeded):
    """The decompression budget ran out; `produced` is what the failing stream had yielded so far."""

    def __init__(self, message: str, location: str, produced: int) -> None:
        super().__init__(message, "MA-J001")
        self.location, self.produced = location, produced


class ByteBudget:
    """Bytes that every decompression inside one top-level file draws from, so that nesting
    (a zip in a zip in a zip) cannot multiply the budget. A limit of 0 means unlimited.
    `tick` runs once per chunk (the scan deadline), so a long inflation stays interruptible."""

    def __init__(self, limit: int, tick: Callable[[], None] | None = None) -> None:
        self.limit, self.used, self._tick = limit, 0, tick

    @property
    def remaining(self) -> int | None:
        return None if not self.limit else max(0, self.limit - self.used)

    def charge(self, n: int, location: str, produced: int) -> None:
        self.used += n
        if self._tick is not None:
            self._tick()
        if self.limit and self.used > self.limit:
            raise InflationExceeded(f"{location} inflates past the decompression budget of {self.limit} bytes "
                                    "for this file", location, produced)


@contextmanager
def spooled_blob(stream: BinaryIO, location: str, name: str, depth: int, budget: int | ByteBudget,
                 size_hint: int | None = None) -> Iterator[Blob]:
    """Yield a Blob holding everything `stream` produces, charged to `budget`.

    Raises InflationExceeded (a BudgetExceeded) as soon as the budget is spent, before reading further.
    """
    if not isinstance(budget, ByteBudget):
        budget = ByteBudget(budget)
    remaining = budget.remaining
    first = b""
    if size_hint is not None and size_hint <= IN_MEMORY_LIMIT:
        want = IN_MEMORY_LIMIT if remaining is None else min(remaining, IN_MEMORY_LIMIT)
        data = _read_at_most(stream, want + 1, size_hint + 1)
        budget.charge(len(data), location, len(data))
        if len(data) <= IN_MEMORY_LIMIT:
            yield Blob.from_bytes(data, location, name=name, depth=depth)
            return
        first = data
    tmpdir = tempfile.mkdtemp(prefix=TEMP_PREFIX)
    try:
        path = os.path.join(tmpdir, "blob")
        with open(path, "wb") as out:
            out.write(first)
            written = len(first)
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                budget.charge(len(chunk), location, written)
                out.write(chunk)
        yield Blob(location=location, size=written, path=path, depth=depth, name=name)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _read_at_most(stream: BinaryIO, limit: int, expected: int) -> bytes:
    """stream.read(limit), asking for the `expected` size first: a buffered read sized by the limit
    allocates all of it (32 MiB) for every small member. A stream longer than expected is still read
    up to the limit."""
    first = min(expected, limit)
    data = stream.read(first)
    if len(data) < first or len(data) == limit:
        return data  # the end of the stream, or the limit
    return data + stream.read(limit - len(data))
