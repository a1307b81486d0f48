"""executorch: programs written by ExecuTorch's exporter are clean; crafted programs are findings.

tests/fixtures/executorch/ holds programs exported by ExecuTorch 1.5.1 itself (generate.py says
how), honest ones and two made hostile through the real API (a custom-namespace operator, a
delegate to a backend ExecuTorch does not ship). `build` writes programs byte by byte with the
FlatBuffers builder along the field order of ExecuTorch's program.fbs, adds the extended header
at byte 8 and the segments after the program. Its honest programs were checked against the
ExecuTorch 1.5.1 runtime, which loads them and computes y = x + c ([2, 3] + [0.5, -1] = [2.5, 2])
and, for the program without constants, segments or header, relu([-1, 4]) = [0, 4].
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import pytest

from modelaudit.detect import detect_path
from modelaudit.errors import BudgetExceeded
from modelaudit.scanners._flatbuffer import FlatLimits
from modelaudit.scanners.executorch import ExecuTorchScanner
from tests.conftest import codes, findings, scan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "executorch"
HONEST = ["portable_mlp.pte", "xnnpack_mlp.pte", "xnnpack_inline.pte", "two_methods.pte", "dim_order.pte"]
FLOAT, INT_VALUE, TENSOR, TENSOR_LIST = 6, 2, 5, 10  # ScalarType FLOAT; KernelTypes union members
KERNEL_CALL, DELEGATE_CALL, JUMP_FALSE = 1, 2, 4  # InstructionArguments union members
CONSTANT = struct.pack("<2f", 0.5, -1.0)


@dataclass
class Program:
    operators: list[tuple[str, str]] = field(default_factory=lambda: [("aten::add", "out")])
    # ("tensor", sizes, constant index or 0, planned offset or None) | ("int", value) | ("list", refs)
    values: list[tuple] = field(default_factory=lambda: [
        ("tensor", [2], 0, 0), ("tensor", [2], 1, None), ("int", 1), ("tensor", [2], 0, 8)])
    # (union type, first field, value list): KernelCall(op, args), DelegateCall(delegate, args), JumpFalse...
    instructions: list[tuple] = field(default_factory=lambda: [(KERNEL_CALL, 0, [0, 1, 2, 3, 3])])
    io: tuple[list[int], list[int]] = ([0], [3])
    delegates: list[tuple[str, int, int]] = field(default_factory=list)  # (backend id, location, index)
    inline_blobs: list[bytes] = field(default_factory=list)
    segments: list[bytes] = field(default_factory=lambda: [CONSTANT])
    segment_table: list[tuple[int, int]] | None = None  # (offset, size) entries; default: the segments laid out
    constant_offsets: list[int] | None = field(default_factory=lambda: [0, 0])
    header: bool = True
    header_fields: dict = field(default_factory=dict)  # overrides: magic, length, program_size, base, data_size
    identifier: bytes = b"ET12"
    value_kinds: dict[int, int] = field(default_factory=dict)  # value index -> union type written instead
    aliases: int = 1  # how many entries of the instruction vector point at each instruction table


def build(spec: Program | None = None) -> bytes:  # noqa: PLR0915 - one schema, one function
    spec = spec or Program()
    b = flatbuffers.Builder(1024)

    def vector(values: list[int], fmt: str) -> int:
        size = struct.calcsize(fmt)
        b.StartVector(size, len(values), size)
        for v in reversed(values):
            b.Prep(size, 0)
            b.head = b.head - size
            struct.pack_into("<" + fmt, b.Bytes, b.head, v)
        return b.EndVector()

    def tables(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    def value(index: int, item: tuple) -> int:
        kind = item[0]
        if kind == "tensor":
            _, sizes, constant, planned = item
            sizes_at, dims_at = vector(sizes, "i"), vector(list(range(len(sizes))), "B")
            alloc = None
            if planned is not None:
                b.StartObject(3)
                b.PrependUint32Slot(0, 1, 0)  # memory_id
                b.PrependUint32Slot(1, planned, 0)  # memory_offset_low
                alloc = b.EndObject()
            b.StartObject(10)
            b.PrependInt8Slot(0, FLOAT, 0)
            b.PrependUOffsetTRelativeSlot(2, sizes_at, 0)
            b.PrependUOffsetTRelativeSlot(3, dims_at, 0)
            b.PrependUint32Slot(5, constant, 0)
            if alloc is not None:
                b.PrependUOffsetTRelativeSlot(6, alloc, 0)
            member, union = b.EndObject(), TENSOR
        elif kind == "int":
            b.StartObject(1)
            b.PrependInt64Slot(0, item[1], 0)
            member, union = b.EndObject(), INT_VALUE
        else:
            items = vector(item[1], "i")
            b.StartObject(1)
            b.PrependUOffsetTRelativeSlot(0, items, 0)
            member, union = b.EndObject(), TENSOR_LIST
        b.StartObject(2)
        b.PrependUint8Slot(0, spec.value_kinds.get(index, union), 0)
        b.PrependUOffsetTRelativeSlot(1, member, 0)
        return b.EndObject()

    def instruction(item: tuple) -> int:
        union, first, rest = item
        args = vector(rest, "i") if union in (KERNEL_CALL, DELEGATE_CALL) else None
        b.StartObject(2)
        b.PrependInt32Slot(0, first, -1)
        if args is not None:
            b.PrependUOffsetTRelativeSlot(1, args, 0)
        else:
            b.PrependInt32Slot(1, rest[0] if rest else 0, -1)
        member = b.EndObject()
        b.StartObject(2)
        b.PrependUint8Slot(0, union, 0)
        b.PrependUOffsetTRelativeSlot(1, member, 0)
        return b.EndObject()

    def operator(name: str, overload: str) -> int:
        n, o = b.CreateString(name), b.CreateString(overload)
        b.StartObject(2)
        b.PrependUOffsetTRelativeSlot(0, n, 0)
        b.PrependUOffsetTRelativeSlot(1, o, 0)
        return b.EndObject()

    def delegate(backend: str, location: int, index: int) -> int:
        ident = b.CreateString(backend)
        b.StartObject(2)
        b.PrependUint8Slot(0, location, 0xFF)
        b.PrependUint32Slot(1, index, 0xFFFFFFFF)
        ref = b.EndObject()
        specs = tables([])
        b.StartObject(3)
        b.PrependUOffsetTRelativeSlot(0, ident, 0)
        b.PrependUOffsetTRelativeSlot(1, ref, 0)
        b.PrependUOffsetTRelativeSlot(2, specs, 0)
        return b.EndObject()

    def byte_table(data: bytes) -> int:
        b.StartVector(1, len(data), 16)
        b.head = b.head - len(data)
        b.Bytes[b.head:b.head + len(data)] = data
        at = b.EndVector()
        b.StartObject(1)
        b.PrependUOffsetTRelativeSlot(0, at, 0)
        return b.EndObject()

    # --- execution plan
    values_at = tables([value(i, v) for i, v in enumerate(spec.values)])
    instr_at = tables([at for i in spec.instructions for at in [instruction(i)] * spec.aliases])
    inputs_at, outputs_at = vector(spec.io[0], "i"), vector(spec.io[1], "i")
    chain_in, chain_out = vector(spec.io[0], "i"), vector(spec.io[1], "i")
    b.StartObject(4)
    b.PrependUOffsetTRelativeSlot(0, chain_in, 0)
    b.PrependUOffsetTRelativeSlot(1, chain_out, 0)
    b.PrependUOffsetTRelativeSlot(2, instr_at, 0)
    chain = b.EndObject()
    chains_at = tables([chain])
    ops_at = tables([operator(*op) for op in spec.operators])
    delegates_at = tables([delegate(*d) for d in spec.delegates])
    buffer_sizes = vector([0, 16], "q")
    name = b.CreateString("forward")
    b.StartObject(10)
    b.PrependUOffsetTRelativeSlot(0, name, 0)
    b.PrependUOffsetTRelativeSlot(2, values_at, 0)
    b.PrependUOffsetTRelativeSlot(3, inputs_at, 0)
    b.PrependUOffsetTRelativeSlot(4, outputs_at, 0)
    b.PrependUOffsetTRelativeSlot(5, chains_at, 0)
    b.PrependUOffsetTRelativeSlot(6, ops_at, 0)
    b.PrependUOffsetTRelativeSlot(7, delegates_at, 0)
    b.PrependUOffsetTRelativeSlot(8, buffer_sizes, 0)
    plans_at = tables([b.EndObject()])
    # --- program
    layout, offset = [], 0
    for data in spec.segments:
        layout.append((offset, len(data)))
        offset += -(-len(data) // 16) * 16
    segment_entries = []
    for seg_offset, seg_size in (spec.segment_table if spec.segment_table is not None else layout):
        b.StartObject(2)
        b.PrependUint64Slot(0, seg_offset, 0)
        b.PrependUint64Slot(1, seg_size, 0)
        segment_entries.append(b.EndObject())
    segments_at = tables(segment_entries)
    blobs_at = tables([byte_table(blob) for blob in spec.inline_blobs])
    constant_at = None
    if spec.constant_offsets is not None:
        offsets = vector(spec.constant_offsets, "Q")
        b.StartObject(2)
        b.PrependUint32Slot(0, 0, 0)
        b.PrependUOffsetTRelativeSlot(1, offsets, 0)
        constant_at = b.EndObject()
    b.StartObject(8)
    b.PrependUOffsetTRelativeSlot(1, plans_at, 0)
    b.PrependUOffsetTRelativeSlot(3, blobs_at, 0)
    b.PrependUOffsetTRelativeSlot(4, segments_at, 0)
    if constant_at is not None:
        b.PrependUOffsetTRelativeSlot(5, constant_at, 0)
    b.Finish(b.EndObject(), file_identifier=spec.identifier)
    flat = bytes(b.Output())
    if not spec.header:
        return flat
    # the extended header goes into 32 bytes inserted at byte 8: only the root offset spans them
    program_size = len(flat) + 32
    base = -(-program_size // 16) * 16
    data = b"".join(d.ljust(-(-len(d) // 16) * 16, b"\x00") for d in spec.segments)
    h = {"magic": b"eh00", "length": 32, "program_size": program_size, "base": base, "data_size": len(data),
         **spec.header_fields}
    header = h["magic"] + struct.pack("<IQQQ", h["length"], h["program_size"], h["base"], h["data_size"])
    root = struct.pack("<I", struct.unpack_from("<I", flat)[0] + 32)
    return (root + flat[4:8] + header + flat[8:]).ljust(base, b"\x00") + data


def _write(tmp_path: Path, data: bytes, name: str = "model.pte") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _messages(result: dict, code: str) -> list[str]:
    return [i["message"] for i in result["issues"] if i["rule_code"] == code]


# --- honest programs ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", HONEST)
def test_programs_from_the_exporter_are_clean(name):
    result = scan(FIXTURES / name)
    assert result["issues"] == [] and result["assets"][0]["type"] == "executorch"
    assert "executorch" in result["scanner_names"] and not result["has_errors"]


def test_summary_lists_operators_and_delegates():
    checks = scan(FIXTURES / "portable_mlp.pte")["checks"]
    summary = next(c["message"] for c in checks if c["name"] == "executorch program")
    assert "aten::addmm.out x2" in summary and "aten::relu.out" in summary
    checks = scan(FIXTURES / "xnnpack_mlp.pte")["checks"]
    summary = next(c["message"] for c in checks if c["name"] == "executorch program")
    assert "delegates: XnnpackBackend" in summary


def test_built_program_is_clean(tmp_path, cli):
    path = _write(tmp_path, build())
    assert detect_path(str(path)).format == "executorch"
    assert scan(path)["issues"] == []
    assert cli("scan", str(path)).code == 0
    # without constants the program needs neither segments nor an extended header
    bare = build(Program(values=[("tensor", [2], 0, 0), ("tensor", [2], 0, 8)], segments=[], constant_offsets=[0],
                         instructions=[(KERNEL_CALL, 0, [0, 1, 1])], operators=[("aten::relu", "out")],
                         io=([0], [1]), header=False))
    assert scan(_write(tmp_path, bare))["issues"] == []


def test_known_delegate_in_a_segment_and_inline_is_clean(tmp_path):
    spec = Program(delegates=[("XnnpackBackend", 1, 1), ("VulkanBackend", 0, 0)], inline_blobs=[b"XN01" * 8],
                   segments=[CONSTANT, b"XN01" + b"\x00" * 60],
                   instructions=[(KERNEL_CALL, 0, [0, 1, 2, 3, 3]), (DELEGATE_CALL, 0, [3, 3]),
                                 (DELEGATE_CALL, 1, [3, 3])])
    assert scan(_write(tmp_path, build(spec)))["issues"] == []


# --- hostile programs from the real exporter -----------------------------------------------------
def test_custom_namespace_operator_from_the_exporter(cli):
    result = scan(FIXTURES / "custom_namespace.pte")
    assert codes(result) == {"MA-T302"}
    assert "shady_ops::shout.out" in _messages(result, "MA-T302")[0]
    assert cli("scan", str(FIXTURES / "custom_namespace.pte")).code == 1


def test_unknown_backend_from_the_exporter():
    result = scan(FIXTURES / "unknown_backend.pte")
    assert codes(result) == {"MA-T303"} and "'ShadyBackend'" in _messages(result, "MA-T303")[0]


# --- hostile programs, byte-built ---------------------------------------------------------------
def test_custom_namespace_operator(tmp_path):
    spec = Program(operators=[("aten::add", "out"), ("evil_ns::run_shell", "out"), ("no_namespace", "")],
                   instructions=[(KERNEL_CALL, 0, [0, 1, 2, 3, 3]), (KERNEL_CALL, 1, [3, 3]),
                                 (KERNEL_CALL, 1, [3, 3])])
    result = scan(_write(tmp_path, build(spec)))
    found = _messages(result, "MA-T302")
    assert codes(result) == {"MA-T302"} and len(found) == 2
    assert any("'evil_ns::run_shell.out' (2 calls)" in m for m in found)
    assert any("'no_namespace' (0 calls)" in m for m in found)  # listed, never called: still resolved at load


def test_unknown_delegate_backend(tmp_path):
    spec = Program(delegates=[("TotallyLegitBackend", 1, 1), ("", 0, 0)], inline_blobs=[b"blob"],
                   segments=[CONSTANT, b"#!/bin/sh\necho hi\n"], instructions=[(DELEGATE_CALL, 0, [0, 3])])
    result = scan(_write(tmp_path, build(spec)))
    found = _messages(result, "MA-T303")
    assert codes(result) == {"MA-T303"} and len(found) == 2
    assert "'TotallyLegitBackend'" in found[0] and "without an id" in found[1]


@pytest.mark.parametrize(("spec", "code", "needle"), [
    (Program(segment_table=[(0, 8), (1 << 40, 64)]), "MA-T304", "Segment 1 claims bytes"),
    (Program(segment_table=[(0, 1 << 62)]), "MA-T304", "Segment 0 claims bytes"),
    (Program(segment_table=[(0, 8), (8, 16)], header_fields={"data_size": 16}), "MA-T304",
     "Segment 1 claims bytes [8, 24) of the 16 bytes of segment data the header declares"),
    (Program(delegates=[("XnnpackBackend", 1, 1)], segment_table=[(0, 8), (4096, 64)],
             instructions=[(DELEGATE_CALL, 0, [0, 3])]), "MA-T304", "processed blob from segment 1, which lies"),
    (Program(delegates=[("XnnpackBackend", 1, 7)], instructions=[(DELEGATE_CALL, 0, [0, 3])]),
     "MA-T305", "names segment 7, but the program has 1"),
    (Program(delegates=[("XnnpackBackend", 0, 2)], instructions=[(DELEGATE_CALL, 0, [0, 3])]),
     "MA-T305", "uses inline delegate data 2, but the program has 0"),
    (Program(delegates=[("XnnpackBackend", 5, 0)], instructions=[(DELEGATE_CALL, 0, [0, 3])]),
     "MA-T301", "unknown location kind 5"),
    (Program(constant_offsets=[0, 4096]), "MA-T304", "lie past the end of its 8-byte segment"),
    (Program(constant_offsets=[0, 4]), "MA-T304", "needs 8 bytes of constant data but only 4 remain"),
    (Program(constant_offsets=[0]), "MA-T305", "takes its data from constant 1, but the constant segment holds 1"),
    (Program(header_fields={"program_size": 1 << 33}), "MA-T304", "end of the program at byte 8589934592"),
    (Program(header_fields={"base": 1 << 33}), "MA-T304", "puts the segments at byte 8589934592"),
    (Program(header_fields={"data_size": 1 << 33}), "MA-T304", "bytes of segment data"),
    (Program(header_fields={"magic": b"eh07"}), "MA-T301", "Extended header magic is b'eh07'"),
    (Program(header_fields={"length": 8}), "MA-T301", "Extended header claims 8 bytes"),
    (Program(header=False), "MA-T301", "no extended header saying where segments start"),
    (Program(identifier=b"ET11"), "MA-T301", "File identifier is b'ET11'"),
    (Program(instructions=[(KERNEL_CALL, 3, [0, 1, 2, 3, 3])]), "MA-T305", "calls operator 3, but the plan has 1"),
    (Program(instructions=[(DELEGATE_CALL, 0, [0])]), "MA-T305", "calls delegate 0, but the plan has 0"),
    (Program(instructions=[(KERNEL_CALL, 0, [0, 1, 2, 99, -5])]), "MA-T305", "names value 99"),
    (Program(instructions=[(KERNEL_CALL, 0, [0, 1, 2, 3, 3]), (JUMP_FALSE, 2, [40])]), "MA-T305",
     "jumps to instruction 40"),
    (Program(instructions=[(9, 0, [0])]), "MA-T301", "unknown or missing arguments (type 9)"),
    (Program(value_kinds={2: 200}), "MA-T301", "unknown value type 200"),
    (Program(values=[("tensor", [2], 0, 0), ("tensor", [2], 1, None), ("int", 1), ("tensor", [2], 0, 8),
                     ("list", [0, 12])]), "MA-T305", "item names value 12"),
    (Program(io=([0], [30])), "MA-T305", "output names value 30"),
])
def test_crafted_programs(tmp_path, spec, code, needle):
    result = scan(_write(tmp_path, build(spec)))
    assert code in codes(result, "warning"), result["issues"]
    assert any(needle in m for m in _messages(result, code)), _messages(result, code)
    assert "MA-S005" not in codes(result)


def test_every_truncation_is_reported(tmp_path):
    data = (FIXTURES / "xnnpack_mlp.pte").read_bytes()
    scanner = ExecuTorchScanner()
    path = tmp_path / "model.pte"
    for cut in range(8, len(data), 7):
        path.write_bytes(data[:cut])
        result = scanner.scan(str(path))
        hits = {i.rule_code for i in result.issues}
        assert hits & {"MA-T301", "MA-T304"}, cut  # a flatbuffer cut short, or a header pointing past the end
    path.write_bytes(data[:6])
    assert "MA-T301" in {i.rule_code for i in scanner.scan(str(path)).issues}


def test_truncated_program_is_incomplete(tmp_path, cli):
    data = build(Program(header=False, segments=[], constant_offsets=None, values=[("tensor", [2], 0, 0)],
                         instructions=[(KERNEL_CALL, 0, [0, 0])], io=([0], [0])))
    path = _write(tmp_path, data[:len(data) // 2])
    result = scan(path)
    assert "MA-T301" in codes(result) and result["has_errors"] is True  # incomplete: not fully checked
    assert cli("scan", str(path)).code == 1  # the warning outranks the incomplete outcome


@pytest.mark.parametrize("patch", [
    (0, struct.pack("<I", 1 << 20)),  # root table offset past the end
    (0, struct.pack("<I", 0)),  # root "table" at byte 0: its offset to itself
    (0, struct.pack("<I", 5)),  # root table overlapping the identifier
    (None, struct.pack("<i", -(1 << 30))),  # root table's vtable offset points past the end
    (None, struct.pack("<i", 1 << 30)),  # ... or before the start
])
def test_malformed_offsets(tmp_path, patch):
    data = bytearray(build(Program(header=False, segments=[], constant_offsets=None,
                                   values=[("tensor", [2], 0, 0)], instructions=[], io=([0], [0]))))
    where, value = patch
    where = struct.unpack_from("<I", data, 0)[0] if where is None else where
    data[where:where + 4] = value
    result = scan(_write(tmp_path, bytes(data)))
    assert "MA-T301" in codes(result, "warning") and "MA-S005" not in codes(result)


def test_absurd_root_offset_is_not_taken_for_a_program(tmp_path):
    data = bytearray(build())
    data[0:4] = struct.pack("<I", 1 << 30)  # no program is a gigabyte of flatbuffer: not an ExecuTorch file
    result = scan(_write(tmp_path, bytes(data)))
    assert {"MA-S004", "MA-S007"} <= codes(result) and result["has_errors"] is True


def test_huge_string_length(tmp_path):
    data = bytearray(build())
    index = data.find(b"aten::add") - 4
    data[index:index + 4] = struct.pack("<I", 0x7FFFFFFF)
    result = scan(_write(tmp_path, bytes(data)))
    assert any("past the end of the buffer" in m for m in _messages(result, "MA-T301"))


def test_aliased_tables_spend_the_budget(tmp_path, monkeypatch):
    """50,000 instruction offsets point at one table: each visit is counted, so the walk stays bounded."""
    path = _write(tmp_path, build(Program(aliases=50_000)))
    result = scan(path)
    assert result["issues"] == []
    summary = next(c["message"] for c in result["checks"] if c["name"] == "executorch program")
    assert "50000 instructions" in summary and "aten::add.out x50000" in summary
    monkeypatch.setattr(ExecuTorchScanner, "limits", FlatLimits(max_tables=40))
    with pytest.raises(BudgetExceeded):
        ExecuTorchScanner().scan(str(path))
    result = scan(path)
    assert codes(result) == {"MA-T306"} and result["has_errors"] is True  # coverage: the rest was not read


def test_random_corruption_never_crashes(tmp_path):
    rng = random.Random(7)
    sources = [build(), (FIXTURES / "xnnpack_mlp.pte").read_bytes(), (FIXTURES / "portable_mlp.pte").read_bytes()]
    path = tmp_path / "model.pte"
    for round_ in range(300):
        broken = bytearray(sources[round_ % len(sources)])
        for _ in range(rng.randint(1, 6)):
            broken[rng.randrange(8, len(broken))] = rng.randrange(256)
        path.write_bytes(bytes(broken))
        assert "MA-S005" not in codes(scan(path))


def test_a_pte_that_is_not_a_program(tmp_path):
    import pickle

    path = _write(tmp_path, pickle.dumps({"w": 1}))
    result = scan(path)
    assert result["assets"][0]["type"] == "pickle" and "MA-S007" in codes(result)
    assert findings(scan(FIXTURES / "portable_mlp.pte")) == []
