"""XGBoost / LightGBM / CatBoost native models: real writers are clean; crafted structures are findings."""

from __future__ import annotations

import json
import struct

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


def _legacy(objective: bytes = b"binary:logistic", gbm: bytes = b"gbtree", magic: bytes = b"binf") -> bytes:
    header = struct.pack("<fIi", 0.5, 4, 0).ljust(136, b"\x00")
    names = struct.pack("<Q", len(objective)) + objective + struct.pack("<Q", len(gbm)) + gbm
    return magic + header + names + b"\x00" * 200


def test_legacy_binary_header(tmp_path):
    good, bare, bad = tmp_path / "a.model", tmp_path / "b.bst", tmp_path / "c.model"
    good.write_bytes(_legacy())
    bare.write_bytes(_legacy(magic=b""))
    bad.write_bytes(_legacy(gbm=b"evil!!"))
    assert detect_path(str(bare)).format == "xgboost_binary"
    assert findings(scan(good)) == [] and findings(scan(bare)) == []
    assert "MA-X121" in codes(scan(bad))
    notes = tmp_path / "notes.txt"
    notes.write_text("binfmt_misc notes: nothing to see\n")
    assert detect_path(str(notes)).format == "text"


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
