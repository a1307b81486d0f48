"""Checks on decoded TensorFlow graphs: every node of the graph and of its function library.

The input is what `_protobuf.Reader` (or `_prototext.convert`) made of a GraphDef: dicts and
lists, with string tensors and ``bytes`` attributes as `Span` offsets into `buf` (binary files)
or as bytes (text files). Nothing here recurses on the input's nesting.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ._findings import CappedFindings
from ._keras_code import decode_code, summarize
from ._protobuf import Span
from ._tf_ops import REGISTERED_OPS
from ._tf_policy import (CODE_OPS, DEBUG_OPS, DESCRIPTOR_OPS, FILE_OPS, PASS_THROUGH, QUIET_FILE_OPS, file_url,
                         outside_path)

MAX_PER_RULE = 50  # findings of one rule per file; the rest are summarised
MAX_TEXT = 4096  # characters of a constant string looked at
MAX_RESOLVE = 64  # nodes visited while resolving one input to constants
MAX_METADATA = 32 * 1024 * 1024  # bytes of Keras metadata JSON parsed per object
ATTR_PATHS = {"ImmutableConst": "memory_region_name", "CalibrationStatisticsSaver": "output_file_path"}


class Findings(CappedFindings):
    """At most MAX_PER_RULE findings per rule in one file, then one summary per rule."""

    def __init__(self, result, location: str) -> None:  # noqa: ANN001
        super().__init__(result, location, cap=MAX_PER_RULE)


def text_of(value: Any, buf: Any, limit: int = MAX_TEXT) -> str:
    """A bytes attribute or string value as text: a Span into buf, bytes (text format) or str."""
    if isinstance(value, Span):
        value = bytes(buf[value.start:min(value.end, value.start + limit)])
    if isinstance(value, bytes):
        value = value[:limit].decode("utf-8", "replace")
    return str(value)[:limit]


def attr(node: dict, key: str) -> dict | None:
    found = None
    for entry in node.get("attr", ()):
        if entry.get("key") == key:
            found = entry.get("value", {})
    return found


def attr_strings(node: dict, key: str, buf: Any) -> list[str]:
    """The string (or the first 16 non-empty strings of the list) of an attribute."""
    value = attr(node, key)
    if value is None:
        return []
    if "s" in value:
        return [text_of(value["s"], buf)]
    texts = (text_of(s, buf) for s in value.get("list", {}).get("s", []))
    return list(islice(filter(None, texts), 16))  # empty entries in front must not push a real one out


@dataclass
class Scope:
    label: str
    nodes: list[dict]
    by_name: dict[str, dict]
    fixed: frozenset[str] = frozenset()  # nodes the loader feeds (asset paths): their constants are not paths


@dataclass
class Inventory:
    """Every node of every graph and library function in a file, and what was counted on the way."""

    scopes: list[Scope] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)
    ops: Counter = field(default_factory=Counter)
    graphs: int = 0

    @property
    def nodes(self) -> int:
        return sum(len(s.nodes) for s in self.scopes)

    def add_graph(self, graph: dict, prefix: str = "", fixed: frozenset[str] = frozenset()) -> None:
        self.graphs += 1
        self.add_nodes(f"{prefix}graph", graph.get("node", []), fixed)
        library = graph.get("library", {})
        for fn in library.get("function", []):
            name = fn.get("signature", {}).get("name", "")
            self.functions.add(name)
            self.add_nodes(f"{prefix}function {name[:120]!r}", fn.get("node_def", []), frozenset())
        self.functions.update(g.get("gradient_func", "") for g in library.get("gradient", []))

    def add_nodes(self, label: str, nodes: list[dict], fixed: frozenset[str]) -> None:
        by_name = {}
        for node in nodes:
            by_name.setdefault(node.get("name", ""), node)
            self.ops[node.get("op", "")] += 1
        self.scopes.append(Scope(label, nodes, by_name, fixed))

    def walk(self) -> Iterator[tuple[Scope, str, dict]]:
        for scope in self.scopes:
            for node in scope.nodes:
                yield scope, f"{scope.label}/{node.get('name', '')[:120]} ({node.get('op', '')[:80]})", node

    def summary(self, limit: int = 40) -> str:
        shown = ", ".join(f"{op or '<none>'} x{n}" if n > 1 else (op or "<none>")
                          for op, n in self.ops.most_common(limit))
        more = f" and {len(self.ops) - limit} more" if len(self.ops) > limit else ""
        return (f"{self.graphs} graph(s), {len(self.functions)} library function(s), {self.nodes} nodes; "
                f"ops: {shown or 'none'}{more}")


# --- resolving a path input to the constants that feed it ------------------------------
def resolve(scope: Scope, ref: str, buf: Any) -> list[str]:
    """The constant strings that can reach input `ref` (empty when it is fed at run time)."""
    found: list[str] = []
    stack, seen = [ref], 0
    while stack and seen < MAX_RESOLVE:
        name = stack.pop().lstrip("^").split(":")[0]
        node = scope.by_name.get(name)
        seen += 1
        if node is None or name in scope.fixed:
            continue  # a function argument, a placeholder fed by the loader, or a missing node
        op, inputs = node.get("op", ""), [i for i in node.get("input", []) if not i.startswith("^")]
        if op == "Const":
            tensor = (attr(node, "value") or {}).get("tensor", {})
            found.extend(text_of(s, buf) for s in tensor.get("string_val", [])[:16])
        elif op == "StringJoin":
            joined = _joined(scope, node, inputs, buf)
            if joined is not None:
                found.append(joined)
            stack.extend(inputs)
        elif op in PASS_THROUGH:
            stack.extend(inputs[i] for i in PASS_THROUGH[op] if i < len(inputs))
    return found


def _joined(scope: Scope, node: dict, inputs: list[str], buf: Any) -> str | None:
    """StringJoin of single constants, as the op would compute it."""
    parts = []
    for ref in inputs[:16]:
        values = resolve(scope, ref, buf) if scope.by_name.get(ref.split(":")[0], {}).get("op") == "Const" else []
        if len(values) != 1:
            return None
        parts.append(values[0])
    separator = attr_strings(node, "separator", buf)
    return (separator[0] if separator else "").join(parts)


# --- the operator checks ------------------------------------------------------------------
def check_ops(inv: Inventory, buf: Any, report: Findings) -> None:
    unknown: Counter = Counter()
    for scope, label, node in inv.walk():
        op = node.get("op", "")
        if op in CODE_OPS:
            _code_op(label, node, buf, report)
        elif op in FILE_OPS:
            _file_op(scope, label, node, buf, report)
        elif op in QUIET_FILE_OPS:
            spec = QUIET_FILE_OPS[op]
            _fixed_paths(scope, label, node, spec.paths, buf, report, f"{op} {spec.what}")
        elif op in DEBUG_OPS or op == "PrintV2" or op in DESCRIPTOR_OPS:
            _attr_op(label, node, buf, report)
        elif not op:
            report("MA-T101", f"{label}: node has no op; TensorFlow rejects the graph", {"node": label})
        elif op not in REGISTERED_OPS and op not in inv.functions:
            unknown[op] += 1
    for op, count in sorted(unknown.items()):
        report("MA-T105", f"Operation {op[:120]!r} ({count} node{'s' if count > 1 else ''}) is not one TensorFlow "
               "registers; running the graph needs a custom op library loaded by the process",
               {"op": op[:200], "nodes": count})


def _code_op(label: str, node: dict, buf: Any, report: Findings) -> None:
    op = node.get("op", "")
    token = attr_strings(node, "token", buf)
    named = f" (token {token[0][:80]!r})" if token else ""
    report("MA-T102", f"{label}: {op} {CODE_OPS[op]}{named}; running the graph runs code outside it",
           {"node": label, "op": op, "token": token[0][:200] if token else None})


def _file_op(scope: Scope, label: str, node: dict, buf: Any, report: Findings) -> None:
    op = node.get("op", "")
    spec = FILE_OPS[op]
    if _fixed_paths(scope, label, node, spec.paths, buf, report, f"{op} {spec.what}"):
        return
    values = _path_values(scope, node, spec.paths, buf)
    named = f" ({', '.join(repr(v[:120]) for v in values[:3])})" if values else ""
    report("MA-T103", f"{label}: {op} {spec.what}{named} when the graph runs",
           {"node": label, "op": op, "paths": [v[:500] for v in values[:8]]})


def _path_values(scope: Scope, node: dict, indices: tuple[int, ...], buf: Any) -> list[str]:
    inputs = [i for i in node.get("input", []) if not i.startswith("^")]
    values = [v for i in indices if i < len(inputs) for v in resolve(scope, inputs[i], buf)]
    key = ATTR_PATHS.get(node.get("op", ""))
    return values + (attr_strings(node, key, buf) if key else [])


def _fixed_paths(scope: Scope, label: str, node: dict, indices: tuple[int, ...], buf: Any, report: Findings,
                 what: str) -> bool:
    """MA-T104 for constant paths outside the model wired into a file op; True when reported."""
    bad = [(v, why) for v in _path_values(scope, node, indices, buf) if (why := outside_path(v))]
    if bad:
        value, why = bad[0]
        report("MA-T104", f"{label}: {what}, and its path is the constant {value[:200]!r}, which {why}: the graph "
               "touches that fixed location whenever it runs", {"node": label, "op": node.get("op"),
                                                               "paths": [v[:500] for v, _ in bad[:8]]})
    return bool(bad)


def _attr_op(label: str, node: dict, buf: Any, report: Findings) -> None:
    op = node.get("op", "")
    if op in DEBUG_OPS:
        urls = [u for u in attr_strings(node, "debug_urls", buf) if u]
        if urls:
            report("MA-T104", f"{label}: {op} sends the tensors it sees to {urls[0][:200]!r} (debug_urls); "
                   "running the graph writes them to that file or server", {"node": label, "op": op, "urls": urls})
    elif op == "PrintV2":
        stream = attr_strings(node, "output_stream", buf)
        if stream and file_url(stream[0]):
            report("MA-T104", f"{label}: PrintV2 appends to the file {stream[0][:200]!r} (output_stream); running "
                   "the graph writes model-chosen text there", {"node": label, "op": op, "output_stream": stream[0]})
    else:
        source = attr_strings(node, "descriptor_source", buf)
        if source and source[0] not in ("", "local://") and not source[0].startswith("bytes://"):
            code = "MA-T104" if outside_path(source[0]) else "MA-T103"
            report(code, f"{label}: {op} reads a protobuf descriptor set from the file {source[0][:200]!r} "
                   "(descriptor_source)", {"node": label, "op": op, "descriptor_source": source[0][:500]})


# --- Keras metadata ----------------------------------------------------------------------
_LAMBDA = re.compile(rb'"class_name"\s*:\s*"Lambda"')


def check_keras_metadata(where: str, raw: bytes, report: Findings, seen: set[str]) -> None:
    """MA-T108 for Lambda layers in the JSON Keras stores with a SavedModel object (once per layer name)."""
    if len(raw) > MAX_METADATA:
        if _LAMBDA.search(raw):
            report("MA-T108", f"{where}: Keras metadata (too large to parse) names a Lambda layer",
                   {"object": where})
        return
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        if _LAMBDA.search(raw):
            report("MA-T108", f"{where}: Keras metadata (not valid JSON) names a Lambda layer", {"object": where})
        return
    for layer in _lambdas(config):
        conf = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        name = str(conf.get("name", layer.get("name", "?")))
        if name not in seen:
            seen.add(name)
            _report_lambda(where, name, conf, report)


def _report_lambda(where: str, name: str, conf: dict, report: Findings) -> None:
    kind = str(conf.get("function_type", "?"))[:40]
    code = _lambda_code(conf.get("function"))
    details = {"object": where, "layer": name[:200], "function_type": kind, "module": str(conf.get("module"))[:200]}
    if kind == "lambda" and code is not None:
        summary = summarize(decode_code(code))
        names = summary.referenced()
        details.update(code_bytes=summary.size, names=names, dangerous=summary.dangerous[:16])
        danger = f"; it references {', '.join(summary.dangerous[:8])}" if summary.dangerous else ""
        what = (f"{summary.size} bytes of marshalled Python bytecode naming {', '.join(names) or 'nothing readable'}"
                f"{danger}")
    else:
        what = f"the Python function {str(conf.get('function'))[:80]!r} looked up in the loading process"
    report("MA-T108", f"{where}: Keras Lambda layer {name[:80]!r} carries {what}; tf.keras runs it when it loads "
           "the SavedModel, whatever safe_mode says", details)


def _lambda_code(value: Any) -> str | None:
    """The base64 bytecode of a Lambda: a string, [code, defaults, closure] or a __tuple__ of those."""
    if isinstance(value, dict):
        value = value.get("items")
    if isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, str) else None


def _lambdas(config: Any) -> Iterator[dict]:
    stack, seen = [config], 0
    while stack and seen < 1_000_000:
        item = stack.pop()
        seen += 1
        if isinstance(item, dict):
            if item.get("class_name") == "Lambda":
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
