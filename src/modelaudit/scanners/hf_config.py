"""Hugging Face-style configuration files and chat templates.

detect.py gives JSON files with the names transformers, PEFT and processors write
(config.json, tokenizer_config.json, generation_config.json, adapter_config.json,
preprocessor_config.json, processor_config.json, special_tokens_map.json, chat_template.json)
the format "hf_config", and `.jinja` templates the format "chat_template"; every other JSON
file stays with the text scanner. For those files this scanner reports:

- custom code: `auto_map` entries (at any depth, for nested sub-configs), `custom_pipelines`,
  PEFT `auto_mapping` naming a library other than transformers/peft/diffusers/timm, and
  `trust_remote_code: true`, naming module.Class and whether the module's .py is in the
  directory (MA-H001);
- chat templates (`chat_template` as a string or a list of {name, template}, and .jinja
  files), parsed with Jinja's parser and inspected like GGUF templates (MA-G004..G006);
- model names (`_name_or_path`, `name_or_path`, `model_type`, `architectures`,
  `base_model_name_or_path`) that match --blacklist patterns (MA-S009);
- credentials anywhere in the values (MA-C002).

Ordinary configuration values, URLs and vocabularies are never findings.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from typing import Any

from . import _instantiate as instantiate
from ._gguf_template import BUDGET, MAX_TEMPLATE, report_template, require_jinja
from ._metadata_checks import credential_kind
from ._findings import CappedFindings as _Findings
from .base import BaseScanner

MAX_CONFIG = 32 * 1024 * 1024
MAX_NODES = 5_000_000
MAX_PATH = 256  # characters of a value's path kept for messages
# libraries PEFT's auto_mapping may name as the base model's home without importing anything unusual
KNOWN_LIBRARIES = ("transformers", "peft", "diffusers", "timm", "sentence_transformers")
NAME_FIELDS = frozenset({"_name_or_path", "name_or_path", "model_type", "architectures", "base_model_name_or_path"})


class HfConfigScanner(BaseScanner):
    name = "hf_config"
    description = ("Hugging Face configs (config.json, tokenizer_config.json, adapter_config.json …) and chat "
                   "templates: custom code, template injection, blacklisted names, credentials")
    supported_extensions = [".json", ".jinja"]
    formats = ("hf_config", "chat_template")
    dependency = ("jinja2", "gguf")

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        findings = _Findings(result, blob.location, (BUDGET,))  # a template analysed only in part: incomplete
        if blob.size > MAX_CONFIG:
            findings.emit("MA-H011", f"Configuration of {blob.size} bytes is larger than the {MAX_CONFIG} byte "
                          "analysis budget; not inspected", {"size": blob.size})
            result.mark_incomplete()
            return
        with blob.buffer() as buf:
            raw = bytes(buf)
        result.bytes_scanned += blob.size
        try:
            if blob.name.lower().endswith(".jinja"):
                check_template(os.path.basename(blob.name), raw.decode("utf-8", "replace"), findings, ctx,
                               credentials=True)
            else:
                self._check_config(raw, blob, findings, ctx)
        finally:
            findings.flush()
        bad = [i for i in result.issues if i.severity.rank >= 2]
        result.add_check("model configuration", not bad, f"{len(bad)} finding(s)" if bad else
                         "no custom code, unsafe template, blacklisted name or credential", blob.location)

    def _check_config(self, raw: bytes, blob, findings: _Findings, ctx) -> None:  # noqa: ANN001
        config = parse_config(raw, findings)
        if not isinstance(config, dict):
            return
        file_name = os.path.basename(blob.name)
        walk = _Walk(config, ctx)
        if walk.truncated:
            findings.emit("MA-H011", f"{file_name} holds more than {MAX_NODES} values; the rest was not "
                          "inspected", {"limit": MAX_NODES})
            findings.result.mark_incomplete()
        check_custom_code(walk, config, file_name, blob.path, findings)
        instantiate.check_document(config, findings.emit)  # hub mixins hand config.json to hydra
        check_names(walk, ctx.config.blacklist_patterns, file_name, findings)
        for path, kind in walk.credentials:
            findings.emit("MA-C002", f"{file_name} field {path} contains what looks like a {kind}",
                          {"field": path, "kind": kind})
        for key, text in chat_templates(config, findings):
            check_template(f"{file_name} {key}", text, findings, ctx, credentials=False)


def parse_config(raw: bytes, findings: _Findings) -> Any:
    """The JSON value, read the way transformers reads it (json.loads); None when it does not parse."""
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text (byte {exc.start})"
    except ValueError as exc:
        message = f"not valid JSON ({exc})"
        relaxed = _parse_jsonc(raw)
        if relaxed is not None:
            return relaxed  # JSON with comments (editor and app configs): no library loads it as a model config
    except RecursionError:
        message = "JSON nests deeper than the parser allows"
    findings.emit("MA-H009", f"Model configuration is {message}; it was not inspected", {"error": message})
    findings.result.mark_incomplete()
    return None


def _parse_jsonc(raw: bytes) -> Any:
    """JSON with // and /* */ comments and trailing commas, as editors and tools write it; None otherwise.
    Strings and comments are stepped over by regex and str.find (a loop over characters reads ~2 MB/s); an
    unclosed string or block comment ends the attempt (the JSON cannot be valid)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    out: list[str] = []
    pos = 0
    while (start := _JSONC_START.search(text, pos)) is not None:
        out.append(text[pos:start.start()])
        if start.group(0) == '"':
            string = _STRING_REST.match(text, start.end())
            if string is None:
                return None
            out.append(text[start.start():string.end()])
            pos = string.end()
        elif start.group(0) == "//":
            newline = text.find("\n", start.end())
            pos = len(text) if newline < 0 else newline
        else:
            close = text.find("*/", start.end())
            if close < 0:
                return None
            out.append(" ")
            pos = close + 2
    out.append(text[pos:])
    cleaned = _TRAILING_COMMA.sub(r"\1", "".join(out))
    try:
        return json.loads(cleaned)
    except (ValueError, RecursionError):
        return None


