"""XGBoost / LightGBM / CatBoost native models: real writers are clean; crafted structures are findings."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import flatbuffers
import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb

from modelaudit.detect import detect_path
from tests.conftest import codes, findings, scan


def _data(classes: int = 2):
    rng = np.random.default_rng(0)
    X = rng.random((120, 4))
    return X, (X[:, 0] * classes).astype(int).clip(0, classes - 1)


def _xgb(path, params: dict | None = None, rounds: int = 3) -> str:
    X, y = _data(3 if (params or {}).get("num_class") else 2)
    booster = xgb.train({"max_depth": 2, "objective": "binary:logistic", **(params or {})},
                        xgb.DMatrix(X, y), rounds)
    booster.set_attr(note="trained for the test suite")
    booster.save_model(str(path))
    return str(path)


def _lgb(path, params: dict | None = None) -> str:
    X, y = _data(3 if (params or {}).get("num_class") else 2)
    model = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4, **(params or {})},
                      lgb.Dataset(X, y), 3)
    model.save_model(str(path))
    return str(path)


@pytest.mark.parametrize("name", ["model.json", "model.ubj", "model.bst"])
@pytest.mark.parametrize("params", [{}, {"objective": "multi:softprob", "num_class": 3}, {"booster": "dart"},
                                    {"booster": "gblinear"}], ids=["gbtree", "multiclass", "dart", "gblinear"])
def test_real_xgboost_models_are_clean(tmp_path, name, params):
    path = _xgb(tmp_path / name, params)
    assert detect_path(path).format in ("xgboost_json", "xgboost_ubj")
    result = scan(path)
    assert findings(result) == [] and result["has_errors"] is False
    assert result["scanner_names"] == ["xgboost"]


@pytest.mark.parametrize("params", [{}, {"objective": "multiclass", "num_class": 3}], ids=["binary", "multiclass"])
@pytest.mark.parametrize("name", ["model.txt", "model.model"])
def test_real_lightgbm_models_are_clean(tmp_path, name, params):
    path = _lgb(tmp_path / name, params)
    assert detect_path(path).format == "lightgbm"
    result = scan(path)
    assert findings(result) == [] and result["has_errors"] is False


def test_ordinary_json_with_learner_key_stays_quiet(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"learner": {"lr": 0.1, "momentum": 0.9}, "epochs": 3}))
    result = scan(path)
    assert findings(result) == [] and "xgboost" not in result["scanner_names"]


def _edit_json(tmp_path, edit) -> str:
    path = _xgb(tmp_path / "model.json")
    model = json.loads(open(path).read())
    edit(model)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(model))
    return str(bad)


def _trees(model):
    return model["learner"]["gradient_booster"]["model"]


@pytest.mark.parametrize("edit,needle", [
    (lambda m: _trees(m)["gbtree_model_param"].update(num_trees="9"), "num_trees is 9"),
    (lambda m: _trees(m)["trees"][0]["left_children"].__setitem__(0, 99999), "out-of-range node index 99999"),
    (lambda m: _trees(m)["trees"][1]["split_conditions"].append(1.0), "split_conditions has"),
    (lambda m: _trees(m)["trees"][1].update(id=7), "has id 7"),
    (lambda m: _trees(m).update(tree_info=[0]), "tree_info has 1"),
    (lambda m: m["learner"]["gradient_booster"].update(name="evil"), "gradient_booster name"),
    (lambda m: m.update(version="latest"), "'version'"),
    (lambda m: _trees(m)["trees"][0]["tree_param"].update(num_nodes="-4"), "num_nodes"),
])
def test_malformed_xgboost_json(tmp_path, edit, needle):
    result = scan(_edit_json(tmp_path, edit))
    hits = [i for i in result["issues"] if i["rule_code"] == "MA-X121"]
    assert hits and any(needle in i["message"] for i in hits), [i["message"] for i in result["issues"]]


@pytest.mark.parametrize("field", ["num_nodes", "num_trees"])
def test_xgboost_counts_of_infinity_are_findings_not_errors(tmp_path, field):
    # json.loads reads 1e400 as infinity, which int() refuses with OverflowError
    def edit(model):
        target = _trees(model)["trees"][0]["tree_param"] if field == "num_nodes" else \
            _trees(model)["gbtree_model_param"]
        target[field] = "@INF@"

    path = _edit_json(tmp_path, edit)
    with open(path) as fh:
        text = fh.read().replace('"@INF@"', "1e400")
    with open(path, "w") as fh:
        fh.write(text)
    result = scan(path)
    assert "MA-S005" not in codes(result)
    assert any(field in i["message"] for i in result["issues"] if i["rule_code"] == "MA-X121"), result["issues"]


def test_xgboost_attributes_with_code_and_credentials(tmp_path):
    path = _edit_json(tmp_path, lambda m: m["learner"]["attributes"].update(
        hook="__import__('os').system('id')", key="AKIAABCDEFGHIJKLMNOP"))
    assert {"MA-C001", "MA-C002"} <= codes(scan(path))


def test_truncated_and_padded_ubjson(tmp_path):
    raw = open(_xgb(tmp_path / "m.ubj"), "rb").read()
    (tmp_path / "cut.ubj").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "pad.ubj").write_bytes(raw + b"\x00hidden")
    cut = scan(tmp_path / "cut.ubj")
    assert "MA-X121" in codes(cut) and cut["has_errors"] is True
    assert any("bytes follow" in i["message"] for i in scan(tmp_path / "pad.ubj")["issues"])


def test_ubjson_length_bomb(tmp_path):
    path = tmp_path / "bomb.ubj"
    path.write_bytes(b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner[$d#L\x7f\xff\xff\xff\xff\xff\xff\xff}")
    assert "MA-X121" in codes(scan(path))


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xgboost"
LEGACY = sorted(FIXTURES.glob("*.model"))
LEFT = -(1 << 31)  # a node's parent field has the top bit set when the node is its parent's left child


def _stump(leaf: float = 0.25) -> list[tuple]:
    """(parent, left, right, split index, value): a root split on feature 0 and two leaves."""
    return [(-1, 1, 2, 0, 0.5), (LEFT | 0, -1, -1, 0, leaf), (0, -1, -1, 0, -leaf)]


def _tree(nodes: list[tuple], num_deleted: int = 0, num_nodes: int | None = None, leaf_vector: int = 0) -> bytes:
    param = struct.pack("<6i", 1, len(nodes) if num_nodes is None else num_nodes, num_deleted, 1, 4, leaf_vector)
    body = b"".join(struct.pack("<iiiIf", *node) for node in nodes)
    return param.ljust(148, b"\0") + body + b"\0" * 16 * len(nodes)


def _text(raw: bytes) -> bytes:
    return struct.pack("<Q", len(raw)) + raw


def _floats(count: int) -> bytes:
    return struct.pack(f"<Q{count}f", count, *[0.5] * count)


def _legacy(trees: list[bytes] | None = None, objective: bytes = b"binary:logistic", gbm: bytes = b"gbtree",
            magic: bytes = b"binf", attrs: dict | None = None, num_trees: int | None = None,
            tree_info: list[int] | None = None, booster_body: bytes | None = None, weight_drop: int | None = None,
            tail: bytes = b"") -> bytes:
    """A legacy binary model built byte by byte (xgboost 1.x layout: magic, version 1.7, attributes)."""
    trees = [_tree(_stump()), _tree(_stump(-0.5))] if trees is None else trees
    attrs = {"note": "built byte by byte"} if attrs is None else attrs
    header = struct.pack("<fIiiiII", 0.5, 4, 0, 1 if attrs else 0, 0, 1, 7).ljust(136, b"\0")
    if booster_body is None:
        booster_body = struct.pack("<i", len(trees) if num_trees is None else num_trees).ljust(160, b"\0")
        booster_body += b"".join(trees) + b"".join(struct.pack("<i", g) for g in tree_info or [0] * len(trees))
        if gbm == b"dart":
            booster_body += _floats(len(trees) if weight_drop is None else weight_drop)
    pairs = b"".join(_text(k.encode()) + _text(v.encode()) for k, v in attrs.items())
    extra = struct.pack("<Q", len(attrs)) + pairs if attrs else b""
    return magic + header + _text(objective) + _text(gbm) + booster_body + extra + tail


def _gblinear(weights: int) -> bytes:
    body = b"\0" * 136 + _floats(weights)
    return _legacy(gbm=b"gblinear", booster_body=body)


def _first_node(raw: bytes) -> int:
    """Offset of the first tree's first node in a gbtree model."""
    pos = (4 if raw[:4] == b"binf" else 0) + 136
    for _ in range(2):
        pos += 8 + struct.unpack_from("<Q", raw, pos)[0]
    return pos + 160 + 148


