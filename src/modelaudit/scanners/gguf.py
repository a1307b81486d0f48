"""GGUF and legacy GGML files, read from the header alone; nothing is loaded or run.

GGUF: magic, version, counts bounded by the file size; every key-value walked with bounds
(string lengths, array counts, nesting, value types, duplicate keys, general.alignment);
every tensor info checked (dimensions, ggml type, element count) and the tensor data
layout validated against the type block sizes: offsets aligned, inside the file, not
overlapping, no undescribed bytes. general.* text is checked for code and credentials.
Chat templates (`tokenizer.chat_template`, `tokenizer.chat_template.<name>`, also as arrays)
are parsed with Jinja2's parser and their AST inspected for sandbox escapes; without
jinja2 the structural findings stand and the file is reported as incompletely scanned.
Legacy GGML (ggml/ggmf/ggjt/ggla): header sanity and bounds.
"""

from __future__ import annotations

from typing import Any

from ..errors import BudgetExceeded
from ._ggml_legacy import check_legacy
from ._gguf_format import BUDGET, GgufHeader, GgufParser, Malformed
from ._gguf_template import MAX_TEMPLATE, report_template, require_jinja
from ._metadata_checks import code_snippet, credential_kind
from ._findings import CappedFindings as _Findings
from .base import BaseScanner

_STRUCTURE = ("MA-G001", "MA-G002", "MA-G003", "MA-G007")
MAX_TEMPLATES_TOTAL = 4 * MAX_TEMPLATE  # template text parsed per file (Jinja parses about 0.3 MB/s)
_TEMPLATE = ("MA-G004", "MA-G005", "MA-G006")


def is_template_key(key: str) -> bool:
    return key == "tokenizer.chat_template" or key.startswith("tokenizer.chat_template.")


class GgufScanner(BaseScanner):
    name = "gguf"
    description = "GGUF/GGML header, metadata, tensor layout and Jinja chat templates, checked without loading"
    supported_extensions = [".gguf", ".ggml"]
    formats = ("gguf", "ggml")
    dependency = ("jinja2", "gguf")

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        findings = _Findings(result, blob.location, (BUDGET,))
        try:
            if blob.head(4) == b"GGUF":
                self._gguf(blob, findings, ctx)
            else:
                self._legacy(blob, findings, ctx)
        finally:
            findings.flush()

    def _legacy(self, blob, findings: _Findings, ctx) -> None:  # noqa: ANN001
        result = findings.result
        with blob.open() as fh:
            try:
                summary = check_legacy(fh, blob.size, findings.emit, ctx.check_deadline)
            except Malformed as exc:
                findings.emit(exc.code, f"GGML header: {exc}", exc.details)
                result.mark_incomplete()
                summary = "header could not be read to the end"
            result.bytes_scanned += fh.tell()
        result.add_check("ggml header", not findings.seen(_STRUCTURE), summary, blob.location)

    def _gguf(self, blob, findings: _Findings, ctx) -> None:  # noqa: ANN001
        result = findings.result
        with blob.open() as fh:
            parser = GgufParser(fh, blob.size, findings.emit, ctx.check_deadline)
            try:
                head = parser.parse()
            except Malformed as exc:
                findings.emit(exc.code, f"GGUF header: {exc}", exc.details)
                result.mark_incomplete()
                head = parser.head
            except BudgetExceeded as exc:
                findings.emit(exc.rule_code, str(exc), {})
                head = parser.head
            finally:
                result.bytes_scanned += parser.reader.pos
        if head.complete:
            check_layout(head, blob.size, findings)
        summary = f"GGUF v{head.version}: {head.tensor_count} tensors, {head.kv_count} key-values"
        result.add_check("gguf header", not findings.seen(_STRUCTURE), summary, blob.location)
        check_text_metadata(head, findings)
        ctx.note_metadata(blob, head.strings)
        self._templates(head, findings, ctx)

    def _templates(self, head: GgufHeader, findings: _Findings, ctx) -> None:  # noqa: ANN001
        templates = [(key, text) for key, texts in head.strings.items() if is_template_key(key) for text in texts]
        if not templates:
            return
        require_jinja()  # MissingDependency: the engine reports it and marks the file incomplete
        parsed: set[str] = set()
        total = 0
        for key, text in templates:
            ctx.check_deadline()
            if text in parsed:  # copies of one template are parsed once
                continue
            parsed.add(text)
            total += len(text)
            if total > MAX_TEMPLATES_TOTAL:
                findings.emit(BUDGET, f"Chat template {key!r} was not inspected: the file's templates hold more than "
                              f"{MAX_TEMPLATES_TOTAL} characters", {"key": key, "length": len(text)})
                continue
            check_template(key, text, findings)
        findings.result.add_check("gguf chat templates", not findings.seen(_TEMPLATE),
                                  f"{len(templates)} chat template(s) parsed and inspected", findings.where)


