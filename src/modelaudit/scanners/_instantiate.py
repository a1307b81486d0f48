"""Configs that name callables to instantiate: Hydra/OmegaConf `_target_` keys.

NeMo restores a .nemo archive by handing its model_config.yaml to hydra.utils.instantiate
(CVE-2025-23304), and libraries built on PyTorchModelHubMixin or hydra do the same with a
config.json or with JSON kept in safetensors metadata. Instantiation imports the dotted
`_target_` and calls it with the sibling keys as arguments, so `_target_: os.system` in a
config is code execution. Each target is classified with the pickle policy (the same
families: commands, code evaluation, files, network, loaders); honest configs name model
classes, which are never findings here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from ..model import IssueSeverity
from .pickle_policy import Level, classify, split_reference

TARGET_KEYS = frozenset({"_target_"})
# Library loaders that training configs instantiate by design (transformers, datasets, Lightning, NeMo):
# noted, not findings. Raw deserializers (torch.load, pickle.load, joblib.load ...) stay critical.
CONFIG_LOADERS = frozenset({"from_pretrained", "from_config", "from_single_file", "load_from_checkpoint",
                            "restore_from", "load_model", "load_learner", "load_dataset", "load_from_disk",
                            "pipeline"})
MAX_NODES = 200_000  # values walked per document; aliases are shared, never copied
MAX_TEXT = 32 * 1024 * 1024
_INTERPOLATION = re.compile(r"\$\{\s*([^${}:]+?)\s*\}")
# `_target_: os.system`, `"_target_": "os.system"`, `{_target_: 'os.system'}` in raw text
_RAW_TARGET = re.compile(r"""["']?_target_["']?\s*[:=]\s*["']?([A-Za-z_][\w.:]*)""")

# PyYAML's python tags (also written out as the full tag URI): object/apply calls any callable, object and
# object/new build any class; name and module only import (mkdocs configs name their extensions this way)
_PYTHON_TAG = re.compile(r"(?:!!|tag:yaml\.org,2002:)python/(object/apply|object/new|object|name|module)"
                         r"(?::([\w.]+))?")
_BUILDING_TAGS = frozenset({"object/apply", "object/new", "object"})
# A tag or %TAG prefix with a %XX escape: PyYAML decodes it, so `!!%70ython/object/apply:os.system` is a python tag
# (no `!` inside the run: `!\S*` would rescan a long run of `!` from each of them, quadratic time)
_TAG_ESCAPE = re.compile(r"![^\s!]*%[0-9A-Fa-f]{2}|%TAG\s+\S+\s+\S*%[0-9A-Fa-f]{2}")
# YAML is parsed into a document only up to this size: PyYAML builds about a megabyte a second, and the
# parser cannot be interrupted; past it the raw-text search still runs and the gap is reported
MAX_YAML_DOCUMENT = 2 * 1024 * 1024

Emit = Callable[[str, str, dict[str, Any]], None]
_TOO_LARGE = object()  # _parse's answer for a YAML document over MAX_YAML_DOCUMENT


def check_text(text: str, emit: Emit, yaml_allowed: bool = True) -> None:
    """Targets in a JSON or YAML document, parsed (anchors, interpolations) and read raw (parser tricks)."""
    if len(text) > MAX_TEXT:
        return
    if yaml_allowed and ("python/" in text or _TAG_ESCAPE.search(text)):
        _check_tags(text, emit)
    if "_target_" not in text and "\\" not in text:  # an escaped key ("\x5ftarget_") is _target_ once parsed
        return
    seen: set[str] = set()
    doc = _parse(text, yaml_allowed)
    if doc is _TOO_LARGE:
        emit("MA-H011", f"YAML config of {len(text)} characters is over the {MAX_YAML_DOCUMENT}-byte budget for "
             "resolving anchors and interpolations; only its raw text was searched for _target_ keys",
             {"size": len(text)}, severity=IssueSeverity.WARNING)
    elif doc is not None:
        for path, target in targets(doc):
            _report(target, path, emit, seen)
    for match in _RAW_TARGET.finditer(text):
        _report(match.group(1), "_target_", emit, seen)


def _check_tags(text: str, emit: Emit) -> None:
    """Every python tag: critical when it names a dangerous callable, a warning when it builds an object of
    a class nobody vouched for, quiet when it only imports a harmless name."""
    seen: set[tuple[str, str]] = set()
    for tag in (*_PYTHON_TAG.finditer(text), *_declared_tags(text)):
        kind, target = tag.group(1), tag.group(2) or ""
        if (kind, target) in seen:
            continue
        seen.add((kind, target))
        module, _, name = target.rpartition(".")
        # a whole module is judged by its family: any attribute of a dangerous module is dangerous
        verdict = classify(target, "_") if kind == "module" or not module else classify(module, name)
        if verdict.level is Level.DANGEROUS:
            emit("MA-I002", f"YAML tag {tag.group(0)!r} makes yaml.load/unsafe_load import {target}: "
                 f"{verdict.why}", {"tag": tag.group(0), "family": verdict.family})
        elif kind in _BUILDING_TAGS and verdict.level is not Level.SAFE:
            emit("MA-I002", f"YAML tag {tag.group(0)!r} makes yaml.load/unsafe_load call {target or 'a callable'}, "
                 "which is not known to be harmless", {"tag": tag.group(0)}, severity=IssueSeverity.WARNING)


def _declared_tags(text: str) -> list[re.Match]:
    """Tags spelled through a %TAG directive (`%TAG !p! tag:yaml.org,2002:python/` then `!p!object/apply:x`)
    or with %XX escapes never show the word in the text: the YAML parser resolves them (events only, nothing
    is constructed)."""
    if "%TAG" not in text and not _TAG_ESCAPE.search(text):
        return []
    try:
        import yaml
    except ImportError:
        return []
    found = []
    try:
        for count, event in enumerate(yaml.parse(text, Loader=yaml.SafeLoader)):
            tag = getattr(event, "tag", None)
            if isinstance(tag, str) and "python/" in tag:
                match = _PYTHON_TAG.match(tag)
                if match:
                    found.append(match)
            if count > MAX_NODES:
                break
    except (yaml.YAMLError, ValueError, RecursionError):
        pass
    return found


def check_document(doc: Any, emit: Emit) -> None:
    seen: set[str] = set()
    for path, target in targets(doc):
        _report(target, path, emit, seen)


def targets(doc: Any) -> Iterator[tuple[str, str]]:
    """(path, dotted target) for every `_target_` string, interpolations like ${a.b} resolved against the root."""
    stack: list[tuple[str, Any]] = [("", doc)]
    visited: set[int] = set()
    nodes = 0
    while stack and nodes < MAX_NODES:
        path, node = stack.pop()
        nodes += 1
        if isinstance(node, (dict, list)):
            if id(node) in visited:
                continue
            visited.add(id(node))
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{path}.{key}" if path else str(key)
                if key in TARGET_KEYS and isinstance(value, str):
                    yield child[:256], _resolve(doc, value)
                stack.append((child, value))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(node))


def _resolve(root: Any, value: str, depth: int = 0) -> str:
    """OmegaConf interpolation: `${model.cls}` is replaced by that key's value (a few levels deep)."""
    match = _INTERPOLATION.fullmatch(value.strip())
    if not match or depth > 8:
        return value
    node = root
    for part in match.group(1).lstrip(".").split("."):
        if not isinstance(node, dict) or part not in node:
            return value
        node = node[part]
    return _resolve(root, node, depth + 1) if isinstance(node, str) else value


