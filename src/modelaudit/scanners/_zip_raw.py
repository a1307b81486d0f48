"""Reading zip members from the raw archive structures, where zipfile is too strict or too slow.

* raw_member: a member's data located through its local header, CRC and flags ignored, as lenient
  loaders (torch's reader) take it.
* read_stored: a small stored member in two reads, when zipfile would accept it.
* LenientZip: the archive listed from its central directory by this module, for archives whose
  directory zipfile refuses outright (a name flagged UTF-8 that is not, for one) but other readers load.
* locate_directory: where the central directory is (also how _zip finds data prepended to a zip).
"""

from __future__ import annotations

import bz2
import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from ..blob import Blob

_CHUNK = 1024 * 1024
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ENTRY = struct.Struct("<4s4B4HL2L5H2L")  # central directory file header
_MAX_ENTRIES = 1_000_000  # a bound of its own: check_member_names applies the configured one
END_SIGNATURE = b"PK\x05\x06"
END_RECORD_SIZE = _EOCD.size
END_SEARCH = 65536 + _EOCD.size  # the end record is in the file's final bytes, after at most a 64 KiB comment


def read_stored(zf: zipfile.ZipFile | LenientZip, info: zipfile.ZipInfo) -> bytes | None:
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
    local = _local_header(fh, info) if fh is not None else None
    if local is None:
        return None
    flags, name_len, extra_len = local
    if flags & ~0x808 or name_len != len(name):
        return None
    rest = fh.read(name_len + extra_len + info.file_size)
    data = rest[name_len + extra_len:]
    if rest[:name_len] != name or len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        return None
    return data


def _local_header(fh: BinaryIO, info: zipfile.ZipInfo) -> tuple[int, int, int] | None:
    """(flag bits, name length, extra length) of the member's local header, `fh` left just after its fixed
    part; None when there is no local header where the directory says."""
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        return None
    flags, = struct.unpack_from("<H", header, 6)
    name_len, extra_len = struct.unpack_from("<HH", header, 26)
    return flags, name_len, extra_len


@contextmanager
def raw_member(blob: Blob, info: zipfile.ZipInfo) -> Iterator[BinaryIO]:
    """The member's data located by the central directory alone, decompressed, CRC and flags ignored."""
    with blob.open() as fh:
        local = _local_header(fh, info)
        if local is None:
            raise zipfile.BadZipFile(f"no local header at offset {info.header_offset}")
        _flags, name_len, extra_len = local
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        raw = _Window(fh, info.compress_size)
        factories = {zipfile.ZIP_STORED: None, zipfile.ZIP_DEFLATED: lambda: zlib.decompressobj(-15),
                     zipfile.ZIP_BZIP2: bz2.BZ2Decompressor,
                     zipfile.ZIP_LZMA: getattr(zipfile, "LZMADecompressor", None)}
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


class LenientZip:
    """The subset of zipfile.ZipFile the scanners use, over a central directory read by this module.

    Names that do not decode are shown with replacement characters; member data is read through
    raw_member (no CRC check). Offsets are shifted by any data prepended to the archive, as zipfile does.
    """

    def __init__(self, blob: Blob, fh: BinaryIO) -> None:
        self.blob, self.fp = blob, fh
        self._infos, declared = _central_directory(fh, blob.size)
        self.missing = max(0, declared - len(self._infos))  # entries the end record counts but none could be read

    def infolist(self) -> list[zipfile.ZipInfo]:
        return list(self._infos)

    def namelist(self) -> list[str]:
        return [i.filename for i in self._infos]

    def getinfo(self, name: str) -> zipfile.ZipInfo:
        for info in reversed(self._infos):
            if info.filename == name:
                return info
        raise KeyError(name)

    def open(self, info: zipfile.ZipInfo | str):  # noqa: ANN201 - a context manager yielding a stream
        return raw_member(self.blob, info if isinstance(info, zipfile.ZipInfo) else self.getinfo(info))

    def read(self, info: zipfile.ZipInfo | str) -> bytes:
        with self.open(info) as stream:
            return stream.read()