def _x(result: dict, rule: str) -> list[str]:
    return [i["message"] for i in result["issues"] if i["rule_code"] == rule]


def test_legacy_fixtures_are_present():
    assert {p.name.split("_", 1)[0] for p in LEGACY} == {"xgb090", "xgb17", "xgb21"} and len(LEGACY) == 18


@pytest.mark.parametrize("path", LEGACY, ids=[p.stem for p in LEGACY])
def test_legacy_binary_written_by_xgboost_is_clean(path):
    """Models saved by xgboost 0.90, 1.7.6 and 2.1.4 (tests/fixtures/xgboost/generate.py): every tree walked."""
    assert detect_path(str(path)).format == "xgboost_binary"
    result = scan(path)
    assert findings(result) == [] and result["has_errors"] is False and result["scanner_names"] == ["xgboost"]
    check = next(c for c in result["checks"] if c["name"] == "xgboost binary structure")
    assert check["status"] == "passed"
    if "gblinear" not in path.name:
        trees = 12 if "multiclass" in path.name else 4
        assert f" {trees} trees" in check["message"] and " 0 nodes" not in check["message"]
    assert result["bytes_scanned"] == path.stat().st_size


def test_legacy_fixture_with_deleted_nodes_is_walked():
    from modelaudit.scanners._xgboost_binary import read_legacy

    for path in FIXTURES.glob("*_binary_pruned.model"):
        raw = path.read_bytes()
        pos, deleted = _first_node(raw) - 148, 0
        for _ in range(4):
            _, nodes, dead = struct.unpack_from("<3i", raw, pos)
            deleted, pos = deleted + dead, pos + 148 + 36 * nodes
        summary = read_legacy(raw, lambda: None)
        assert deleted > 0 and summary.problems == [] and summary.nodes_checked > 50


