"""Formats whose verdict needs no parsing: executables and plain text."""

from __future__ import annotations

from .base import BaseScanner


class ExecutableScanner(BaseScanner):
    name = "executable"
    description = "Native executables (ELF, PE, Mach-O) hidden among model files"
    supported_extensions = [".exe", ".dll", ".so", ".dylib"]
    formats = ("executable",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        kind = {b"\x7fE": "ELF", b"MZ": "PE"}.get(blob.head(2), "Mach-O")
        result.report("MA-S013", f"{kind} executable found in model files", blob.location, {"kind": kind})
        result.bytes_scanned += min(blob.size, 4096)


MAX_CONFIG_TEXT = 32 * 1024 * 1024  # configs above this are only counted, as before


class TextScanner(BaseScanner):
    name = "text"
    description = "Plain text, JSON and YAML files without model code (passes ordinary configuration files)"
    supported_extensions = [".txt", ".json", ".yaml", ".yml", ".md"]
    formats = ("text", "json", "yaml", "empty")  # scripts: python_code.ScriptScanner; xml: pmml

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        result.bytes_scanned += blob.size
        if blob.size <= MAX_CONFIG_TEXT:
            # configs that loaders instantiate (Hydra _target_) or read with yaml.load (python tags)
            from . import _instantiate
            from ._findings import CappedFindings

            with blob.buffer() as buf:
                text = bytes(buf).decode("utf-8", "replace")
            findings = CappedFindings(result, blob.location)
            _instantiate.check_text(text, findings.emit, yaml_allowed=blob.name.lower().endswith((".yaml", ".yml")))
            findings.flush()
            if findings.total():
                result.add_check("config content", False, f"{findings.total()} finding(s)", blob.location)
                return
        result.add_check("text content", True, "no executable or serialized code format", blob.location)
