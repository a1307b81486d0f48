"""The honest corpus: model files written by the real libraries, built once per session.

Every builder writes one small file with the library that owns the format. `CORPUS` maps a
file name to its builder; `pytest_generate_tests` parametrizes any test that asks for
`benign_name` over it, and the session fixture `benign_corpus` builds them all into one
directory (the CLI test scans that directory as a whole).
"""

from __future__ import annotations

import collections
import datetime
import json
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

Builder = Callable[[Path], None]
CORPUS: dict[str, Builder] = {}
OPTIONAL_SKIPS: dict[str, str] = {}  # name -> why it could not be built here


def builds(*names: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        for name in names:
            CORPUS[name] = fn
        return fn
    return register


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "benign_name" in metafunc.fixturenames:
        metafunc.parametrize("benign_name", sorted(CORPUS))


@pytest.fixture(scope="session")
def benign_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("benign_corpus")
    done: set[Builder] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for builder in CORPUS.values():
            if builder not in done:  # one builder may write several files
                done.add(builder)
                builder(root)
    return root


# ------------------------------------------------------------------------------------- torch
def _torch_model():  # noqa: ANN202
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.BatchNorm1d(16), nn.Dropout(0.1), nn.Linear(16, 2))


@builds("torch_state_dict.pt", "pytorch_model.bin", "torch_state_dict_legacy.pt", "torch_module.pt",
        "torch_module_legacy.pth")
def _torch_models(root: Path) -> None:
    import torch

    model = _torch_model()
    torch.save(model.state_dict(), root / "torch_state_dict.pt")
    torch.save(model.state_dict(), root / "pytorch_model.bin")  # the Hugging Face file name
    torch.save(model.state_dict(), root / "torch_state_dict_legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(model, root / "torch_module.pt")
    torch.save(model, root / "torch_module_legacy.pth", _use_new_zipfile_serialization=False)


@builds("torch_optimizer.pt", "torch_checkpoint.ckpt", "torch_checkpoint_legacy.ckpt")
def _torch_training(root: Path) -> None:
    import torch

    model = _torch_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    model(torch.randn(4, 8)).sum().backward()
    optimizer.step()
    scheduler.step()
    torch.save(optimizer.state_dict(), root / "torch_optimizer.pt")
    checkpoint = {"epoch": 3, "global_step": 120, "model_state_dict": model.state_dict(),
                  "optimizer_state_dict": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                  "loss": torch.tensor(0.25), "best_metric": 0.91, "config": {"lr": 1e-3, "layers": [8, 16, 2]}}
    torch.save(checkpoint, root / "torch_checkpoint.ckpt")
    torch.save(checkpoint, root / "torch_checkpoint_legacy.ckpt", _use_new_zipfile_serialization=False)


def _dtype_tensors() -> dict:
    import torch

    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    names = ["float16", "bfloat16", "float64", "int8", "uint8", "int16", "int32", "int64", "bool", "complex64",
             "float8_e4m3fn", "float8_e5m2"]
    return {name: base.to(getattr(torch, name)) for name in names if hasattr(torch, name)}


@builds("torch_dtypes.pt", "torch_dtypes_legacy.pt")
def _torch_dtypes(root: Path) -> None:
    import torch

    tensors = _dtype_tensors()
    tensors["view"] = tensors["float16"][1:, ::2]  # a strided view sharing its storage
    tensors["param"] = torch.nn.Parameter(torch.ones(3))
    torch.save(tensors, root / "torch_dtypes.pt")
    torch.save(tensors, root / "torch_dtypes_legacy.pt", _use_new_zipfile_serialization=False)


@builds("torch_quantized.pt")
def _torch_quantized(root: Path) -> None:
    import torch

    x = torch.randn(4, 4)
    torch.save({"per_tensor": torch.quantize_per_tensor(x, 0.1, 10, torch.quint8),
                "per_channel": torch.quantize_per_channel(x, torch.full((4,), 0.1), torch.zeros(4, dtype=torch.long),
                                                          0, torch.qint8)}, root / "torch_quantized.pt")


@builds("torch_sparse.pt")
def _torch_sparse(root: Path) -> None:
    import torch

    dense = torch.eye(4)
    torch.save({"coo": dense.to_sparse(), "csr": dense.to_sparse_csr()}, root / "torch_sparse.pt")


@builds("torch_tensor_pickle.pkl")
def _torch_tensor_pickle(root: Path) -> None:
    import torch

    # A tensor's plain pickle carries its storage as torch.storage._load_from_bytes(b"<legacy torch.save>").
    (root / "torch_tensor_pickle.pkl").write_bytes(pickle.dumps({"w": torch.arange(6.0), "b": torch.ones(2)}))


@builds("torch_transformer.pt", "torch_transformer_legacy.pt")
def _torch_transformer(root: Path) -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.ModuleDict({
        "embed": nn.Embedding(32, 8), "lstm": nn.LSTM(8, 8, batch_first=True), "gru": nn.GRU(8, 8),
        "encoder": nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 1),
        "conv": nn.Conv2d(3, 4, 3), "norm": nn.GroupNorm(2, 4), "act": nn.GELU(approximate="tanh"),
        "extra": nn.ParameterDict({"scale": nn.Parameter(torch.ones(1))}),
    })
    torch.save(model, root / "torch_transformer.pt")
    torch.save(model, root / "torch_transformer_legacy.pt", _use_new_zipfile_serialization=False)