_JSONC_START = re.compile(r'"|//|/\*')
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


class _Walk:
    """Every value of a JSON document with its path, iteratively and within a node budget.

    Memory stays proportional to the depth, not to the values: containers are walked through iterators
    (not a stack of every pending value), paths are cut at MAX_PATH characters (a key may be megabytes
    long and nest a thousand levels deep), and strings are checked for credentials as they are met."""

    def __init__(self, root: dict[str, Any], ctx) -> None:  # noqa: ANN001
        self.credentials: list[tuple[str, str]] = []  # (path, kind)
        self.auto_maps: list[tuple[str, Any]] = []
        self.pipelines: list[tuple[str, Any]] = []
        self.peft_mappings: list[tuple[str, Any]] = []
        self.trust_flags: list[str] = []
        self.names: list[tuple[str, str]] = []
        self.truncated = False
        self._run(root, ctx)

    def _run(self, root: dict[str, Any], ctx) -> None:  # noqa: ANN001
        self._visit("", None, root)
        stack: list[tuple[str, Any, bool]] = [("", _children(root), False)]  # (path, children, is a list)
        seen = 1
        while stack:
            path, children, is_list = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                continue
            seen += 1
            if seen > MAX_NODES:
                self.truncated = True
                return
            if seen % 65536 == 0:
                ctx.check_deadline()
            key, value = child
            child_path = _join(path, f"[{key}]" if is_list else f".{key}" if path else str(key))
            self._visit(child_path, None if is_list else str(key), value)
            if isinstance(value, (dict, list)):
                stack.append((child_path, _children(value), isinstance(value, list)))

    def _visit(self, path: str, key: str | None, value: Any) -> None:
        if isinstance(value, str):
            kind = credential_kind(value)
            if kind:
                self.credentials.append((path, kind))
        if key == "auto_map":
            self.auto_maps.append((path, value))
        elif key == "custom_pipelines":
            self.pipelines.append((path, value))
        elif key == "auto_mapping" and isinstance(value, dict):
            self.peft_mappings.append((path, value))
        elif key == "trust_remote_code" and value is True:
            self.trust_flags.append(path)
        if key in NAME_FIELDS:
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, str):
                    self.names.append((path, text))


def _children(value: dict[str, Any] | list[Any]) -> Any:
    """(key or index, value) pairs, last first (the order findings have always been reported in)."""
    if isinstance(value, dict):
        return reversed(value.items())
    return ((i, value[i]) for i in range(len(value) - 1, -1, -1))


def _join(path: str, part: str) -> str:
    if len(path) > MAX_PATH:
        return path  # already cut (ends with …)
    joined = path + part
    return joined if len(joined) <= MAX_PATH else joined[:MAX_PATH] + "…"


# --- custom code ---------------------------------------------------------------------------------
def check_custom_code(walk: _Walk, config: dict[str, Any], file_name: str, path: str | None,
                      findings: _Findings) -> None:
    refs: dict[str, list[str]] = {}  # class reference -> the auto classes or pipelines using it
    for where, auto_map in walk.auto_maps:
        if not isinstance(auto_map, dict):
            findings.emit("MA-H009", f"{file_name} field {where} is not an object", {"field": where})
            continue
        for auto_class, value in auto_map.items():
            for ref in value if isinstance(value, list) else [value]:
                if isinstance(ref, str) and ref:
                    refs.setdefault(ref, []).append(str(auto_class))
                elif ref is not None:
                    findings.emit("MA-H009", f"{file_name} {where}.{auto_class} is not a class reference",
                                  {"field": f"{where}.{auto_class}"})
    for where, pipelines in walk.pipelines:
        for task, spec in (pipelines.items() if isinstance(pipelines, dict) else []):
            impl = spec.get("impl") if isinstance(spec, dict) else None
            if isinstance(impl, str) and impl:
                refs.setdefault(impl, []).append(f"pipeline {task}")
    architectures = config.get("architectures") if isinstance(config.get("architectures"), list) else []
    for (repo, module), classes in _by_module(refs).items():
        _report_module(repo, module, classes, architectures, file_name, path, findings)
    for where, mapping in walk.peft_mappings:
        library, cls = mapping.get("parent_library"), mapping.get("base_model_class")
        if isinstance(library, str) and library.split(".")[0] not in KNOWN_LIBRARIES:
            findings.emit("MA-H001", f"{file_name} {where} makes PEFT import the module {library!r} and load "
                          f"{cls!r} from it", {"field": where, "module": library, "classes": [str(cls)]})
    for where in walk.trust_flags:
        findings.emit("MA-H001", f"{file_name} sets {where} = true: whatever this configuration loads runs its "
                      "repository's code", {"field": where})


