"""executorch: ExecuTorch programs (.pte), read with the bounded flatbuffer reader (no ExecuTorch needed).

The program is read along the schema's fixed paths (Program -> ExecutionPlan -> Chain ->
Instruction, EValue -> Tensor), every offset checked before it is followed (see `_flatbuffer`), so
nesting is bounded by construction and aliased tables only cost budget. Reported: operators outside
the namespaces ExecuTorch's own exporters and kernel libraries use (they need a kernel the loading
application links in), delegates to backends ExecuTorch does not ship, the extended header,
segments, constant data and delegate blobs when they point outside the file, and indices that name
nothing (operators, delegates, values, segments, constant buffers). Constant data and delegate
blobs are never read, only their bounds.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field

from ..errors import BudgetExceeded, ScanTimeout
from . import _executorch_schema as S
from ._flatbuffer import FlatBuffer, FlatBufferError, FlatLimits, Table
from ._tf_graph import Findings
from .base import BaseScanner, IssueSeverity


@dataclass
class _Program:
    size: int  # bytes of the file
    program_size: int = 0  # bytes of the flatbuffer (the whole file without an extended header)
    segment_base: int | None = None  # where segment offsets start (None: no extended header)
    segment_data: int | None = None  # bytes of segment data the header declares (None: not declared)
    segments: list[int | None] = field(default_factory=list)  # bytes of each segment (None: outside the file)
    constant_buffers: list[int] = field(default_factory=list)  # bytes of each inline constant buffer
    delegate_blobs: int = 0  # inline delegate blobs
    constant_offsets: list[int] = field(default_factory=list)  # constant segment: start of each tensor's data
    constant_segment_size: int | None = None
    plans: list[str] = field(default_factory=list)
    op_uses: Counter = field(default_factory=Counter)  # "namespace::name.overload" -> kernel calls
    custom_ops: Counter = field(default_factory=Counter)  # operators outside the known namespaces -> calls
    backends: Counter = field(default_factory=Counter)  # delegate backend id -> delegates
    values: int = 0
    instructions: int = 0


class ExecuTorchScanner(BaseScanner):
    name = "executorch"
    description = ("ExecuTorch programs (.pte) read with bounds checks: operators, delegates, segments and constant "
                   "data, without the ExecuTorch runtime")
    supported_extensions = [".pte"]
    formats = ("executorch",)
    limits = FlatLimits()

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        report = Findings(result, blob.location)
        program = _Program(blob.size)
        error: FlatBufferError | None = None
        stopped: Exception | None = None
        with blob.buffer() as buf, memoryview(buf) as view:
            try:
                _read_header(view, program, report)
                flat = view[:program.program_size]
                try:
                    _read_program(FlatBuffer(flat, self.limits, ctx.check_deadline, budget_rule="MA-T306"),
                                  program, report)
                finally:
                    flat.release()
            except FlatBufferError as exc:
                error = exc
                report("MA-T301", f"Malformed ExecuTorch program: {exc}; the runtime's verifier rejects the file "
                       "and tools that skip verification read out of bounds; nothing after this point was checked",
                       {"offset": exc.offset, "reason": exc.reason})
                result.mark_incomplete()
            except (BudgetExceeded, ScanTimeout) as exc:
                stopped = exc
        _check_operators(program, report)
        report.close()
        result.bytes_scanned += min(blob.size, program.program_size or blob.size)
        result.add_check("executorch program", report.total() == 0 and error is None, _summary(program),
                         blob.location)
        if stopped is not None:
            raise stopped


def _summary(program: _Program) -> str:
    ops = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in program.op_uses.most_common(30))
    backends = ", ".join(sorted(program.backends)) or "none"
    return (f"{len(program.plans)} execution plan(s) {program.plans[:10]}, {program.values} values, "
            f"{program.instructions} instructions, {len(program.segments)} segment(s); delegates: {backends}; "
            f"ops: {ops or 'none'}")


# --- extended header ------------------------------------------------------------------------
def _read_header(view: memoryview, program: _Program, report: Findings) -> None:
    """Program size and segment base from the optional header at byte 8, checked against the file."""
    size = program.size
    program.program_size = size
    if size < 8:
        raise FlatBufferError(f"{size} bytes cannot hold a flatbuffer header", 0)
    magic = bytes(view[S.HEADER_AT:S.HEADER_AT + 4])
    if magic[:2] == b"eh" and magic != S.HEADER_MAGIC:
        report("MA-T301", f"Extended header magic is {magic!r}, not {S.HEADER_MAGIC!r}: the runtime does not read "
               "it, so the segments it describes cannot be found", {"magic": magic.hex()})
    if magic != S.HEADER_MAGIC:
        return
    if size < S.HEADER_AT + S.HEADER_MIN_LENGTH:
        raise FlatBufferError("extended header is cut off by the end of the file", S.HEADER_AT)
    length, program_size, base = struct.unpack_from("<IQQ", view, S.HEADER_AT + 4)
    data_size = None
    if length >= S.HEADER_FULL_LENGTH and size >= S.HEADER_AT + S.HEADER_FULL_LENGTH:
        data_size = struct.unpack_from("<Q", view, S.HEADER_AT + 24)[0]
    details = {"header_length": length, "program_size": program_size, "segment_base_offset": base,
               "segment_data_size": data_size, "file_size": size}
    if length < S.HEADER_MIN_LENGTH:
        report("MA-T301", f"Extended header claims {length} bytes, fewer than the {S.HEADER_MIN_LENGTH} it needs",
               details)
        return
    if not 8 <= program_size <= size:
        report("MA-T304", f"Extended header puts the end of the program at byte {program_size}, outside the "
               f"{size}-byte file", details)
        return
    program.program_size = program_size
    if base and not program_size <= base <= size:
        report("MA-T304", f"Extended header puts the segments at byte {base}, outside [{program_size}, {size}] "
               "(after the program and inside the file)", details)
        return
    if base and data_size and base + data_size > size:
        report("MA-T304", f"Extended header declares {data_size} bytes of segment data at {base}, past the end "
               f"of the {size}-byte file", details)
    program.segment_base = base or None
    program.segment_data = data_size if base and data_size else None


# --- the program flatbuffer -------------------------------------------------------------------
def _read_program(fb: FlatBuffer, program: _Program, report: Findings) -> None:
    identifier = bytes(fb.buf[4:8])
    if identifier != S.IDENTIFIER:
        report("MA-T301", f"File identifier is {identifier!r}, not {S.IDENTIFIER!r}: this runtime version rejects "
               "the file, and readers of other versions interpret its fields differently",
               {"identifier": identifier.hex()})
    root = fb.root()
    fb.scalar(root, S.PROGRAM_VERSION, "<I")
    _read_segments(fb, root, program, report)
    for buffer in fb.tables(root, S.PROGRAM_CONSTANT_BUFFERS, "constant buffer"):
        data = fb.vector(buffer, S.BYTES_FIELD, 1, "constant buffer data")
        program.constant_buffers.append(data[1] if data else 0)
    blobs = fb.tables(root, S.PROGRAM_DELEGATE_DATA, "delegate data")
    for blob in blobs:
        fb.vector(blob, S.BYTES_FIELD, 1, "delegate data bytes")
    program.delegate_blobs = len(blobs)
    constant = fb.child(root, S.PROGRAM_CONSTANT_SEGMENT, "constant segment")
    if constant is not None:
        program.constant_offsets, program.constant_segment_size = _subsegments(fb, constant, "constant segment",
                                                                               program, report)
    for number, mutable in enumerate(fb.tables(root, S.PROGRAM_MUTABLE_SEGMENTS, "mutable data segment")):
        _subsegments(fb, mutable, f"mutable data segment {number}", program, report)
    for entry in fb.tables(root, S.PROGRAM_NAMED_DATA, "named data"):
        key = fb.string(entry, S.NAMED_KEY, "named data key") or ""
        _segment_ref(fb.scalar(entry, S.NAMED_SEGMENT, "<I"), f"named data {key[:80]!r}", program, report)
    for number, plan in enumerate(fb.tables(root, S.PROGRAM_PLANS, "execution plan")):
        _read_plan(fb, plan, number, program, report)


def _read_segments(fb: FlatBuffer, root: Table, program: _Program, report: Findings) -> None:
    segments = fb.tables(root, S.PROGRAM_SEGMENTS, "segment")
    base = program.segment_base or program.program_size
    for number, segment in enumerate(segments):
        offset, size = fb.scalar(segment, S.SEGMENT_OFFSET, "<Q"), fb.scalar(segment, S.SEGMENT_SIZE, "<Q")
        if size and program.segment_base is None:  # an empty placeholder segment needs no header
            report("MA-T301", f"Segment {number} holds {size} bytes but the program has no extended header saying "
                   "where segments start; the runtime cannot find it", {"segment": number, "size": size})
        if program.segment_data is not None and offset + size > program.segment_data:
            report("MA-T304", f"Segment {number} claims bytes [{offset}, {offset + size}) of the "
                   f"{program.segment_data} bytes of segment data the header declares",
                   {"segment": number, "offset": offset, "size": size, "segment_data_size": program.segment_data})
        if base + offset + size > program.size:
            report("MA-T304", f"Segment {number} claims bytes [{base + offset}, {base + offset + size}) past the end "
                   f"of the {program.size}-byte file", {"segment": number, "offset": offset, "size": size,
                                                         "segment_base": base, "file_size": program.size})
            program.segments.append(None)
        else:
            program.segments.append(size)


def _segment_ref(index: int, what: str, program: _Program, report: Findings) -> int | None:
    """Bytes of the segment `index` names, or None (reported) when there is no such segment."""
    if index >= len(program.segments):
        report("MA-T305", f"{what} names segment {index}, but the program has {len(program.segments)}",
               {"what": what, "segment": index})
        return None
    return program.segments[index]


def _subsegments(fb: FlatBuffer, table: Table, what: str, program: _Program,
                 report: Findings) -> tuple[list[int], int | None]:
    """Offsets of a segment's parts, each checked to lie inside that segment."""
    offsets = fb.numbers(table, S.SUBSEGMENT_OFFSETS, "Q", f"{what} offsets")
    if len(offsets) <= 1:  # only the placeholder for "no data": the runtime loads no segment
        return offsets, None
    segment = _segment_ref(fb.scalar(table, S.SUBSEGMENT_INDEX, "<I"), what, program, report)
    if segment is not None:
        outside = [o for o in offsets if o > segment]
        if outside:
            report("MA-T304", f"{what}: {len(outside)} offset(s) lie past the end of its {segment}-byte segment "
                   f"(first: {outside[0]})", {"what": what, "offsets": outside[:8], "segment_size": segment})
    return offsets, segment


