"""7z archives (needs py7zr, the `archives` extra): every member inflated into a private
temporary folder within the file's decompression budget and scanned by its own format.
Names are checked before anything is read; nothing is written by an entry's own name."""

from __future__ import annotations

import lzma
import os
import posixpath
import shutil
import tempfile
import zlib
from typing import TYPE_CHECKING

from ..blob import Blob
from ..errors import BudgetExceeded, MissingDependency
from ..spool import TEMP_PREFIX, ByteBudget
from ._sevenzip_header import MAX_HEADER, HeaderTooLarge, declared_entries
from ._zip import unsafe_member_name
from .base import BaseScanner
from .containers import RATIO_LIMIT, RATIO_MIN_SIZE

MAX_LINK_CHECKS = 256

if TYPE_CHECKING:
    import py7zr


def _py7zr():  # noqa: ANN202
    try:
        import py7zr
        import py7zr.io
    except ImportError as exc:
        raise MissingDependency("py7zr", "archives", "7z archives") from exc
    return py7zr


class SevenZipScanner(BaseScanner):
    name = "sevenzip"
    description = "7z archives: path traversal, compression ratio, every member scanned by content (py7zr)"
    supported_extensions = [".7z"]
    formats = ("7z",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        lib = _py7zr()
        # what py7zr and its codecs raise on corrupt input (TypeError: "Unknown field" in a header; OverflowError:
        # a date out of range; AssertionError: py7zr's own checks of header bytes; AttributeError: a section
        # the header lacks)
        errors = (lib.exceptions.ArchiveError, lib.exceptions.Bad7zFile, lib.exceptions.DecompressionError,
                  lib.exceptions.UnsupportedCompressionMethodError, lib.exceptions.PasswordRequired,
                  lib.exceptions.CrcError, EOFError, OSError, ValueError, KeyError, IndexError, LookupError,
                  lzma.LZMAError, zlib.error, TypeError, OverflowError, AssertionError, AttributeError)
        with blob.open() as fh:
            self._check_declared_entries(fh, blob, ctx)
        tmpdir = tempfile.mkdtemp(prefix=TEMP_PREFIX)
        factory = _Factory(tmpdir, ctx.inflation, blob.location)
        try:
            with blob.open() as fh:
                try:
                    with lib.SevenZipFile(fh, mode="r") as archive:
                        links = {f.filename for f in archive.files if f.is_symlink}
                        wanted = [n for n in self._entries(archive, blob, result, ctx) if n not in links]
                        if wanted:
                            archive.extract(targets=wanted, factory=factory)
                        factory.close()
                    if links:
                        self._check_links(lib, fh, sorted(links), blob, result, ctx)
                except errors as exc:
                    result.report("MA-A003", f"Malformed 7z archive: {type(exc).__name__}: {exc}", blob.location,
                                  {"error": str(exc)})
                    result.mark_incomplete()
                    return
            result.bytes_scanned += blob.size
            for name, path in factory.written:
                ctx.check_deadline()
                child = Blob(location=f"{blob.location}:{name}", size=os.path.getsize(path), path=path,
                             depth=blob.depth + 1, name=name)
                ctx.scan_member(child, result)
        finally:
            factory.close()
            shutil.rmtree(tmpdir, ignore_errors=True)

    @staticmethod
    def _check_declared_entries(fh, blob, ctx) -> None:  # noqa: ANN001
        """py7zr spends hundreds of bytes on every entry a header lists: count them before it parses."""
        try:
            declared = declared_entries(fh, blob.size, ctx.check_deadline)
        except HeaderTooLarge as exc:
            raise BudgetExceeded(f"{exc} is larger than the {MAX_HEADER} bytes read to list it", "MA-S012") from exc
        if declared is not None and declared > ctx.limits.max_members:
            raise BudgetExceeded(f"archive declares {declared} entries (limit {ctx.limits.max_members})", "MA-S012")

    @staticmethod
    def _check_links(lib, fh, names: list[str], blob, result, ctx) -> None:  # noqa: ANN001
        """Symlink entries: their data is the target. All are read in one pass; when py7zr refuses that (some
        versions refuse targets that leave the archive), the first MAX_LINK_CHECKS are read one by one to
        find which (each pass parses the whole header: one per link of thousands would take hours)."""
        targets = _link_targets(lib, fh, names, blob.location)
        if targets is None:
            targets = {}
            for name in names[:MAX_LINK_CHECKS]:
                ctx.check_deadline()
                one = _link_targets(lib, fh, [name], blob.location)
                targets[name] = None if one is None else one.get(name, "")
            if len(names) > MAX_LINK_CHECKS:
                result.report("MA-A003", f"7z archive holds {len(names)} links that py7zr refuses to read together; "
                              f"only the first {MAX_LINK_CHECKS} were checked", blob.location,
                              {"links": len(names), "checked": MAX_LINK_CHECKS})
                result.mark_incomplete()
        for name, target in targets.items():
            outside = target is None or target.startswith("/") or \
                unsafe_member_name(posixpath.join(posixpath.dirname(name), target))
            if outside:  # None: py7zr refused this link, which it does for targets that leave the archive
                where_to = f"to {target} " if target else "whose target lies "
                result.report("MA-A005", f"Archive entry {name} is a link {where_to}outside the archive",
                              f"{blob.location}:{name}", {"entry": name, "target": target or None})

    @staticmethod
    def _entries(archive: py7zr.SevenZipFile, blob, result, ctx) -> list[str]:  # noqa: ANN001
        """Check names, counts and the declared ratio; return the members that can be read safely."""
        infos = archive.list()
        if len(infos) > ctx.limits.max_members:
            raise BudgetExceeded(f"archive has {len(infos)} entries (limit {ctx.limits.max_members})", "MA-S012")
        wanted = []
        for info in infos:
            name = info.filename
            if unsafe_member_name(name):
                # py7zr refuses to read such entries at all: the finding stands, the content is not scanned
                result.report("MA-A001", f"Archive entry {name} attempted path traversal outside the archive",
                              f"{blob.location}:{name}", {"entry": name, "scanned": False})
                result.mark_incomplete()
            elif not info.is_directory:
                wanted.append(name)
        declared = sum(info.uncompressed or 0 for info in infos)
        if blob.size and declared > RATIO_MIN_SIZE and declared / blob.size > RATIO_LIMIT:
            result.report("MA-A002", f"7z archive declares {declared} bytes in {blob.size}: a compression ratio "
                          f"of {declared / blob.size:.0f}x", blob.location,
                          {"compressed": blob.size, "uncompressed": declared})
        return wanted


def _link_targets(lib, fh, names: list[str], location: str) -> dict[str, str] | None:  # noqa: ANN001
    """{link: target} for the named symlink entries; None when py7zr refuses to extract them."""
    fh.seek(0)
    tmpdir = tempfile.mkdtemp(prefix=TEMP_PREFIX)
    sink = _Factory(tmpdir, ByteBudget(64 * 1024 + 4096 * len(names)), location)
    try:
        with lib.SevenZipFile(fh, mode="r") as archive:
            archive.extract(targets=names, factory=sink)
        sink.close()
        targets = {}
        for name, path in sink.written:
            with open(path, "rb") as link:
                targets[name] = link.read(4096).decode("utf-8", "replace")
        return targets
    except lib.exceptions.Bad7zFile:
        return None
    finally:
        sink.close()
        shutil.rmtree(tmpdir, ignore_errors=True)


class _Factory:
    """py7zr WriterFactory: each member goes to a numbered file in our private folder."""

    def __init__(self, tmpdir: str, budget: ByteBudget, location: str) -> None:
        self._tmpdir, self._budget, self._location = tmpdir, budget, location
        self.written: list[tuple[str, str]] = []
        self._writers: list[_Writer] = []

    def create(self, filename: str) -> _Writer:
        path = os.path.join(self._tmpdir, str(len(self.written)))
        self.written.append((filename, path))
        self._writers.append(_Writer(path, self._budget, f"{self._location}:{filename}"))
        return self._writers[-1]

    def close(self) -> None:
        for writer in self._writers:
            writer.close()


class _Writer:
    """A write-only member sink (duck-typed py7zr.io.Py7zIO) that charges the decompression budget."""

    def __init__(self, path: str, budget: ByteBudget, location: str) -> None:
        self._fh = open(path, "wb")  # noqa: SIM115 - closed by py7zr through close()
        self._budget, self._location, self._size = budget, location, 0

    def write(self, data: bytes | bytearray) -> int:
        self._size += len(data)
        self._budget.charge(len(data), self._location, self._size)
        return self._fh.write(data)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def flush(self) -> None:
        self._fh.flush()

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        self._fh.close()
