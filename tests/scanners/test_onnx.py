"""onnx: honest models written by the real onnx package are clean; crafted ones are findings."""

from __future__ import annotations

import random
import struct
import tracemalloc
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelaudit.errors import BudgetExceeded
from modelaudit.scanners._protobuf import COUNT, REPEATED, Message, ProtobufError, Reader, ReadLimits
from modelaudit.scanners.onnx import MODEL, OnnxScanner
from tests.conftest import codes, findings, run_cli, scan

X = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])
Y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])


def _model(nodes, initializers=(), opsets=(("", 17),), **kwargs) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "g", [X], [Y], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], **kwargs)


def _save(tmp_path, model: onnx.ModelProto | bytes, name: str = "model.onnx"):
    path = tmp_path / name
    path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
    return path


def _issues(result: dict, code: str) -> list[dict]:
    return [i for i in result["issues"] if i["rule_code"] == code]


def _external(name: str, location: str, dims=(4,), **entries) -> TensorProto:
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(dims), data_location=TensorProto.EXTERNAL)
    for key, value in {"location": location, **entries}.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, str(value)
    return tensor


# --- protobuf bytes by hand ------------------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes | int, wire: int = 2) -> bytes:
    key = _varint(number << 3 | wire)
    return key + (_varint(payload) if wire == 0 else _varint(len(payload)) + payload)


OPSET = _field(8, _field(1, b"") + _field(2, 17, 0))


# --- honest models -----------------------------------------------------------------------------
def test_mlp_from_the_real_writer_is_clean(tmp_path):
    w1 = numpy_helper.from_array(np.random.rand(4, 8).astype(np.float32), "W1")
    b1 = helper.make_tensor("B1", TensorProto.FLOAT, [8], [0.5] * 8)
    w2 = numpy_helper.from_array(np.random.rand(8, 4).astype(np.float32), "W2")
    model = _model([helper.make_node("Gemm", ["X", "W1", "B1"], ["H"]), helper.make_node("Relu", ["H"], ["R"]),
                    helper.make_node("MatMul", ["R", "W2"], ["Y"])], [w1, b1, w2],
                   producer_name="pytorch", doc_string="an MLP")
    onnx.helper.set_model_props(model, {"author": "someone", "license": "MIT"})
    onnx.checker.check_model(model)
    result = scan(_save(tmp_path, model))
    assert findings(result) == [] and result["has_errors"] is False
    assert result["assets"][0]["type"] == "onnx" and "onnx" in result["scanner_names"]


def test_if_loop_scan_subgraphs_are_clean(tmp_path):
    one = helper.make_tensor("one", TensorProto.FLOAT, [1, 4], [1.0] * 4)
    then_g = helper.make_graph([helper.make_node("Add", ["X", "one"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])], [one])
    else_g = helper.make_graph([helper.make_node("Neg", ["X"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 4])])
    cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
    model = _model([helper.make_node("If", ["cond"], ["Y"], then_branch=then_g, else_branch=else_g)], [cond])
    onnx.checker.check_model(model)
    result = scan(_save(tmp_path, model))
    assert findings(result) == []
    assert "3 graphs" in result["checks"][0]["message"]


def test_all_dtypes_raw_and_typed_are_clean(tmp_path):
    arrays = {
        "f32": np.ones((2, 3), np.float32), "f16": np.ones(5, np.float16), "f64": np.ones(2, np.float64),
        "i8": np.arange(-3, 3, dtype=np.int8), "u8": np.ones(7, np.uint8), "i16": np.ones(3, np.int16),
        "u16": np.ones(3, np.uint16), "i32": np.ones(3, np.int32), "i64": np.arange(4), "u32": np.ones(2, np.uint32),
        "u64": np.ones(2, np.uint64), "b": np.array([True, False, True]), "c64": np.ones(3, np.complex64),
        "c128": np.ones(2, np.complex128), "scalar": np.array(1.5, np.float32), "empty": np.zeros((0, 3), np.float32),
        "s": np.array(["a", "bc"], dtype=object),
    }
    tensors = [numpy_helper.from_array(a, "raw_" + k) for k, a in arrays.items()]
    tensors += [helper.make_tensor("typed_" + k, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape,
                                   a.flatten().tolist()) for k, a in arrays.items() if k not in ("s",)]
    for dtype in (TensorProto.INT4, TensorProto.UINT4, TensorProto.FLOAT4E2M1, TensorProto.BFLOAT16,
                  TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E5M2, TensorProto.INT2, TensorProto.UINT2):
        for raw in (False, True):
            vals = [1, 0, 1, 1, 0]
            if raw:
                tensors.append(helper.make_tensor(f"r{dtype}", dtype, [5], _pack(dtype, vals), raw=True))
            else:
                tensors.append(helper.make_tensor(f"t{dtype}", dtype, [5], vals))
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], tensors)
    onnx.checker.check_model(model)
    result = scan(_save(tmp_path, model))
    assert findings(result) == [], findings(result)