def _by_module(refs: dict[str, list[str]]) -> dict[tuple[str, str], list[tuple[str, list[str]]]]:
    """{(repo, module): [(class, auto classes)]} from 'repo--module.Class' references."""
    grouped: dict[tuple[str, str], list[tuple[str, list[str]]]] = {}
    for ref, users in refs.items():
        repo, _, local = ref.rpartition("--")
        module, _, cls = local.rpartition(".")
        grouped.setdefault((repo, module or local), []).append((cls if module else "", users))
    return grouped


def _report_module(repo: str, module: str, classes: list[tuple[str, list[str]]], architectures: list[Any],
                   file_name: str, path: str | None, findings: _Findings) -> None:
    names = [f"{module}.{cls}" if cls else module for cls, _ in classes]
    users = sorted({u for _, used in classes for u in used})
    archs = sorted(a for a in architectures if isinstance(a, str) and any(a == cls for cls, _ in classes))
    if repo:
        where, present = f"from the repository {repo!r}, not from this one", None
    else:
        present = _module_present(module, path)
        where = {True: "present in this directory", False: "not in this directory (it is fetched from the "
                 "model's repository when loading)", None: "inside an archive"}[present]
    arch_text = f"; architectures {', '.join(archs)} are defined there" if archs else ""
    findings.emit("MA-H001", f"{file_name} maps {', '.join(users)} to custom code {', '.join(names)}: loading with "
                  f"trust_remote_code=True runs {module}.py ({where}){arch_text}",
                  {"module": module, "classes": names, "auto_classes": users, "repository": repo or None,
                   "module_present": present, "architectures": archs})


def _module_present(module: str, config_path: str | None) -> bool | None:
    if config_path is None:
        return None
    if not module or "/" in module or "\\" in module or module.startswith("."):
        return False
    return os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(config_path)), f"{module}.py"))


# --- names -----------------------------------------------------------------------------------------
def check_names(walk: _Walk, patterns: tuple[str, ...], file_name: str, findings: _Findings) -> None:
    for where, text in walk.names:
        for pattern in patterns:
            if blacklisted(text, pattern):
                findings.emit("MA-S009", f"Model name in {file_name} field {where} ({text!r}) matches blacklist "
                              f"pattern '{pattern}'", {"pattern": pattern, "field": where, "value": text})


def blacklisted(text: str, pattern: str) -> bool:
    """The engine's matching: glob patterns match whole names, plain ones match anywhere (case-insensitive)."""
    lowered, p = text.lower(), pattern.lower()
    if any(c in p for c in "*?["):
        return fnmatch.fnmatch(lowered, p) or fnmatch.fnmatch(lowered.rsplit("/", 1)[-1], p)
    return p in lowered


# --- chat templates --------------------------------------------------------------------------------
def chat_templates(config: dict[str, Any], findings: _Findings) -> list[tuple[str, str]]:
    """('chat_template', text) or ('chat_template[tool_use]', text) for each template in the config."""
    value = config.get("chat_template")
    if value is None:
        return []
    if isinstance(value, str):
        return [("chat_template", value)]
    out = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict) and isinstance(item.get("template"), str):
            out.append((f"chat_template[{item.get('name', '?')}]", item["template"]))
        else:
            findings.emit("MA-H009", "chat_template entries must be strings or {name, template} objects",
                          {"field": "chat_template"})
    return out


def check_template(key: str, text: str, findings: _Findings, ctx, credentials: bool) -> None:  # noqa: ANN001
    if len(text) > MAX_TEMPLATE:
        findings.emit("MA-H011", f"Chat template {key!r} is {len(text)} characters; only templates up to "
                      f"{MAX_TEMPLATE} are inspected", {"key": key, "length": len(text)})
        findings.result.mark_incomplete()
        return
    require_jinja()  # MissingDependency: the engine reports it and marks the file incomplete
    ctx.check_deadline()
    report_template(key, text, findings.emit, credentials)
