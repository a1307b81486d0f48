"""Plain zip archives: every member scanned by its detected format."""

from __future__ import annotations

from ._zip import scan_members
from .base import BaseScanner

RATIO_LIMIT = 100
RATIO_MIN_SIZE = 1 << 20  # small members compress well without being bombs


class ZipScanner(BaseScanner):
    name = "zip"
    description = "Zip archives: path traversal, compression ratio, every member scanned by content"
    supported_extensions = [".zip"]
    formats = ("zip",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        def ratio(info) -> None:  # noqa: ANN001
            if info.compress_size and info.file_size / info.compress_size > RATIO_LIMIT and info.file_size > RATIO_MIN_SIZE:
                result.report("MA-A002", f"Archive entry {info.filename} has a compression ratio of "
                              f"{info.file_size / info.compress_size:.0f}x", f"{blob.location}:{info.filename}",
                              {"compressed": info.compress_size, "uncompressed": info.file_size})

        scan_members(blob, result, ctx, ratio)
        result.bytes_scanned += blob.size
