"""Checks of a Keras model config (H5 `model_config`/`training_config`, `.keras` config.json).

The config is JSON; every dict with a `class_name` is an object Keras will build. The walk
visits all of them, however they nest (Sequential and Functional layer lists, nested models,
wrappers' `layer`/`backward_layer`, RNN cells, optimizers, losses, initializers, configs
embedded as JSON strings), within depth and node budgets. Nothing is ever deserialized.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any

from ..model import IssueSeverity
from . import _keras_code
from ._findings import CappedFindings
from ._keras_names import (GADGET_FUNCTIONS, GADGET_MODULE_PARTS, KERAS_CLASSES, KERAS_FUNCTIONS, KERAS_NAMESPACES,
                           LOOKUP_LAYERS, SPECIAL_CLASS_NAMES, TF_OP_GADGETS)
from .pickle_policy import Level, classify

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext
    from .base import ScanResult

MAX_DEPTH = 200
MAX_NODES = 2_000_000
MAX_EMBEDDED_JSON = 16 * 1024 * 1024
MAX_CODE_TOTAL = 8 * _keras_code.MAX_CODE_BYTES  # Lambda bytecode searched for names, per file
_SKIP_IN_PATH = frozenset({"config", "layers", "layer"})
_HOST_PATH = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|/|~|\\\\|[a-zA-Z]:[\\/])|(?:^|[\\/])\.\.(?:[\\/]|$)")
Path = tuple[Any, str] | None  # linked list (parent, segment): cheap to extend, formatted only when reported


def format_path(path: Path) -> str:
    parts = []
    while path is not None:
        path, segment = path
        parts.append(segment)
    return " > ".join(reversed(parts))


def in_keras_namespace(module: str) -> bool:
    return any(module == ns or module.startswith(ns + ".") for ns in KERAS_NAMESPACES)


def host_path(path: str) -> bool:
    """Absolute, home-relative, climbing out with '..', a drive letter, UNC, or a URL."""
    return bool(_HOST_PATH.search(path.strip()))


class ConfigChecker:
    """Walks one config document and reports what it finds into `result`."""

    def __init__(self, result: ScanResult, ctx: ScanContext, blob: Blob, location: str, *, legacy_h5: bool) -> None:
        self.result, self.ctx, self.blob, self.location = result, ctx, blob, location
        self.legacy_h5 = legacy_h5
        self.findings = CappedFindings(result, location)  # a config of a million custom layers is one summary
        self.nodes = 0
        self._handled: set[int] = set()  # __lambda__ dicts already reported through their Lambda layer
        self._budget_reported = False
        self._summaries: dict[str, _keras_code.CodeSummary] = {}  # by code text: copies are read once
        self._code_bytes = 0

    # ------------------------------------------------------------------ entry points
    def check_text(self, text: str, label: str) -> Any:
        """Parse `text` as JSON and walk it; returns the document (None when it is not JSON)."""
        if _too_many_values(text):
            self._over_budget(f"Keras {label} holds more than {MAX_NODES} JSON values; it was not parsed")
            return None
        try:
            document = json.loads(text)
        except RecursionError:
            self._over_budget(f"{label} nests deeper than the JSON parser allows")
            return None
        except ValueError as exc:
            self._report("MA-K012", f"Keras {label} is not valid JSON: {exc}", None, {"error": str(exc)},
                         label=label)
            return None
        if not isinstance(document, dict):
            self._report("MA-K012", f"Keras {label} is not a JSON object", None, {}, label=label)
            return document
        self.walk(document, label)
        return document

    def finish(self) -> None:
        """Add the count of findings past the per-code cap (call once, after the last document)."""
        self.findings.flush()

    def walk(self, document: Any, label: str) -> None:
        stack: list[tuple[Any, Path, int]] = [(document, (None, label), 0)]
        while stack:
            node, path, depth = stack.pop()
            self.nodes += 1
            if self.nodes > MAX_NODES or depth > MAX_DEPTH:
                self._over_budget(f"Keras config exceeds the scan budget ({MAX_NODES} values, depth {MAX_DEPTH})")
                return
            if self.nodes % 4096 == 0:
                self.ctx.check_deadline()
            if isinstance(node, dict):
                stack.extend(self._children_of_dict(node, path, depth))
            elif isinstance(node, list):
                stack.extend((item, path, depth + 1) for item in reversed(node))
            elif isinstance(node, str):
                stack.extend(self._check_string(node, path, depth))

    # ------------------------------------------------------------------ traversal
    def _children_of_dict(self, node: dict, path: Path, depth: int) -> list[tuple[Any, Path, int]]:
        class_name = node.get("class_name")
        skip: set[str] = set()
        if isinstance(class_name, str):
            path = (path, _object_label(node, class_name))
            self._visit_object(node, class_name, path)
            skip = {"class_name", "module", "registered_name"}
            if not isinstance(node.get("config"), (dict, list)):
                skip.add("config")
        children = []
        for key, value in reversed(list(node.items())):
            if key in skip or not isinstance(value, (dict, list, str)):
                continue
            child_path = path if key in _SKIP_IN_PATH else (path, str(key))
            children.append((value, child_path, depth + 1))
        return children

    def _check_string(self, text: str, path: Path, depth: int) -> list[tuple[Any, Path, int]]:
        if "enable_unsafe_deserialization" in text:
            self._report("MA-K005", "Config text names keras.config.enable_unsafe_deserialization, which turns "
                         "safe mode off for everything loaded after it (CVE-2025-9906)", path,
                         {"value": text[:200]})
        stripped = text.lstrip()
        if stripped.startswith("{") and '"class_name"' in text and len(text) <= MAX_EMBEDDED_JSON:
            if _too_many_values(text):
                self._over_budget(f"Keras config embeds JSON of more than {MAX_NODES} values; it was not parsed")
                return []
            try:
                embedded = json.loads(text)
            except (ValueError, RecursionError):
                return []
            return [(embedded, (path, "(embedded JSON)"), depth + 1)]
        return []

    # ------------------------------------------------------------------ objects
    def _visit_object(self, node: dict, class_name: str, path: Path) -> None:
        config = node.get("config")
        if class_name == "__lambda__":
            if id(node) not in self._handled:
                self._report_lambda(path, None, [(None, *_lambda_dict_code(node))])
            return
        if isinstance(config, dict):
            if class_name == "Lambda":
                self._lambda_layer(config, path)
            elif class_name == "TorchModuleWrapper":
                self._torch_module(config, path)
            elif class_name == "TFSMLayer":
                self._tfsm_layer(config, path)
            elif class_name in ("TFOpLambda", "SlicingOpLambda"):
                self._tf_op(config, path)
            if class_name in LOOKUP_LAYERS:
                self._lookup_files(class_name, config, path)
        self._check_origin(node, class_name, config, path)

    def _check_origin(self, node: dict, class_name: str, config: Any, path: Path) -> None:
        """Where Keras would look the class or function up, and whether that is Keras."""
        module = node.get("module") if isinstance(node.get("module"), str) else None
        registered = node.get("registered_name")
        function = config if class_name == "function" and isinstance(config, str) else None
        name = function or class_name
        if class_name in SPECIAL_CLASS_NAMES:
            if class_name == "__typespec__" and module and not (module.startswith("tensorflow.")
                                                                 or in_keras_namespace(module)):
                self._report("MA-K003", f"Type spec class from module {module!r} is not part of TensorFlow or "
                             "Keras", path, {"module": module, "class_name": node.get("spec_name")})
            return
        if self._gadget(name, module):
            where = f"{module}.{name}" if module else name
            self._report("MA-K005", f"Config references {where}, a Keras API that loads, saves, downloads or "
                         "switches safe mode off; loading resolves it and layers call it (CVE-2025-8747, "
                         "CVE-2025-9906)",
                         path, {"module": module, "name": name})
            return
        if module and in_keras_namespace(module):
            self._check_registered(registered, name, path)
            return
        if module and module != "builtins":
            self._foreign(module, name, path)
            return
        if ">" in name:  # a registered name: tf.keras writes its own optimizers as "Custom>Adam"
            package, _, base = name.partition(">")
            if base not in KERAS_CLASSES or not (package == "Custom" or in_keras_namespace(package)):
                self._report("MA-K003", f"Object {name!r} is a custom registered object, not part of Keras: "
                             "loading needs code from outside the file", path, {"name": name})
            return
        if name in KERAS_CLASSES or name in KERAS_FUNCTIONS:
            self._check_registered(registered, name, path)
            return
        if module == "builtins" and classify("builtins", name).level is Level.DANGEROUS:
            self._foreign("builtins", name, path)
            return
        kind = "function" if function else "class"
        self._report("MA-K003", f"Custom {kind} {name!r} is not part of Keras: loading needs code from outside "
                     "the file", path, {"module": module, "name": name, "registered_name": registered})

    def _gadget(self, name: str, module: str | None) -> bool:
        if name in GADGET_FUNCTIONS:
            return True
        return bool(module) and in_keras_namespace(module) and any(
            part in GADGET_MODULE_PARTS for part in module.split("."))

    def _check_registered(self, registered: Any, name: str, path: Path) -> None:
        if isinstance(registered, str) and ">" in registered:
            package = registered.split(">", 1)[0]
            if not in_keras_namespace(package):
                self._report("MA-K003", f"Object {name!r} resolves to the custom registered object {registered!r}; "
                             "loading needs code from outside the file", path,
                             {"name": name, "registered_name": registered})

    def _foreign(self, module: str, name: str, path: Path) -> None:
        verdict = classify(module, name)
        if verdict.level is Level.DANGEROUS and module.split(".")[0] != "tensorflow":
            self._report("MA-K004", f"Config makes Keras import {verdict.target} ({verdict.why}); Keras before "
                         "3.9 imports whatever module a config names (CVE-2025-1550)", path,
                         {"module": module, "name": name, "family": verdict.family})
        else:
            self._report("MA-K003", f"Object {name!r} comes from module {module!r}, outside Keras: loading needs "
                         "that code", path, {"module": module, "name": name})

    # ------------------------------------------------------------------ special layers
    def _lambda_layer(self, config: dict, path: Path) -> None:
        codes = []
        for key in ("function", "output_shape", "mask"):
            value = config.get(key)
            if isinstance(value, dict) and value.get("class_name") == "__lambda__":
                self._handled.add(id(value))
                codes.append((key, *_lambda_dict_code(value)))
            elif config.get(f"{key}_type") == "lambda" and isinstance(value, (str, list)):
                codes.append((key, *_split_code(value)))  # Keras 2: [code, defaults, closure]
            elif key == "function" and isinstance(value, str) and config.get("function_type") == "function":
                module = config.get("module") if isinstance(config.get("module"), str) else "__main__"
                self._foreign(module, value, (path, "function"))
        if codes:
            self._report_lambda(path, config.get("name"), codes)

    def _report_lambda(self, path: Path, layer: Any, codes: list[tuple[str | None, str | None, list[str]]]) -> None:
        summaries = [(key, self._summary(code, extras)) for key, code, extras in codes]
        names = sorted({n for _, s in summaries for n in s.referenced()})
        size = sum(s.size for _, s in summaries)
        what = f"Lambda layer {layer!r}" if isinstance(layer, str) else "A serialized Python lambda"
        how = ("legacy H5 loading runs it (tf.keras and Keras before 3.11 ignore safe_mode there, CVE-2025-9905)"
               if self.legacy_h5 else "Keras runs it when the model is loaded with safe_mode=False")
        self._report("MA-K001", f"{what} carries {size} bytes of marshalled Python bytecode naming "
                     f"{', '.join(names) or 'nothing readable'}; {how}", path,
                     {"layer": layer, "code_bytes": size, "names": names},
                     severity=IssueSeverity.CRITICAL if self.legacy_h5 else None)
        for key, summary in summaries:
            if summary.dangerous:
                self._report("MA-K002", f"{what} code{f' ({key})' if key else ''} references "
                             f"{', '.join(summary.dangerous)} (CVE-2024-3660 shape)", path,
                             {"layer": layer, "part": key, "references": summary.dangerous})

    def _summary(self, code: str | None, extras: list[str]) -> _keras_code.CodeSummary:
        known = self._summaries.get(code) if code and not extras else None
        if known is not None:
            return known
        raw = _keras_code.decode_code(code)[:_keras_code.MAX_CODE_BYTES] if code else b""
        self._code_bytes += len(raw)
        if self._code_bytes > MAX_CODE_TOTAL:  # thousands of large lambdas: sizes are still reported
            self._over_budget(f"Keras config holds more than {MAX_CODE_TOTAL} bytes of Lambda bytecode; the rest "
                              "was not searched for names")
            summary = _keras_code.CodeSummary(len(raw), False)
        else:
            summary = _keras_code.summarize(raw, extras)
        if code and not extras:
            self._summaries[code] = summary
        return summary

    def _torch_module(self, config: dict, path: Path) -> None:
        payload = config.get("module")
        if not isinstance(payload, str):
            return
        self._report("MA-K006", f"TorchModuleWrapper {config.get('name')!r} carries a torch.save pickle "
                     f"({len(payload)} base64 characters) that Keras unpickles with torch.load, weights_only=False",
                     path, {"layer": config.get("name"), "base64_chars": len(payload)})
        limit = self.ctx.limits.max_decompressed or len(payload)
        try:
            raw = base64.b64decode(payload[: limit * 4 // 3 + 4].encode("ascii"), validate=False)
        except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
            self._report("MA-K012", f"TorchModuleWrapper module is not base64: {exc}", path, {"error": str(exc)})
            return
        self.ctx.scan_member(self.blob.child(raw, f"{format_path(path)}/module"), self.result)

    def _tfsm_layer(self, config: dict, path: Path) -> None:
        target = config.get("filepath")
        self._report("MA-K007", f"TFSMLayer {config.get('name')!r} loads the TensorFlow SavedModel at {target!r}, "
                     "outside this file; its graph can read and write files", path,
                     {"layer": config.get("name"), "filepath": target},
                     severity=IssueSeverity.CRITICAL if isinstance(target, str) and host_path(target) else None)

    def _tf_op(self, config: dict, path: Path) -> None:
        function = config.get("function")
        if not isinstance(function, str):
            return
        op = re.sub(r"^(?:tf\.)?(?:compat\.v[12]\.)?", "", function)
        if op.startswith(TF_OP_GADGETS):
            self._report("MA-K005", f"TFOpLambda layer {config.get('name')!r} calls tf.{op}, which reads, writes "
                         "or runs code when the model runs", path, {"function": function})

    def _lookup_files(self, class_name: str, config: dict, path: Path) -> None:
        value = config.get("vocabulary")
        if not isinstance(value, str):
            return
        outside = host_path(value)
        self._report("MA-K008", f"{class_name} {config.get('name')!r} reads its vocabulary from {value!r}, "
                     f"{'a host path or URL' if outside else 'a path'} outside the model: loading reads that file "
                     "on the loading machine (CVE-2025-12058)", path, {"layer": config.get("name"), "path": value},
                     severity=IssueSeverity.CRITICAL if outside else None)

    # ------------------------------------------------------------------ reporting
    def _report(self, code: str, message: str, path: Path, details: dict, *, label: str | None = None,
                severity: IssueSeverity | None = None) -> None:
        where = format_path(path) if path is not None else label
        self.findings.emit(code, message, {"config_path": where, **details}, severity)

    def _over_budget(self, message: str) -> None:
        if not self._budget_reported:
            self._budget_reported = True
            self.result.report("MA-K013", message, self.location, {"nodes": self.nodes})
            self.result.mark_incomplete()


def _too_many_values(text: str) -> bool:
    """More JSON values than the walk budget, counted before json builds them all in memory: every value
    but the first follows a comma or opens a container (commas inside strings only make it cautious)."""
    return text.count(",") + text.count("[") + text.count("{") > MAX_NODES


def _object_label(node: dict, class_name: str) -> str:
    config = node.get("config")
    if class_name == "function" and isinstance(config, str):
        return f"function {config!r}"
    name = config.get("name") if isinstance(config, dict) else None
    return f"{class_name} {name!r}" if isinstance(name, str) else class_name


def _lambda_dict_code(node: dict) -> tuple[str | None, list[str]]:
    """Keras 3 writes {"code", "defaults", "closure"} (Lambda) or {"value": [code, defaults, closure]}."""
    config = node.get("config")
    if not isinstance(config, dict):
        return None, []
    if isinstance(config.get("code"), str):
        return config["code"], _strings([config.get("defaults"), config.get("closure")])
    return _split_code(config.get("value"))


def _split_code(value: Any) -> tuple[str | None, list[str]]:
    if isinstance(value, str):
        return value, []
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0], _strings(value[1:])
    return None, []


def _strings(value: Any, limit: int = 1000) -> list[str]:
    out, stack = [], [value]
    while stack and len(out) < limit:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return out