@builds("torch_training_state.pt")
def _torch_training_state(root: Path) -> None:
    import torch

    layer = torch.nn.Linear(4, 4)
    state: dict = {}
    for opt in (torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9), torch.optim.Adam(layer.parameters()),
                torch.optim.RMSprop(layer.parameters()), torch.optim.LBFGS(layer.parameters())):
        def closure(opt=opt):  # noqa: ANN202
            opt.zero_grad()
            loss = layer(torch.randn(2, 4)).sum()
            loss.backward()
            return loss
        opt.step(closure)
        state[type(opt).__name__] = opt.state_dict()
    sgd = torch.optim.SGD(layer.parameters(), lr=0.1)
    state["onecycle"] = torch.optim.lr_scheduler.OneCycleLR(sgd, 1.0, total_steps=10).state_dict()
    state["plateau"] = torch.optim.lr_scheduler.ReduceLROnPlateau(sgd).state_dict()
    state["scaler"] = torch.amp.GradScaler("cpu").state_dict()
    state["rng"] = torch.get_rng_state()
    state["misc"] = {"size": torch.Size([2, 3]), "device": torch.device("cpu"), "dtype": torch.bfloat16,
                     "version": torch.__version__, "nested": torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]),
                     "channels_last": torch.ones(1, 2, 3, 3).to(memory_format=torch.channels_last),
                     "meta": torch.empty(3, device="meta"), "complex": torch.ones(2, dtype=torch.cfloat)}
    torch.save(state, root / "torch_training_state.pt")


# ------------------------------------------------------------------------------ scikit-learn
def _xy():  # noqa: ANN202
    from sklearn.datasets import make_classification

    return make_classification(n_samples=80, n_features=6, n_informative=4, random_state=0)


def _sk_models() -> dict:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _xy()
    return {
        "pipeline": Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(x, y),
        "forest": RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(x, y),
        "gboost": GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0).fit(x, y),
    }


_COMPRESSIONS = {"": 0, "_zlib": 3, "_gzip": ("gzip", 3), "_bz2": ("bz2", 3), "_xz": ("xz", 3), "_lzma": ("lzma", 3)}
_SK_JOBLIB = [f"sk_{m}{suffix}.joblib" for m in ("pipeline", "forest", "gboost") for suffix in _COMPRESSIONS]
_SK_PICKLE = [f"sk_{m}_p{proto}.pkl" for m in ("pipeline", "forest", "gboost") for proto in (2, 4, 5)]


@builds(*_SK_JOBLIB, *_SK_PICKLE)
def _sklearn(root: Path) -> None:
    import joblib

    for name, model in _sk_models().items():
        for suffix, compress in _COMPRESSIONS.items():
            joblib.dump(model, root / f"sk_{name}{suffix}.joblib", compress=compress)
        for proto in (2, 4, 5):
            (root / f"sk_{name}_p{proto}.pkl").write_bytes(pickle.dumps(model, protocol=proto))


