"""Checks for free-text metadata carried by model files: code and credentials."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# the lookahead lets the regex engine skip characters no alternative starts with (10x faster on long text)
_CODE = re.compile(
    r"(?=[_eosipcgwbr</])(?:\b(?:__import__\s*\(|eval\s*\(|exec\s*\(|os\.system\s*\(|subprocess\.|import\s+os\b|"
    r"import\s+subprocess\b|popen\s*\(|compile\s*\(|globals\(\)|curl\s+-|wget\s+https?://|bash\s+-c\b|"
    r"rm\s+-rf\b)|<script\b|__builtins__|/bin/sh\b)", re.IGNORECASE)
SHOWN = 200  # characters of a name or value quoted in a message
_CREDENTIALS = (
    ("AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("OpenAI API key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}\b")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
    ("private key", re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----")),
)


def shown(value: Any) -> str:
    """repr() of a name or value from the file, cut short: hostile files carry megabyte names."""
    text = repr(value)
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}… ({len(text)} characters)"


def code_snippet(text: str) -> str | None:
    match = _CODE.search(text)
    return match.group(0) if match else None


def credential_kind(text: str) -> str | None:
    for kind, pattern in _CREDENTIALS:
        if pattern.search(text):
            return kind
    return None


def check_metadata_value(emit: Callable[[str, str, dict[str, Any]], None], key: str, value: str) -> None:
    """Report code-like text (MA-C001) and credentials (MA-C002) in one metadata value."""
    snippet = code_snippet(value)
    if snippet:
        emit("MA-C001", f"Metadata {shown(key)} contains code-like text ({snippet!r})",
             {"key": key[:SHOWN], "match": snippet})
    kind = credential_kind(value)
    if kind:
        emit("MA-C002", f"Metadata {shown(key)} contains what looks like a {kind}", {"key": key[:SHOWN], "kind": kind})
