"""tflite: TensorFlow Lite flatbuffers, read with a bounded reader (no tflite or tensorflow package).

Every offset is checked before it is followed (root table, vtables, vectors, strings; see
`_flatbuffer`), and the model is read along the schema's fixed paths (Model -> SubGraph ->
Tensor/Operator), so nesting is bounded by construction. Reported: the operator codes (builtin
operators by name, custom operators, Flex select-TF operators, whose embedded TensorFlow NodeDef is
decoded and checked like a graph node), buffers whose external offset and size (the large-model
layout) or custom options fall outside the file, tensors and operators that reference missing
buffers, tensors or operator codes, tensor data whose size disagrees with its shape, metadata
entries pointing at missing buffers, and external buffer groups naming paths outside the model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ..errors import BudgetExceeded, ScanTimeout
from ._flatbuffer import FlatBuffer, FlatBufferError, FlatLimits, Table
from ._protobuf import Reader
from ._tf_graph import Findings, Inventory, check_ops
from ._tf_policy import outside_path
from ._tf_schema import NODE
from ._tflite_schema import (BUILTIN_OPS, CUSTOM, PLACEHOLDER_FOR_GREATER_OP_CODES, RUNTIME_CUSTOM_OPS,
                             TENSOR_TYPES)
from .base import BaseScanner, IssueSeverity

SCHEMA_VERSION = 3
_FLEX_STRING, _FLEX_VECTOR, _FLEX_BLOB = 5, 10, 25  # FlexBuffer value types


@dataclass
class _Model:
    size: int
    opcodes: list[tuple[int, str | None]] = field(default_factory=list)  # (builtin code, custom code)
    uses: Counter = field(default_factory=Counter)  # opcode index -> operators using it
    buffers: list[int | None] = field(default_factory=list)  # bytes each buffer holds (None: unknown)
    subgraphs: int = 0
    tensors: int = 0
    operators: int = 0
    metadata: list[str] = field(default_factory=list)
    flex: list[tuple[str, str, bytes | None]] = field(default_factory=list)  # (where, custom code, custom options)
    flex_spans: set[tuple[str, tuple[int, int] | None]] = field(default_factory=set)  # (custom, options) in flex


class TFLiteScanner(BaseScanner):
    name = "tflite"
    description = ("TensorFlow Lite flatbuffers read with bounds checks: operators (builtin, custom, Flex), buffers, "
                   "tensors and metadata, without the TFLite runtime")
    supported_extensions = [".tflite"]
    formats = ("tflite",)
    limits = FlatLimits()

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        report = Findings(result, blob.location)
        model = _Model(blob.size)
        error: FlatBufferError | None = None
        stopped: Exception | None = None
        with blob.buffer() as buf:
            try:
                _read_model(FlatBuffer(buf, self.limits, tick=ctx.check_deadline), model, report)
            except FlatBufferError as exc:
                error = exc
                report("MA-T201", f"Malformed TFLite flatbuffer: {exc}; the runtime's verifier rejects the file and "
                       "readers that skip verification read out of bounds; nothing after this point was checked",
                       {"offset": exc.offset, "reason": exc.reason})
                result.mark_incomplete()
            except (BudgetExceeded, ScanTimeout) as exc:
                stopped = exc
        _check_opcodes(model, report)
        _check_flex(model, report, ctx.check_deadline)
        report.close()
        result.bytes_scanned += blob.size
        result.add_check("tflite model", report.total() == 0 and error is None, _summary(model), blob.location)
        if stopped is not None:
            raise stopped


def _summary(model: _Model) -> str:
    ops = Counter()
    for index, count in model.uses.items():
        if index < len(model.opcodes):
            ops[_op_name(*model.opcodes[index])] += count
    shown = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in ops.most_common(30))
    return (f"{model.subgraphs} subgraph(s), {model.tensors} tensors, {model.operators} operators, "
            f"{len(model.buffers)} buffers; ops: {shown or 'none'}; metadata: {model.metadata[:10] or 'none'}")


def _op_name(code: int, custom: str | None) -> str:
    if code == CUSTOM:
        return f"CUSTOM {custom!r}"
    return BUILTIN_OPS[code] if 0 <= code < len(BUILTIN_OPS) else f"builtin #{code}"


# --- reading ------------------------------------------------------------------------------
def _read_model(fb: FlatBuffer, model: _Model, report: Findings) -> None:
    if fb.end < 8:
        raise FlatBufferError(f"{fb.end} bytes cannot hold a flatbuffer header", 0)
    identifier = bytes(fb.buf[4:8])
    if identifier != b"TFL3":
        report("MA-T201", f"File identifier is {identifier!r}, not b'TFL3': the TFLite runtime rejects the file",
               {"identifier": identifier.hex()})
    root = fb.root()
    fb.string(root, 3, "description")
    version = fb.scalar(root, 0, "<I")
    if version != SCHEMA_VERSION:
        report("MA-T201", f"Model schema version is {version}, not {SCHEMA_VERSION}; the runtime refuses it",
               {"version": version})
    for code in fb.tables(root, 1, "operator code"):
        deprecated, builtin = fb.scalar(code, 0, "<b"), fb.scalar(code, 3, "<i")
        model.opcodes.append((max(deprecated, builtin), fb.string(code, 1, "custom code")))
    for buffer in fb.tables(root, 4, "buffer"):
        model.buffers.append(_read_buffer(fb, buffer, len(model.buffers), model.size, report))
    subgraphs = fb.tables(root, 2, "subgraph")
    model.subgraphs = len(subgraphs)
    tensor_counts = [_read_subgraph(fb, sub, index, model, report) for index, sub in enumerate(subgraphs)]
    _read_metadata(fb, root, model, report)
    _read_signatures(fb, root, tensor_counts, report)
    for group in fb.tables(root, 8, "external buffer group"):
        name = fb.string(group, 0, "external buffer group name") or ""
        why = outside_path(name)
        if why:
            report("MA-T205", f"External buffer group {name[:200]!r} {why}; the runtime reads weights from that "
                   "location outside the model", {"group": name[:500]}, IssueSeverity.CRITICAL)


def _read_buffer(fb: FlatBuffer, buffer: Table, index: int, size: int, report: Findings) -> int | None:
    data = fb.vector(buffer, 0, 1, "buffer data")
    offset, length = fb.scalar(buffer, 1, "<Q"), fb.scalar(buffer, 2, "<Q")
    if offset <= 1:  # 0 and 1 are the converter's "no external data" markers
        return data[1] if data else 0
    if data and data[1]:
        report("MA-T205", f"Buffer {index} has both inline data and an external offset; readers disagree on which "
               "one holds the tensor", {"buffer": index})
    if offset + length > size:
        report("MA-T205", f"Buffer {index} points at bytes [{offset}, {offset + length}) past the end of the "
               f"{size}-byte file", {"buffer": index, "offset": offset, "size": length, "file_size": size})
        return None
    return length


def _read_subgraph(fb: FlatBuffer, sub: Table, index: int, model: _Model, report: Findings) -> int:
    fb.string(sub, 4, "subgraph name")
    tensors = fb.tables(sub, 0, "tensor")
    model.tensors += len(tensors)
    for number, tensor in enumerate(tensors):
        _check_tensor(fb, tensor, f"subgraph {index} tensor {number}", model, report)
    for what, field_index in (("input", 1), ("output", 2)):
        bad, count = _outside(fb.numbers(sub, field_index, "i", f"subgraph {what}s"), 0, len(tensors))
        if bad:  # one finding per list: a hostile list may hold millions of entries
            report("MA-T206", f"Subgraph {index} {what} {bad[0]} names no tensor ({len(tensors)} tensors)"
                   + (f", and {count - 1} more {what}s name none" if count > 1 else ""),
                   {"subgraph": index, "tensor": bad[0], "tensors": bad, "count": count})
    operators = fb.tables(sub, 3, "operator")
    model.operators += len(operators)
    for number, op in enumerate(operators):
        _read_operator(fb, op, f"subgraph {index} operator {number}", len(tensors), model, report)
    return len(tensors)


def _outside(refs: Iterable[int], low: int, end: int) -> tuple[list[int], int]:
    """The first few references outside [low, end) and how many there are, without a list of them all."""
    bad = (ref for ref in refs if not low <= ref < end)
    first = list(islice(bad, 8))
    return first, len(first) + sum(1 for _ in bad)


def _check_tensor(fb: FlatBuffer, tensor: Table, where: str, model: _Model, report: Findings) -> None:
    name = fb.string(tensor, 3, "tensor name")
    where = f"{where} ({name[:80]!r})" if name else where
    _verify_quantization(fb, fb.child(tensor, 4, "quantization"))
    fb.vector(tensor, 7, 4, "shape signature")
    buffer = fb.scalar(tensor, 2, "<I")
    if buffer >= len(model.buffers):
        report("MA-T206", f"{where} uses buffer {buffer}, but the model has {len(model.buffers)} buffers",
               {"tensor": where, "buffer": buffer})
        return
    have = model.buffers[buffer]
    type_name, bits = TENSOR_TYPES.get(fb.scalar(tensor, 1, "<b"), ("?", 0))
    if not have or not bits or fb.field(tensor, 6, 4) is not None:  # no data, variable-size type or sparse
        return
    count = 1
    for dim in fb.numbers(tensor, 0, "i", "tensor shape")[:64]:
        count *= max(dim, 0)
    need = -(-count * bits // 8)
    if have != need and not (bits < 8 and have == count):  # sub-byte types may be stored one per byte
        report("MA-T206", f"{where} ({type_name}, {count} elements) needs {need} bytes but buffer {buffer} holds "
               f"{have}", {"tensor": where, "buffer": buffer, "needed": need, "have": have})


def _verify_quantization(fb: FlatBuffer, quantization: Table | None) -> None:
    """Bounds of the quantization vectors (min, max, scale, zero_point), which loaders copy."""
    if quantization is not None:
        for index, size in ((0, 4), (1, 4), (2, 4), (3, 8)):
            fb.vector(quantization, index, size, "quantization parameters")


def _read_operator(fb: FlatBuffer, op: Table, where: str, tensors: int, model: _Model, report: Findings) -> None:
    fb.child(op, 4, "builtin options")
    fb.child(op, 12, "builtin options 2")
    index = fb.scalar(op, 0, "<I")
    if index >= len(model.opcodes):
        report("MA-T206", f"{where} uses operator code {index}, but the model has {len(model.opcodes)}",
               {"operator": where, "opcode_index": index})
        return
    model.uses[index] += 1
    for what, field_index in (("input", 1), ("output", 2), ("intermediate", 8)):
        bad, _ = _outside(fb.numbers(op, field_index, "i", f"operator {what}s"), -1, tensors)
        if bad:
            report("MA-T206", f"{where} {what} tensor {bad[0]} does not exist ({tensors} tensors)",
                   {"operator": where, "tensors": bad[:8]})
    code, custom = model.opcodes[index]
    options = _custom_options(fb, op, where, model.size, report)
    if code == CUSTOM and custom and custom.startswith("Flex") and (custom, options) not in model.flex_spans:
        model.flex_spans.add((custom, options))  # operators that share one options blob are decoded once
        model.flex.append((f"{where} ({custom[:80]})", custom, None if options is None else fb.blob(*options)))


def _custom_options(fb: FlatBuffer, op: Table, where: str, size: int, report: Findings) -> tuple[int, int] | None:
    """(start, length) of the operator's custom options: inline, or at large_custom_options_offset in the file."""
    inline = fb.vector(op, 5, 1, "custom options")
    if inline is not None:
        return inline[0], min(inline[1], 1 << 20)
    offset, length = fb.scalar(op, 9, "<Q"), fb.scalar(op, 10, "<Q")
    if offset <= 1:
        return None
    if offset + length > size:
        report("MA-T205", f"{where} custom options at [{offset}, {offset + length}) lie past the end of the "
               f"{size}-byte file", {"operator": where, "offset": offset, "size": length})
        return None
    return offset, min(length, 1 << 20)