@builds("sk_assorted.joblib", "sk_assorted.pkl")
def _sklearn_assorted(root: Path) -> None:
    import joblib
    import numpy as np
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.feature_selection import SelectKBest
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    x, y = _xy()
    docs = ["apple banana cherry", "banana cherry date", "xray yankee zulu", "zulu zulu yankee"] * 5
    models = {
        "hist_gb": HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "knn": KNeighborsClassifier().fit(x, y),
        "select_knn": make_pipeline(SelectKBest(k=3), KNeighborsClassifier(algorithm="ball_tree")).fit(x, y),
        "grid": GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(x, y),
        "calibrated": CalibratedClassifierCV(LogisticRegression(), cv=2).fit(x, y),
        "onehot": OneHotEncoder(handle_unknown="ignore").fit([["a"], ["b"]]),
        "tfidf": make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(docs, [0, 0, 1, 1] * 5),
        "forest_rs": RandomForestClassifier(n_estimators=2, random_state=np.random.RandomState(0)).fit(x, y),
    }
    joblib.dump(models, root / "sk_assorted.joblib")
    (root / "sk_assorted.pkl").write_bytes(pickle.dumps(models, protocol=4))


# ------------------------------------------------------------------------------------- numpy
_NPY = ["np_float.npy", "np_int.npy", "np_structured.npy", "np_fortran.npy", "np_scalar.npy", "np_large.npy",
        "np_strings.npy", "np_datetime.npy", "np_complex.npy", "np_bool.npy", "np_object.npy"]


@builds(*_NPY, "np_savez.npz", "np_savez_compressed.npz")
def _numpy(root: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = {
        "np_float.npy": rng.standard_normal((10, 7)).astype(np.float32),
        "np_int.npy": np.arange(-50, 50, dtype=np.int64).reshape(10, 10),
        "np_structured.npy": np.array([(1, 2.5, b"ab", (1, 2)), (3, 4.5, b"cd", (3, 4))],
                                      dtype=[("id", "<i4"), ("score", "<f8"), ("tag", "S2"), ("pair", "<i2", (2,))]),
        "np_fortran.npy": np.asfortranarray(rng.standard_normal((6, 5))),
        "np_scalar.npy": np.array(3.5),
        "np_large.npy": rng.standard_normal((512, 512)).astype(np.float32),  # 1 MiB
        "np_strings.npy": np.array(["alpha", "beta", "γάμμα"]),
        "np_datetime.npy": np.array(["2024-01-01", "2024-06-30"], dtype="datetime64[ns]"),
        "np_complex.npy": np.array([1 + 2j, 3 - 4j], dtype=np.complex128),
        "np_bool.npy": np.array([[True, False], [False, True]]),
        "np_object.npy": np.array(["text", 42, {"key": [1, 2.0]}, None, (1, "a")], dtype=object),
    }
    for name, array in arrays.items():
        np.save(root / name, array, allow_pickle=array.dtype.hasobject)
    payload = {"weights": rng.standard_normal((4, 4)), "bias": np.zeros(4, dtype=np.float16), "step": np.array(7)}
    np.savez(root / "np_savez.npz", **payload)
    np.savez_compressed(root / "np_savez_compressed.npz", **payload)


@builds("np_objects.pkl")
def _numpy_objects(root: Path) -> None:
    import numpy as np

    objects = {"generator": np.random.default_rng(0), "pcg_dxsm": np.random.Generator(np.random.PCG64DXSM(1)),
               "philox": np.random.Philox(2), "sfc": np.random.SFC64(3), "legacy": np.random.RandomState(4),
               "seed": np.random.SeedSequence(5), "types": [np.float64, np.int32, np.bool_, np.str_, np.complex64],
               "scalars": [np.float32(1.5), np.int64(2), np.datetime64("2024-01-01")], "dtype": np.dtype("<f4"),
               "masked": np.ma.array([1, 2, 3], mask=[0, 1, 0]), "masked_constant": np.ma.masked,
               "records": np.rec.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]), "matrix": np.matrix([[1, 2]])}
    (root / "np_objects.pkl").write_bytes(pickle.dumps(objects, protocol=4))