def _read_plan(fb: FlatBuffer, plan: Table, number: int, program: _Program, report: Findings) -> None:
    name = fb.string(plan, S.PLAN_NAME, "plan name") or f"#{number}"
    where = f"plan {name[:80]!r}"
    program.plans.append(name[:80])
    operators = [_operator_name(fb, op) for op in fb.tables(plan, S.PLAN_OPERATORS, "operator")]
    for op in operators:
        program.op_uses[op[:200]] += 0  # listed operators count even when no instruction calls them
    delegates = [_read_delegate(fb, d, f"{where} delegate {i}", program, report)
                 for i, d in enumerate(fb.tables(plan, S.PLAN_DELEGATES, "delegate"))]
    values = fb.tables(plan, S.PLAN_VALUES, "value")
    program.values += len(values)
    for index, value in enumerate(values):
        _read_value(fb, value, f"{where} value {index}", len(values), program, report)
    for what, index in (("input", S.PLAN_INPUTS), ("output", S.PLAN_OUTPUTS)):
        _value_refs(fb.numbers(plan, index, "i", f"plan {what}s"), f"{where} {what}", len(values), report)
    fb.numbers(plan, S.PLAN_BUFFER_SIZES, "q", "memory buffer sizes")
    for chain_number, chain in enumerate(fb.tables(plan, S.PLAN_CHAINS, "chain")):
        chain_where = f"{where} chain {chain_number}"
        for what, index in (("input", S.CHAIN_INPUTS), ("output", S.CHAIN_OUTPUTS)):
            _value_refs(fb.numbers(chain, index, "i", f"chain {what}s"), f"{chain_where} {what}", len(values), report)
        instructions = fb.tables(chain, S.CHAIN_INSTRUCTIONS, "instruction")
        program.instructions += len(instructions)
        for i, instruction in enumerate(instructions):
            _read_instruction(fb, instruction, f"{chain_where} instruction {i}", (operators, delegates),
                              (len(values), len(instructions)), program, report)