def _read_metadata(fb: FlatBuffer, root: Table, model: _Model, report: Findings) -> None:
    for entry in fb.tables(root, 6, "metadata"):
        name, buffer = fb.string(entry, 0, "metadata name") or "", fb.scalar(entry, 1, "<I")
        model.metadata.append(name[:80])
        if buffer >= len(model.buffers):
            report("MA-T206", f"Metadata {name[:80]!r} points at buffer {buffer}, but the model has "
                   f"{len(model.buffers)} buffers", {"metadata": name[:200], "buffer": buffer})
    for buffer in fb.numbers(root, 5, "i", "metadata buffers"):
        if not 0 <= buffer < len(model.buffers):
            report("MA-T206", f"metadata_buffer entry {buffer} names no buffer", {"buffer": buffer})


def _read_signatures(fb: FlatBuffer, root: Table, tensor_counts: list[int], report: Findings) -> None:
    for number, signature in enumerate(fb.tables(root, 7, "signature")):
        key = fb.string(signature, 2, "signature key") or str(number)
        sub = fb.scalar(signature, 4, "<I")
        if sub >= len(tensor_counts):
            report("MA-T206", f"Signature {key[:80]!r} runs subgraph {sub}, which does not exist",
                   {"signature": key[:200], "subgraph": sub})
            continue
        for field_index in (0, 1):
            for tensor_map in fb.tables(signature, field_index, "signature tensor"):
                tensor = fb.scalar(tensor_map, 1, "<I")
                if tensor >= tensor_counts[sub]:
                    report("MA-T206", f"Signature {key[:80]!r} maps to tensor {tensor} of subgraph {sub}, which has "
                           f"{tensor_counts[sub]}", {"signature": key[:200], "tensor": tensor})


