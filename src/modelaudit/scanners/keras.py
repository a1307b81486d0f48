"""Keras models: legacy HDF5 (.h5/.hdf5) and Keras 3 archives (.keras).

Nothing is loaded through Keras. HDF5 files are read with h5py (imported lazily): the
structure is walked for links and data that live outside the file and for a user block,
and the `model_config`/`training_config` attributes are checked as JSON. Keras archives
are read member by member: config.json and metadata.json are checked, model.weights.h5 and
every other member are scanned by their own format.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections import Counter
from typing import TYPE_CHECKING

from ..detect import HEAD_SIZE, detect
from ..errors import BudgetExceeded
from ..model import IssueSeverity
from . import _hdf5
from ._findings import CappedFindings
from ._keras_config import ConfigChecker, host_path
from ._metadata_checks import check_metadata_value
from ._zip import check_member_names, member_blob, open_zip, read_member
from .base import BaseScanner

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext
    from .base import ScanResult

CONFIG_ATTRIBUTES = ("model_config", "training_config")
MAX_CONFIG_BYTES = 256 * 1024 * 1024
RATIO_LIMIT = 100
_KNOWN_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5", "model.weights.npz"})


class KerasH5Scanner(BaseScanner):
    name = "keras_h5"
    description = ("Keras HDF5 models: model/training config (Lambda code, custom and dangerous objects, Keras "
                   "CVE shapes), external links and data, user block")
    supported_extensions = [".h5", ".hdf5", ".keras"]
    formats = ("hdf5",)
    dependency = ("h5py", "h5")

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        where = blob.location
        before = len(result.issues)
        try:
            with _hdf5.open_hdf5(blob) as handle:
                _check_userblock(handle, blob, result, ctx)
                unsafe = _hdf5.heap_problem(blob, ctx)
                if unsafe is not None:
                    result.report("MA-K012", f"HDF5 global heap collection at offset {unsafe[0]} holds {unsafe[1]}; "
                                  "libhdf5 hangs or overruns memory reading it, so the structure and config were "
                                  "not read", where, {"offset": unsafe[0]})
                    result.mark_incomplete()
                    return
                _check_structure(_hdf5.walk(handle, ctx), where, result)
                configs = _check_configs(handle, blob, result, ctx)
        except _hdf5.HDF5Error as exc:
            result.report("MA-K012", f"Cannot read HDF5 structure: {exc}", where, {"error": str(exc)})
            result.mark_incomplete()
            return
        result.bytes_scanned += blob.size
        ok = not any(i.severity.rank >= 2 for i in result.issues[before:])
        what = f"Keras {', '.join(configs)} checked" if configs else "no Keras model config"
        result.add_check("keras h5", ok, f"HDF5 structure walked; {what}", where)


def _check_userblock(handle, blob: Blob, result: ScanResult, ctx: ScanContext) -> None:  # noqa: ANN001
    size = int(handle.userblock_size or 0)
    if not size:
        return
    content = blob.head(min(size, ctx.limits.max_decompressed or size))
    if not content.strip(b"\0"):
        return
    result.report("MA-K011", f"HDF5 user block of {size} bytes holds content before the HDF5 data; it was scanned "
                  "as its own file", blob.location, {"userblock_size": size})
    ctx.scan_member(blob.child(content, "userblock"), result)


def _check_structure(found: _hdf5.Structure, where: str, result: ScanResult) -> None:
    report = CappedFindings(result, where)  # a hostile file may hold 200,000 links
    # the worst first: links out of the file to host paths, other links out of the file, then soft links
    for link in sorted(found.links, key=lambda link: (link.kind == "soft", not host_path(link.file or ""))):
        if link.kind == "soft":
            report("MA-K009", f"HDF5 soft link {link.path} points at {link.target} inside the file",
                   {"link": link.path, "target": link.target, "kind": "soft"}, IssueSeverity.INFO)
            continue
        target = f"{link.file}:{link.target}" if link.file else link.target
        outside = link.file is not None and host_path(link.file)
        report("MA-K009", f"HDF5 {link.kind} link {link.path} points to {target}",
               {"link": link.path, "kind": link.kind, "file": link.file, "target": link.target},
               IssueSeverity.CRITICAL if outside else None)
    for data in found.outside:
        report("MA-K010", f"HDF5 dataset {data.dataset} reads its data from {', '.join(data.files)} ({data.kind})",
               {"dataset": data.dataset, "kind": data.kind, "files": list(data.files)})
    report.flush()
    for path, error in found.broken[:20]:
        result.report("MA-K012", f"HDF5 object {path} cannot be read: {error}", where, {"object": path, "error": error})
    if found.broken:
        result.mark_incomplete()
    if found.truncated:
        result.report("MA-K013", f"HDF5 file holds more than {_hdf5.MAX_OBJECTS} objects; the rest was not walked",
                      where, {"objects": found.objects})
        result.mark_incomplete()


def _check_configs(handle, blob: Blob, result: ScanResult, ctx: ScanContext) -> list[str]:  # noqa: ANN001
    checked = []
    checker = ConfigChecker(result, ctx, blob, blob.location, legacy_h5=True)
    try:
        for name in CONFIG_ATTRIBUTES:
            try:
                text = _hdf5.root_text_attribute(handle, name, MAX_CONFIG_BYTES, blob)
            except (_hdf5.HDF5Error, *_hdf5.H5_ERRORS) as exc:
                result.report("MA-K012", f"HDF5 attribute {name} cannot be read as text: {exc}", blob.location,
                              {"attribute": name, "error": str(exc)})
                result.mark_incomplete()
                continue
            if text is not None:
                checker.check_text(text, name)
                checked.append(name)
    finally:
        checker.finish()
    return checked


class KerasZipScanner(BaseScanner):
    name = "keras_zip"
    description = ("Keras 3 archives: config.json (Lambda code, custom and dangerous objects, Keras CVE shapes), "
                   "metadata.json, embedded weights and every other member by its own format")
    supported_extensions = [".keras"]
    formats = ("keras_zip",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        before = len(result.issues)
        with open_zip(blob, result) as zf:
            if zf is None:
                return
            infos = check_member_names(zf, blob, result, ctx)
            _check_names(infos, blob, result)
            for info in infos:
                ctx.check_deadline()
                if not info.filename.endswith("/"):
                    _check_member(zf, info, blob, result, ctx)
        result.bytes_scanned += blob.size
        ok = not any(i.severity.rank >= 2 for i in result.issues[before:])
        result.add_check("keras archive", ok, f"{len(infos)} entries, config and members checked", blob.location)


def _check_names(infos: list[zipfile.ZipInfo], blob: Blob, result: ScanResult) -> None:
    names = [i.filename for i in infos]
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    for name in repeated:
        result.report("MA-K012", f"Keras archive holds {name} more than once; readers disagree on which copy counts "
                      "(every copy was checked)", f"{blob.location}:{name}", {"entry": name})
    if "config.json" not in names:
        result.report("MA-K012", "Keras archive has no config.json", blob.location, {"entries": names[:20]})


def _check_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, blob: Blob, result: ScanResult,
                  ctx: ScanContext) -> None:
    where = f"{blob.location}:{info.filename}"
    if info.compress_size and info.file_size / info.compress_size > RATIO_LIMIT and info.file_size > 1 << 20:
        result.report("MA-A002", f"Archive entry {info.filename} has a compression ratio of "
                      f"{info.file_size / info.compress_size:.0f}x", where,
                      {"compressed": info.compress_size, "uncompressed": info.file_size})
    if info.filename in ("config.json", "metadata.json"):
        text = _read_text(zf, info, where, result)
        if text is None:
            return
        from ..blob import Blob as Member

        ctx.record(Member.from_bytes(text.encode("utf-8"), where, info.filename, blob.depth + 1))
        if info.filename == "config.json":
            checker = ConfigChecker(result, ctx, blob, where, legacy_h5=False)
            try:
                checker.check_text(text, "config.json")
            finally:
                checker.finish()
        else:
            _check_metadata(text, where, result)
        return
    with member_blob(zf, info, blob, ctx, result) as child:
        if info.filename not in _KNOWN_MEMBERS and not info.filename.startswith("assets/"):
            fmt = detect(child.head(HEAD_SIZE), child.name, child.size).format
            result.report("MA-K014", f"Keras archive holds an unexpected {fmt} member {info.filename}", where,
                          {"entry": info.filename, "format": fmt, "extension": os.path.splitext(info.filename)[1]})
        ctx.scan_member(child, result)


def _read_text(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, result: ScanResult) -> str | None:
    try:
        raw = read_member(zf, info, MAX_CONFIG_BYTES)
    except BudgetExceeded as exc:
        result.report("MA-K013", str(exc), where, {"entry": info.filename})
        result.mark_incomplete()
        return None
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, OSError) as exc:
        result.report("MA-K012", f"Keras archive entry {info.filename} cannot be read: {exc}", where,
                      {"entry": info.filename, "error": str(exc)})
        result.mark_incomplete()
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        result.report("MA-K012", f"Keras archive entry {info.filename} is not UTF-8 text", where,
                      {"entry": info.filename, "error": str(exc)})
        return None


def _check_metadata(text: str, where: str, result: ScanResult) -> None:
    try:
        metadata = json.loads(text)
    except (ValueError, RecursionError) as exc:
        result.report("MA-K012", f"Keras metadata.json is not valid JSON: {exc}", where, {"error": str(exc)})
        return
    if not isinstance(metadata, dict):
        result.report("MA-K012", "Keras metadata.json is not a JSON object", where)
        return
    for key, value in metadata.items():
        if not isinstance(value, str):
            continue
        check_metadata_value(lambda code, message, details: result.report(code, message, where, details),
                             key, value)