def _operator_name(fb: FlatBuffer, op: Table) -> str:
    name = fb.string(op, 0, "operator name") or ""
    overload = fb.string(op, 1, "operator overload") or ""
    return f"{name}.{overload}" if overload else name


def _read_delegate(fb: FlatBuffer, delegate: Table, where: str, program: _Program, report: Findings) -> str:
    backend = fb.string(delegate, S.DELEGATE_ID, "delegate id") or ""
    program.backends[backend[:80]] += 1
    if backend not in S.KNOWN_BACKENDS:
        shown = repr(backend[:120]) if backend else "without an id"
        report("MA-T303", f"{where} runs on backend {shown}, which ExecuTorch does not ship: only an application "
               "that links in a backend registered under that name can run it, with that backend's native code",
               {"delegate": where, "backend": backend[:200]})
    for spec in fb.tables(delegate, S.DELEGATE_SPECS, "compile spec"):
        fb.string(spec, S.SPEC_KEY, "compile spec key")
        fb.vector(spec, S.SPEC_VALUE, 1, "compile spec value")
    processed = fb.child(delegate, S.DELEGATE_PROCESSED, "delegate data reference")
    if processed is None:
        report("MA-T305", f"{where} ({backend[:80]}) has no processed data", {"delegate": where})
        return backend
    location, index = fb.scalar(processed, S.REF_LOCATION, "<B"), fb.scalar(processed, S.REF_INDEX, "<I")
    if location == S.LOCATION_INLINE:
        if index >= program.delegate_blobs:
            report("MA-T305", f"{where} ({backend[:80]}) uses inline delegate data {index}, but the program has "
                   f"{program.delegate_blobs}", {"delegate": where, "index": index})
    elif location == S.LOCATION_SEGMENT:
        if index < len(program.segments) and program.segments[index] is None:
            report("MA-T304", f"{where} ({backend[:80]}) reads its processed blob from segment {index}, which lies "
                   "outside the file", {"delegate": where, "segment": index})
        else:
            _segment_ref(index, f"{where} ({backend[:80]})", program, report)
    else:
        report("MA-T301", f"{where} ({backend[:80]}) keeps its data at unknown location kind {location}",
               {"delegate": where, "location": location})
    return backend