def _pack(dtype: int, vals: list[int]) -> bytes:
    """raw_data as the spec packs it: 4-bit pairs and 2-bit quads LSB first, one byte otherwise."""
    per = {TensorProto.INT4: 2, TensorProto.UINT4: 2, TensorProto.FLOAT4E2M1: 2, TensorProto.INT2: 4,
           TensorProto.UINT2: 4}.get(dtype, 0)
    if dtype == TensorProto.BFLOAT16:
        return b"".join(v.to_bytes(2, "little") for v in vals)
    if not per:
        return bytes(vals)
    bits = 8 // per
    return bytes(sum(v << (bits * j) for j, v in enumerate(vals[i:i + per])) for i in range(0, len(vals), per))


def test_tree_ensemble_classifier_is_clean(tmp_path):
    node = helper.make_node(
        "TreeEnsembleClassifier", ["X"], ["label", "probs"], domain="ai.onnx.ml",
        classlabels_int64s=[0, 1], nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2],
        nodes_featureids=[0, 0, 0], nodes_values=[0.5, 0.0, 0.0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0], class_treeids=[0, 0],
        class_nodeids=[1, 2], class_ids=[0, 1], class_weights=[1.0, 1.0])
    graph = helper.make_graph([node], "trees", [X], [helper.make_tensor_value_info("label", TensorProto.INT64, [1]),
                                                    helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    onnx.checker.check_model(model)
    assert findings(scan(_save(tmp_path, model))) == []


def test_external_data_saved_by_onnx_is_clean(tmp_path):
    weights = [numpy_helper.from_array(np.random.rand(64, 64).astype(np.float32), f"W{i}") for i in range(3)]
    weights.append(numpy_helper.from_array(np.arange(100, dtype=np.int8), "q"))
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], weights)
    folder = tmp_path / "m"
    folder.mkdir()
    onnx.save_model(model, str(folder / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    assert (folder / "weights.bin").exists()
    onnx.checker.check_model(str(folder / "model.onnx"))
    assert findings(scan(folder / "model.onnx")) == []
    assert not {c for c in codes(scan(folder)) if c.startswith("MA-O")}


def test_local_functions_and_runtime_domains_are_clean(tmp_path):
    body = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])]
    fn = helper.make_function("my.pkg", "NegRelu", ["x"], ["y"], body, [helper.make_opsetid("", 17)])
    nodes = [helper.make_node("NegRelu", ["X"], ["H"], domain="my.pkg"),
             helper.make_node("FusedMatMul", ["H", "H"], ["Y"], domain="com.microsoft")]
    model = _model(nodes, opsets=(("", 17), ("my.pkg", 1), ("com.microsoft", 1)), functions=[fn])
    assert findings(scan(_save(tmp_path, model))) == []


def test_hub_cache_links_into_the_blob_store_are_clean(tmp_path):
    blobs, snap = tmp_path / "blobs", tmp_path / "snapshots" / "abc"
    blobs.mkdir()
    snap.mkdir(parents=True)
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [_external("w", "weights.bin")])
    (blobs / "m1").write_bytes(model.SerializeToString())
    (blobs / "w1").write_bytes(b"\0" * 16)
    (snap / "model.onnx").symlink_to("../../blobs/m1")
    (snap / "weights.bin").symlink_to("../../blobs/w1")
    assert findings(scan(snap / "model.onnx")) == []


# --- operators ----------------------------------------------------------------------------------
def test_custom_domain_is_a_warning(tmp_path):
    model = _model([helper.make_node("Mystery", ["X"], ["Y"], domain="com.evil")], opsets=(("", 17), ("com.evil", 1)))
    issue = _issues(scan(_save(tmp_path, model)), "MA-O002")
    assert issue and issue[0]["severity"] == "warning" and "com.evil" in issue[0]["message"]


