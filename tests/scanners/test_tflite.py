"""tflite: honest models built with the FlatBuffers library are clean; crafted ones are findings.

`build` writes a TFLite model with `flatbuffers.Builder` along the field indices of TFLite's
schema.fbs (the way the converter's generated code does). The honest FULLY_CONNECTED model was
checked against TensorFlow 2.21: `tf.lite.Interpreter` loads it, including the large-model layout
with buffers after the flatbuffer, and computes relu(x @ W.T + b) (tests/fixtures/tensorflow/generate.py
repeats that check). Files from the real converter are scanned in test_tensorflow_real.py.
"""

from __future__ import annotations

import random
import struct
import tracemalloc
from dataclasses import dataclass, field

import flatbuffers
import pytest
from flatbuffers import flexbuffers

from modelaudit.errors import BudgetExceeded
from modelaudit.scanners._flatbuffer import FlatBuffer, FlatLimits
from modelaudit.scanners.tflite import TFLiteScanner, flex_node
from tests.conftest import codes, findings, run_cli, scan
from tests.scanners._tf_fixtures import A, DT_FLOAT, node

FULLY_CONNECTED, CUSTOM, FULLY_CONNECTED_OPTIONS, RELU = 9, 32, 8, 1
WEIGHTS = struct.pack("<12f", *[0.1 * i for i in range(12)])
BIAS = struct.pack("<3f", 0.5, -0.5, 0.0)


@dataclass
class Tensor:
    shape: list[int]
    buffer: int
    name: str
    type: int = 0  # FLOAT32


@dataclass
class Op:
    opcode: int
    inputs: list[int]
    outputs: list[int]
    custom_options: bytes | None = None
    large_options: tuple[int, int] | None = None


@dataclass
class Buf:
    data: bytes = b""
    offset: int = 0
    size: int = 0


@dataclass
class Spec:
    opcodes: list[tuple[int, str | None]] = field(default_factory=lambda: [(FULLY_CONNECTED, None)])
    tensors: list[Tensor] = field(default_factory=lambda: [
        Tensor([1, 4], 1, "serving_default_x:0"), Tensor([3, 4], 2, "dense/MatMul"), Tensor([3], 3, "dense/BiasAdd"),
        Tensor([1, 3], 4, "StatefulPartitionedCall:0")])
    ops: list[Op] = field(default_factory=lambda: [Op(0, [0, 1, 2], [3])])
    buffers: list[Buf] = field(default_factory=lambda: [Buf(), Buf(), Buf(WEIGHTS), Buf(BIAS), Buf(),
                                                        Buf(b"1.5.0\x00".ljust(16, b"\x00"))])
    metadata: list[tuple[str, int]] = field(default_factory=lambda: [("min_runtime_version", 5)])
    io: tuple[list[int], list[int]] = ([0], [3])
    signature_subgraph: int = 0
    version: int = 3
    groups: list[str] = field(default_factory=list)
    identifier: bytes = b"TFL3"