# --- operators ----------------------------------------------------------------------------
def _check_opcodes(model: _Model, report: Findings) -> None:
    custom: Counter = Counter()
    flex: Counter = Counter()
    for index, (code, name) in enumerate(model.opcodes):
        uses = model.uses[index]
        if code == CUSTOM:
            (flex if name and name.startswith("Flex") else custom)[name or ""] += uses
        elif not 0 <= code < len(BUILTIN_OPS) or code == PLACEHOLDER_FOR_GREATER_OP_CODES:
            report("MA-T206", f"Operator code {index} is builtin #{code}, which TFLite does not define",
                   {"opcode_index": index, "builtin_code": code})
    for name, uses in sorted(custom.items()):
        if name in RUNTIME_CUSTOM_OPS:
            continue
        shown = repr(name[:120]) if name else "without a custom_code name"
        report("MA-T202", f"Custom operator {shown} ({uses} use{'s' if uses != 1 else ''}) needs a kernel the "
               "loading application registers: native code that is not part of the model",
               {"custom_code": name[:200], "uses": uses})
    if flex:
        listed = ", ".join(f"{n[4:][:80]} x{u}" if u > 1 else n[4:][:80] for n, u in flex.most_common(20))
        report("MA-T203", f"Model runs {sum(flex.values())} TensorFlow (Flex) operator(s) through the select-TF-ops "
               f"delegate: {listed}", {"ops": {n[:200]: u for n, u in flex.most_common(100)}})


