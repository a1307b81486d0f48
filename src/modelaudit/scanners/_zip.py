"""Reading zip containers (torch checkpoints, npz, plain zips) member by member, safely."""

from __future__ import annotations

import bz2
import io
import lzma
import posixpath
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, BinaryIO

from ..errors import BudgetExceeded
from ..spool import spooled_blob

_CHUNK = 1024 * 1024

from ..blob import Blob

if TYPE_CHECKING:
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
    if ".." not in name and name[:1] not in ("/", "\\") and name[1:2] != ":":
        return False  # no parent step, not absolute: nothing to normalize (most names, checked quickly)
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return True
    return ".." in posixpath.normpath(normalized).split("/") or normalized.split("/")[0] == ".."


def check_member_names(zf: zipfile.ZipFile, blob: Blob, result: ScanResult, ctx: ScanContext) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > ctx.limits.max_members:
        raise BudgetExceeded(f"archive has {len(infos)} entries (limit {ctx.limits.max_members})", "MA-S012")
    names = "\n" + "\n".join(info.filename for info in infos)
    if not any(mark in names for mark in ("..", ":", "\\", "\n/")):
        return infos  # no name can leave the archive: skip the check per name (archives of many members)
    for info in infos:
        if unsafe_member_name(info.filename):
            result.report("MA-A001", f"Archive entry {info.filename} attempted path traversal outside the archive",
                          f"{blob.location}:{info.filename}", {"entry": info.filename})
    return infos


# What a strict reader (zipfile) refuses but lenient loaders (torch's miniz reader) accept:
# a local name that differs from the directory's, flag bits claiming encryption or patch data,
# a wrong CRC. A refusal must never hide the member from the scan (CVE-2025-1944/1945/10156).
_STRICT_READ_ERRORS = (zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error, EOFError, lzma.LZMAError)


# Members up to this size are read in one call, without spooling machinery (the many small metadata
# members of checkpoints); zipfile stops at the size the directory declares.
_SMALL_MEMBER = 64 * 1024


@contextmanager
def member_blob(zf: zipfile.ZipFile, info: zipfile.ZipInfo, blob: Blob, ctx: ScanContext,
                result: ScanResult | None = None) -> Iterator[Blob]:
    location = f"{blob.location}:{info.filename}"
    if info.file_size <= _SMALL_MEMBER:
        try:
            data = _read_stored(zf, info) or zf.read(info)  # strict: local header, CRC and size checked
        except _STRICT_READ_ERRORS:
            pass  # read below, leniently, with a finding
        else:
            ctx.inflation.charge(len(data), location, len(data))
            child = Blob.from_bytes(data, location, name=info.filename, depth=blob.depth + 1)
            ctx.record(child)
            yield child
            return
    spool = lambda stream: spooled_blob(stream, location, info.filename, blob.depth + 1,  # noqa: E731
                                        ctx.inflation, info.file_size)
    unread = False
    with ExitStack() as stack:
        try:
            child = stack.enter_context(spool(stack.enter_context(zf.open(info))))
        except _STRICT_READ_ERRORS as exc:
            stack.close()
            if result is not None:
                result.report("MA-A004", f"Archive entry {info.filename} is rejected by a strict zip reader ({exc}); "
                              "lenient loaders such as torch still read it, so it was read from its raw data",
                              location, {"entry": info.filename, "error": str(exc), "flag_bits": info.flag_bits})
            try:
                child = stack.enter_context(spool(stack.enter_context(_raw_member(blob, info))))
            except (*_STRICT_READ_ERRORS, ValueError) as raw_exc:
                stack.close()
                if result is not None:
                    result.report("MA-A003", f"Archive entry {info.filename} cannot be read: {raw_exc}", location,
                                  {"entry": info.filename, "error": str(raw_exc)})
                    result.mark_incomplete()
                child = Blob.from_bytes(b"", location, name=info.filename, depth=blob.depth + 1)
                unread = True
        if not unread:
            ctx.record(child)  # every member a scanner reads is listed, scanned as a file of its own or not
        yield child


