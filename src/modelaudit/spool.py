"""Copy a stream into memory or a private temporary file, with a byte budget."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from .blob import Blob
from .errors import BudgetExceeded

IN_MEMORY_LIMIT = 32 * 1024 * 1024
_CHUNK = 1024 * 1024


@contextmanager
def spooled_blob(stream: BinaryIO, location: str, name: str, depth: int, budget: int,
                 size_hint: int | None = None) -> Iterator[Blob]:
    """Yield a Blob holding everything `stream` produces, up to `budget` bytes.

    Raises BudgetExceeded when the stream has more than `budget` bytes.
    """
    if size_hint is not None and size_hint <= IN_MEMORY_LIMIT:
        data = stream.read(min(budget, IN_MEMORY_LIMIT) + 1)
        if len(data) <= IN_MEMORY_LIMIT:
            if len(data) > budget:
                raise BudgetExceeded(f"{location} inflates past the budget of {budget} bytes", "MA-J001")
            yield Blob.from_bytes(data, location, name=name, depth=depth)
            return
        first = data
    else:
        first = b""
    tmpdir = tempfile.mkdtemp(prefix="modelaudit-")
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
                if written > budget:
                    raise BudgetExceeded(f"{location} inflates past the budget of {budget} bytes", "MA-J001")
                out.write(chunk)
        yield Blob(location=location, size=written, path=path, depth=depth, name=name)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
