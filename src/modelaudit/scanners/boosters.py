"""Native gradient-boosting models: XGBoost (JSON, UBJSON, legacy binary), LightGBM text, CatBoost.

These formats hold no code, but their native loaders trust the counts and indices they carry, so
each is checked for the structure its library writes: XGBoost's learner / gradient_booster / trees
with arrays sized by num_nodes and child indices in range; LightGBM's header keys, tree count,
tree_sizes (byte lengths the loader seeks by) and per-tree arrays; CatBoost's magic, core size and
flatbuffer root. Pickled boosters are pickles and go through the pickle walker instead.
"""

from __future__ import annotations

import json
import re
import struct
from typing import Any

from ._flatbuffer import FlatBuffer, FlatBufferError, FlatLimits
from ._metadata_checks import code_snippet, credential_kind
from ._ubjson import Reader, TypedArray, UbjsonError
from ._xgboost_binary import NODE_BUDGET, read_legacy
from .base import BaseScanner

MAX_JSON = 1024 * 1024 * 1024
MAX_LINE = 256 * 1024 * 1024
MAX_PROBLEMS = 20
_GBMS = ("gbtree", "dart", "gblinear")
_TREE_ARRAYS = ("left_children", "right_children", "parents", "split_indices", "split_conditions", "default_left")


def _ints(value: Any) -> list[Any]:
    return value.values() if isinstance(value, TypedArray) else list(value)


def _len(value: Any) -> int | None:
    return len(value) if isinstance(value, (list, TypedArray)) else None


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e400 parses as infinity
        return None