# ---------------------------------------------------------------------------- gradient boosting
@builds("xgb_classifier.pkl", "xgb_classifier.joblib", "xgb_booster.pkl", "xgb_booster.joblib")
def _xgboost(root: Path) -> None:
    import joblib
    import xgboost as xgb

    x, y = _xy()
    clf = xgb.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1).fit(x, y)
    booster = xgb.train({"max_depth": 2, "objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(x, label=y),
                        num_boost_round=3)
    (root / "xgb_classifier.pkl").write_bytes(pickle.dumps(clf))
    joblib.dump(clf, root / "xgb_classifier.joblib")
    (root / "xgb_booster.pkl").write_bytes(pickle.dumps(booster))
    joblib.dump(booster, root / "xgb_booster.joblib", compress=3)


@builds("lgbm_classifier.pkl", "lgbm_classifier.joblib", "lgbm_booster.pkl", "lgbm_booster.joblib")
def _lightgbm(root: Path) -> None:
    import joblib
    import lightgbm as lgb

    x, y = _xy()
    clf = lgb.LGBMClassifier(n_estimators=3, num_leaves=4, min_child_samples=5, verbose=-1, n_jobs=1).fit(x, y)
    booster = lgb.train({"objective": "binary", "num_leaves": 4, "verbose": -1, "num_threads": 1},
                        lgb.Dataset(x, label=y), num_boost_round=3)
    (root / "lgbm_classifier.pkl").write_bytes(pickle.dumps(clf))
    joblib.dump(clf, root / "lgbm_classifier.joblib")
    (root / "lgbm_booster.pkl").write_bytes(pickle.dumps(booster))
    joblib.dump(booster, root / "lgbm_booster.joblib", compress=("gzip", 3))


# ------------------------------------------------------------------------------ plain Python
def _plain_data() -> dict:
    return {
        "ordered": collections.OrderedDict([("a", 1), ("b", [1.5, 2.5])]),
        "default": collections.defaultdict(list, {"x": [1, 2]}),
        "counts": collections.Counter("mississippi"),
        "queue": collections.deque([1, 2, 3], maxlen=5),
        "when": datetime.datetime(2024, 5, 17, 12, 30, tzinfo=datetime.timezone.utc),
        "day": datetime.date(2024, 5, 17),
        "span": datetime.timedelta(hours=3),
        "tags": {"alpha", "beta"},
        "frozen": frozenset({1, 2}),
        "blob": b"\x00\x01binary",
        "numbers": (1, 2.0, 3 + 4j, 10**30),
    }


@builds("plain_p0.pkl", "plain_p2.pkl", "plain_p5.pkl", "plain.dill", "config.json")
def _plain(root: Path) -> None:
    import dill

    data = _plain_data()
    for proto in (0, 2, 5):
        (root / f"plain_p{proto}.pkl").write_bytes(pickle.dumps(data, protocol=proto))
    # dill writes the complex number and defaultdict(list) through dill._dill._load_type, an
    # argument-checked helper (scanners/_pickle_relaxations.py); test_benign_corpus.py covers more.
    (root / "plain.dill").write_bytes(dill.dumps(data))
    (root / "config.json").write_text(json.dumps({"architectures": ["Tiny"], "hidden_size": 16}))


# ------------------------------------------------------ honest callables (scanners/_pickle_honest.py)
@builds("sk_callables.joblib", "sk_callables_p2.pkl", "sk_callables_p5.pkl")
def _sklearn_callables(root: Path) -> None:
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor, make_column_selector
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.feature_selection import SelectPercentile, mutual_info_classif
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import GridSearchCV
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    x, y = _xy()
    frame = pd.DataFrame({"num": np.arange(20.0), "cat": ["a", "b"] * 10})
    models = {
        "log1p": FunctionTransformer(np.log1p, inverse_func=np.expm1).fit(np.abs(x)),
        "target_log": TransformedTargetRegressor(Ridge(), func=np.log1p, inverse_func=np.expm1).fit(x, np.abs(y)),
        "scoring": GridSearchCV(LogisticRegression(), {"C": [1.0]}, scoring=["accuracy", "f1"], refit="f1",
                                cv=2).fit(x, y),
        "selector": ColumnTransformer([("n", StandardScaler(), make_column_selector(dtype_include=np.number))]
                                      ).fit(frame),
        "mutual_info": SelectPercentile(mutual_info_classif, percentile=50).fit(x, y),
        # categorical features: the preprocessor keeps functools.partial(check_array, ...)
        "hgb_categorical": HistGradientBoostingRegressor(max_iter=2, categorical_features=[0]).fit(
            np.c_[np.arange(80) % 3, x], y),
    }
    joblib.dump(models, root / "sk_callables.joblib")
    for proto in (2, 5):
        (root / f"sk_callables_p{proto}.pkl").write_bytes(pickle.dumps(models, protocol=proto))


@builds("torch_module_hooks.pt", "torch_module_hooks_legacy.pt")
def _torch_module_hooks(root: Path) -> None:
    import torch
    import torch.nn.utils.prune as prune
    from torch import nn
    from torch.utils.data import ConcatDataset, Subset, TensorDataset

    torch.manual_seed(0)
    pruned = nn.Linear(4, 4)
    prune.l1_unstructured(pruned, "weight", 0.5)
    dataset = TensorDataset(torch.ones(4, 2), torch.zeros(4))
    objects = {
        "weight_norm": nn.utils.weight_norm(nn.Conv1d(2, 2, 3)),  # the old hook style vocoders still ship
        "spectral_norm": nn.utils.spectral_norm(nn.Linear(4, 4)), "pruned": pruned,
        "uninitialized": nn.UninitializedBuffer(), "steps": range(3),  # protocol 2 writes range as xrange
        "datasets": [dataset, Subset(dataset, [0, 1]), ConcatDataset([dataset, dataset])],
        "policy": torch.distributions.Normal(torch.zeros(2), torch.ones(2)),
        "prior": torch.distributions.TransformedDistribution(torch.distributions.Uniform(0.0, 1.0),
                                                             [torch.distributions.transforms.ExpTransform()]),
        "jagged": torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)], layout=torch.jagged),
    }
    torch.save(objects, root / "torch_module_hooks.pt")
    torch.save(objects, root / "torch_module_hooks_legacy.pt", _use_new_zipfile_serialization=False)


