"""What a file says about its own licence and origin: licence files, model cards, configs, metadata.

The facts are plain JSON values, kept as stated (a model card's `license: apache-2.0` stays
"apache-2.0"; the SBOM writer maps it to an SPDX id). Licence files are recognised by the wording
of well-known licences. Keys of a facts dictionary:

  source        what stated them: "license-file", "model-card", "config" or "metadata"
  licenses      licence ids or names;  license_name, license_url: a custom licence ("other")
  copyright     copyright statements ("Copyright (c) 2024 Example Corp")
  authors, name, architecture, architecture_family, task, library, datasets, base_models
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Mapping
from typing import Any

MAX_TEXT = 1024 * 1024  # licence files, model cards and configs are small; larger ones are read this far
_MAX_ITEMS = 50
_MAX_VALUE = 500

_LICENCE_FILE = re.compile(r"^(licen[cs]e|copying|copyright|notice)([-._ ].*)?$", re.IGNORECASE)
_MODEL_CARDS = frozenset({"readme.md", "modelcard.md", "model_card.md"})
_CONFIGS = frozenset({"config.json"})
_TEXT_FORMATS = frozenset({"text", "json", "hf_config", "yaml", "chat_template", "unknown"})
_LISTS = ("licenses", "copyright", "authors", "datasets", "base_models")


def from_file(name: str, fmt: str, head: Callable[[int], bytes], size: int) -> dict[str, Any] | None:
    """Facts stated by a licence file, a model card (README.md front matter) or a config.json."""
    base = posixpath.basename(name.replace("\\", "/")).lower()
    if fmt not in _TEXT_FORMATS or not size:
        return None
    if _LICENCE_FILE.match(base):
        return licence_file_facts(_text(head))
    if base in _MODEL_CARDS:
        return model_card_facts(_text(head))
    if base in _CONFIGS:
        return config_facts(_text(head))
    return None


def _text(head: Callable[[int], bytes]) -> str:
    return head(MAX_TEXT).decode("utf-8", errors="replace").lstrip("\ufeff")


# --- licence files ------------------------------------------------------------------------------------

# (licence, phrases that must all appear), most specific first; matched on lower-cased text with
# runs of whitespace collapsed. Ids are SPDX where SPDX has one; other licences go by their name.
_SIGNATURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AGPL-3.0-only", ("gnu affero general public license", "version 3")),
    ("LGPL-3.0-only", ("gnu lesser general public license", "version 3")),
    ("LGPL-2.1-only", ("gnu lesser general public license", "version 2.1")),
    ("LGPL-2.0-only", ("gnu library general public license", "version 2")),
    ("GPL-3.0-only", ("gnu general public license", "version 3")),
    ("GPL-2.0-only", ("gnu general public license", "version 2")),
    ("Apache-2.0", ("apache license", "version 2.0")),
    ("MPL-2.0", ("mozilla public license", "2.0")),
    ("MIT", ("permission is hereby granted, free of charge, to any person obtaining a copy",)),
    ("ISC", ("permission to use, copy, modify, and/or distribute this software for any purpose",)),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "neither the name")),
    ("BSD-2-Clause", ("redistribution and use in source and binary forms",)),
    ("BSL-1.0", ("boost software license - version 1.0",)),
    ("Unlicense", ("this is free and unencumbered software released into the public domain",)),
    ("CC0-1.0", ("cc0 1.0 universal",)),
    ("CC-BY-NC-SA-4.0", ("attribution-noncommercial-sharealike 4.0 international",)),
    ("CC-BY-NC-ND-4.0", ("attribution-noncommercial-noderivatives 4.0 international",)),
    ("CC-BY-NC-4.0", ("attribution-noncommercial 4.0 international",)),
    ("CC-BY-ND-4.0", ("attribution-noderivatives 4.0 international",)),
    ("CC-BY-SA-4.0", ("attribution-sharealike 4.0 international",)),
    ("CC-BY-4.0", ("creative commons attribution 4.0 international",)),
    ("CreativeML OpenRAIL-M", ("creativeml open rail-m",)),
    ("BigScience OpenRAIL-M", ("bigscience open rail-m",)),
    ("Gemma Terms of Use", ("gemma terms of use",)),
)
_LLAMA = re.compile(r"llama (\d(?:\.\d)?) community license agreement")
_COPYRIGHT = re.compile(r"^\s*(?:copyright\b\s*(?:\(c\)|©)?|\(c\)|©)\s*(?:19|20)\d\d\b", re.IGNORECASE)
_RESERVED = re.compile(r"[\s.,;]*all rights reserved\.?\s*$", re.IGNORECASE)
# stewards of licence texts: their notice in a verbatim licence is not the project's copyright
_LICENCE_STEWARDS = ("free software foundation",)


def identify_licence(text: str) -> str | None:
    """The licence a licence text is, by the wording of its well-known form; None if unknown."""
    flat = " ".join(text.lower().split())
    llama = _LLAMA.search(flat)
    if llama:
        return f"Llama {llama.group(1)} Community License Agreement"
    for licence, phrases in _SIGNATURES:
        if all(p in flat for p in phrases):
            return licence
    return None


def copyright_statements(text: str) -> list[str]:
    """'Copyright (c) 2024 Example Corp' lines with a year; templates ('[yyyy]') and licence stewards left out."""
    out: list[str] = []
    for line in text.splitlines()[:5000]:
        match = _COPYRIGHT.match(line)
        if not match or "[" in line or any(s in line.lower() for s in _LICENCE_STEWARDS):
            continue
        statement = _RESERVED.sub("", line.strip()).strip()[:_MAX_VALUE]
        if statement not in out:
            out.append(statement)
        if len(out) >= _MAX_ITEMS:
            break
    return out


def licence_file_facts(text: str) -> dict[str, Any] | None:
    licence = identify_licence(text)
    holders = copyright_statements(text)
    if not licence and not holders:
        return None
    facts: dict[str, Any] = {"source": "license-file"}
    if licence:
        facts["licenses"] = [licence]
    if holders:
        facts["copyright"] = holders
    return facts


# --- model cards (Hugging Face README.md with YAML front matter) --------------------------------------

def front_matter(text: str) -> dict[str, Any]:
    """Top-level scalars and lists of a YAML front matter block; nested mappings are skipped.

    Only the subset model cards use for the keys read here, so that no YAML library is needed.
    """
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    out: dict[str, Any] = {}
    key: str | None = None
    for line in lines[1:5000]:
        stripped = line.strip()
        if stripped in ("---", "..."):
            break
        if not stripped or stripped.startswith("#"):
            continue
        if line[0] not in " \t-":
            name, sep, value = line.partition(":")
            key = name.strip().strip("'\"") if sep else None
            if key is not None:
                out[key] = _yaml_value(_uncomment(value).strip())
        elif key is not None and stripped.startswith("-") and isinstance(out.get(key), list):
            item = stripped[1:].strip()
            if item and not item.endswith(":") and ": " not in item:  # "- name: x" opens a mapping
                out[key].append(_scalar(item))
    return out


def _uncomment(value: str) -> str:
    return value if value.lstrip().startswith(("'", '"')) else value.split(" #", 1)[0]


def _yaml_value(value: str) -> Any:
    if not value:
        return []  # a list (or mapping) follows on the next lines
    if value.startswith("[") and value.endswith("]"):
        return [_scalar(v) for v in value[1:-1].split(",") if v.strip()]
    return _scalar(value)


def _scalar(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value[:_MAX_VALUE]


def model_card_facts(text: str) -> dict[str, Any] | None:
    card = front_matter(text)
    facts: dict[str, Any] = {}
    licences = [v for v in _as_list(card.get("license")) if v.lower() != "other"]
    _put(facts, "licenses", licences)
    _put(facts, "license_name", card.get("license_name"))
    _put(facts, "license_url", card.get("license_link"))
    _put(facts, "datasets", _as_list(card.get("datasets")))
    _put(facts, "base_models", _as_list(card.get("base_model")))
    _put(facts, "task", card.get("pipeline_tag"))
    _put(facts, "library", card.get("library_name"))
    _put(facts, "name", card.get("model_name"))
    return {"source": "model-card", **facts} if facts else None


# --- configs and embedded metadata ---------------------------------------------------------------------

def config_facts(text: str) -> dict[str, Any] | None:
    """A Hugging Face config.json: architecture, model type and a licence if it states one."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    facts: dict[str, Any] = {}
    architectures = [a for a in _as_list(data.get("architectures")) if a]
    _put(facts, "architecture", architectures[0] if architectures else None)
    _put(facts, "architecture_family", data.get("model_type"))
    _put(facts, "licenses", _as_list(data.get("license")))
    return {"source": "config", **facts} if facts else None