def test_extensions_domain_is_reported_with_its_python_caveat(tmp_path):
    model = _model([helper.make_node("ReverseMatrix", ["X"], ["Y"], domain="ai.onnx.contrib")],
                   opsets=(("", 17), ("ai.onnx.contrib", 1)))
    issue = _issues(scan(_save(tmp_path, model)), "MA-O002")
    assert issue and "Python functions" in issue[0]["message"]


def test_unknown_operator_in_the_default_domain(tmp_path):
    model = _model([helper.make_node("Relu", ["X"], ["H"]), helper.make_node("SystemCall", ["H"], ["Y"])])
    issue = _issues(scan(_save(tmp_path, model)), "MA-O003")
    assert issue and "SystemCall" in issue[0]["message"]


@pytest.mark.parametrize("op,domain,attrs", [
    ("PyOp", "pyop_domain", {"module": "os", "class_name": "Popen", "compute": "compute"}),
    ("PyOp", "", {"module": "subprocess"}),
    ("PythonOp", "com.microsoft", {"func_name": "evil.Function"}),
    ("PythonOpGrad", "com.microsoft", {"func_name": "evil.Function"}),
])
def test_python_operators_are_critical(tmp_path, op, domain, attrs):
    model = _model([helper.make_node(op, ["X"], ["Y"], domain=domain, **attrs)], opsets=(("", 17), (domain, 1)))
    issue = _issues(scan(_save(tmp_path, model)), "MA-O004")
    assert issue and issue[0]["severity"] == "critical"
    assert all(v in issue[0]["message"] for v in attrs.values())


def test_python_operator_hidden_in_subgraph_and_function(tmp_path):
    inner = helper.make_graph([helper.make_node("PyOp", ["X"], ["t"], domain="d", module="os")], "then", [],
                              [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])])
    loop_body = helper.make_graph([helper.make_node("If", ["c"], ["t"], then_branch=inner, else_branch=inner)],
                                  "body", [], [])
    fn = helper.make_function("f.d", "F", ["x"], ["y"], [helper.make_node("PythonOp", ["x"], ["y"],
                                                                          domain="com.microsoft")],
                              [helper.make_opsetid("", 17)])
    model = _model([helper.make_node("Loop", ["", "c"], ["Y"], body=loop_body),
                    helper.make_node("F", ["X"], ["Z"], domain="f.d")], functions=[fn])
    found = _issues(scan(_save(tmp_path, model)), "MA-O004")
    where = " ".join(i["message"] for i in found)
    assert len(found) == 3 and "body" in where and "function f.d::F" in where


def test_code_and_secrets_in_metadata(tmp_path):
    model = _model([helper.make_node("Identity", ["X"], ["Y"])])
    helper.set_model_props(model, {"note": "__import__('os').system('id')", "token": "hf_" + "a1B2c3D4" * 5})
    assert {"MA-C001", "MA-C002"} <= codes(scan(_save(tmp_path, model)))


# --- external data -----------------------------------------------------------------------------
@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "sub/../../secret.bin",
                                      "..\\..\\windows\\win.ini", "C:\\Windows\\win.ini", "\\\\server\\share\\x",
                                      "weights.bin\x00.txt", ".. /x", "... \\x"])
def test_external_location_traversal_is_critical(tmp_path, location):
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [_external("w", location)])
    issue = _issues(scan(_save(tmp_path, model)), "MA-O005")
    assert issue and issue[0]["severity"] == "critical", location
    assert issue[0]["details"]["location"] == location


def test_backslash_location_is_a_warning(tmp_path):
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [_external("w", "sub\\w.bin")])
    issue = _issues(scan(_save(tmp_path, model)), "MA-O005")
    assert issue and issue[0]["severity"] == "warning"


def test_symlink_inside_model_dir_pointing_outside(tmp_path):
    outside, folder = tmp_path / "secret.txt", tmp_path / "model"
    outside.write_bytes(b"\0" * 16)
    folder.mkdir()
    (folder / "weights.bin").symlink_to(outside)
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [_external("w", "weights.bin")])
    issue = _issues(scan(_save(folder, model)), "MA-O005")
    assert issue and issue[0]["severity"] == "critical" and "symbolic link" in issue[0]["message"]