def _report(target: str, path: str, emit: Emit, seen: set[str]) -> None:
    target = target.strip()
    if target in seen:
        return
    seen.add(target)
    module, name = split_reference(target)
    if not module or not name:
        return
    verdict = classify(module, name.replace(":", "."))
    if verdict.level is not Level.DANGEROUS:
        return
    details = {"key": path, "target": target, "family": verdict.family}
    if verdict.family in ("nested-loader", "network-access") and name.rsplit(".", 1)[-1] in CONFIG_LOADERS:
        # what training configs exist for: the model or dataset it fetches is a separate artifact to scan
        emit("MA-I001", f"Config key {path} instantiates {target}, which loads another model or dataset "
             "(not scanned here)", details, severity=IssueSeverity.INFO)
        return
    emit("MA-I001", f"Config key {path} instantiates {target}: {verdict.why}", details)


def _parse(text: str, yaml_allowed: bool) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    if not yaml_allowed:
        return None
    try:
        import yaml  # optional (modelaudit[all]); without it the raw-text search still runs
    except ImportError:
        return None
    if len(text) > MAX_YAML_DOCUMENT:
        return _TOO_LARGE
    try:
        # libyaml when present: several times faster, and its 1000-level nesting limit is past what PyYAML's
        # recursive composer (OmegaConf's loader) reaches anyway
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except (yaml.YAMLError, ValueError, RecursionError):
        return None
