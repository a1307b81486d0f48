"""PyTorch checkpoints: zip format (torch >= 1.6) and the legacy stacked-pickle format.

Every pickle member of a zip checkpoint is walked (data.pkl, constants.pkl, and any
other .pkl); tensor storages under data/ are never parsed. A torch.export archive (.pt2) has no
data.pkl: its program JSON is checked by _pt2_archive, its pickled members are scanned by content.
"""

from __future__ import annotations

import re

from . import _pt2_archive, torchscript
from ._pickle_scan import record_check, walk_pickle
from ._zip import check_member_names, member_blob, open_zip
from .base import BaseScanner

# magic number, protocol version, sys info, the object, storage keys
LEGACY_PICKLES = 5
_CODE_SUFFIXES = (".py", ".pyc", ".so", ".dll", ".dylib", ".sh", ".exe")
_NOT_SCANNED = ("text", "json", "empty", "unknown")


class PyTorchScanner(BaseScanner):
    name = "pytorch"
    description = "PyTorch checkpoints (.pt .pth .bin .ckpt): zip and legacy formats, every pickle member"
    supported_extensions = [".pt", ".pth", ".bin", ".ckpt"]
    formats = ("pytorch_zip", "pytorch_legacy")

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        before = len(result.issues)
        if blob.head(2) == b"PK":
            self._check_zip(blob, result, ctx)
        else:
            with blob.buffer() as buf:
                walk_pickle(buf, blob, result, ctx, max_streams=LEGACY_PICKLES)
            result.bytes_scanned = blob.size
        record_check(result, "pytorch pickle analysis", before, blob.location)

    def _check_zip(self, blob, result, ctx) -> None:  # noqa: ANN001
        with open_zip(blob, result) as zf:
            if zf is None:
                return
            infos = check_member_names(zf, blob, result, ctx)
            names = [i.filename for i in infos]
            pickles = [n for n in names if n.endswith("data.pkl")]
            pt2 = _pt2_archive.is_archive(zf, names)
            if not pt2 and sum(1 for n in pickles if n.endswith("/data.pkl") or n == "data.pkl") != 1:
                result.report("MA-T001", "PyTorch zip checkpoint should hold exactly one data.pkl; found "
                              f"{len(pickles)}", blob.location,
                              {"members": names[:50]})
            # a TorchScript archive is read by torch.jit.load, whose unpickler resolves names itself
            jit = torchscript.is_archive(names)
            skip = _SKIPPED.fullmatch
            raw = _pt2_archive.raw_members(zf, names) if pt2 else set()
            for info in [i for i in infos if not skip(i.filename) and i.filename not in raw]:
                ctx.check_deadline()
                if pt2 and _pt2_archive.is_program(info.filename):
                    self._check_program(zf, info, blob, result, ctx)
                elif info.filename.endswith(".pkl") or (jit and info.filename.endswith(".debug_pkl")):
                    with member_blob(zf, info, blob, ctx, result) as child, child.buffer() as buf:
                        (torchscript.walk_archive_pickle if jit else walk_pickle)(buf, child, result, ctx)
                elif info.filename.endswith(_CODE_SUFFIXES) or info.file_size > 0:
                    with member_blob(zf, info, blob, ctx, result) as child:
                        # by name as well as content: code/*.py of TorchScript gets the Python analysis
                        if child.detection.format not in _NOT_SCANNED:
                            ctx.scan_member(child, result)
            result.bytes_scanned = blob.size

    def _check_program(self, zf, info, blob, result, ctx) -> None:  # noqa: ANN001
        location = f"{blob.location}:{info.filename}"
        if info.file_size > _pt2_archive.MAX_PROGRAM_JSON:
            result.report("MA-H011", f"torch.export program of {info.file_size} bytes is over the analysis budget",
                          location, {"size": info.file_size})
            result.mark_incomplete()
            return
        with member_blob(zf, info, blob, ctx, result) as child, child.buffer() as buf:
            text = bytes(buf)
        problems = list(_pt2_archive.check_program(text))
        for code, message, details in problems[:50]:
            result.report(code, message, location, details)
        result.add_check("torch.export program", not problems, f"{len(problems)} finding(s)" if problems else
                         "operators and expressions the exporter writes", location)


# Members never read: folders, and raw tensor bytes (archive/data/0, archive/data/1 …, TorchScript's
# constants storages under .data/, and .data/version)
_SKIPPED = re.compile(r".*/|(?:.*/)?\.?data/\d+|.*/\.data/version", re.DOTALL)
