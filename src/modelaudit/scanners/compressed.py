"""Single-stream compression wrappers (zlib, gzip, bz2, xz, lzma, and lz4/zstd with the
`archives` extra): compressed joblib files, .gz/.bz2/.xz/.lz4/.zst model files and compressed
tars. The content is inflated within the file's decompression budget and scanned by its own
format; more than RATIO_LIMIT times the compressed size is flagged as a bomb."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import zlib
from typing import BinaryIO

from ..errors import MissingDependency
from ..spool import InflationExceeded, spooled_blob
from .base import BaseScanner
from .containers import RATIO_LIMIT, RATIO_MIN_SIZE

_CHUNK = 1024 * 1024
_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".lzma", ".z", ".lz4", ".zst", ".zstd")
_ALIASES = {".tgz": ".tar", ".tbz2": ".tar", ".txz": ".tar", ".tzst": ".tar"}


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
    if fmt == "lz4":
        try:
            import lz4.frame
        except ImportError as exc:
            raise MissingDependency("lz4", "archives", "lz4 files") from exc
        return lz4.frame.LZ4FrameFile(raw, mode="rb")
    if fmt == "zstd":
        try:
            import zstandard
        except ImportError as exc:
            raise MissingDependency("zstandard", "archives", "zstd files") from exc
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True), _CHUNK)
    if fmt == "joblib_zfile":  # joblib < 0.10: b"ZF" + hex length padded to 19 (+ a space in Python 2), then zlib
        raw.read(2 + 19)
        start = raw.tell()
        if raw.read(1) != b" ":
            raw.seek(start)
    return io.BufferedReader(_ZlibReader(raw), _CHUNK)


class CompressedScanner(BaseScanner):
    name = "compressed"
    description = "zlib/gzip/bz2/xz/lzma streams, including compressed joblib files; inflated within a budget"
    supported_extensions = [".joblib", ".gz", ".tgz", ".bz2", ".xz", ".lzma", ".z", ".lz4", ".zst"]
    formats = ("zlib", "gzip", "bzip2", "xz", "lzma", "joblib_zfile", "lz4", "zstd")

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        from ..detect import content_format

        fmt = content_format(blob.head(4096), blob.size)
        inner_name = blob.name
        stem, ext = os.path.splitext(inner_name)
        if ext.lower() in _SUFFIXES:
            inner_name = stem
        elif ext.lower() in _ALIASES:
            inner_name = stem + _ALIASES[ext.lower()]
        location = f"{blob.location}:<{fmt}>"
        errors = (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError, *_third_party_errors(fmt))
        with blob.open() as raw:
            try:
                with open_decompressed(fmt, raw) as stream, spooled_blob(
                    stream, location, inner_name, blob.depth + 1, ctx.inflation
                ) as inner:
                    result.bytes_scanned += blob.size
                    self._ratio(inner.size, blob, result, location, exceeded=False)
                    ctx.scan_member(inner, result)
            except InflationExceeded as exc:
                if exc.location == location:
                    self._ratio(exc.produced, blob, result, location, exceeded=True)
                raise
            except errors as exc:
                result.report("MA-A003", f"Corrupt {fmt} stream: {exc}", blob.location, {"error": str(exc)})
                result.mark_incomplete()

    @staticmethod
    def _ratio(inflated: int, blob, result, location: str, exceeded: bool) -> None:  # noqa: ANN001
        if blob.size and inflated > RATIO_MIN_SIZE and inflated / blob.size > RATIO_LIMIT:
            at_least = "at least " if exceeded else ""
            result.report("MA-A002", f"Compressed stream {blob.name or blob.location} has a compression ratio of "
                          f"{at_least}{inflated / blob.size:.0f}x", location,
                          {"compressed": blob.size, "uncompressed": inflated, "stopped_at_budget": exceeded})


def _third_party_errors(fmt: str) -> tuple[type[BaseException], ...]:
    if fmt == "lz4":
        return (RuntimeError,)  # lz4.frame reports every corrupt frame (bad header, checksum, block) this way
    if fmt == "zstd":
        try:
            import zstandard
        except ImportError:
            return ()
        return (zstandard.ZstdError,)
    return ()