class _Problems:
    """Collects structural problems, capped, then reports them under one rule."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(message)

    def report(self, result, rule: str, what: str, where: str) -> bool:  # noqa: ANN001
        for item in self.items:
            result.report(rule, f"{what}: {item}", where, {"problem": item})
        return not self.items


class XGBoostScanner(BaseScanner):
    name = "xgboost"
    description = "XGBoost native models (JSON, UBJSON, legacy binary): learner, booster and tree structure"
    supported_extensions = [".ubj", ".bst", ".model", ".json"]
    formats = ("xgboost_json", "xgboost_ubj", "xgboost_binary")

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        where, fmt = blob.location, self._format(blob)
        if fmt == "xgboost_binary":
            self._check_binary(blob, result, ctx)
            return
        if blob.size > MAX_JSON:
            result.report("MA-X121", f"XGBoost model of {blob.size} bytes exceeds the parse limit", where)
            result.mark_incomplete()
            return
        with blob.buffer() as buf:
            try:
                if fmt == "xgboost_json":
                    model = json.loads(bytes(buf).decode("utf-8"))
                else:
                    reader = Reader(buf, ctx.check_deadline)
                    model = reader.read()
                    if reader.pos != len(buf):
                        result.report("MA-X121", f"{len(buf) - reader.pos} bytes follow the UBJSON model", where)
            except (UnicodeDecodeError, ValueError, UbjsonError, RecursionError) as exc:
                result.report("MA-X121", f"XGBoost model cannot be parsed: {exc}", where, {"error": str(exc)[:300]})
                result.mark_incomplete()
                return
            result.bytes_scanned += blob.size
            problems = _Problems()
            trees = _check_model(model, problems, result, where)
        ok = problems.report(result, "MA-X121", "XGBoost model", where)
        result.add_check("xgboost structure", ok, f"{trees} trees checked", where)

    @staticmethod
    def _format(blob) -> str:  # noqa: ANN001
        from ..detect import HEAD_SIZE, detect

        return detect(blob.head(HEAD_SIZE), blob.name, blob.size).format

    @staticmethod
    def _check_binary(blob, result, ctx) -> None:  # noqa: ANN001
        where = blob.location
        with blob.buffer() as buf:
            summary = read_legacy(buf, ctx.check_deadline, NODE_BUDGET)
        result.bytes_scanned += summary.bytes_read
        for rule, problem in summary.problems:
            result.report(rule, f"XGBoost binary model: {problem}", where, {"problem": problem})
        for key, value in summary.attributes:
            _check_attribute(key, value, result, where)
        if summary.trees_unwalked:
            result.report("MA-X124", f"{summary.trees_unwalked} of {summary.trees} trees were sized but not walked "
                          f"(node budget {NODE_BUDGET} reached)", where, {"trees_unwalked": summary.trees_unwalked})
            result.mark_incomplete()
        if summary.stopped:
            result.mark_incomplete()
        result.add_check("xgboost binary structure", not summary.problems,
                         f"{summary.booster or 'unknown'} model, version {summary.version[0]}.{summary.version[1]}: "
                         f"{summary.trees} trees, {summary.nodes_checked} nodes walked", where)


def _check_attribute(key: str, value: Any, result, where: str) -> None:  # noqa: ANN001
    text = value if isinstance(value, str) else ""
    snippet, kind = code_snippet(text), credential_kind(text)
    if snippet:
        result.report("MA-C001", f"Model attribute {key!r} contains code-like text ({snippet!r})", where,
                      {"key": key, "match": snippet})
    if kind:
        result.report("MA-C002", f"Model attribute {key!r} contains what looks like a {kind}", where,
                      {"key": key, "kind": kind})


def _check_model(model: Any, problems: _Problems, result, where: str) -> int:  # noqa: ANN001
    if not isinstance(model, dict) or not isinstance(model.get("learner"), dict):
        problems.add("top level has no 'learner' object")
        return 0
    version = model.get("version")
    if _len(version) != 3:
        problems.add(f"'version' is {str(version)[:40]}, not [major, minor, patch]")
    learner = model["learner"]
    for key, value in (learner.get("attributes") or {}).items() if isinstance(learner.get("attributes"), dict) else []:
        _check_attribute(key, value, result, where)
    objective = learner.get("objective")
    if not (isinstance(objective, dict) and isinstance(objective.get("name"), str)):
        problems.add("learner has no objective name")
    gb = learner.get("gradient_booster")
    if not isinstance(gb, dict) or gb.get("name") not in _GBMS:
        problems.add(f"gradient_booster name is {str(gb.get('name') if isinstance(gb, dict) else gb)[:40]!r}")
        return 0
    if gb["name"] == "gblinear":
        weights = gb.get("model", {}).get("weights") if isinstance(gb.get("model"), dict) else None
        if not isinstance(weights, (list, TypedArray)):
            problems.add("gblinear model has no weights array")
        return 0
    body = gb.get("gbtree") if gb["name"] == "dart" else gb
    tree_model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(tree_model, dict) or not isinstance(tree_model.get("trees"), list):
        problems.add("gbtree model has no 'trees' list")
        return 0
    trees = tree_model["trees"]
    param = tree_model.get("gbtree_model_param")
    declared = _as_int(param.get("num_trees")) if isinstance(param, dict) else None
    if declared != len(trees):
        problems.add(f"gbtree_model_param.num_trees is {declared} but {len(trees)} trees are stored")
    info = tree_model.get("tree_info")
    if info is not None and _len(info) != len(trees):
        problems.add(f"tree_info has {_len(info)} entries for {len(trees)} trees")
    if gb["name"] == "dart" and _len(gb.get("weight_drop") or []) != len(trees):
        problems.add(f"dart weight_drop does not have one weight per tree ({len(trees)})")
    for index, tree in enumerate(trees):
        _check_tree(index, tree, problems)
    return len(trees)


def _check_tree(index: int, tree: Any, problems: _Problems) -> None:
    if not isinstance(tree, dict):
        problems.add(f"tree {index} is not an object")
        return
    if _as_int(tree.get("id")) != index:
        problems.add(f"tree {index} has id {str(tree.get('id'))[:20]}")
    param = tree.get("tree_param")
    nodes = _as_int(param.get("num_nodes")) if isinstance(param, dict) else None
    if nodes is None or nodes < 1:
        problems.add(f"tree {index} has no valid tree_param.num_nodes")
        return
    for key in _TREE_ARRAYS:
        arr = tree.get(key)
        if arr is None:
            continue
        if _len(arr) != nodes:
            problems.add(f"tree {index}: {key} has {_len(arr)} entries "
                         f"for {nodes} nodes")
            return
    for key in ("left_children", "right_children"):
        if tree.get(key) is None:
            problems.add(f"tree {index} has no {key}")
            return
        bad = [c for c in _ints(tree[key]) if not isinstance(c, int) or not (c == -1 or 0 < c < nodes)]
        if bad:
            problems.add(f"tree {index}: {key} holds out-of-range node index {bad[0]} ({nodes} nodes)")


class LightGBMScanner(BaseScanner):
    name = "lightgbm"
    description = "LightGBM text models: header keys, tree count, tree_sizes and tree arrays"
    supported_extensions = [".txt", ".model"]
    formats = ("lightgbm",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        where, problems = blob.location, _Problems()
        header: dict[str, str] = {}
        trees: list[tuple[int, int, dict[str, str]]] = []  # (declared index, byte offset, fields)
        end_offset, offset, current = None, 0, None
        with blob.open() as fh:
            while True:
                line = fh.readline(MAX_LINE)
                if not line:
                    break
                if not line.endswith(b"\n") and len(line) >= MAX_LINE:
                    problems.add(f"line at offset {offset} is longer than {MAX_LINE} bytes")
                    break
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                if text.startswith("Tree="):
                    current = {}
                    trees.append((_as_int(text[5:]) if text[5:].isdigit() else -1, offset, current))
                elif text == "end of trees":
                    end_offset = offset
                    break
                elif "=" in text:
                    key, _, value = text.partition("=")
                    (current if current is not None else header)[key] = value
                offset += len(line)
                if len(trees) % 4096 == 0:
                    ctx.check_deadline()
        result.bytes_scanned += offset
        self._check_header(header, trees, end_offset, problems)
        max_feature = _as_int(header.get("max_feature_idx"))
        for position, (index, _, fields) in enumerate(trees):
            if index != position:
                problems.add(f"tree #{position} is labelled Tree={index}")
            _check_lgb_tree(position, fields, max_feature, problems)
        ok = problems.report(result, "MA-X122", "LightGBM model", where)
        result.add_check("lightgbm structure", ok, f"{len(trees)} trees checked", where)

    @staticmethod
    def _check_header(header: dict[str, str], trees: list, end_offset: int | None, problems: _Problems) -> None:
        if header.get("version") not in ("v2", "v3", "v4"):
            problems.add(f"unknown model version {header.get('version')!r}")
        for key in ("num_class", "num_tree_per_iteration", "max_feature_idx"):
            if _as_int(header.get(key)) is None or _as_int(header[key]) < 0:
                problems.add(f"header key {key} is missing or not a number")
        max_feature = _as_int(header.get("max_feature_idx"))
        names = header.get("feature_names")
        if names is not None and max_feature is not None and len(names.split(" ")) != max_feature + 1:
            problems.add(f"feature_names lists {len(names.split(' '))} names for max_feature_idx {max_feature}")
        per_iteration = _as_int(header.get("num_tree_per_iteration")) or 1
        if trees and len(trees) % per_iteration:
            problems.add(f"{len(trees)} trees is not a multiple of num_tree_per_iteration {per_iteration}")
        if trees and end_offset is None:
            problems.add("the tree section has no 'end of trees' line (truncated model)")
        sizes = header.get("tree_sizes")
        if sizes is None:
            return
        declared = [_as_int(s) for s in sizes.split(" ") if s]
        if len(declared) != len(trees):
            problems.add(f"tree_sizes lists {len(declared)} sizes but {len(trees)} trees are stored")
            return
        bounds = [start for _, start, _ in trees] + [end_offset]
        for i, size in enumerate(declared):
            actual = None if bounds[i + 1] is None else bounds[i + 1] - bounds[i]
            if actual is not None and size != actual:
                problems.add(f"tree_sizes says tree {i} is {size} bytes but it is {actual} (the loader seeks by it)")
                return


def _check_lgb_tree(index: int, fields: dict[str, str], max_feature: int | None, problems: _Problems) -> None:
    leaves = _as_int(fields.get("num_leaves"))
    if leaves is None or leaves < 1:
        problems.add(f"tree {index} has no valid num_leaves")
        return

    def numbers(key: str) -> list[str]:
        return [v for v in fields.get(key, "").split(" ") if v]

    if len(numbers("leaf_value")) != leaves:
        problems.add(f"tree {index}: leaf_value has {len(numbers('leaf_value'))} values for {leaves} leaves")
    if leaves == 1:
        return
    for key in ("split_feature", "threshold", "decision_type", "left_child", "right_child"):
        if len(numbers(key)) != leaves - 1:
            problems.add(f"tree {index}: {key} has {len(numbers(key))} values for {leaves - 1} splits")
            return
    for key in ("left_child", "right_child"):
        for raw in numbers(key):
            child = _as_int(raw)
            if child is None or not (0 <= child < leaves - 1 if child >= 0 else ~child < leaves):
                problems.add(f"tree {index}: {key} {raw} is out of range for {leaves} leaves")
                return
    for raw in numbers("split_feature"):
        feature = _as_int(raw)
        if feature is None or feature < 0 or (max_feature is not None and feature > max_feature):
            problems.add(f"tree {index}: split_feature {raw} is outside 0..{max_feature}")
            return


class CatBoostScanner(BaseScanner):
    name = "catboost"
    description = "CatBoost native models (.cbm): magic, core size and flatbuffer root"
    supported_extensions = [".cbm"]
    formats = ("catboost",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        where, problems = blob.location, _Problems()
        head = blob.head(8)
        core = struct.unpack_from("<I", head, 4)[0] if len(head) == 8 else 0
        result.bytes_scanned += min(blob.size, 8 + core)
        if len(head) < 8 or core < 8 or 8 + core > blob.size:
            problems.add(f"core size {core} does not fit the {blob.size}-byte file")
        else:
            with blob.buffer() as buf, memoryview(buf) as view:
                part = view[8:8 + core]
                try:
                    self._check_core(part, problems, result, where, ctx)
                finally:
                    part.release()
        ok = problems.report(result, "MA-X123", "CatBoost model", where)
        result.add_check("catboost structure", ok, f"{core}-byte model core checked", where)

    @staticmethod
    def _check_core(core: Any, problems: _Problems, result, where: str, ctx) -> None:  # noqa: ANN001
        fb = FlatBuffer(core, FlatLimits(max_tables=100_000, max_elements=1_000_000), ctx.check_deadline,
                        budget_rule="MA-X123")
        try:
            root = fb.root()
            version = fb.string(root, 0, "format version")
            if version is not None and not re.fullmatch(r"[\x20-\x7e]{1,64}", version):
                problems.add(f"format version {version[:40]!r} is not printable")
            for entry in fb.tables(root, 2, "info map"):
                key, value = fb.string(entry, 0, "info key") or "", fb.string(entry, 1, "info value") or ""
                kind = credential_kind(value)
                if kind:
                    result.report("MA-C002", f"CatBoost info {key!r} contains what looks like a {kind}", where,
                                  {"key": key, "kind": kind})
        except FlatBufferError as exc:
            problems.add(f"flatbuffer core is malformed: {exc}")