def _read_value(fb: FlatBuffer, value: Table, where: str, count: int, program: _Program, report: Findings) -> None:
    kind = fb.scalar(value, S.EVALUE_TYPE, "<B")
    if kind > S.KERNEL_TYPES:
        report("MA-T301", f"{where} has unknown value type {kind}", {"value": where, "type": kind})
        return
    if kind in (S.KT_TENSOR_LIST, S.KT_OPTIONAL_TENSOR_LIST):
        member = fb.child(value, S.EVALUE_VALUE, "tensor list")
        if member is not None:
            refs = [r for r in fb.numbers(member, 0, "i", "tensor list items") if r != -1]  # -1: an absent optional
            _value_refs(refs, f"{where} item", count, report)
    elif kind == S.KT_TENSOR:
        tensor = fb.child(value, S.EVALUE_VALUE, "tensor")
        if tensor is not None:
            _check_tensor(fb, tensor, where, program, report)
    elif kind:
        fb.child(value, S.EVALUE_VALUE, "value")


def _check_tensor(fb: FlatBuffer, tensor: Table, where: str, program: _Program, report: Findings) -> None:
    scalar = fb.scalar(tensor, S.TENSOR_SCALAR_TYPE, "<b")
    if scalar not in S.SCALAR_BYTES:
        report("MA-T301", f"{where} has unknown scalar type {scalar}", {"value": where, "scalar_type": scalar})
    sizes = fb.numbers(tensor, S.TENSOR_SIZES, "i", "tensor sizes")
    fb.vector(tensor, S.TENSOR_DIM_ORDER, 1, "tensor dim order")
    extra = fb.child(tensor, S.TENSOR_EXTRA_INFO, "extra tensor info")
    external = False
    if extra is not None:
        fb.string(extra, S.EXTRA_NAME, "tensor name")
        external = fb.scalar(extra, S.EXTRA_LOCATION, "<b") == 1  # data in a separate .ptd file
    index = fb.scalar(tensor, S.TENSOR_DATA_BUFFER, "<I")
    if index == 0 or external or fb.child(tensor, S.TENSOR_ALLOCATION, "allocation info") is not None:
        return  # no constant data: planned memory, an input, or data kept outside the program
    count = 1
    for dim in sizes[:64]:
        count *= max(dim, 0)
    need = count * S.SCALAR_BYTES.get(scalar, 0) if scalar not in (16, 17) else 0  # sub-byte types: size unsure
    if program.constant_buffers:
        have = program.constant_buffers[index] if index < len(program.constant_buffers) else None
        names = f"constant buffer {index}, but the program has {len(program.constant_buffers)}"
    else:
        offsets, segment = program.constant_offsets, program.constant_segment_size
        have = None if index >= len(offsets) else (segment - offsets[index] if segment is not None else need)
        names = f"constant {index}, but the constant segment holds {len(offsets)}"
    if have is None:
        report("MA-T305", f"{where} takes its data from {names}", {"value": where, "index": index})
    elif need > have:
        report("MA-T304", f"{where} needs {need} bytes of constant data but only {have} remain at constant {index}",
               {"value": where, "index": index, "needed": need, "have": have})