@builds("torch_quantized_lstm.pt")
def _torch_quantized_lstm(root: Path) -> None:
    import torch
    from torch import nn

    model = nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 4))
    quantized = torch.ao.quantization.quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=torch.qint8)
    # the LSTM's packed weights are TorchBind objects: torch.ScriptObject + (state, class name)
    torch.save(quantized.state_dict(), root / "torch_quantized_lstm.pt")


@builds("torch_export.pt2")
def _torch_export(root: Path) -> None:
    import torch
    from torch import nn

    class Reshape(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.view(x.shape[0] * 2, -1) if x.shape[0] > 4 else x

    model = nn.Sequential(nn.Linear(4, 4), nn.GELU(), Reshape())
    program = torch.export.export(model, (torch.randn(6, 4),), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    # a zip without data.pkl; its program JSON holds guard lines and sympy expressions
    torch.export.save(program, root / "torch_export.pt2")


@builds("pandas_frame.pkl")
def _pandas_frame(root: Path) -> None:
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    frame = pd.DataFrame({"name": ["a", "b"], "kind": pd.Categorical(["x", "y"]), "when": pd.to_datetime(
        ["2024-01-01", "2024-01-02"]), "n": pd.array([1, None], dtype="Int64")}).set_index(pd.RangeIndex(2))
    data = {"frame": frame, "series": pd.Series([1.0, 2.0], index=pd.date_range("2024", periods=2, freq="D")),
            "lil": sp.lil_matrix(np.eye(2)), "csr_array": sp.csr_array(np.eye(2))}
    (root / "pandas_frame.pkl").write_bytes(pickle.dumps(data, protocol=5))