def test_symlinked_directory_pointing_outside(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "w.bin").write_bytes(b"\0" * 16)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "data").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [_external("w", "data/w.bin")])
    assert _issues(scan(_save(folder, model)), "MA-O005")


def test_symlink_inside_model_dir_pointing_inside_is_clean(tmp_path):
    (tmp_path / "real.bin").write_bytes(b"\0" * 16)
    (tmp_path / "weights.bin").symlink_to(tmp_path / "real.bin")
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [_external("w", "weights.bin")])
    assert findings(scan(_save(tmp_path, model))) == []


@pytest.mark.parametrize("entries,needle", [
    ({"offset": 8, "length": 16}, "runs past the end"),
    ({"offset": 100}, "runs past the end"),
    ({"offset": "abc"}, "not a non-negative integer"),
    ({"length": "-16"}, "not a non-negative integer"),
])
def test_external_ranges(tmp_path, entries, needle):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [_external("w", "weights.bin", **entries)])
    issue = _issues(scan(_save(tmp_path, model)), "MA-O006")
    assert issue and needle in issue[0]["message"], scan(_save(tmp_path, model))["issues"]


def test_external_length_disagrees_with_shape(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 64)
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [_external("w", "weights.bin", length=32)])
    assert _issues(scan(_save(tmp_path, model)), "MA-O008")


def test_unknown_external_data_keys(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [_external("w", "weights.bin", __class__="x")])
    assert "__class__" in _issues(scan(_save(tmp_path, model)), "MA-O006")[0]["message"]


def test_cli_exit_code_and_json_for_traversal(tmp_path):
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [_external("w", "../../etc/passwd")])
    run = run_cli("scan", str(_save(tmp_path, model)), "--format", "json")
    assert run.code == 1
    issue = next(i for i in run.json()["issues"] if i["rule_code"] == "MA-O005")
    assert issue["severity"] == "critical" and issue["why"]


def test_missing_external_file_and_missing_location(tmp_path):
    missing = _external("w", "nowhere.bin")
    nameless = TensorProto(name="v", data_type=TensorProto.FLOAT, dims=[1], data_location=TensorProto.EXTERNAL)
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [missing, nameless])
    result = scan(_save(tmp_path, model))
    assert "nowhere.bin" in _issues(result, "MA-O007")[0]["message"]
    assert "names no location" in _issues(result, "MA-O006")[0]["message"]
    assert not _issues(result, "MA-S005")


def test_external_location_that_is_a_directory(tmp_path):
    (tmp_path / "data").mkdir()
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [_external("w", "data")])
    assert "not a regular file" in _issues(scan(_save(tmp_path, model)), "MA-O006")[0]["message"]


def test_many_tensors_one_bad_location_is_one_finding(tmp_path):
    tensors = [_external(f"w{i}", "../../etc/passwd", offset=i * 16, length=16) for i in range(500)]
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], tensors)
    issue = _issues(scan(_save(tmp_path, model)), "MA-O005")
    assert len(issue) == 1 and issue[0]["details"]["tensors"] == 500


def test_traversal_inside_a_zip_member(tmp_path):
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [_external("w", "../../etc/passwd")])
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("model.onnx", model.SerializeToString())
    assert "MA-O005" in codes(scan(archive))


def test_scanner_reads_protobuf_that_looks_like_text(tmp_path):
    """No NUL and no high byte: the bytes decode as ASCII text (opset domain spelled 'ai.onnx')."""
    model = _model([helper.make_node("Identity", ["w"], ["Y"])], [_external("w", "../../etc/passwd")],
                   opsets=(("ai.onnx", 17),))
    raw = model.SerializeToString()
    assert b"\0" not in raw and max(raw) < 0x80
    path = _save(tmp_path, raw)
    assert "MA-O005" in {i.rule_code for i in OnnxScanner().scan(str(path)).issues}


def test_engine_scans_protobuf_that_looks_like_text(tmp_path):
    model = _model([helper.make_node("Identity", ["w"], ["Y"])], [_external("w", "../../etc/passwd")],
                   opsets=(("ai.onnx", 17),))
    assert "MA-O005" in codes(scan(_save(tmp_path, model)))


# --- tensor sizes ------------------------------------------------------------------------------
def _tensor(**fields) -> TensorProto:
    return TensorProto(name="t", **{"data_type": TensorProto.FLOAT, "dims": [2, 2], **fields})