def test_byte_built_legacy_models_are_clean(tmp_path):
    for name, raw in {"a.model": _legacy(), "b.bst": _legacy(magic=b""), "c.model": _legacy(gbm=b"dart"),
                      "d.model": _gblinear(5), "e.model": _legacy(trees=[], attrs={})}.items():
        (tmp_path / name).write_bytes(raw)
        assert detect_path(str(tmp_path / name)).format == "xgboost_binary"
        result = scan(tmp_path / name)
        assert findings(result) == [] and result["has_errors"] is False, (name, result["issues"])
    notes = tmp_path / "notes.txt"
    notes.write_text("binfmt_misc notes: nothing to see\n")
    assert detect_path(str(notes)).format == "text"


_LOOP = [(-1, 1, 2, 0, 0.5), (LEFT | 0, 3, 1, 1, 0.5), (0, -1, -1, 0, 0.1), (LEFT | 1, -1, -1, 0, 0.2)]
_DEAD = [(-1, 1, 2, 0, 0.5), (LEFT | 0, -1, -1, 0, 0.1), (0, -1, -1, 0xFFFFFFFF, 0.2)]


@pytest.mark.parametrize("raw,rule,needle", [
    (b"binf" + b"\0" * 60, "MA-X121", "learner parameters needs 136 bytes"),
    (_legacy(num_trees=1 << 30), "MA-X121", "declare 1073741824 trees"),
    (_legacy(trees=[_tree(_stump(), num_nodes=1 << 28)]), "MA-X121", "declares 268435456 nodes"),
    (_legacy(trees=[_tree(_stump(), num_nodes=-3)]), "MA-X121", "declares -3 nodes"),
    (_legacy(trees=[_tree(_stump(), leaf_vector=5)]), "MA-X121", "size_leaf_vector=5"),
    (_legacy()[:-80], "MA-X121", "declares 3 nodes but only 82 bytes remain"),
    (_legacy(trees=[_tree([(-1, 1, 99, 0, 0.5)] + _stump()[1:])]), "MA-X125", "child 99 outside nodes 1..2"),
    (_legacy(trees=[_tree([(-1, 0, 2, 0, 0.5)] + _stump()[1:])]), "MA-X125", "child 0 outside"),
    (_legacy(trees=[_tree(_LOOP)]), "MA-X125", "node 1 points back to node 1"),
    (_legacy(trees=[_tree(_DEAD, num_deleted=1)]), "MA-X125", "node 2 is reachable but marked deleted"),
    (_legacy(trees=[_tree(_DEAD)]), "MA-X121", "num_deleted is 0 but 1 nodes"),
    (_legacy(trees=[_tree(_stump() + [(-1, -1, -1, 0, 1.0)])]), "MA-X121", "node 3 is neither reachable"),
    (_legacy(trees=[_tree([(-1, 1, 2, 0, 0.5), (0, -1, -1, 0, 1.0), (LEFT | 0, -1, -1, 0, 1.0)])]), "MA-X125",
     "does not name node 0 as its parent"),
    (_legacy(trees=[_tree([(-1, 1, 2, 77, 0.5)] + _stump()[1:])]), "MA-X125", "splits on feature 77"),
    (_legacy(trees=[_tree(_stump(float("nan")))]), "MA-X121", "has value nan"),
    (_legacy(trees=[_tree(_stump(float("inf")))]), "MA-X121", "has value -inf"),
    (_legacy(trees=[_tree([(-1, 1, 2, 0, float("nan"))] + _stump()[1:])]), "MA-X121", "NaN split condition"),
    (_legacy(tree_info=[0, 5]), "MA-X125", "output group 5"),
    (_legacy(tail=b"#!/bin/sh\necho hidden\n"), "MA-X121", "22 bytes follow the model"),
    (_legacy(objective=b"x" * 300), "MA-X121", "300 bytes long"),
    (_legacy()[:140] + struct.pack("<Q", (1 << 64) - 1) + _legacy()[148:], "MA-X121",
     "objective name at offset 140 is 18446744073709551615 bytes long"),
    (_legacy(gbm=b"evil!!"), "MA-X121", "booster name 'evil!!'"),
    (_legacy(attrs={"k": "v"})[:-9] + struct.pack("<Q", 1 << 40) + b"v", "MA-X121",
     "attribute 'k' length at offset 874 declares 1099511627776 items"),
    (_legacy(attrs={"k": "v"})[:-26] + struct.pack("<Q", 100_001) + b"\0" * 16 * 100_001, "MA-X121",
     "attribute count at offset 857 is 100001 (more than 100000"),
    (_legacy(gbm=b"dart", weight_drop=1), "MA-X121", "weight_drop holds 1 weights for 2 trees"),
    (_gblinear(3), "MA-X125", "gblinear holds 3 weights"),
    (_gblinear(9), "MA-X121", "gblinear holds 9 weights, expected 5"),
])
def test_hostile_legacy_binary(tmp_path, raw, rule, needle):
    path = tmp_path / "hostile.model"
    path.write_bytes(raw)
    assert detect_path(str(path)).format == "xgboost_binary"
    result = scan(path)
    assert any(needle in m for m in _x(result, rule)), result["issues"]