def _read_stored(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | None:
    """A stored member's data in two reads, when zipfile would accept it: a plain local header naming the
    same file, the declared size and a matching CRC. None for anything else, which zipfile then reads
    (and judges). Checkpoints store their many small metadata members like this."""
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & ~0x808 or not info.file_size:
        return None  # compressed, encrypted, patched…: zipfile decides (0x800 utf-8 names, 0x8 descriptor)
    try:
        name = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
    except UnicodeEncodeError:
        return None
    fh = zf.fp
    if fh is None:
        return None
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        return None
    flags, = struct.unpack_from("<H", header, 6)
    name_len, extra_len = struct.unpack_from("<HH", header, 26)
    if flags & ~0x808 or name_len != len(name):
        return None
    rest = fh.read(name_len + extra_len + info.file_size)
    data = rest[name_len + extra_len:]
    if rest[:name_len] != name or len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        return None
    return data


@contextmanager
def _raw_member(blob: Blob, info: zipfile.ZipInfo) -> Iterator[BinaryIO]:
    """The member's data located by the central directory alone, decompressed, CRC and flags ignored."""
    with blob.open() as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"no local header at offset {info.header_offset}")
        name_len, extra_len = struct.unpack_from("<HH", header, 26)
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        raw = _Window(fh, info.compress_size)
        factories = {zipfile.ZIP_STORED: None, zipfile.ZIP_DEFLATED: lambda: zlib.decompressobj(-15),
                     zipfile.ZIP_BZIP2: bz2.BZ2Decompressor, zipfile.ZIP_LZMA: getattr(zipfile, "LZMADecompressor", None)}
        if info.compress_type not in factories or (info.compress_type != zipfile.ZIP_STORED
                                                   and factories[info.compress_type] is None):
            raise NotImplementedError(f"unsupported compression method {info.compress_type}")
        factory = factories[info.compress_type]
        yield io.BufferedReader(raw if factory is None else _Inflating(raw, factory()), _CHUNK)


class _Window(io.RawIOBase):
    """At most `size` bytes of `fh` from its current position."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self._fh, self._left = fh, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001
        data = self._fh.read(min(len(buffer), self._left))
        self._left -= len(data)
        buffer[:len(data)] = data
        return len(data)


class _Inflating(io.RawIOBase):
    def __init__(self, raw: io.RawIOBase, decompressor) -> None:  # noqa: ANN001
        self._raw, self._dec, self._pending = raw, decompressor, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001
        while not self._pending:
            if getattr(self._dec, "eof", False):
                return 0
            chunk = self._raw.read(_CHUNK)
            if not chunk:
                return 0  # a truncated member ends where its data ends
            self._pending = self._dec.decompress(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    with zf.open(info) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise BudgetExceeded(f"zip member {info.filename} is larger than {limit} bytes", "MA-J001")
    return data


def zip_prefix_length(blob: Blob) -> int | None:
    """Bytes that precede a zip archive found through its end record, or None when there is none.

    zipfile (and numpy, keras, most tools) find an archive from its end, so a file can be a
    pickle or anything else to a loader that reads from the start and a zip to the others."""
    if blob.size < 22:
        return None
    tail_len = min(blob.size, 65536 + 22)
    with blob.open() as fh:
        fh.seek(blob.size - tail_len)
        tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    _, _, _, _, _, cd_size, cd_offset, _ = struct.unpack_from("<4s4H2LH", tail, at)
    prefix = (blob.size - tail_len + at) - cd_size - cd_offset
    if prefix <= 0 or cd_offset == 0xFFFFFFFF:
        return None
    with blob.open() as fh:
        fh.seek(prefix + cd_offset)
        if fh.read(4) != b"PK\x01\x02":
            return None
    return prefix


__all__ = ["open_zip", "check_member_names", "member_blob", "read_member", "scan_members", "unsafe_member_name", "zip_prefix_length"]


def scan_members(blob: Blob, result: ScanResult, ctx: ScanContext,
                 inspect: Callable[[zipfile.ZipInfo], None] | None = None) -> None:
    """Scan every file member of the zip `blob` by its own format; `inspect` sees each entry first."""
    with open_zip(blob, result) as zf:
        if zf is None:
            return
        for info in check_member_names(zf, blob, result, ctx):
            ctx.check_deadline()
            if info.is_dir():
                continue
            if inspect is not None:
                inspect(info)
            with member_blob(zf, info, blob, ctx, result) as child:
                ctx.scan_member(child, result)
