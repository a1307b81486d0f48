"""Tar archives, including torch's oldest checkpoint format (a tar of pickles named
"sys_info", "pickle", "storages" and "tensors", still read by torch.load): every regular
member is scanned by its detected format."""

from __future__ import annotations

import tarfile

from ..errors import BudgetExceeded
from ..spool import spooled_blob
from ._zip import unsafe_member_name
from .base import BaseScanner


class TarScanner(BaseScanner):
    name = "tar"
    description = "Tar archives (and torch's legacy tar checkpoints): path traversal, every member scanned by content"
    supported_extensions = [".tar"]
    formats = ("tar",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        with blob.open() as fh:
            try:
                archive = tarfile.open(fileobj=fh, mode="r:")
            except (tarfile.TarError, OSError, EOFError) as exc:
                result.report("MA-A003", f"Malformed tar archive: {exc}", blob.location, {"error": str(exc)})
                return
            with archive:
                self._members(archive, blob, result, ctx)
        result.bytes_scanned += blob.size

    def _members(self, archive, blob, result, ctx) -> None:  # noqa: ANN001
        count = 0
        try:
            for member in archive:
                count += 1
                if count > ctx.limits.max_members:
                    raise BudgetExceeded(f"archive has more than {ctx.limits.max_members} entries", "MA-S012")
                ctx.check_deadline()
                location = f"{blob.location}:{member.name}"
                if unsafe_member_name(member.name) or (member.issym() or member.islnk()) and \
                        unsafe_member_name(member.linkname):
                    result.report("MA-A001", f"Archive entry {member.name} attempted path traversal outside the "
                                  "archive", location, {"entry": member.name, "link": member.linkname or None})
                if not member.isfile():
                    continue
                stream = archive.extractfile(member)
                if stream is None:
                    continue
                with stream, spooled_blob(stream, location, member.name, blob.depth + 1,
                                          ctx.limits.max_decompressed, member.size) as child:
                    ctx.scan_member(child, result)
        except (tarfile.TarError, EOFError) as exc:
            result.report("MA-A003", f"Malformed tar archive after {count} entries: {exc}", blob.location,
                          {"error": str(exc)})
