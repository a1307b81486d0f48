"""Plain zip archives: every member scanned by its detected format."""

from __future__ import annotations

import zipfile

from . import _pt2_archive
from ._zip import open_zip, scan_open_members
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

        pt2 = False
        with open_zip(blob, result) as zf:  # opened once: the directory of a large zip is costly to read
            if zf is not None:
                # torch.export.load reads any zip whose archive_format says pt2, whoever wrote it
                pt2 = isinstance(zf, zipfile.ZipFile) and _pt2_archive.is_archive(zf, zf.namelist())
                if not pt2:
                    scan_open_members(zf, blob, result, ctx, ratio)
        if pt2:
            from .pytorch import PyTorchScanner

            PyTorchScanner().check(blob, result, ctx)
            return
        result.bytes_scanned += blob.size
