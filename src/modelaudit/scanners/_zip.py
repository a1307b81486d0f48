"""Reading zip containers (torch checkpoints, npz, plain zips) member by member, safely."""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import BudgetExceeded
from ..spool import spooled_blob

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext
    from .base import ScanResult


@contextmanager
def open_zip(blob: Blob, result: ScanResult) -> Iterator[zipfile.ZipFile | None]:
    """Open `blob` as a zip; a damaged archive becomes a finding and yields None."""
    try:
        with blob.open() as fh:
            with zipfile.ZipFile(fh) as zf:
                yield zf
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        result.report("MA-A003", f"Malformed zip archive: {exc}", blob.location, {"error": str(exc)})


def unsafe_member_name(name: str) -> bool:
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return True
    return ".." in posixpath.normpath(normalized).split("/") or normalized.split("/")[0] == ".."


def check_member_names(zf: zipfile.ZipFile, blob: Blob, result: ScanResult, ctx: ScanContext) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > ctx.limits.max_members:
        raise BudgetExceeded(f"archive has {len(infos)} entries (limit {ctx.limits.max_members})", "MA-S012")
    for info in infos:
        if unsafe_member_name(info.filename):
            result.report("MA-A001", f"Archive entry {info.filename} attempted path traversal outside the archive",
                          f"{blob.location}:{info.filename}", {"entry": info.filename})
    return infos


@contextmanager
def member_blob(zf: zipfile.ZipFile, info: zipfile.ZipInfo, blob: Blob, ctx: ScanContext) -> Iterator[Blob]:
    with zf.open(info) as stream:
        with spooled_blob(stream, f"{blob.location}:{info.filename}", info.filename, blob.depth + 1,
                          ctx.limits.max_decompressed, info.file_size) as child:
            yield child


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    with zf.open(info) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise BudgetExceeded(f"zip member {info.filename} is larger than {limit} bytes", "MA-J001")
    return data


__all__ = ["open_zip", "check_member_names", "member_blob", "read_member", "unsafe_member_name", "io"]