def build(spec: Spec | None = None) -> bytes:
    spec = spec or Spec()
    b = flatbuffers.Builder(1024)

    def ints(values: list[int]) -> int:
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            b.PrependInt32(v)
        return b.EndVector()

    def tables(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    def raw(data: bytes, align: int = 16) -> int:
        b.StartVector(1, len(data), align)
        for byte in reversed(data):
            b.PrependUint8(byte)
        return b.EndVector()

    def table(*slots: tuple[str, int, int]) -> int:
        b.StartObject(16)
        for kind, slot, value in slots:
            getattr(b, f"Prepend{kind}Slot")(slot, value, 0)
        return b.EndObject()

    codes_ = []
    for code, custom in spec.opcodes:
        name = b.CreateString(custom) if custom is not None else None
        codes_.append(table(("Int8", 0, min(code, 127)), *([("UOffsetTRelative", 1, name)] if name else []),
                            ("Int32", 3, code)))
    buffers = []
    for buf in spec.buffers:
        data = raw(buf.data) if buf.data else None
        buffers.append(table(*([("UOffsetTRelative", 0, data)] if data else []), ("Uint64", 1, buf.offset),
                             ("Uint64", 2, buf.size)))
    tensors = []
    for t in spec.tensors:
        shape, name = ints(t.shape), b.CreateString(t.name)
        tensors.append(table(("UOffsetTRelative", 0, shape), ("Int8", 1, t.type), ("Uint32", 2, t.buffer),
                             ("UOffsetTRelative", 3, name)))
    ops = []
    for op in spec.ops:
        inputs, outputs = ints(op.inputs), ints(op.outputs)
        custom = raw(op.custom_options, 4) if op.custom_options is not None else None
        options = table(("Int8", 0, RELU)) if spec.opcodes[min(op.opcode, len(spec.opcodes) - 1)][0] == 9 else None
        slots = [("Uint32", 0, op.opcode), ("UOffsetTRelative", 1, inputs), ("UOffsetTRelative", 2, outputs)]
        if options is not None:
            slots += [("Uint8", 3, FULLY_CONNECTED_OPTIONS), ("UOffsetTRelative", 4, options)]
        if custom is not None:
            slots.append(("UOffsetTRelative", 5, custom))
        if op.large_options:
            slots += [("Uint64", 9, op.large_options[0]), ("Uint64", 10, op.large_options[1])]
        ops.append(table(*slots))
    sub = table(("UOffsetTRelative", 0, tables(tensors)), ("UOffsetTRelative", 1, ints(spec.io[0])),
                ("UOffsetTRelative", 2, ints(spec.io[1])), ("UOffsetTRelative", 3, tables(ops)),
                ("UOffsetTRelative", 4, b.CreateString("main")))
    metadata = []
    for name, index in spec.metadata:
        metadata.append(table(("UOffsetTRelative", 0, b.CreateString(name)), ("Uint32", 1, index)))
    maps = [table(("UOffsetTRelative", 0, b.CreateString(n)), ("Uint32", 1, i)) for n, i in (("x", 0), ("out", 3))]
    signature = table(("UOffsetTRelative", 0, tables(maps[:1])), ("UOffsetTRelative", 1, tables(maps[1:])),
                      ("UOffsetTRelative", 2, b.CreateString("serving_default")),
                      ("Uint32", 4, spec.signature_subgraph))
    groups = [table(("UOffsetTRelative", 0, b.CreateString(g))) for g in spec.groups]
    slots = [("Uint32", 0, spec.version), ("UOffsetTRelative", 1, tables(codes_)),
             ("UOffsetTRelative", 2, tables([sub])), ("UOffsetTRelative", 3, b.CreateString("MLIR Converted.")),
             ("UOffsetTRelative", 4, tables(buffers)), ("UOffsetTRelative", 6, tables(metadata)),
             ("UOffsetTRelative", 7, tables([signature]))]
    if groups:
        slots.append(("UOffsetTRelative", 8, tables(groups)))
    b.Finish(table(*slots), file_identifier=spec.identifier)
    return bytes(b.Output())


def large_layout() -> bytes:
    """The large-model layout: weights after the flatbuffer, found through Buffer.offset/size."""
    spec = Spec()
    spec.buffers[2], spec.buffers[3] = Buf(offset=1 << 20, size=48), Buf(offset=1 << 20, size=12)
    spec.metadata.append(("buffer_location", 0))
    head = build(spec)  # the offsets only change values, never the layout
    start = -(-len(head) // 16) * 16
    spec.buffers[2], spec.buffers[3] = Buf(offset=start, size=48), Buf(offset=start + 48, size=12)
    return build(spec).ljust(start, b"\x00") + WEIGHTS + BIAS


def flex_options(op: str, node_def: bytes) -> bytes:
    fbb = flexbuffers.Builder()
    with fbb.Vector():
        fbb.String(op)
        fbb.String(node_def.decode("ascii"))  # the NodeDefs here are ASCII, so the bytes survive as they are
    return bytes(fbb.Finish())


def _write(tmp_path, data: bytes, name: str = "model.tflite"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _issues(result: dict, code: str) -> list[dict]:
    return [i for i in result["issues"] if i["rule_code"] == code]


def _spec(**changes) -> Spec:
    spec = Spec()
    for key, value in changes.items():
        setattr(spec, key, value)
    return spec


# --- honest models ------------------------------------------------------------------------------
def test_fully_connected_model_is_clean(tmp_path):
    result = scan(_write(tmp_path, build()))
    assert findings(result) == [] and result["has_errors"] is False
    message = result["checks"][0]["message"]
    assert "4 tensors, 1 operators, 6 buffers" in message and "FULLY_CONNECTED" in message
    assert "min_runtime_version" in message and result["assets"][0]["type"] == "tflite"
    assert run_cli("scan", str(tmp_path / "model.tflite")).code == 0


def test_large_model_layout_and_runtime_custom_ops_are_clean(tmp_path):
    assert findings(scan(_write(tmp_path, large_layout()))) == []
    spec = _spec(opcodes=[(FULLY_CONNECTED, None), (CUSTOM, "TFLite_Detection_PostProcess")])
    spec.ops.append(Op(1, [3], [3]))
    assert findings(scan(_write(tmp_path, build(spec)))) == []


# --- operators ----------------------------------------------------------------------------------
def test_custom_operator_is_a_warning(tmp_path):
    spec = _spec(opcodes=[(FULLY_CONNECTED, None), (CUSTOM, "MyVendorOp")])
    spec.ops += [Op(1, [3], [3]), Op(1, [3], [3])]
    result = scan(_write(tmp_path, build(spec)))
    (issue,) = findings(result)
    assert issue["rule_code"] == "MA-T202" and issue["details"] == {"custom_code": "MyVendorOp", "uses": 2}
    assert run_cli("scan", str(tmp_path / "model.tflite")).code == 1


def _flex_model(tmp_path, custom: str, options: bytes | None):
    spec = _spec(opcodes=[(FULLY_CONNECTED, None), (CUSTOM, custom)])
    spec.ops.append(Op(1, [3], [3], custom_options=options))
    return scan(_write(tmp_path, build(spec)))


def test_flex_operators(tmp_path):
    result = _flex_model(tmp_path, "FlexStringLength", flex_options("StringLength", node("len", "StringLength", "x")))
    assert codes(result, "warning") == {"MA-T203"} and "StringLength" in result["issues"][0]["message"]
    result = _flex_model(tmp_path, "FlexReadFile", flex_options("ReadFile", node("read", "ReadFile", "x")))
    assert codes(result, "warning") == {"MA-T203", "MA-T103"}
    result = _flex_model(tmp_path, "FlexPyFunc", flex_options("PyFunc", node("py", "PyFunc", "x", token=A.s("t0"))))
    assert codes(result, "critical") == {"MA-T102"} and "t0" in _issues(result, "MA-T102")[0]["message"]
    nodes = node("p", "PrintV2", "x", output_stream=A.s("file:///etc/cron.d/job"))
    assert "MA-T104" in codes(_flex_model(tmp_path, "FlexPrintV2", flex_options("PrintV2", nodes)), "critical")


def test_flex_operator_whose_node_runs_another_op(tmp_path):
    result = _flex_model(tmp_path, "FlexAdd", flex_options("Add", node("a", "EagerPyFunc", "x", T=A.type(DT_FLOAT))))
    assert codes(result, "warning") == {"MA-T203", "MA-T204", "MA-T102"}
    assert "'EagerPyFunc'" in _issues(result, "MA-T204")[0]["message"]
    result = _flex_model(tmp_path, "FlexWriteFile", b"\x01\x02garbage")  # unreadable: judged by its name
    assert codes(result, "warning") == {"MA-T203", "MA-T204", "MA-T103"}
    result = _flex_model(tmp_path, "FlexWriteFile", None)
    assert {"MA-T204", "MA-T103"} <= codes(result, "warning")


def test_flexbuffer_reader_matches_the_library():
    data = flex_options("ReadFile", node("read", "ReadFile", "x"))
    assert flexbuffers.GetRoot(data).AsVector[0].AsString == "ReadFile"
    assert flex_node(data) == ("ReadFile", node("read", "ReadFile", "x"))
    for cut in range(len(data)):
        flex_node(data[:cut])  # never raises on truncated input
    assert flex_node(b"\x00\x00\x00") is None and flex_node(b"\xff" * 16) is None


def test_unknown_builtin_code(tmp_path):
    result = scan(_write(tmp_path, build(_spec(opcodes=[(250, None)]))))
    assert codes(result, "warning") == {"MA-T206"} and "builtin #250" in result["issues"][0]["message"]


# --- buffers, tensors and references -----------------------------------------------------------------
def test_buffer_outside_the_file(tmp_path):
    spec = _spec()
    spec.buffers[2] = Buf(offset=1 << 40, size=48)
    result = scan(_write(tmp_path, build(spec)))
    assert codes(result, "warning") == {"MA-T205"} and "past the end" in result["issues"][0]["message"]
    spec.buffers[2] = Buf(WEIGHTS, offset=64, size=48)
    assert "MA-T205" in codes(scan(_write(tmp_path, build(spec))), "warning")


def test_large_custom_options_outside_the_file(tmp_path):
    spec = _spec(opcodes=[(FULLY_CONNECTED, None), (CUSTOM, "TFLite_Detection_PostProcess")])
    spec.ops.append(Op(1, [3], [3], large_options=(1 << 33, 100)))
    assert codes(scan(_write(tmp_path, build(spec))), "warning") == {"MA-T205"}


@pytest.mark.parametrize("change, text", [
    (lambda s: setattr(s.tensors[1], "buffer", 99), "uses buffer 99"),
    (lambda s: setattr(s.tensors[1], "shape", [4, 4]), "needs 64 bytes but buffer 2 holds 48"),
    (lambda s: setattr(s.ops[0], "inputs", [0, 1, 7]), "input tensor 7 does not exist"),
    (lambda s: setattr(s.ops[0], "opcode", 5), "uses operator code 5"),
    (lambda s: setattr(s, "io", ([9], [3])), "input 9 names no tensor"),
    (lambda s: setattr(s, "metadata", [("min_runtime_version", 42)]), "points at buffer 42"),
    (lambda s: setattr(s, "signature_subgraph", 3), "runs subgraph 3"),
])
def test_inconsistent_references(tmp_path, change, text):
    spec = Spec()
    change(spec)
    result = scan(_write(tmp_path, build(spec)))
    assert codes(result, "warning") == {"MA-T206"}, result["issues"]
    assert text in result["issues"][0]["message"]


def test_external_buffer_group_outside_the_model(tmp_path):
    result = scan(_write(tmp_path, build(_spec(groups=["weights.bin", "../../home/user/.aws/credentials"]))))
    (issue,) = findings(result)
    assert issue["rule_code"] == "MA-T205" and issue["severity"] == "critical" and ".aws" in issue["message"]


# --- malformed flatbuffers ------------------------------------------------------------------------
def test_identifier_and_version(tmp_path):
    result = scan(_write(tmp_path, build(_spec(identifier=b"TFL2"))))  # routed here by the extension
    assert codes(result, "warning") == {"MA-T201"} and "not b'TFL3'" in result["issues"][0]["message"]
    result = scan(_write(tmp_path, build(_spec(version=2))))
    assert codes(result, "warning") == {"MA-T201"} and "version is 2" in result["issues"][0]["message"]


def test_every_truncation_is_reported(tmp_path):
    data = build()
    scanner = TFLiteScanner()
    path = tmp_path / "model.tflite"
    for cut in range(8, len(data), 3):
        path.write_bytes(data[:cut])
        result = scanner.scan(str(path))
        assert any(i.rule_code == "MA-T201" for i in result.issues), cut
        assert not result.complete, cut


@pytest.mark.parametrize("patch", [
    (0, struct.pack("<I", 1 << 30)),  # root table offset past the end
    (0, struct.pack("<I", 6)),  # root table overlapping the identifier
    (None, struct.pack("<i", -(1 << 30))),  # root table's vtable offset points past the end
    (None, struct.pack("<i", 1 << 30)),  # ... or before the start
])
def test_malformed_offsets(tmp_path, patch):
    data = bytearray(build())
    where, value = patch
    where = struct.unpack_from("<I", data, 0)[0] if where is None else where
    data[where:where + 4] = value
    result = scan(_write(tmp_path, bytes(data)))
    assert "MA-T201" in codes(result, "warning") and "MA-S005" not in codes(result)
    assert run_cli("scan", str(tmp_path / "model.tflite")).code == 1


def test_huge_vector_count(tmp_path):
    data = bytearray(build())
    index = data.find(b"serving_default_x:0") - 4  # the length of the first tensor name
    data[index:index + 4] = struct.pack("<I", 0x7FFFFFFF)
    result = scan(_write(tmp_path, bytes(data)))
    assert "MA-T201" in codes(result, "warning") and "past the end" in result["issues"][0]["message"]


def test_random_corruption_never_crashes(tmp_path):
    rng = random.Random(11)
    data = build()
    path = tmp_path / "model.tflite"
    for _ in range(400):
        broken = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            broken[rng.randrange(8, len(broken))] = rng.randrange(256)
        path.write_bytes(bytes(broken))
        assert "MA-S005" not in codes(scan(path))


def test_budget(tmp_path, monkeypatch):
    path = _write(tmp_path, build())
    monkeypatch.setattr(TFLiteScanner, "limits", FlatLimits(max_tables=5))
    with pytest.raises(BudgetExceeded):
        TFLiteScanner().scan(str(path))
    result = scan(path)
    assert codes(result) == {"MA-T207"} and result["issues"][0]["severity"] == "warning"


# Files written by TensorFlow itself (converter output, a Flex ReadFile model) are scanned in
# test_tensorflow_real.py; tests/fixtures/tensorflow/generate.py also runs the models built here
# in the TFLite interpreter.


# --- hostile sizes found by mutation ------------------------------------------------------------
def _aliased_opcodes(references: int, name_length: int) -> bytes:
    """A model whose operator_codes vector points `references` times at one code with a long custom name."""
    b = flatbuffers.Builder(1024)
    name = b.CreateString("C" * name_length)
    b.StartObject(4)
    b.PrependUOffsetTRelativeSlot(1, name, 0)
    b.PrependInt32Slot(3, CUSTOM, 0)
    code = b.EndObject()
    b.StartVector(4, references, 4)
    for _ in range(references):
        b.PrependUOffsetTRelative(code)
    codes_ = b.EndVector()
    b.StartObject(2)
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, codes_, 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_aliased_long_strings_spend_a_byte_budget(tmp_path):
    """20,000 references to one 64 KiB name are 1.3 GB of copies; the reader stops at its byte budget."""
    path = _write(tmp_path, _aliased_opcodes(20_000, 64 * 1024))
    tracemalloc.start()
    result = scan(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "MA-T207" in codes(result, "warning") and result["has_errors"] is True
    assert "bytes of strings" in _issues(result, "MA-T207")[0]["message"]
    assert peak < 400 * 1024 * 1024
    assert codes(scan(_write(tmp_path, _aliased_opcodes(200, 1024), "small.tflite")), "warning") == {"MA-T202"}


def test_many_bad_subgraph_references_are_one_finding(tmp_path):
    result = scan(_write(tmp_path, build(_spec(io=([0] + [9] * 100_000, [3])))))
    (issue,) = _issues(result, "MA-T206")
    assert "input 9 names no tensor (4 tensors), and 99999 more inputs name none" in issue["message"]
    assert issue["details"]["count"] == 100_000 and len(issue["details"]["tensors"]) == 8


def test_vectors_of_numbers_are_compact():
    """Shapes and index lists come back as arrays of machine integers, not lists of Python ints."""
    fb = FlatBuffer(build(_spec(io=([0] * 1000, [3]))))
    sub = fb.tables(fb.root(), 2, "subgraph")[0]
    inputs = fb.numbers(sub, 1, "i", "inputs")
    assert len(inputs) == 1000 and inputs[:3].tolist() == [0, 0, 0] and inputs.itemsize == 4