def _central_directory(fh: BinaryIO, size: int) -> tuple[list[zipfile.ZipInfo], int]:
    """The readable entries of the central directory found from the end record, and how many it declares;
    BadZipFile when there is no directory to read."""
    found = locate_directory(fh, size)
    if found is None:
        raise zipfile.BadZipFile("no end of central directory record")
    end_at, count, cd_size, cd_offset = found
    prefix = end_at - cd_size - cd_offset  # data prepended to the archive (self-extracting stubs, polyglots)
    if prefix < 0 or cd_size > size:
        raise zipfile.BadZipFile("central directory lies outside the file")
    fh.seek(prefix + cd_offset)
    directory = fh.read(cd_size)
    infos, pos = [], 0
    while pos + _ENTRY.size <= len(directory) and len(infos) < min(count, _MAX_ENTRIES):
        fields = _ENTRY.unpack_from(directory, pos)
        if fields[0] != b"PK\x01\x02":
            break
        name_len, extra_len, comment_len = fields[12:15]
        start = pos + _ENTRY.size
        raw_name = directory[start:start + name_len]
        extra = directory[start + name_len:start + name_len + extra_len]
        infos.append(_info(fields, raw_name, extra, prefix))
        pos = start + name_len + extra_len + comment_len
    if not infos and count:
        raise zipfile.BadZipFile("central directory has no readable entry")
    return infos, count


def end_record(fh: BinaryIO, size: int) -> tuple[int, int, int, int] | None:
    """(offset, entries, directory size, directory offset) of the last end-of-central-directory record in
    the file's final 64 KiB (where a comment can push it), or None."""
    tail_len = min(size, END_SEARCH)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(END_SIGNATURE)
    if at < 0 or at + _EOCD.size > len(tail):
        return None
    _, _, _, _, count, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, at)
    return size - tail_len + at, count, cd_size, cd_offset


def locate_directory(fh: BinaryIO, size: int) -> tuple[int, int, int, int] | None:
    """(where the central directory ends, entries, directory size, directory offset), or None.

    Like zipfile, the zip64 end record is used whenever its locator sits right before the end record,
    whatever the plain record says: writers such as PyTorch's always add one, and the directory then
    ends where that record starts, not at the plain end record."""
    end = end_record(fh, size)
    if end is None:
        return None
    end_at, count, cd_size, cd_offset = end
    zip64 = _zip64_end(fh, end_at)
    if zip64 is not None:
        return zip64
    if cd_offset == 0xFFFFFFFF or cd_size == 0xFFFFFFFF or count == 0xFFFF:
        raise zipfile.BadZipFile("zip64 end record expected but not found")
    return end_at, count, cd_size, cd_offset


def _zip64_end(fh: BinaryIO, end_at: int) -> tuple[int, int, int, int] | None:
    """(record offset, entries, directory size, directory offset) from a zip64 end record, if there is one."""
    record_at = end_at - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size
    if record_at < 0:
        return None
    fh.seek(record_at)
    tail = fh.read(_ZIP64_EOCD.size + _ZIP64_LOCATOR.size)
    if len(tail) < _ZIP64_EOCD.size + _ZIP64_LOCATOR.size or tail[_ZIP64_EOCD.size:][:4] != b"PK\x06\x07" \
            or tail[:4] != b"PK\x06\x06":
        return None
    _, _, _, _, _, _, _, count, cd_size, cd_offset = _ZIP64_EOCD.unpack_from(tail)
    return record_at, count, cd_size, cd_offset


def _info(fields: tuple, raw_name: bytes, extra: bytes, prefix: int) -> zipfile.ZipInfo:
    flags = fields[5]
    name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
    info = zipfile.ZipInfo(name)
    info.orig_filename = name
    (info.create_version, info.create_system, info.extract_version, info.reserved, info.flag_bits,
     info.compress_type) = fields[1:7]
    info.CRC, info.compress_size, info.file_size = fields[9:12]
    info.volume, info.internal_attr, info.external_attr, offset = fields[15:19]
    info.extra = extra
    sizes = [info.file_size, info.compress_size, offset]
    _apply_zip64(extra, sizes)
    info.file_size, info.compress_size = sizes[0], sizes[1]
    info.header_offset = sizes[2] + prefix
    return info


def _apply_zip64(extra: bytes, sizes: list[int]) -> None:
    """Replace the 0xFFFFFFFF placeholders in `sizes` (size, compressed size, offset) from the zip64 field."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + length]
        if tag == 0x0001:
            at = 0
            for index, value in enumerate(sizes):
                if value == 0xFFFFFFFF and at + 8 <= len(body):
                    sizes[index] = struct.unpack_from("<Q", body, at)[0]
                    at += 8
            return
        pos += 4 + length
