"""Reading zip containers (torch checkpoints, npz, plain zips) member by member, safely."""

from __future__ import annotations

import lzma
import posixpath
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from ..blob import Blob
from ..errors import BudgetExceeded
from ..spool import spooled_blob
from ._zip_raw import (END_RECORD_SIZE, END_SEARCH, END_SIGNATURE, LenientZip, end_record, locate_directory, raw_member,
                       read_stored)

if TYPE_CHECKING:
    from ..context import ScanContext
    from .base import ScanResult


# what zipfile raises on a directory it cannot list (names flagged UTF-8 that are not, bad counts…)
_LIST_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, UnicodeDecodeError, ValueError, struct.error,
                OverflowError, NotImplementedError, IndexError)
# what reading members may raise past the checks member_blob makes (read_member has none)
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error, lzma.LZMAError,
                RuntimeError, NotImplementedError, UnicodeDecodeError)


@contextmanager
def open_zip(blob: Blob, result: ScanResult) -> Iterator[zipfile.ZipFile | LenientZip | None]:
    """Open `blob` as a zip. When zipfile refuses its directory, the directory is read by LenientZip (other
    loaders may accept what zipfile refuses, so the members still get scanned), with a finding; when that
    fails too, a finding and None. An archive that breaks while its members are read is incomplete."""
    with blob.open() as fh:
        try:
            zf: zipfile.ZipFile | LenientZip = zipfile.ZipFile(fh)
        except OSError as exc:
            _unreadable(blob, result, exc)
            yield None
            return
        except _LIST_ERRORS as exc:
            try:
                zf = LenientZip(blob, fh)
            except (*_LIST_ERRORS, OSError) as lenient_exc:
                _unreadable(blob, result, lenient_exc)
                yield None
                return
            result.report("MA-A003", f"Malformed zip archive: zipfile refuses its directory ({type(exc).__name__}: "
                          f"{exc}); its members were listed from the raw directory, as lenient loaders read it",
                          blob.location, {"error": str(exc), "lenient": True, "unlisted_entries": zf.missing})
            if zf.missing:
                result.mark_incomplete()  # entries the directory counts but that could not be read
        try:
            yield zf
        except _READ_ERRORS as exc:
            result.report("MA-A003", f"Malformed zip archive: {exc}", blob.location, {"error": str(exc)})
            result.mark_incomplete()
        finally:
            if isinstance(zf, zipfile.ZipFile):
                zf.close()


def _unreadable(blob: Blob, result: ScanResult, exc: BaseException) -> None:
    result.report("MA-A003", f"Malformed zip archive: {exc}", blob.location, {"error": str(exc)})
    result.mark_incomplete()


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
    for info in infos:
        if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
            _check_link(zf, info, blob, result)
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
STRICT_READ_ERRORS = (zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error, EOFError, lzma.LZMAError,
                       UnicodeDecodeError,  # a local name flagged UTF-8 that is not
                       ValueError)  # "negative seek value": a directory placing the member before the file start


# Members up to this size are read in one call, without spooling machinery (the many small metadata
# members of checkpoints); zipfile stops at the size the directory declares.
_SMALL_MEMBER = 64 * 1024


@contextmanager
def member_blob(zf: zipfile.ZipFile, info: zipfile.ZipInfo, blob: Blob, ctx: ScanContext,
                result: ScanResult | None = None) -> Iterator[Blob]:
    location = f"{blob.location}:{info.filename}"
    if info.file_size <= _SMALL_MEMBER:
        try:
            data = read_stored(zf, info) or zf.read(info)  # strict: local header, CRC and size checked
        except STRICT_READ_ERRORS:
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
        except STRICT_READ_ERRORS as exc:
            stack.close()
            if result is not None:
                result.report("MA-A004", f"Archive entry {info.filename} is rejected by a strict zip reader ({exc}); "
                              "lenient loaders such as torch still read it, so it was read from its raw data",
                              location, {"entry": info.filename, "error": str(exc), "flag_bits": info.flag_bits})
            try:
                child = stack.enter_context(spool(stack.enter_context(raw_member(blob, info))))
            except (*STRICT_READ_ERRORS, ValueError) as raw_exc:
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
    if blob.size < 22 or END_SIGNATURE not in blob.tail(END_SEARCH):
        return None  # the usual answer, found without a file object for members and small files
    with blob.open() as fh:
        try:
            found = locate_directory(fh, blob.size)
        except zipfile.BadZipFile:
            return None
        if found is None:
            return None
        end_at, _count, cd_size, cd_offset = found
        prefix = end_at - cd_size - cd_offset
        if prefix <= 0:
            return None
        fh.seek(prefix + cd_offset)
        return prefix if fh.read(4) == b"PK\x01\x02" else None


