"""How many entries a 7z archive declares, read before py7zr parses it.

py7zr builds a Python object for every entry it lists, a few hundred bytes each, while an entry
costs the archive as little as two header bytes, and a header that repeats itself compresses
thousands of times: a file of a few hundred bytes can declare millions of entries. This reader
walks the header (7-Zip's 7zFormat.txt layout: signature header, optional LZMA/LZMA2-encoded
header, streams info, then the file count) without keeping per-entry state, so the count can be
held against the member budget first. It answers None when it cannot tell (another header codec,
an unexpected layout); py7zr then reports what it makes of the file.
"""

from __future__ import annotations

import lzma
import struct
from collections.abc import Callable
from typing import BinaryIO

SIGNATURE = b"7z\xbc\xaf\x27\x1c"
MAX_HEADER = 64 * 1024 * 1024  # decoded header bytes read to find the count
MAX_FOLDERS = 1 << 20  # as py7zr: more is refused there anyway
_CODECS = {b"\x21": lzma.FILTER_LZMA2, b"\x03\x01\x01": lzma.FILTER_LZMA1}
_HEADER, _ARCHIVE_PROPERTIES, _ADDITIONAL_STREAMS, _MAIN_STREAMS, _FILES_INFO = 1, 2, 3, 4, 5
_PACK_INFO, _UNPACK_INFO, _SUBSTREAMS, _SIZE, _CRC, _FOLDER, _UNPACK_SIZE, _STREAM_COUNTS, _ENCODED = (
    6, 7, 8, 9, 10, 11, 12, 13, 23)


class HeaderTooLarge(Exception):
    """The (decoded) header is larger than MAX_HEADER."""


class _Unreadable(Exception):
    """The header does not have the layout this reader knows."""


