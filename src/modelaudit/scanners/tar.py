"""Tar archives, including torch's oldest checkpoint format (a tar of pickles named
"sys_info", "pickle", "storages" and "tensors", still read by torch.load): every regular
member is scanned by its detected format. Compressed tars (.tar.gz, .tar.bz2, .tar.xz) reach
this scanner through the compressed scanner. Nothing is ever extracted to disk by name: links
are reported, never followed, and members are read through a private spool."""

from __future__ import annotations

import posixpath
import tarfile
from typing import BinaryIO

from ..errors import BudgetExceeded
from ..spool import ByteBudget, spooled_blob
from ._zip import unsafe_member_name
from .base import BaseScanner


def link_target(member: tarfile.TarInfo) -> str:
    """Where a link entry points, as a path relative to the archive root (may start with .. or /)."""
    target = member.linkname.replace("\\", "/")
    if member.issym() and not target.startswith("/") and not (len(target) > 1 and target[1] == ":"):
        target = posixpath.join(posixpath.dirname(member.name.replace("\\", "/")), target)
    return target


def _normalized(name: str) -> str:
    return posixpath.normpath(name.replace("\\", "/"))


def _link_above(name: str, links: set[str]) -> str | None:
    """The nearest-the-root folder of `name` that an earlier entry made a link, if any."""
    parents = _normalized(name).split("/")[:-1]
    return next((p for p in ("/".join(parents[:i]) for i in range(1, len(parents) + 1)) if p in links), None)


def _entries(archive: tarfile.TarFile):  # noqa: ANN202
    """The archive's members; a pax number int() refuses ("GNU.sparse.size=-1,-1") is the header error it is."""
    while True:
        try:
            member = archive.next()
        except ValueError as exc:
            raise tarfile.HeaderError(f"bad extended header: {exc}") from exc
        if member is None:
            return
        yield member


class _Clamped:
    """The blob's file as tarfile sees it: reads and seeks never reach past the end. tarfile reads an
    extended header (PAX records, GNU long names) in one call sized by the header itself, and seeks to
    the next header by a size the header declares; 2**80 would be allocated (MemoryError) or refused
    (OverflowError, ValueError) instead of ending the archive as truncated."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        # the position is kept here: a buffered file's tell() is a system call, and tarfile asks often
        self._fh, self._size, self._pos = fh, size, fh.tell()

    def read(self, n: int | None = -1) -> bytes:
        left = max(0, self._size - self._pos)
        data = self._fh.read(left if n is None or n < 0 else min(n, left))
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = self._fh.seek(min(max(offset, 0), self._size) if whence == 0 else offset, whence)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True


class TarScanner(BaseScanner):
    name = "tar"
    description = "Tar archives (and torch's legacy tar checkpoints): path traversal, links, every member scanned"
    supported_extensions = [".tar"]
    formats = ("tar",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        with blob.open() as raw:
            fh = _Clamped(raw, blob.size)
            try:
                archive = tarfile.open(fileobj=fh, mode="r:")
            except (tarfile.TarError, OSError, EOFError, ValueError) as exc:  # ValueError: pax numbers tarfile int()s
                result.report("MA-A003", f"Malformed tar archive: {exc}", blob.location, {"error": str(exc)})
                result.mark_incomplete()
                return
            with archive:
                self._members(archive, blob, result, ctx)
        result.bytes_scanned += blob.size

    def _members(self, archive, blob, result, ctx) -> None:  # noqa: ANN001
        count = 0
        links: set[str] = set()  # entries that are links: a later entry written "through" one escapes too
        try:
            for member in _entries(archive):
                count += 1
                if count > ctx.limits.max_members:
                    raise BudgetExceeded(f"archive has more than {ctx.limits.max_members} entries", "MA-S012")
                ctx.check_deadline()
                self._check_entry(member, links, blob, result)
                if not member.isfile():
                    continue
                if member.size < 0:  # a pax `size` record tarfile accepts as is; reading it would fail
                    raise tarfile.HeaderError(f"entry {member.name!r} has a negative size ({member.size})")
                stream = archive.extractfile(member)
                if stream is None:
                    continue
                location = f"{blob.location}:{member.name}"
                # a member is a copy of bytes already in this blob (or already charged when a .tar.gz was
                # inflated): it is bounded by the blob, not charged to the file's decompression budget again
                copy = ByteBudget(blob.size, ctx.check_deadline)
                with stream, spooled_blob(stream, location, member.name, blob.depth + 1, copy, member.size) as child:
                    ctx.scan_member(child, result)
        except (tarfile.TarError, EOFError) as exc:
            result.report("MA-A003", f"Malformed tar archive after {count} entries: {exc}", blob.location,
                          {"error": str(exc)})
            result.mark_incomplete()

    @staticmethod
    def _check_entry(member: tarfile.TarInfo, links: set[str], blob, result) -> None:  # noqa: ANN001
        name = member.name
        location = f"{blob.location}:{name}"
        if unsafe_member_name(name):
            result.report("MA-A001", f"Archive entry {name} attempted path traversal outside the archive",
                          location, {"entry": name})
        through = _link_above(name, links) if links else None  # most archives hold no link at all
        if through is not None:
            result.report("MA-A005", f"Archive entry {name} is written through the link {through}", location,
                          {"entry": name, "link": through})
        if member.issym() or member.islnk():
            links.add(_normalized(name))
            target = link_target(member)
            if unsafe_member_name(target):
                kind = "symbolic link" if member.issym() else "hard link"
                result.report("MA-A005", f"Archive entry {name} is a {kind} to {member.linkname} outside the "
                              "archive", location, {"entry": name, "link": member.linkname, "kind": kind})
        elif member.ischr() or member.isblk() or member.isfifo():
            kind = "FIFO" if member.isfifo() else "character device" if member.ischr() else "block device"
            result.report("MA-A006", f"Archive entry {name} is a {kind}", location,
                          {"entry": name, "kind": kind, "major": member.devmajor, "minor": member.devminor})