_META_KEYS = {
    "license": "licenses", "general.license": "licenses", "modelspec.license": "licenses",
    "license_name": "license_name", "general.license.name": "license_name",
    "license_link": "license_url", "license_url": "license_url", "general.license.link": "license_url",
    "copyright": "copyright", "general.copyright": "copyright",
    "author": "authors", "general.author": "authors", "modelspec.author": "authors",
    "general.organization": "authors",
    "general.name": "name", "modelspec.title": "name",
    "general.architecture": "architecture", "modelspec.architecture": "architecture",
    "general.datasets": "datasets", "datasets": "datasets",
}
_META_PATTERNS = ((re.compile(r"^general\.dataset\.\d+\.name$"), "datasets"),
                  (re.compile(r"^general\.base_model\.\d+\.name$"), "base_models"))


def from_metadata(metadata: object) -> dict[str, Any] | None:
    """Facts from key/value metadata (safetensors __metadata__, GGUF general.* keys)."""
    if not isinstance(metadata, Mapping):
        return None
    facts: dict[str, Any] = {}
    for raw_key, value in list(metadata.items())[:10_000]:
        key = str(raw_key).lower()
        target = _META_KEYS.get(key) or next((t for p, t in _META_PATTERNS if p.match(key)), None)
        if target is None:
            continue
        values = [v for v in _as_list(_maybe_json_list(value)) if v]
        if target in _LISTS:
            facts[target] = _unique(facts.get(target, []) + values)
        elif values and target not in facts:
            facts[target] = values[0]
    return {"source": "metadata", **facts} if facts else None


def _maybe_json_list(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    return [str(v).strip()[:_MAX_VALUE] for v in items[:_MAX_ITEMS] if isinstance(v, (str, int, float))
            and str(v).strip()]


def _put(facts: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, list):
        if value:
            facts[key] = _unique(value)
    elif isinstance(value, str) and value.strip():
        facts[key] = value.strip()[:_MAX_VALUE]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))[:_MAX_ITEMS]


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Facts of one file from several statements: lists joined, the first scalar kept."""
    out = dict(old)
    for key, value in new.items():
        if key in _LISTS:
            out[key] = _unique(out.get(key, []) + list(value))
        else:
            out.setdefault(key, value)
    return out
