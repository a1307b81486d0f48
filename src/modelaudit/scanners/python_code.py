"""Code shipped with models: Python source, interpreter scripts and compiled bytecode.

Python source (`modeling_*.py` next to a config's auto_map, TorchServe handlers, TorchScript
`code/` members) is analysed from its tokens (_python_static); nothing is compiled or
imported. Shell and other interpreter scripts are reported when they sit among model files
or inside a model archive; .pyc files cannot be reviewed and are reported as such.
"""

from __future__ import annotations

import os
from collections import Counter

from . import torchscript
from ._python_lex import HIDING_ENCODINGS, SourceError, decode_source
from ._python_static import CodeFinding, analyze
from .base import BaseScanner, ScanResult

MAX_SOURCE = 4 * 1024 * 1024  # honest model code is a few hundred KiB; the analysis reads ~0.3 MB/s
MAX_PER_CODE = 25
# files whose presence makes a directory a model directory
MODEL_EXTENSIONS = frozenset({
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".ggml", ".onnx", ".h5", ".hdf5", ".keras", ".pb",
    ".tflite", ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".msgpack", ".mar", ".pte", ".ptl", ".mlmodel",
    ".pmml", ".model", ".llamafile",
})
MODEL_MARKERS = frozenset({"config.json", "adapter_config.json", "model_index.json", "saved_model.pb"})
_MAX_LISTING = 10_000


class PythonCodeScanner(BaseScanner):
    name = "python"
    description = "Python source shipped with models (.py, archive code members, TorchScript code): static analysis"
    supported_extensions = [".py"]
    formats = ("python",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        where = blob.location
        if blob.size > MAX_SOURCE:
            result.report("MA-H011", f"Python source of {blob.size} bytes is larger than the {MAX_SOURCE} byte "
                          "analysis budget; not inspected", where, {"size": blob.size, "limit": MAX_SOURCE})
            result.mark_incomplete()
            return
        with blob.buffer() as buf:
            data = bytes(buf)
        result.bytes_scanned += blob.size
        try:
            text, encoding = decode_source(data)
        except SourceError as exc:
            result.report("MA-H004", f"Python source cannot be read: {exc}", where, {"error": str(exc)})
            result.mark_incomplete()
            return
        if encoding in HIDING_ENCODINGS:
            result.report("MA-H005", f"Python source declares the {encoding} encoding, which gives plain ASCII "
                          "bytes another meaning; it was decoded the way the interpreter reads it", where,
                          {"encoding": encoding})
        self._analyse(text, blob, result, ctx)

    def _analyse(self, text: str, blob, result: ScanResult, ctx) -> None:  # noqa: ANN001
        where = blob.location
        analysis = analyze(text, ctx.check_deadline)
        found = list(analysis.findings)
        if torchscript.is_code_member(blob.name):
            found.extend(torchscript.check_code_names(analysis.names))
        emit_findings(found, where, result)
        if analysis.disguised:
            shown, line = analysis.disguised[0]
            result.report("MA-H005", f"line {line}: identifier {shown!r} is written with lookalike compatibility "
                          f"characters; the interpreter reads it as {_nfkc(shown)!r}", _at(where, line),
                          {"identifier": shown, "line": line, "count": len(analysis.disguised)})
        if analysis.truncated:
            result.report("MA-H011", f"Python source holds more than {analysis.tokens} tokens, the analysis budget; "
                          "the code after them was not inspected", where, {"tokens": analysis.tokens})
            result.mark_incomplete()
        if analysis.error is not None:
            line = analysis.error.line
            result.report("MA-H004", f"Python source stops tokenizing{f' at line {line}' if line else ''}: "
                          f"{analysis.error}; the code before it was analysed", _at(where, line),
                          {"error": str(analysis.error), "line": line})
            result.mark_incomplete()
        serious = [f for f in found if f.severity is None or f.severity.rank >= 2]
        result.add_check("python code analysis", not serious,
                         f"{len(serious)} risky construct(s)" if serious else
                         f"{analysis.tokens} tokens, no dangerous calls", where)


class ScriptScanner(BaseScanner):
    name = "script"
    description = "Shell and other interpreter scripts among model files or inside model archives"
    supported_extensions = [".sh", ".bash", ".zsh", ".ps1", ".bat", ".cmd"]
    formats = ("script",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        result.bytes_scanned += min(blob.size, 4096)
        kind = interpreter(blob.head(256), blob.name)
        if blob.depth == 0 and not among_model_files(blob.path):
            result.add_check("script placement", True, f"{kind} script outside a model directory", blob.location)
            return
        where = "inside a model archive" if blob.depth else "among model files"
        result.report("MA-H006", f"{kind} script {where}", blob.location, {"interpreter": kind})
        result.add_check("script placement", False, f"{kind} script {where}", blob.location)


class BytecodeScanner(BaseScanner):
    name = "pyc"
    description = "Compiled Python bytecode (.pyc), which cannot be reviewed"
    supported_extensions = [".pyc"]
    formats = ("python_bytecode",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        result.bytes_scanned += min(blob.size, 16)
        result.report("MA-H007", "Compiled Python bytecode: importing it runs code that was not reviewed as source",
                      blob.location, {"size": blob.size})


def emit_findings(found: list[CodeFinding], where: str, result: ScanResult) -> None:
    counts: Counter[str] = Counter()
    for f in sorted(found, key=lambda f: f.line):
        counts[f.code] += 1
        if counts[f.code] <= MAX_PER_CODE:
            result.report(f.code, f"line {f.line}: {f.message}", _at(where, f.line),
                          {"line": f.line, "construct": f.target}, severity=f.severity)
    for code, count in sorted(counts.items()):
        if count > MAX_PER_CODE:
            result.report(code, f"{count - MAX_PER_CODE} more {code} findings in this file were not listed", where,
                          {"suppressed": count - MAX_PER_CODE})


def interpreter(head: bytes, name: str) -> str:
    """'bash' for '#!/usr/bin/env bash', else the extension ('sh', 'ps1' …)."""
    if head.startswith(b"#!"):
        words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
        if words:
            program = os.path.basename(words[0])
            if program == "env" and len(words) > 1:
                program = next((w for w in words[1:] if not w.startswith("-")), program)
            return program
    return os.path.splitext(name)[1].lstrip(".").lower() or "script"


def among_model_files(path: str | None) -> bool:
    """True when the file's directory (or its parent) holds model weights or a model config."""
    if path is None:
        return True
    directory = os.path.dirname(os.path.abspath(path))
    for folder in (directory, os.path.dirname(directory)):
        try:
            with os.scandir(folder) as entries:
                for count, entry in enumerate(entries):
                    if count > _MAX_LISTING:
                        break
                    lower = entry.name.lower()
                    if lower in MODEL_MARKERS or os.path.splitext(lower)[1] in MODEL_EXTENSIONS:
                        return True
        except OSError:
            continue
    return False


def _at(where: str, line: int | None) -> str:
    return f"{where} (line {line})" if line else where


def _nfkc(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", text)