def _value_refs(refs: list[int], where: str, count: int, report: Findings) -> None:
    bad = [r for r in refs if not 0 <= r < count]
    if bad:
        report("MA-T305", f"{where} names value {bad[0]}, but the plan has {count} values",
               {"where": where, "values": bad[:8]})


def _read_instruction(fb: FlatBuffer, instruction: Table, where: str, tables: tuple[list[str], list[str]],
                      counts: tuple[int, int], program: _Program, report: Findings) -> None:
    operators, delegates = tables
    values, instructions = counts
    kind = fb.scalar(instruction, S.INSTR_TYPE, "<B")
    args = fb.child(instruction, S.INSTR_VALUE, "instruction arguments")
    if args is None or not 1 <= kind <= S.FREE_CALL:
        report("MA-T301", f"{where} has unknown or missing arguments (type {kind})", {"where": where, "type": kind})
        return
    if kind in (S.KERNEL_CALL, S.DELEGATE_CALL):
        index = fb.scalar(args, 0, "<i")
        table, what = (operators, "operator") if kind == S.KERNEL_CALL else (delegates, "delegate")
        if not 0 <= index < len(table):
            report("MA-T305", f"{where} calls {what} {index}, but the plan has {len(table)}",
                   {"where": where, what: index})
        elif kind == S.KERNEL_CALL:
            program.op_uses[table[index][:200]] += 1
        _value_refs(fb.numbers(args, 1, "i", "call arguments"), f"{where} argument", values, report)
    elif kind == S.JUMP_FALSE_CALL:
        _value_refs([fb.scalar(args, 0, "<i")], f"{where} condition", values, report)
        target = fb.scalar(args, 1, "<i")
        if not 0 <= target <= instructions:
            report("MA-T305", f"{where} jumps to instruction {target}, but the chain has {instructions}",
                   {"where": where, "destination": target})
    else:  # MoveCall (from, to) or FreeCall (value)
        fields = (0, 1) if kind == S.MOVE_CALL else (0,)
        _value_refs([fb.scalar(args, i, "<i") for i in fields], f"{where} value", values, report)


# --- operators ----------------------------------------------------------------------------------
def _check_operators(program: _Program, report: Findings) -> None:
    for op, uses in sorted(program.op_uses.items()):
        namespace = op.split("::", 1)[0] if "::" in op else ""
        if namespace not in S.KNOWN_NAMESPACES:
            program.custom_ops[op] += uses
    for op, uses in sorted(program.custom_ops.items()):
        report("MA-T302", f"Operator {op[:120]!r} ({uses} call{'s' if uses != 1 else ''}) is outside the operator "
               "namespaces ExecuTorch's exporters and kernel libraries use: it runs only if the loading application "
               "links in a kernel registered under that name, native code that is not part of the model",
               {"operator": op[:200], "calls": uses}, IssueSeverity.WARNING)