def _check_flex(model: _Model, report: Findings, tick: Callable[[], None]) -> None:
    for where, custom, options in model.flex:
        found = flex_node(options) if options else None
        node: dict[str, Any] = {}
        if found is not None:
            node, error = Reader(found[1], tick=tick).decode(NODE)
            if error is not None:
                found = None
        if found is None:
            report("MA-T204", f"{where}: the TensorFlow NodeDef in its custom options is missing or unreadable; "
                   "the delegate may still run whatever it decodes", {"operator": where})
            node = {"name": "", "op": custom[4:]}
        elif node.get("op") != custom[4:] or found[0] != custom[4:]:
            report("MA-T204", f"{where}: named {custom[:80]!r} but its NodeDef runs {node.get('op', '')[:80]!r}",
                   {"operator": where, "custom_code": custom[:200], "node_op": node.get("op", "")[:200],
                    "flex_op": found[0][:200]})
        inv = Inventory()
        inv.add_nodes(where, [node], frozenset())
        check_ops(inv, found[1] if found else b"", report)


def flex_node(data: bytes) -> tuple[str, bytes] | None:
    """(op name, serialized NodeDef) from a Flex operator's custom options, a FlexBuffer vector of two strings."""
    if len(data) < 3 or data[-1] not in (1, 2, 4, 8):
        return None
    root_width, packed = data[-1], data[-2]
    root_at = len(data) - 2 - root_width
    if packed >> 2 != _FLEX_VECTOR or root_at < 0:
        return None
    width = 1 << (packed & 3)
    vector = root_at - int.from_bytes(data[root_at:root_at + root_width], "little")
    if vector - width < 0:
        return None
    count = int.from_bytes(data[vector - width:vector], "little")
    types = vector + count * width
    if count < 2 or types + count > len(data):
        return None
    strings = []
    for i in range(2):
        kind, elem = data[types + i], vector + i * width
        size_width = 1 << (kind & 3)
        start = elem - int.from_bytes(data[elem:elem + width], "little")
        if kind >> 2 not in (_FLEX_STRING, _FLEX_BLOB) or start - size_width < 0:
            return None
        length = int.from_bytes(data[start - size_width:start], "little")
        if start + length > len(data):
            return None
        strings.append(data[start:start + length])
    return strings[0].decode("utf-8", "replace"), strings[1]