class _Reader:
    def __init__(self, data: bytes, tick: Callable[[], None]) -> None:
        self.data, self.pos, self.tick, self.numbers = data, 0, tick, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise _Unreadable("header ends early")
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise _Unreadable("header ends early")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def number(self) -> int:
        """7z's variable-length integer: the leading one bits of the first byte count the bytes that follow."""
        self.numbers += 1
        if self.numbers % 65536 == 0:
            self.tick()  # a header may hold millions of numbers
        first, value = self.byte(), 0
        for i in range(8):
            if not first & (0x80 >> i):
                return value | (first & ((0x80 >> i) - 1)) << (8 * i)
            value |= self.byte() << (8 * i)
        return value

    def count(self) -> int:
        """A count of items of at least one byte each, held against the bytes left."""
        n = self.number()
        if n > len(self.data) - self.pos:
            raise _Unreadable("count larger than the header")
        return n

    def expect(self, nid: int) -> None:
        if self.byte() != nid:
            raise _Unreadable("unexpected property")

    def digests(self, n: int) -> list[bool]:
        """Which of n streams have a CRC (the CRCs are skipped)."""
        if self.byte():
            self.take(4 * n)
            return [True] * n
        bits = self.take((n + 7) // 8)
        defined = [bool(bits[i // 8] & (0x80 >> (i % 8))) for i in range(n)]
        self.take(4 * sum(defined))
        return defined

    def folder(self) -> tuple[list[tuple[bytes, bytes]], int]:
        coders, total_in, total_out = [], 0, 0
        for _ in range(self.count()):
            flags = self.byte()
            codec = self.take(flags & 0x0F)
            ins, outs = (self.count(), self.count()) if flags & 0x10 else (1, 1)
            props = self.take(self.count()) if flags & 0x20 else b""
            coders.append((codec, props))
            total_in, total_out = total_in + ins, total_out + outs
        for _ in range(2 * max(0, total_out - 1)):  # bind pairs
            self.number()
        packed = total_in - max(0, total_out - 1)
        for _ in range(packed if packed > 1 else 0):
            self.number()
        return coders, total_out

    def streams(self) -> tuple[int, int, list[tuple[bytes, bytes]], int]:
        """Walk a streams info; (pack position, first pack size, first folder's coders, its unpacked size)."""
        pack_pos = pack_size = unpack_size = 0
        coders: list[tuple[bytes, bytes]] = []
        folder_crcs: list[bool] = []
        nid = self.byte()
        if nid == _PACK_INFO:
            pack_pos, n = self.number(), self.count()
            nid = self.byte()
            if nid == _SIZE:
                for index in range(n):
                    value = self.number()
                    pack_size = value if index == 0 else pack_size
                nid = self.byte()
            if nid == _CRC:
                self.digests(n)
                nid = self.byte()
            nid = self._end(nid)
        if nid == _UNPACK_INFO:
            self.expect(_FOLDER)
            folders = self.count()
            if self.byte() or folders > MAX_FOLDERS:
                raise _Unreadable("folders stored elsewhere or too many of them")
            outs = []
            for index in range(folders):
                folder_coders, total_out = self.folder()
                coders = folder_coders if index == 0 else coders
                outs.append(total_out)
            self.expect(_UNPACK_SIZE)
            for index, total_out in enumerate(outs):
                sizes = [self.number() for _ in range(total_out)]
                unpack_size = sizes[-1] if index == 0 and sizes else unpack_size
            nid = self.byte()
            folder_crcs = self.digests(folders) if nid == _CRC else [False] * folders
            nid = self._end(self.byte() if nid == _CRC else nid)
        if nid == _SUBSTREAMS:
            counts = [1] * len(folder_crcs)
            nid = self.byte()
            if nid == _STREAM_COUNTS:
                counts = [self.count() for _ in folder_crcs]
                nid = self.byte()
            if nid == _SIZE:
                for n in counts:
                    for _ in range(max(0, n - 1)):
                        self.number()
                nid = self.byte()
            if nid == _CRC:
                self.digests(sum(n for n, known in zip(counts, folder_crcs) if not (n == 1 and known)))
                nid = self.byte()
            nid = self._end(nid)
        if nid != 0:
            raise _Unreadable("unexpected property in streams info")
        return pack_pos, pack_size, coders, unpack_size

    def _end(self, nid: int) -> int:
        if nid != 0:
            raise _Unreadable("unexpected property")
        return self.byte()


def declared_entries(fh: BinaryIO, size: int, tick: Callable[[], None]) -> int | None:
    """The number of entries the archive's header declares; None when it cannot be read here.
    Raises HeaderTooLarge when the (decoded) header is larger than MAX_HEADER."""
    fh.seek(0)
    start = fh.read(32)
    if len(start) < 32 or not start.startswith(SIGNATURE):
        return None
    offset, length = struct.unpack_from("<QQ", start, 12)
    if length > MAX_HEADER:
        raise HeaderTooLarge(f"7z header of {length} bytes")
    if 32 + offset + length > size:
        return None
    fh.seek(32 + offset)
    try:
        header = fh.read(length)
        if header[:1] == bytes([_ENCODED]):
            header = _decode(fh, _Reader(header[1:], tick), size)
        return _file_count(_Reader(header, tick))
    except (_Unreadable, lzma.LZMAError, ValueError, IndexError):
        return None


def _decode(fh: BinaryIO, reader: _Reader, size: int) -> bytes:
    pack_pos, pack_size, coders, unpack_size = reader.streams()
    if len(coders) != 1 or coders[0][0] not in _CODECS:
        raise _Unreadable("header codec not read here")
    if unpack_size > MAX_HEADER:
        raise HeaderTooLarge(f"7z header that decodes to {unpack_size} bytes")
    if 32 + pack_pos + pack_size > size:
        raise _Unreadable("packed header outside the file")
    codec, props = coders[0]
    fh.seek(32 + pack_pos)
    filters = [lzma._decode_filter_properties(_CODECS[codec], props)]  # noqa: SLF001 - the stdlib's own decoder
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=filters).decompress(fh.read(pack_size), unpack_size)


def _file_count(reader: _Reader) -> int | None:
    if reader.byte() != _HEADER:
        return None
    nid = reader.byte()
    if nid == _ARCHIVE_PROPERTIES:
        while reader.byte():
            reader.take(reader.count())
        nid = reader.byte()
    for streams in (_ADDITIONAL_STREAMS, _MAIN_STREAMS):
        if nid == streams:
            reader.streams()
            nid = reader.byte()
    if nid == _FILES_INFO:
        return reader.number()
    return 0 if nid == 0 else None