def test_truncated_legacy_binary_is_incomplete(tmp_path, cli):
    raw = (FIXTURES / "xgb17_multiclass.model").read_bytes()
    for cut in (160, len(raw) // 2, len(raw) - 3):
        (tmp_path / f"cut{cut}.model").write_bytes(raw[:cut])
        result = scan(tmp_path / f"cut{cut}.model")
        assert _x(result, "MA-X121") and result["has_errors"] is True
    run = cli("scan", str(tmp_path / f"cut{len(raw) // 2}.model"))
    assert run.code == 1 and "1 incomplete" in run.stdout  # a warning outranks the incomplete outcome


def test_real_legacy_models_with_hostile_edits(tmp_path, cli):
    raw = bytearray((FIXTURES / "xgb090_regression.model").read_bytes())
    node = _first_node(bytes(raw))
    assert struct.unpack_from("<iii", raw, node) == (-1, 1, 2)
    out_of_range, loop = bytearray(raw), bytearray(raw)
    struct.pack_into("<i", out_of_range, node + 4, 4000)  # root's left child far past the node array
    struct.pack_into("<i", loop, node + 20 + 8, 1)  # node 1 (a split) sends its right branch back to itself
    for name, data, needle in (("oor.model", out_of_range, "child 4000"), ("loop.model", loop, "points back")):
        (tmp_path / name).write_bytes(bytes(data))
        result = scan(tmp_path / name)
        assert any(needle in m for m in _x(result, "MA-X125")), result["issues"]
        assert cli("scan", str(tmp_path / name)).code == 1
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(bytes(raw) + b"\x00" * 7)
    assert any("7 bytes follow" in m for m in _x(scan(garbage), "MA-X121"))


def test_legacy_attributes_with_code_and_credentials(tmp_path):
    path = tmp_path / "attrs.model"
    path.write_bytes(_legacy(attrs={"hook": "__import__('os').system('echo hi')", "key": "AKIAABCDEFGHIJKLMNOP"}))
    assert {"MA-C001", "MA-C002"} <= codes(scan(path))


def test_legacy_node_budget(tmp_path, monkeypatch):
    from modelaudit.scanners import boosters
    from modelaudit.scanners._xgboost_binary import read_legacy

    raw = (FIXTURES / "xgb17_multiclass.model").read_bytes()
    summary = read_legacy(raw, lambda: None, node_budget=10)
    assert summary.trees == 12 and summary.trees_unwalked > 0 and summary.nodes_checked <= 10
    assert summary.problems == [] and summary.bytes_read == len(raw)  # unwalked trees are still sized
    monkeypatch.setattr(boosters, "NODE_BUDGET", 10)
    path = tmp_path / "many.model"
    path.write_bytes(raw)
    result = scan(path)
    assert _x(result, "MA-X124") and result["has_errors"] is True and not _x(result, "MA-X121")


def test_pickle_renamed_bst_is_still_a_pickle(tmp_path):
    import pickle

    path = tmp_path / "model.bst"
    path.write_bytes(pickle.dumps({"weights": [0.5, 0.25]}, protocol=2))
    assert detect_path(str(path)).format == "pickle"
    assert "pickle" in scan(path)["scanner_names"]


def _edit_lgb(tmp_path, edit) -> str:
    text = open(_lgb(tmp_path / "model.txt")).read()
    bad = tmp_path / "bad.txt"
    bad.write_text(edit(text))
    return str(bad)


@pytest.mark.parametrize("edit,needle", [
    (lambda t: t.replace("tree_sizes=", "tree_sizes=9999 ", 1), "tree_sizes lists"),
    (lambda t: t.replace("shrinkage=1\n", "shrinkage=1\n" + "#" * 40 + "\n", 1), "tree_sizes says tree 0"),
    (lambda t: t.replace("num_leaves=3", "num_leaves=30", 1), "leaf_value has"),
    (lambda t: t.replace("left_child=1 ", "left_child=77 ", 1), "out of range"),
    (lambda t: t.replace("split_feature=0", "split_feature=999", 1), "split_feature 999"),
    (lambda t: t.split("end of trees")[0], "end of trees"),
    (lambda t: t.replace("version=v4", "version=v99", 1), "unknown model version"),
    (lambda t: t.replace("max_feature_idx=3", "max_feature_idx=x", 1), "max_feature_idx"),
    (lambda t: t.replace("Tree=1", "Tree=5", 1), "labelled Tree=5"),
])
def test_malformed_lightgbm(tmp_path, edit, needle):
    result = scan(_edit_lgb(tmp_path, edit))
    hits = [i for i in result["issues"] if i["rule_code"] == "MA-X122"]
    assert hits and any(needle in i["message"] for i in hits), [i["message"] for i in result["issues"]]


def _catboost(version: str = "FlabuffersModel_v1", info: dict | None = None) -> bytes:
    b = flatbuffers.Builder(256)
    entries = []
    for key, value in (info or {}).items():
        k, v = b.CreateString(key), b.CreateString(value)
        b.StartObject(2)
        b.PrependUOffsetTRelativeSlot(0, k, 0)
        b.PrependUOffsetTRelativeSlot(1, v, 0)
        entries.append(b.EndObject())
    b.StartVector(4, len(entries), 4)
    for e in reversed(entries):
        b.PrependUOffsetTRelative(e)
    vec = b.EndVector()
    s = b.CreateString(version)
    b.StartObject(4)
    b.PrependUOffsetTRelativeSlot(0, s, 0)
    b.PrependUOffsetTRelativeSlot(2, vec, 0)
    b.Finish(b.EndObject())
    core = bytes(b.Output())
    return b"CBM1" + struct.pack("<I", len(core)) + core


def _cbm(path, kind: str = "numeric", metadata: dict | None = None) -> str:
    """A small model written by CatBoost itself: numeric or categorical features, regression or multiclass."""
    import catboost
    import pandas as pd

    X, y = _data(3 if kind == "multiclass" else 2)
    options = {"iterations": 5, "depth": 2, "verbose": False, "allow_writing_files": False, "random_seed": 0,
               "thread_count": 1}
    if kind == "categorical":
        frame = pd.DataFrame({"x": X[:, 0], "colour": np.array(["red", "green", "blue"])[(X[:, 1] * 3).astype(int)]})
        model = catboost.CatBoostClassifier(**options).fit(frame, y, cat_features=["colour"])
    elif kind == "regression":
        model = catboost.CatBoostRegressor(**options).fit(X, X[:, 1])
    else:
        loss = "MultiClass" if kind == "multiclass" else "Logloss"
        model = catboost.CatBoostClassifier(loss_function=loss, **options).fit(X, y)
    for key, value in (metadata or {}).items():
        model.get_metadata()[key] = value
    model.save_model(str(path))
    return str(path)


@pytest.mark.parametrize("kind", ["numeric", "categorical", "regression", "multiclass"])
def test_catboost_models_written_by_catboost_are_clean(tmp_path, kind):
    path = _cbm(tmp_path / "model.cbm", kind, {"owner": "ml-team", "url": "https://example.org/model-card"})
    assert detect_path(path).format == "catboost"
    result = scan(path)
    assert findings(result) == [] and not result["has_errors"] and result["assets"][0]["type"] == "catboost"


def test_catboost_written_by_catboost_with_hostile_edits(tmp_path):
    cred = _cbm(tmp_path / "cred.cbm", metadata={"note": "AKIAABCDEFGHIJKLMNOP"})
    assert "MA-C002" in codes(scan(cred))
    data = (tmp_path / "cred.cbm").read_bytes()
    cut = tmp_path / "cut.cbm"
    cut.write_bytes(data[:len(data) // 2])  # truncated: the core size now runs past the end
    assert any("core size" in i["message"] for i in scan(cut)["issues"] if i["rule_code"] == "MA-X123")
    lying = tmp_path / "lying.cbm"
    core = struct.unpack_from("<I", data, 4)[0]
    lying.write_bytes(data[:8] + struct.pack("<I", core * 4) + data[12:])  # root offset past the core
    assert any("flatbuffer" in i["message"] for i in scan(lying)["issues"] if i["rule_code"] == "MA-X123")


def test_catboost(tmp_path):
    good = tmp_path / "model.cbm"
    good.write_bytes(_catboost(info={"params": '{"loss_function": "Logloss"}'}))
    assert detect_path(str(good)).format == "catboost"
    assert findings(scan(good)) == []
    big = tmp_path / "big.cbm"
    big.write_bytes(b"CBM1" + struct.pack("<I", 1 << 30) + b"\x00" * 64)
    assert any("core size" in i["message"] for i in scan(big)["issues"])
    broken = tmp_path / "broken.cbm"
    broken.write_bytes(b"CBM1" + struct.pack("<I", 16) + struct.pack("<I", 4000) + b"\x00" * 12)
    assert any("flatbuffer" in i["message"] for i in scan(broken)["issues"] if i["rule_code"] == "MA-X123")
    cred = tmp_path / "cred.cbm"
    cred.write_bytes(_catboost(info={"note": "AKIAABCDEFGHIJKLMNOP"}))
    assert "MA-C002" in codes(scan(cred))
    odd = tmp_path / "odd.cbm"
    odd.write_bytes(_catboost(version="\x01\x02bad"))
    assert "MA-X123" in codes(scan(odd))
