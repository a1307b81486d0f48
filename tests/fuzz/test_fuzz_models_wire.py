"""Mutants of wire-format model files (ONNX and TensorFlow protobufs, TFLite and ExecuTorch
flatbuffers, Flax msgpack) are handled: no internal error, no timeout, never an unreadable file
reported clean. Seeds are honest and hostile files written by the real libraries, the committed
fixtures and the byte-built files of the scanners' own tests. Besides the shared byte mutator, two
mutators know the layouts: flatbuffer offsets re-aimed at other parts of the file (aliased and
cyclic tables) and protobuf length prefixes rewritten or fields wrapped in themselves (deep nesting).
Seeded, so a failure names a mutant that can be rebuilt."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import msgpack
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelaudit.core import scan_model_directory_or_file
from tests.fuzz.harness import FUZZ_TIMEOUT, mutants, problems
from tests.scanners import _tf_fixtures as fx
from tests.scanners import test_executorch as et
from tests.scanners import test_msgpack as mp
from tests.scanners import test_tflite as tl
from tests.scanners._tf_fixtures import DT_FLOAT, A, const_string, node
from tests.scanners.test_tensorflow import GRAPH_PBTXT

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
#: (byte mutants, layout-aware mutants) per seed file: about 15 seconds in all
PER_SEED = {"onnx": (40, 30), "tensorflow": (24, 16), "tflite": (40, 40), "executorch": (30, 30), "msgpack": (80, 60)}
_EDGE = (0, 1, 4, 0x7F, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFFC)

Seed = tuple[str, bytes, dict[str, bytes]]  # file name, bytes, files written beside it


# --- seeds ------------------------------------------------------------------------------------
def _onnx_model(nodes, initializers=(), opsets=(("", 17),), **kwargs) -> onnx.ModelProto:  # noqa: ANN001
    graph = helper.make_graph(list(nodes), "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 3])], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], **kwargs)


def _onnx_seeds(tmp: Path) -> list[Seed]:
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "W")
    typed = [helper.make_tensor("B", TensorProto.FLOAT, [3], [0.1, 0.2, 0.3]),
             helper.make_tensor("I", TensorProto.INT64, [2], [1, 2])]
    mlp = _onnx_model([helper.make_node("MatMul", ["X", "W"], ["H"]), helper.make_node("Add", ["H", "B"], ["Y"])],
                      [weights, *typed])
    branch = helper.make_graph([helper.make_node("Relu", ["X"], ["Y"])], "b", [],
                               [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])], [typed[1]])
    control = _onnx_model([helper.make_node("If", ["c"], ["Y"], then_branch=branch, else_branch=branch),
                           helper.make_node("Loop", ["m", "c"], ["Z"], body=branch)])
    function = helper.make_function("local", "F", ["x"], ["y"], [helper.make_node("Relu", ["x"], ["y"])],
                                    [helper.make_opsetid("", 17)])
    library = _onnx_model([helper.make_node("F", ["X"], ["Y"], domain="local")], opsets=(("", 17), ("local", 1)),
                          functions=[function])
    library.metadata_props.add(key="note", value="__import__('os').system('echo hi')")
    python_op = _onnx_model([helper.make_node("PyOp", ["X"], ["Y"], domain="ai.onnx.contrib", module="os",
                                              class_name="system", compute="echo"),
                             helper.make_node("Odd", ["Y"], ["Z"], domain="vendor.ops")])
    sparse = _onnx_model([helper.make_node("Relu", ["X"], ["Y"])])
    sparse.graph.sparse_initializer.append(helper.make_sparse_tensor(
        helper.make_tensor("v", TensorProto.FLOAT, [2], [1.0, 2.0]),
        helper.make_tensor("i", TensorProto.INT64, [2], [0, 3]), [4]))
    sparse.training_info.add().algorithm.CopyFrom(branch)
    external = _onnx_model([helper.make_node("MatMul", ["X", "W"], ["Y"])], [weights])
    onnx.save_model(external, str(tmp / "ext.onnx"), save_as_external_data=True, location="ext.data",
                    size_threshold=0)
    escape = _onnx_model([helper.make_node("Relu", ["X"], ["Y"])])
    tensor = escape.graph.initializer.add(name="T", data_type=1, dims=[4], data_location=1)
    for key, value in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "16")):
        tensor.external_data.add(key=key, value=value)
    seeds = [(f"{name}.onnx", m.SerializeToString(), {}) for name, m in
             (("mlp", mlp), ("control", control), ("library", library), ("python_op", python_op),
              ("sparse", sparse), ("escape", escape))]
    return seeds + [("ext.onnx", (tmp / "ext.onnx").read_bytes(), {"ext.data": (tmp / "ext.data").read_bytes()})]


def _tensorflow_seeds() -> list[Seed]:
    seeds = [(p.name, p.read_bytes(), {}) for p in sorted((FIXTURES / "tensorflow").rglob("*.pb"))]
    frozen = fx.graph([node("x", "Placeholder", dtype=A.type(DT_FLOAT), shape=A.shape(-1, 4)),
                       node("w", "Const", dtype=A.type(DT_FLOAT), value=A.tensor(DT_FLOAT, (4, 3), content=bytes(48))),
                       node("y", "MatMul", "x", "w", T=A.type(DT_FLOAT))])
    hostile = fx.honest_saved_model(extra_nodes=[node("p", "PyFunc", token=A.s("pyfunc_0")),
                                                 const_string("path", "/etc/passwd"), node("r", "ReadFile", "path")])
    keras = fx.keras_metadata(("root", "_tf_keras_sequential", '{"class_name": "Lambda", "config": '
                                                                '{"name": "l", "function_type": "lambda"}}'))
    text = GRAPH_PBTXT.replace('op: "MatMul"', 'op: "PyFunc" attr { key: "token" value { s: "pyfunc_0" } }')
    return seeds + [("saved_model.pb", fx.honest_saved_model(), {}), ("saved_model.pb", hostile, {}),
                    ("frozen.pb", frozen, {}), ("model.meta", fx.meta_graph(frozen, assets=[("a:0", "vocab.txt")]), {}),
                    ("keras_metadata.pb", keras, {}), ("graph.pbtxt", GRAPH_PBTXT.encode(), {}),
                    ("saved_model.pbtxt", f"meta_graphs {{ graph_def {{ {text} }} }}".encode(), {})]


def _tflite_seeds() -> list[Seed]:
    seeds = [(p.name, p.read_bytes(), {}) for p in sorted((FIXTURES / "tensorflow").glob("*.tflite"))]
    flex = tl.Spec(opcodes=[(tl.CUSTOM, "FlexReadFile"), (tl.CUSTOM, "VendorOp")], groups=["../outside"],
                   ops=[tl.Op(0, [0], [3], tl.flex_options("ReadFile", node("rf", "ReadFile", "x"))),
                        tl.Op(1, [0], [3], b"\x01\x02")])
    return seeds + [("model.tflite", tl.build(), {}), ("large.tflite", tl.large_layout(), {}),
                    ("flex.tflite", tl.build(flex), {})]


def _executorch_seeds() -> list[Seed]:
    seeds = [(p.name, p.read_bytes(), {}) for p in sorted((FIXTURES / "executorch").glob("*.pte"))]
    delegates = et.Program(delegates=[("VendorBackend", 1, 1), ("XnnpackBackend", 0, 0)], inline_blobs=[b"blob"],
                           segments=[et.CONSTANT, b"#!/bin/sh\necho hi\n"],
                           instructions=[(et.DELEGATE_CALL, 0, [0, 3]), (et.KERNEL_CALL, 0, [0, 1, 2, 3, 3]),
                                         (et.JUMP_FALSE, 2, [0])])
    plain = et.Program(header=False, segments=[], constant_offsets=None, values=[("tensor", [2], 0, 0)],
                       instructions=[(et.KERNEL_CALL, 0, [0, 0])], io=([0], [0]))
    return seeds + [("built.pte", et.build(), {}), ("delegates.pte", et.build(delegates), {}),
                    ("plain.pte", et.build(plain), {})]


def _msgpack_seeds() -> list[Seed]:
    hostile = mp._flax_state()
    hostile["params"].update(blob=mp.EVIL_PICKLE, odd=msgpack.ExtType(42, bytes(16)))
    hostile["meta"] = {"hook": "__import__('os').system('id')"}
    nested = [[[{"a": [1, 2.5, None, True, b"x" * 20]}]]] * 3
    return [(f"{name}.msgpack", msgpack.packb(state, use_bin_type=True), {}) for name, state in
            (("flax", mp._flax_state()), ("hostile", hostile), ("nested", nested))]


def _seeds(fmt: str, tmp: Path) -> list[Seed]:
    """The seed files of one format (ONNX's external-data model is written by onnx into `tmp`)."""
    builders = {"onnx": lambda: _onnx_seeds(tmp), "tensorflow": _tensorflow_seeds, "tflite": _tflite_seeds,
                "executorch": _executorch_seeds, "msgpack": _msgpack_seeds}
    return builders[fmt]()


# --- layout-aware mutators ------------------------------------------------------------------------
def _reaim(rng: random.Random, data: bytes) -> bytes:
    """Flatbuffer: an aligned u32 turned into an offset to another part of the file, or an edge value."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(max(1, len(buf) - 4)) & ~3
        target = rng.randrange(len(buf)) & ~3
        value = rng.choice(((target - at) & 0xFFFFFFFF, (at - target) & 0xFFFFFFFF, rng.choice(_EDGE)))
        struct.pack_into("<I", buf, at, value)
    return bytes(buf)


def _relength(rng: random.Random, data: bytes) -> bytes:
    """Protobuf: a length-delimited field given a new length, wrapped in itself, or repeated."""
    fields = []
    for key in range(len(data)):
        if data[key] & 7 == 2 and data[key] >> 3 and key + 1 < len(data) and data[key + 1] < 0x80:
            end = key + 2 + data[key + 1]
            if end <= len(data):
                fields.append((key, end))
    if not fields:
        return data
    key, end = rng.choice(fields)
    kind = rng.randrange(3)
    if kind == 0:
        length = rng.choice((0, end - key, 0x7FFFFFFF, 1 << 40, (1 << 64) - 1))
        return data[:key + 1] + fx.varint(length) + data[key + 2:]
    if kind == 1:
        field = data[key:end]
        for _ in range(rng.choice((3, 40, 150))):
            field = data[key:key + 1] + fx.varint(len(field)) + field
        return data[:key] + field + data[end:]
    return data[:end] + data[key:end] * rng.choice((2, 200)) + data[end:]


def _layout_mutants(fmt: str, seed: int, data: bytes, count: int):  # noqa: ANN202 - generator of (what, bytes)
    rng = random.Random(seed)
    text = data.lstrip()[:1].isalpha()
    mutate = _reaim if fmt in ("tflite", "executorch") else None if fmt == "msgpack" or text else _relength
    for index in range(count if mutate else 0):
        yield f"layout#{index}", mutate(rng, data)


# --- the campaign -------------------------------------------------------------------------------
def _scan(tmp_path: Path, name: str, data: bytes, beside: dict[str, bytes]) -> dict:
    folder = tmp_path / f"m{sum(1 for _ in tmp_path.iterdir())}"
    folder.mkdir()
    (folder / name).write_bytes(data)
    for other, content in beside.items():
        (folder / other).write_bytes(content)
    return scan_model_directory_or_file(str(folder / name), timeout=FUZZ_TIMEOUT)


@pytest.mark.parametrize("fmt", list(PER_SEED))
def test_mutants_of_wire_format_models_are_handled(tmp_path, fmt):
    (tmp_path / "seeds").mkdir()
    seeds = _seeds(fmt, tmp_path / "seeds")
    donors = [data[:4096] for _name, data, _beside in seeds]
    plain, layout = PER_SEED[fmt]
    work = tmp_path / "mutants"
    work.mkdir()
    failures, total = [], 0
    for index, (name, data, beside) in enumerate(seeds):
        assert not problems(_scan(work, name, data, beside)), name  # the seed itself is handled
        for what, mutant in [*mutants(index, data, plain, donors), *_layout_mutants(fmt, index, data, layout)]:
            total += 1
            found = problems(_scan(work, name, mutant, beside))
            if found:
                failures.append(f"{name} (seed {index}, {what}): {found[0]}")
    assert total > 100
    assert not failures, f"{len(failures)} of {total} mutants mishandled:\n" + "\n".join(failures[:20])
