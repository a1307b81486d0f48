"""Single-stream compression wrappers (zlib, gzip, bz2, xz, lzma): compressed joblib
files and .gz/.bz2/.xz model files. The content is inflated within a byte budget and
scanned by its own format."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import zlib
from typing import BinaryIO

from ..spool import spooled_blob
from .base import BaseScanner

_CHUNK = 1024 * 1024
_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".lzma", ".z")


class _ZlibReader(io.RawIOBase):
    """A readable stream over zlib-compressed data (joblib's default compressor)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw, self._inflater = raw, zlib.decompressobj()
        self._pending, self._tail = b"", b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001
        while not self._pending:
            if self._inflater.eof:
                return 0
            data = self._tail or self._raw.read(_CHUNK)
            if not data:
                raise EOFError("compressed stream ended early")
            self._pending = self._inflater.decompress(data, _CHUNK)
            self._tail = self._inflater.unconsumed_tail
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def open_decompressed(fmt: str, raw: BinaryIO) -> BinaryIO:
    if fmt == "gzip":
        return gzip.GzipFile(fileobj=raw)
    if fmt == "bzip2":
        return bz2.BZ2File(raw)
    if fmt == "xz":
        return lzma.LZMAFile(raw, format=lzma.FORMAT_XZ)
    if fmt == "lzma":
        return lzma.LZMAFile(raw, format=lzma.FORMAT_ALONE)
    if fmt == "joblib_zfile":  # joblib < 0.10: b"ZF" + hex length padded to 19 (+ a space in Python 2), then zlib
        raw.read(2 + 19)
        start = raw.tell()
        if raw.read(1) != b" ":
            raw.seek(start)
    return io.BufferedReader(_ZlibReader(raw), _CHUNK)


class CompressedScanner(BaseScanner):
    name = "compressed"
    description = "zlib/gzip/bz2/xz/lzma streams, including compressed joblib files; inflated within a budget"
    supported_extensions = [".joblib", ".gz", ".bz2", ".xz", ".lzma", ".z"]
    formats = ("zlib", "gzip", "bzip2", "xz", "lzma", "joblib_zfile")

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        from ..detect import content_format

        fmt = content_format(blob.head(4096), blob.size)
        inner_name = blob.name
        if inner_name.lower().endswith(_SUFFIXES):
            inner_name = os.path.splitext(inner_name)[0]
        budget = ctx.limits.max_decompressed
        with blob.open() as raw:
            try:
                with open_decompressed(fmt, raw) as stream, spooled_blob(
                    stream, f"{blob.location}:<{fmt}>", inner_name, blob.depth + 1, budget
                ) as inner:
                    result.bytes_scanned += blob.size
                    ctx.scan_member(inner, result)
            except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
                result.report("MA-A003", f"Corrupt {fmt} stream: {exc}", blob.location, {"error": str(exc)})
