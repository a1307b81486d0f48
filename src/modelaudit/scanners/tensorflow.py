"""tensorflow: SavedModels, GraphDefs, MetaGraphDefs and Keras metadata, read without TensorFlow.

Protobuf has no magic, so the file name says what a file holds: ``saved_model.pb`` (or
``saved_model.pbtxt`` in text form) is a SavedModel, ``*.meta`` a MetaGraphDef, ``keras_metadata.pb``
the Keras layer configs of a SavedModel, ``fingerprint.pb`` its fingerprint, and any other ``.pb`` /
``.pbtxt`` a bare GraphDef. Every node of every graph and of the function libraries is listed and
checked (see `_tf_graph` and `_tf_policy`); Keras metadata is searched for Lambda layers; the
SavedModel's object graph must name functions the library defines. A SavedModel is a directory, so
scanning ``saved_model.pb`` (which the directory walk hands over like any file) also checks its
``variables/`` and ``assets/`` siblings. Other files of the directory are scanned on their own.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import BudgetExceeded, ScanTimeout
from ._protobuf import Reader, ReadLimits, Span
from ._prototext import TextFormatError, convert, parse
from ._tf_graph import MAX_METADATA, Findings, Inventory, check_keras_metadata, check_ops
from ._tf_schema import ASSET_FILE, ROOTS
from .base import BaseScanner
from .onnx import MODEL as ONNX_MODEL
from .onnx import OnnxScanner, location_problem

MAX_TEXT_FILE = 512 * 1024 * 1024  # a text protobuf is parsed in memory
MAX_LISTING = 10_000  # directory entries looked at in variables/ and assets/
MAX_ASSETS = 10_000  # entries of the TF1 asset collection decoded
VARIABLE_OPS = frozenset({"VarHandleOp", "VariableV2", "Variable", "RestoreV2", "Restore", "RestoreSlice"})
_SHARD = re.compile(r"variables\.data-(\d{5})-of-(\d{5})")
_LABELS = {"saved_model": "SavedModel", "meta_graph": "MetaGraphDef", "graph": "GraphDef",
           "keras_metadata": "Keras SavedModel metadata", "fingerprint": "SavedModel fingerprint"}


def flavour(name: str) -> str:
    """What a TensorFlow protobuf file holds, from its name."""
    base = os.path.basename(name.replace("\\", "/")).lower()
    if base in ("saved_model.pb", "saved_model.pbtxt"):
        return "saved_model"
    if base == "keras_metadata.pb":
        return "keras_metadata"
    if base == "fingerprint.pb":
        return "fingerprint"
    return "meta_graph" if base.endswith(".meta") else "graph"


@dataclass
class _Model:
    """What the checks found beyond the nodes: asset file names and the inventory."""

    inv: Inventory = field(default_factory=Inventory)
    assets: list[str] = field(default_factory=list)
    lambdas: set[str] = field(default_factory=set)


class TensorFlowScanner(BaseScanner):
    name = "tensorflow"
    description = ("TensorFlow SavedModel, GraphDef, MetaGraphDef and Keras metadata protobufs (binary and text) "
                   "read without TensorFlow: every op of the graph and function library, assets and variables")
    supported_extensions = [".pb", ".pbtxt", ".meta"]
    formats = ("pb", "pbtxt")
    read_limits = ReadLimits()

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        kind = flavour(blob.name or blob.location)
        text = (blob.name or blob.location).lower().endswith(".pbtxt")
        report = Findings(result, blob.location)
        root: dict[str, Any] = {}
        with blob.buffer() as buf:
            error, stopped, skipped = self._read(buf, kind, text, root, ctx)
            onnx = kind == "graph" and not text and stopped is None and _onnx_not_graph(buf, root, error, ctx)
            model = None if onnx else _analyse(kind, root, buf, report)
        if model is None:
            OnnxScanner().check(blob, result, ctx)  # an ONNX model saved as .pb
            return
        if error is not None:
            report("MA-T101", f"Malformed TensorFlow {'text ' if text else ''}protobuf: {error}; TensorFlow rejects "
                   "the file or reads it differently, and nothing after this point was checked", {"error": str(error)})
            result.mark_incomplete()
        result.bytes_scanned += blob.size - skipped
        if error is None and stopped is None:
            _check_structure(kind, text, root, model, report, result)
        if kind == "saved_model" and blob.path is not None:
            check_directory(blob.path, model, report)
        report.close()
        result.add_check("tensorflow graph", report.total() == 0 and error is None,
                         f"{_LABELS[kind]}{_tags(root)}: {_contents(kind, root, model)}", blob.location)
        if stopped is not None:
            raise stopped

    def _read(self, buf: Any, kind: str, text: bool, root: dict, ctx) -> tuple[Exception | None, Exception | None, int]:  # noqa: ANN001
        """Decode into `root`; returns (parse error, budget or deadline stop, bytes skipped unread)."""
        schema = ROOTS[kind]
        try:
            if text:
                if len(buf) > MAX_TEXT_FILE:
                    raise BudgetExceeded(f"text protobuf larger than {MAX_TEXT_FILE} bytes; not parsed", "MA-T109")
                root.update(convert(parse(bytes(buf).decode("utf-8", "replace"), tick=ctx.check_deadline), schema))
                return None, None, 0
            reader = Reader(buf, self.read_limits, tick=ctx.check_deadline, budget_rule="MA-T109")
            _, error = reader.decode(schema, out=root)
            return error, None, reader.skipped
        except TextFormatError as exc:
            return exc, None, 0
        except (BudgetExceeded, ScanTimeout) as exc:
            return None, exc, 0


def _contents(kind: str, root: dict, model: _Model) -> str:
    if kind == "keras_metadata":
        return f"{len(root.get('nodes', []))} Keras objects, {len(model.lambdas)} Lambda layer(s)"
    if kind == "fingerprint":
        return "read"
    return model.inv.summary()


def _onnx_not_graph(buf: Any, root: dict, error: Exception | None, ctx) -> bool:  # noqa: ANN001
    """True for an ONNX model saved as .pb: no GraphDef nodes, but an ONNX ModelProto with a graph."""
    if root.get("node") and error is None:
        return False
    try:
        model, problem = Reader(buf, ReadLimits(max_fields=1_000_000), tick=ctx.check_deadline).decode(ONNX_MODEL)
    except BudgetExceeded:
        return False
    return problem is None and "ir_version" in model and bool(model.get("graph", {}).get("node"))


def _tags(root: dict) -> str:
    infos = [mg.get("meta_info_def", {}) for mg in root.get("meta_graphs", [root])]
    tags = sorted({t for info in infos for t in info.get("tags", [])})[:8]
    versions = sorted({info["tensorflow_version"] for info in infos if info.get("tensorflow_version")})[:2]
    return (f" (tags {tags})" if tags else "") + (f" written by TensorFlow {', '.join(versions)}" if versions else "")


# --- walking what was decoded ---------------------------------------------------------------
def _analyse(kind: str, root: dict, buf: Any, report: Findings) -> _Model:
    model = _Model()
    if kind == "saved_model":
        graphs = root.get("meta_graphs", [])
        for index, meta in enumerate(graphs):
            _meta_graph(meta, f"meta_graphs[{index}] " if len(graphs) > 1 else "", model, buf, report)
    elif kind == "meta_graph":
        _meta_graph(root, "", model, buf, report)
    elif kind == "graph":
        model.inv.add_graph(root)
    elif kind == "keras_metadata":
        for node in root.get("nodes", []):
            where = f"Keras object {node.get('node_path', '?')[:120]!r}"
            check_keras_metadata(where, _raw(node.get("metadata"), buf), report, model.lambdas)
    check_ops(model.inv, buf, report)
    return model


def _raw(value: Any, buf: Any) -> bytes:
    if isinstance(value, Span):
        return bytes(buf[value.start:min(value.end, value.start + MAX_METADATA + 1)])
    return value if isinstance(value, bytes) else b""


def _meta_graph(meta: dict, prefix: str, model: _Model, buf: Any, report: Findings) -> None:
    assets = _assets(meta, buf, report)
    model.assets.extend(filename for _, filename in assets)
    fed = frozenset(tensor.split(":")[0] for tensor, _ in assets)  # the loader feeds these with asset paths
    model.inv.add_graph(meta.get("graph_def", {}), prefix, fed)
    objects = meta.get("object_graph_def", {})
    for index, obj in enumerate(objects.get("nodes", [])):
        user = obj.get("user_object", {})
        if "metadata" in user:
            where = f"{prefix}object {index} ({user.get('identifier', '?')[:60]})"
            check_keras_metadata(where, _raw(user["metadata"], buf), report, model.lambdas)
        asset = obj.get("asset")
        file_index = asset.get("asset_file_def_index", 0) if asset is not None else 0  # text format: any token
        if asset is not None and not (isinstance(file_index, int) and 0 <= file_index < max(len(assets), 1)):
            report("MA-T101", f"{prefix}object {index} is an asset whose asset_file_def_index "
                   f"{asset.get('asset_file_def_index')} names no asset file", {"object": index})
    _check_function_names(objects, model.inv, prefix, report)


def _assets(meta: dict, buf: Any, report: Findings) -> list[tuple[str, str]]:
    """(tensor name, file name) of every asset: the asset_file_def field and the TF1 collection."""
    found = [(a.get("tensor_info", {}).get("name", ""), a.get("filename", "")) for a in meta.get("asset_file_def", [])]
    for entry in meta.get("collection_def", []):
        if entry.get("key") != "saved_model_assets":
            continue
        items = entry.get("value", {}).get("any_list", {}).get("value", [])
        if len(items) > MAX_ASSETS:
            report("MA-T109", f"The saved_model_assets collection lists {len(items)} assets; only the first "
                   f"{MAX_ASSETS} were checked", {"assets": len(items)})
            report.result.mark_incomplete()
        for item in items[:MAX_ASSETS]:
            value = item.get("value")  # a Span of the binary file, or the bytes of a text-format string
            if isinstance(value, (Span, bytes)):
                asset, error = (Reader(buf).decode(ASSET_FILE, value.start, value.end) if isinstance(value, Span)
                                else Reader(value).decode(ASSET_FILE))
                if error is None:
                    found.append((asset.get("tensor_info", {}).get("name", ""), asset.get("filename", "")))
    return found


def _check_function_names(objects: dict, inv: Inventory, prefix: str, report: Findings) -> None:
    named = {entry.get("key", "") for entry in objects.get("concrete_functions", [])}
    for obj in objects.get("nodes", []):
        named.update(obj.get("function", {}).get("concrete_functions", []))
        bare = obj.get("bare_concrete_function", {}).get("concrete_function_name")
        if bare is not None:
            named.add(bare)
    missing = sorted(named - inv.functions)
    if missing:
        report("MA-T101", f"{prefix}object graph refers to {len(missing)} concrete function(s) the function library "
               f"does not define ({', '.join(repr(m[:80]) for m in missing[:5])}); TensorFlow cannot load it",
               {"missing": [m[:200] for m in missing[:32]]})


def _check_structure(kind: str, text: bool, root: dict, model: _Model, report: Findings, result) -> None:  # noqa: ANN001
    """A parse that ends cleanly can still be an empty, cut-off or foreign file."""
    if kind == "saved_model":
        graphs = root.get("meta_graphs", [])
        if not graphs:
            report("MA-T101", "SavedModel holds no MetaGraphDef: the file is empty, cut short or not a SavedModel")
        elif not all("graph_def" in g for g in graphs):
            report("MA-T101", "SavedModel has a MetaGraphDef without a graph_def")
    elif kind == "meta_graph" and "graph_def" not in root:
        report("MA-T101", "MetaGraphDef holds no graph_def: the file is empty, cut short or not a MetaGraphDef")
    elif kind == "keras_metadata" and not root.get("nodes"):
        report("MA-T101", "Keras metadata holds no objects: the file is empty, cut short or not keras_metadata.pb")
    elif kind == "graph" and not text and not model.inv.nodes and not root.get("versions"):
        report("MA-S004", "The .pb file is not a TensorFlow GraphDef (no nodes, no versions); it was not checked as "
               "a model", {"format": "pb"})
        result.mark_incomplete()


# --- the SavedModel directory ---------------------------------------------------------------
def check_directory(path: str, model: _Model, report: Findings) -> None:
    root = os.path.dirname(os.path.abspath(path))
    _check_variables(root, bool(VARIABLE_OPS & set(model.inv.ops)), report)
    _check_assets(root, model.assets, report)


def _listing(directory: str) -> list[str]:
    try:
        return sorted(os.listdir(directory))[:MAX_LISTING]
    except OSError:
        return []


def _escapes(root: str, path: str) -> str | None:
    real = os.path.realpath(path)
    base = os.path.realpath(root)
    return None if real == base or real.startswith(base.rstrip(os.sep) + os.sep) else real


def _check_variables(root: str, uses_variables: bool, report: Findings) -> None:
    directory = os.path.join(root, "variables")
    if not os.path.isdir(directory):
        if uses_variables:
            report("MA-T106", "The graph has variables but the SavedModel has no variables/ directory; whatever "
                   "checkpoint the loader finds in its place supplies the weights", {"directory": directory})
        return
    names = _listing(directory)
    for name in names:
        real = _escapes(root, os.path.join(directory, name))
        if real is not None:
            report("MA-T107", f"variables/{name} is a link to {real}, outside the SavedModel; loading the model "
                   "reads that file", {"file": f"variables/{name}", "resolved": real})
    if "variables.index" not in names and (names or uses_variables):  # TF1 writes an empty variables/ when it has none
        report("MA-T106", "variables/ has no variables.index; TensorFlow cannot restore the weights",
               {"directory": directory})
    shards = [m for m in map(_SHARD.fullmatch, names) if m]
    totals = {int(m[2]) for m in shards}
    if "variables.index" in names and not shards:
        report("MA-T106", "variables/ has an index but no variables.data-*-of-* shard", {"directory": directory})
    elif len(totals) > 1:
        report("MA-T106", f"variables/ mixes shards of different checkpoints (totals {sorted(totals)[:4]})",
               {"totals": sorted(totals)[:16]})
    elif totals:
        missing = sorted(set(range(min(totals.pop(), MAX_LISTING))) - {int(m[1]) for m in shards})
        if missing:
            report("MA-T106", f"variables/ lacks data shard(s) {missing[:8]}", {"missing": missing[:32]})


def _check_assets(root: str, assets: list[str], report: Findings) -> None:
    assets_dir = os.path.join(root, "assets")
    for name in dict.fromkeys(assets):
        found = location_problem(name)
        if found is not None:
            why, escapes = found
            code = "MA-T107" if escapes else "MA-T106"
            report(code, f"Asset file name {name[:200]!r} {why}; the loader joins it to assets/ and reads what it "
                   "names", {"asset": name[:500]})
            if escapes:
                continue
        path = os.path.join(assets_dir, name)
        real = _escapes(root, path)
        if real is not None:
            report("MA-T107", f"Asset {name[:200]!r} resolves to {real}, outside the SavedModel", {"asset": name[:500],
                                                                                                "resolved": real})
        elif not os.path.exists(path):
            report("MA-T106", f"Asset file assets/{name[:200]} is missing; the graph is fed a path that does not "
                   "exist", {"asset": name[:500]})
    for name in _listing(assets_dir) if os.path.isdir(assets_dir) else []:
        real = _escapes(root, os.path.join(assets_dir, name))
        if real is not None and name not in assets:
            report("MA-T107", f"assets/{name} is a link to {real}, outside the SavedModel", {"asset": name,
                                                                                          "resolved": real})


__all__ = ["TensorFlowScanner", "flavour"]
