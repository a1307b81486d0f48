"""Plain zip archives: every member scanned by its detected format."""

from __future__ import annotations

from ._zip import check_member_names, member_blob, open_zip
from .base import BaseScanner

RATIO_LIMIT = 100


class ZipScanner(BaseScanner):
    name = "zip"
    description = "Zip archives: path traversal, compression ratio, every member scanned by content"
    supported_extensions = [".zip"]
    formats = ("zip",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        with open_zip(blob, result) as zf:
            if zf is None:
                return
            for info in check_member_names(zf, blob, result, ctx):
                ctx.check_deadline()
                if info.is_dir():
                    continue
                if info.compress_size and info.file_size / info.compress_size > RATIO_LIMIT and info.file_size > 1 << 20:
                    result.report("MA-A002", f"Archive entry {info.filename} has a compression ratio of "
                                  f"{info.file_size / info.compress_size:.0f}x", f"{blob.location}:{info.filename}",
                                  {"compressed": info.compress_size, "uncompressed": info.file_size})
                with member_blob(zf, info, blob, ctx, result) as child:
                    ctx.scan_member(child, result)
            result.bytes_scanned += blob.size