def zip_fills_tar_member(blob: Blob, prefix: int) -> bool:
    """The zip found after `prefix` bytes of a tar is the data of one regular member (the checkpoint of a
    .nemo archive): the tar scanner reads it as that member, so nothing is hidden."""
    import tarfile

    if prefix < tarfile.BLOCKSIZE or prefix % tarfile.BLOCKSIZE:
        return False
    with blob.open() as fh:
        end = end_record(fh, blob.size)
        info = _tar_member_at(fh, prefix)  # as tarfile reads it: pax headers can override the header's size
        if info is None or not info.isreg() or info.sparse is not None or info.type == tarfile.GNUTYPE_SPARSE:
            return False  # a sparse member's stored bytes are not the content the tar scanner reads
        if end is None or end[0] + END_RECORD_SIZE > prefix + info.size:
            return False
        return _entries_within(fh, prefix, prefix + info.size)


_MAX_TAR_WALK = 200_000


def _tar_member_at(fh, offset: int):  # noqa: ANN001, ANN202
    """The member whose data starts at `offset`, as the tar scanner's tarfile sees it, or None."""
    import tarfile

    try:
        fh.seek(0)
        with tarfile.open(fileobj=fh, mode="r:") as archive:
            for count, info in enumerate(archive):
                if info.offset_data >= offset:
                    return info if info.offset_data == offset else None
                if count >= _MAX_TAR_WALK:
                    return None  # not proven a member: the zip is reported and scanned as hidden
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return None
    return None


def _entries_within(fh, start: int, stop: int) -> bool:  # noqa: ANN001
    """Every entry zipfile reads from the whole file lies in [start, stop): a directory inside the member can
    still point at local headers in the tar's padding or after its end, which the tar scanner never reads."""
    try:
        with zipfile.ZipFile(fh) as zf:
            for info in zf.infolist():
                fh.seek(info.header_offset)
                local = fh.read(30)
                if len(local) < 30 or local[:4] != b"PK\x03\x04" or info.header_offset < start:
                    return False
                name_len, extra_len = struct.unpack_from("<HH", local, 26)
                if info.header_offset + 30 + name_len + extra_len + info.compress_size > stop:
                    return False
    except (*_LIST_ERRORS, OSError):
        return False
    return True


__all__ = ["open_zip", "check_member_names", "member_blob", "read_member", "scan_members", "scan_open_members",
           "unsafe_member_name", "zip_fills_tar_member",
           "zip_prefix_length"]


def scan_members(blob: Blob, result: ScanResult, ctx: ScanContext,
                 inspect: Callable[[zipfile.ZipInfo], None] | None = None) -> None:
    """Scan every file member of the zip `blob` by its own format; `inspect` sees each entry first."""
    with open_zip(blob, result) as zf:
        if zf is not None:
            scan_open_members(zf, blob, result, ctx, inspect)


def scan_open_members(zf: zipfile.ZipFile | LenientZip, blob: Blob, result: ScanResult, ctx: ScanContext,
                      inspect: Callable[[zipfile.ZipInfo], None] | None = None) -> None:
    """scan_members for an archive the caller opened with open_zip (and looked at first)."""
    for info in check_member_names(zf, blob, result, ctx):
        ctx.check_deadline()
        if info.filename.endswith("/"):  # (ZipInfo.is_dir fails on an empty name)
            continue
        if inspect is not None:
            inspect(info)
        with member_blob(zf, info, blob, ctx, result) as child:
            ctx.scan_member(child, result)


def _check_link(zf: zipfile.ZipFile | LenientZip, info: zipfile.ZipInfo, blob: Blob, result: ScanResult) -> None:
    """A Unix symlink entry (its data is the target): unzip, 7z and bsdtar create it on extraction."""
    try:
        with zf.open(info) as stream:
            target = stream.read(4096).decode("utf-8", "replace")
    except (*STRICT_READ_ERRORS, OSError):
        return  # the member is read (and any error reported) when it is scanned
    resolved = target.replace("\\", "/")
    if not resolved.startswith("/") and not (len(resolved) > 1 and resolved[1] == ":"):
        resolved = posixpath.join(posixpath.dirname(info.filename.replace("\\", "/")), resolved)
    if unsafe_member_name(resolved):
        result.report("MA-A005", f"Archive entry {info.filename} is a symbolic link to {target[:200]} outside the "
                      "archive", f"{blob.location}:{info.filename}",
                      {"entry": info.filename, "link": target[:200], "kind": "symbolic link"})