@pytest.mark.parametrize("tensor,needle", [
    (_tensor(raw_data=b"\0" * 12), "raw_data holds 12 bytes"),
    (_tensor(raw_data=b"\0" * 20), "raw_data holds 20 bytes"),
    (_tensor(float_data=[1.0] * 3), "float_data holds 3 values"),
    (_tensor(dims=[-1, 4], raw_data=b""), "negative dimension"),
    (_tensor(dims=[1 << 41, 1 << 41], raw_data=b""), "absurd"),
    (_tensor(dims=[1 << 30, 1 << 30], raw_data=b""), "more than 2**40"),
    (_tensor(raw_data=b"\0" * 16, float_data=[1.0] * 4), "more than one place"),
    (_tensor(), "carries no data"),
    (_tensor(int64_data=[1, 2, 3, 4]), "not the field for that type"),
    (_tensor(data_type=TensorProto.STRING, dims=[1], raw_data=b"abcd"), "STRING values are stored in raw_data"),
    (_tensor(data_type=99, raw_data=b"\0" * 16), "not a TensorProto data type"),
    (_tensor(data_type=0, raw_data=b"\0" * 16), "no data_type"),
    (_tensor(data_type=TensorProto.INT4, dims=[5], raw_data=b"\0" * 2), "raw_data holds 2 bytes"),
    (_tensor(data_type=TensorProto.INT4, dims=[5], int32_data=[0] * 5), "int32_data holds 5 values"),
    (_tensor(data_type=TensorProto.COMPLEX64, dims=[2], float_data=[1.0] * 2), "float_data holds 2 values"),
])
def test_inconsistent_tensor_sizes(tmp_path, tensor, needle):
    model = _model([helper.make_node("Identity", ["X"], ["Y"])], [tensor])
    issue = _issues(scan(_save(tmp_path, model)), "MA-O008")
    assert issue and needle in issue[0]["message"], issue


def test_bad_tensor_in_attribute_and_sparse_initializer(tmp_path):
    const = helper.make_node("Constant", [], ["c"], value=_tensor(raw_data=b"\0" * 3))
    sparse = helper.make_sparse_tensor(helper.make_tensor("v", TensorProto.FLOAT, [2], [1.0, 2.0]),
                                       _tensor(data_type=TensorProto.INT64, dims=[2], int64_data=[0]), [4])
    model = _model([const, helper.make_node("Identity", ["X"], ["Y"])])
    model.graph.sparse_initializer.append(sparse)
    messages = " ".join(i["message"] for i in _issues(scan(_save(tmp_path, model)), "MA-O008"))
    assert "raw_data holds 3 bytes" in messages and "int64_data holds 1 values" in messages


# --- malformed protobuf ------------------------------------------------------------------------
def _honest_bytes() -> bytes:
    return _model([helper.make_node("Relu", ["X"], ["Y"])], [helper.make_tensor("B", TensorProto.FLOAT, [2], [1, 2])]
                  ).SerializeToString()


@pytest.mark.parametrize("data,needle", [
    (b"\x08", "truncated varint"),
    (b"\x08\x08\x3a\x7f\x0a", "declares 127 bytes"),
    (b"\x08" + b"\xff" * 11, "longer than 10 bytes"),
    (b"\x08\x08\x0f", "invalid wire type 7"),
    (b"\x08\x08\x0c", "end-group for field 1 without a start"),
    (b"\x00\x01", "invalid field number 0"),
    (b"\x08\x08\x3b\x08\x01", "group 7 is not closed"),
    (b"\x08\x08" + _field(7, _field(1, _field(4, b"Relu") + b"\x2a\x05\x0a\x01")), "declares 5 bytes"),
    (b"\x08\x08" + _field(7, _field(5, _field(5, b"\x01\x02\x83"))), "packed varints end inside a varint"),
    (b"\x08\x08" + _field(7, _field(5, _field(4, b"\0" * 6))), "not a multiple of 4"),
    (b"\x08\x08" + _field(7, b""), "no opset_import"),
])
def test_malformed_protobuf(tmp_path, data, needle):
    issues = _direct(tmp_path, data)
    assert any(i.rule_code == "MA-O001" and needle in i.message for i in issues), issues
    path = tmp_path / "engine.onnx"
    path.write_bytes(data)
    assert "MA-O001" in codes(scan(path))  # the engine routes them to the onnx scanner too