def check_template(key: str, text: str, findings: _Findings) -> None:
    if len(text) > MAX_TEMPLATE:
        findings.emit(BUDGET, f"Chat template {key!r} is {len(text)} characters; only templates up to "
                      f"{MAX_TEMPLATE} are inspected", {"key": key, "length": len(text)})
        return
    report_template(key, text, findings.emit)


def check_text_metadata(head: GgufHeader, findings: _Findings) -> None:
    for key, texts in head.strings.items():
        if not key.startswith("general."):
            continue
        for text in texts:
            snippet = code_snippet(text)
            if snippet:
                findings.emit("MA-C001", f"Metadata {key!r} contains code-like text ({snippet!r})",
                              {"key": key, "match": snippet})
            kind = credential_kind(text)
            if kind:
                findings.emit("MA-C002", f"Metadata {key!r} contains what looks like a {kind}",
                              {"key": key, "kind": kind})


def _pad(value: int, alignment: int) -> int:
    return value + (-value) % alignment


def check_layout(head: GgufHeader, size: int, findings: _Findings) -> None:
    """Tensor data: aligned, inside the file, no overlaps, gaps or undescribed trailing bytes."""
    align, emit = head.alignment, findings.emit
    data_start = _pad(head.header_end, align)
    names: set[str] = set()
    spans: list[tuple[int, int, str]] = []
    for t in head.tensors:
        if t.name in names:
            emit("MA-G003", f"Tensor name {t.name!r} appears more than once", {"tensor": t.name})
        names.add(t.name)
        if t.offset % align:
            emit("MA-G003", f"Tensor {t.name!r} offset {t.offset} is not a multiple of the alignment {align}",
                 {"tensor": t.name, "offset": t.offset, "alignment": align})
        if data_start + t.offset > size:
            emit("MA-G003", f"Tensor {t.name!r} data offset {t.offset} lies outside the {size} byte file",
                 {"tensor": t.name, "offset": t.offset})
        elif t.nbytes is not None and data_start + t.offset + t.nbytes > size:
            emit("MA-G003", f"Tensor {t.name!r} needs {t.nbytes} bytes at offset {t.offset}, past the end of the "
                 f"{size} byte file", {"tensor": t.name, "offset": t.offset, "nbytes": t.nbytes})
        if t.nbytes is not None:
            spans.append((t.offset, t.offset + t.nbytes, t.name))
    cursor = _check_spans(spans, align, emit)
    if len(spans) == len(head.tensors):
        end = data_start + _pad(cursor, align)
        if size > end:
            emit("MA-G003", f"{size - end} bytes after the last tensor are not described by the header "
                 "(hidden data)", {"data_end": end, "size": size})


def _check_spans(spans: list[tuple[int, int, str]], align: int, emit: Any) -> int:
    spans.sort()
    cursor, previous = 0, None
    for start, end, name in spans:
        if start < cursor and end > start:
            emit("MA-G003", f"Tensor {name!r} at offset {start} overlaps tensor {previous!r}",
                 {"tensor": name, "other": previous, "offset": start})
        elif start > _pad(cursor, align):
            emit("MA-G003", f"Tensor {name!r} at offset {start} leaves {start - _pad(cursor, align)} undescribed "
                 "bytes before it", {"tensor": name, "offset": start})
        if end > cursor:
            cursor, previous = end, name
    return cursor