def _direct(tmp_path, data: bytes) -> list:
    """Issues from OnnxScanner alone, bypassing format detection; exceptions propagate."""
    return OnnxScanner().scan(str(_save(tmp_path, data))).issues


def test_malformed_file_is_a_finding_and_incomplete_through_the_engine(tmp_path):
    result = scan(_save(tmp_path, _honest_bytes()[:-5]))
    assert _issues(result, "MA-O001") and result["incomplete_files"] and not _issues(result, "MA-S005")


@pytest.mark.parametrize("data", [b"", b"just some text that is not onnx at all"])
def test_empty_and_text_content_is_not_a_model(tmp_path, data):
    assert any(i.rule_code == "MA-O001" for i in _direct(tmp_path, data))


def test_every_truncation_is_reported(tmp_path):
    data = _honest_bytes()
    for cut in range(len(data)):
        assert any(i.rule_code == "MA-O001" for i in _direct(tmp_path, data[:cut])), cut


def test_nesting_deeper_than_protobuf_allows(tmp_path):
    graph = _field(1, _field(4, b"Relu"))
    for _ in range(40):  # graph > node > attribute > graph: three messages a level
        graph = _field(1, _field(4, b"If") + _field(5, _field(1, b"then_branch") + _field(6, graph)))
    result = scan(_save(tmp_path, b"\x08\x08" + _field(7, graph) + OPSET))
    assert "nested deeper than 100" in _issues(result, "MA-O001")[0]["message"]


def test_second_graph_field_is_merged_not_replaced(tmp_path):
    """protobuf merges a repeated singular message: nodes in the first copy still run."""
    first = _field(7, _field(1, _field(4, b"PyOp") + _field(7, b"d")))
    second = _field(7, _field(1, _field(4, b"Relu")))
    result = scan(_save(tmp_path, b"\x08\x08" + first + second + OPSET))
    assert _issues(result, "MA-O004") and not _issues(result, "MA-O001")


def test_fields_with_unexpected_wire_types_are_skipped_like_protobuf_does(tmp_path):
    node = _field(4, b"Relu") + _field(4, 5, 0) + b"\x3b" + _field(1, b"grp") + b"\x3c"  # op_type as varint, group
    result = scan(_save(tmp_path, b"\x08\x08" + _field(7, _field(1, node)) + OPSET))
    assert findings(result) == []


@pytest.mark.parametrize("seed", range(30))
def test_mutations_never_crash(tmp_path, seed):
    rng = random.Random(seed)
    data = bytearray(_honest_bytes())
    for _ in range(rng.randint(1, 6)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    _direct(tmp_path, bytes(data))  # raises if the scanner crashes
    assert not _issues(scan(_save(tmp_path, bytes(data))), "MA-S005")


def test_large_raw_data_is_not_read_into_memory(tmp_path):
    size = 1 << 30
    tensor_head = _field(1, 1 << 28, 0) + _field(2, 1, 0) + _field(8, b"big") + _varint(9 << 3 | 2) + _varint(size)
    graph_len = len(_varint(5 << 3 | 2)) + len(_varint(len(tensor_head) + size)) + len(tensor_head) + size
    head = b"\x08\x08" + _varint(7 << 3 | 2) + _varint(graph_len) + _varint(5 << 3 | 2) + \
        _varint(len(tensor_head) + size) + tensor_head
    path = tmp_path / "big.onnx"
    with open(path, "wb") as fh:
        fh.write(head)
        fh.seek(len(head) + size)
        fh.write(OPSET)  # the gap is sparse: nothing is written to disk
    tracemalloc.start()
    result = scan(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert findings(result) == [], result["issues"]
    assert peak < 32 * 1024 * 1024 and result["bytes_scanned"] < 4096


def test_reader_budget_and_partial_results():
    data = b"\x08\x08" + _field(7, _field(1, _field(4, b"Relu")) * 50)
    reader = Reader(data, ReadLimits(max_fields=20))
    out: dict = {}
    with pytest.raises(BudgetExceeded):
        reader.decode(MODEL, out=out)
    assert out["graph"]["node"]  # what was read before the budget ran out is kept
    model, error = Reader(data[:-3]).decode(MODEL)
    assert isinstance(error, ProtobufError) and model["ir_version"] == 8


def test_budget_exceeded_is_reported_as_incomplete(tmp_path, monkeypatch):
    monkeypatch.setattr(OnnxScanner, "read_limits", ReadLimits(max_fields=100))
    nodes = [helper.make_node("Relu", ["X"], ["Y"])] * 100 + [helper.make_node("PyOp", ["X"], ["Y"], domain="d")]
    result = scan(_save(tmp_path, _model(nodes)))
    assert _issues(result, "MA-O009") and result["incomplete_files"]
    assert not _issues(result, "MA-O004")  # beyond the budget: not seen, and the file is marked incomplete


def test_reader_scalar_kinds_packing_and_merging():
    """The generic reader (shared with other protobuf formats) against hand-encoded bytes."""
    inner = Message("Inner").define(a=(1, "int"), b=(2, "int", REPEATED))
    outer = Message("Outer").define(
        s=(1, "sint"), flag=(2, "bool"), d=(3, "double"), f=(4, "float"), q=(5, "fixed64"),
        nums=(6, "int", REPEATED), neg=(7, "int"), text=(8, "string"), inner=(9, inner), n=(10, "float", COUNT),
        blob=(11, "bytes"))
    data = (_field(1, 5, 0) + _field(2, 1, 0) + _varint(3 << 3 | 1) + struct.pack("<d", 1.5)
            + _varint(4 << 3 | 5) + struct.pack("<f", 2.5) + _varint(5 << 3 | 1) + struct.pack("<Q", 7)
            + _field(6, _varint(1) + _varint(300)) + _field(6, 9, 0) + _field(7, (1 << 64) - 2, 0)
            + _field(8, "é".encode() * 10) + _field(9, _field(1, 1, 0) + _field(2, 4, 0))
            + _field(9, _field(2, 5, 0)) + _field(10, b"\0" * 12) + _varint(10 << 3 | 5) + b"\0" * 4
            + _field(11, b"xyz")
            + _field(99, b"unknown") + _field(1, b"wrong wire type is skipped"))
    reader = Reader(data, ReadLimits(max_string=6))
    out, error = reader.decode(outer)
    assert error is None
    assert (out["s"], out["flag"], out["d"], out["f"], out["q"]) == (-3, True, 1.5, 2.5, 7)
    assert out["nums"] == [1, 300, 9] and out["neg"] == -2 and out["text"] == "ééé" and reader.truncated == 1
    assert out["inner"] == {"a": 1, "b": [4, 5]} and out["n"] == 4
    assert out["blob"].length == 3 and data[out["blob"].start:out["blob"].end] == b"xyz"


# --- hostile sizes found by mutation ------------------------------------------------------------
def test_external_offset_of_thousands_of_digits_is_a_finding(tmp_path):
    """int() refuses strings past 4300 digits: the number is judged before it is converted."""
    (tmp_path / "w.bin").write_bytes(bytes(16))
    model = _model([helper.make_node("Relu", ["X"], ["Y"])], [_external("W", "w.bin", offset="1" * 5000, length=16)])
    result = scan(_save(tmp_path, model))
    (issue,) = _issues(result, "MA-O006")
    assert "is not a non-negative integer of at most 40 digits" in issue["message"]
    assert not _issues(result, "MA-S005") and not result["has_errors"]


def test_packed_dims_are_budgeted_before_they_are_built():
    """A packed run of a million dims: the budget stops it before a million ints are made."""
    tensor = _field(1, b"\x01" * 1_000_000) + _field(2, 1, 0) + _field(8, b"T")
    data = b"\x08\x08" + _field(7, _field(5, tensor)) + OPSET
    tracemalloc.start()
    with pytest.raises(BudgetExceeded):
        Reader(data, ReadLimits(max_fields=1000)).decode(MODEL)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2 * 1024 * 1024  # the list of values alone would take 8 MB


def test_packed_dims_check_the_deadline_as_they_are_read():
    ticks = []
    tensor = _field(1, b"\x01" * 100_000) + _field(2, 1, 0) + _field(8, b"T")
    data = b"\x08\x08" + _field(7, _field(5, tensor)) + OPSET
    model, error = Reader(data, tick=lambda: ticks.append(1)).decode(MODEL)
    assert error is None and len(model["graph"]["initializer"][0]["dims"]) == 100_000
    assert len(ticks) >= 20  # a deadline that passes inside one long run is noticed
