"""False positives fixed on honest files, and the dangerous siblings that must stay caught.

The honest files themselves are in the benign corpus (tests/benign/conftest.py: sk_callables,
torch_module_hooks, torch_quantized_lstm, torch_export.pt2, pandas_frame.pkl). Here: the exact
allowlist does not widen to neighbours, functools.partial and torch.ScriptObject are judged by
their arguments and state, and a .pt2 program that runs code is reported.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import pytest

from modelaudit.scanners.pickle_policy import Level, classify
from tests.conftest import findings, scan


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def _pickle(*parts: bytes) -> bytes:
    return b"\x80\x02" + b"".join(parts) + b"."


def _codes(path: Path, severity: str = "warning") -> set[str]:
    return {i["rule_code"] for i in findings(scan(path), severity)}


@pytest.mark.parametrize("target", [
    "numpy.log1p", "numpy.expm1", "sklearn.metrics._classification.f1_score",
    "sklearn.compose._column_transformer.make_column_selector", "sklearn.utils.validation.check_array",
    "torch.nn.utils.weight_norm.WeightNorm", "torch.nn.utils.prune.L1Unstructured",
    "torch._dynamo.decorators._DimRange", "torch.distributions.normal.Normal", "pandas.DataFrame",
    "scipy.sparse._lil.lil_matrix", "__builtin__.xrange",
])
def test_honest_callables_are_allowed(target):
    module, _, name = target.rpartition(".")
    assert classify(module, name).level is Level.SAFE


@pytest.mark.parametrize("target", [
    "numpy.load", "numpy.fromfile", "sklearn.metrics._scorer.get_scorer", "sklearn.utils.validation.column_or_1d",
    "torch._dynamo.eval_frame.optimize", "torch.nn.utils.prune.global_unstructured", "pandas.read_pickle",
    "pandas.eval", "torch.distributions.kl.register_kl", "__builtin__.reduce", "__builtin__.eval",
    "xgboost.tracker.RabitTracker", "xgboost.collective.CommunicatorContext",
])
def test_neighbours_of_allowed_names_are_not(target):
    module, _, name = target.rpartition(".")
    assert classify(module, name).level is not Level.SAFE


@pytest.mark.parametrize("name,payload", [
    ("wraps_os_system", _pickle(_g("functools", "partial"), _g("os", "system"), _s("echo hi"), b"\x86R")),
    ("wraps_unknown", _pickle(_g("functools", "partial"), _g("acme.tools", "run"), b"\x85R")),
    ("state_swaps_function", _pickle(_g("functools", "partial"), _g("sklearn.utils.validation", "check_array"),
                                     b"\x85R(", _g("acme.tools", "run"), b")}Nt", b"b")),
    ("passed_as_data", _pickle(_g("collections", "OrderedDict"), b"(", _g("functools", "partial"), b"tR")),
    ("partial_of_partial", _pickle(_g("functools", "partial"), _g("functools", "partial"), b"\x85R")),
])
def test_partial_around_anything_but_an_allowlisted_function_is_critical(tmp_path, name, payload):
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(payload)
    critical = findings(scan(path), "critical")
    assert any(i["rule_code"] == "MA-P001" and "functools.partial" in i["message"] for i in critical), critical


def test_partial_of_an_allowlisted_function_is_quiet(tmp_path):
    import functools

    import numpy as np

    path = tmp_path / "partial.pkl"
    path.write_bytes(pickle.dumps(functools.partial(np.clip, a_min=0, a_max=1), protocol=2))
    result = scan(path)
    assert not result["issues"] and result["has_errors"] is False


@pytest.mark.parametrize("name,payload", [
    ("foreign_class", _pickle(_g("torch", "ScriptObject"), b")\x81(", _s("x"),
                              _s("__torch__.torch.classes.acme.Runner"), b"tb")),
    ("no_class_name", _pickle(_g("torch", "ScriptObject"), b")\x81", _s("x"), b"b")),
    ("with_arguments", _pickle(_g("torch", "ScriptObject"), b"(", _s("x"), b"t\x81")),
])
def test_script_object_outside_pytorchs_own_classes_is_critical(tmp_path, name, payload):
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(payload)
    critical = findings(scan(path), "critical")
    assert any("torch.ScriptObject" in i["message"] for i in critical), critical


# ------------------------------------------------------------------------------------ .pt2
@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    import torch
    from torch import nn

    class Reshape(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.view(x.shape[0] * 2, -1) if x.shape[0] > 4 else x

    path = tmp_path_factory.mktemp("pt2") / "program.pt2"
    program = torch.export.export(nn.Sequential(nn.Linear(4, 4), Reshape()), (torch.randn(6, 4),),
                                  dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(program, path)
    return path


def _rewrite(src: Path, dst: Path, edit=None, extra: dict[str, bytes] | None = None) -> Path:  # noqa: ANN001
    """Copy the archive with Python's zipfile (not torch's writer): torch.export.load reads it all the same."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if edit and info.filename.endswith("/models/model.json"):
                program = json.loads(data)
                edit(program)
                data = json.dumps(program).encode()
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def test_honest_export_rewritten_by_zipfile_is_clean(exported, tmp_path):
    result = scan(_rewrite(exported, tmp_path / "copy.pt2"))
    assert not findings(result, "warning") and result["has_errors"] is False


def _first_node(program: dict) -> dict:
    return program["graph_module"]["graph"]["nodes"][0]


def _replace_expr(program: dict, text: str) -> None:
    dumped = json.dumps(program)
    start = dumped.index('"expr_str": "') + len('"expr_str": "')
    end = dumped.index('"', start)
    program.clear()
    program.update(json.loads(dumped[:start] + json.dumps(text)[1:-1] + dumped[end:]))


@pytest.mark.parametrize("name,edit,code", [
    ("target_torch_attribute", lambda p: _first_node(p).update(target="torch.hub.load"), "MA-T002"),
    ("target_operator", lambda p: _first_node(p).update(target="_operator.attrgetter"), "MA-T002"),
    ("custom_namespace", lambda p: _first_node(p).update(target="torch.ops.acme.fused.default"), "MA-H008"),
    ("guard_exec", lambda p: p.update(guards_code=["__import__('os').system('echo hi') == 0"]), "MA-T002"),
    ("sympify_import", lambda p: _replace_expr(p, "__import__('os').system('echo hi')"), "MA-T002"),
    ("sympify_S", lambda p: _replace_expr(p, "S(\"__import__('os').getcwd()\")"), "MA-T002"),
    # sympy functions sympify their string arguments: the code hides in a constant
    ("sympify_string_argument", lambda p: _replace_expr(p, "Max(\"__import__('os').system('echo hi')\", 0)"),
     "MA-T002"),
])
def test_pt2_program_strings_that_run_code_are_reported(exported, tmp_path, name, edit, code):
    assert code in _codes(_rewrite(exported, tmp_path / f"{name}.pt2", edit))


def test_pt2_pickled_members_are_scanned(exported, tmp_path):
    root = zipfile.ZipFile(exported).namelist()[0].split("/")[0]
    payload = _pickle(_g("os", "system"), _s("echo hi"), b"\x85R")
    path = _rewrite(exported, tmp_path / "opaque.pt2", extra={f"{root}/data/constants/opaque_obj_0": payload})
    assert "MA-P001" in _codes(path, "critical")


def _reduce2(func: bytes, *args: bytes) -> bytes:
    return func + b"(" + b"".join(args) + b"tR"


def test_methods_and_timezones_pickled_through_getattr_are_clean(tmp_path):
    """Python pickles methods and ZoneInfo timezones as getattr(cls, name): honest, when cls is allowlisted."""
    import datetime
    import zoneinfo

    pd = pytest.importorskip("pandas")
    value = {"when": datetime.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
             "stamp": pd.Timestamp("2024-01-01", tz="Europe/Paris"), "parse": float.fromhex,
             "frame": pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3, tz="UTC")})}
    for protocol in (2, 4, 5):
        path = tmp_path / f"tz_p{protocol}.pkl"
        path.write_bytes(pickle.dumps(value, protocol=protocol))
        result = scan(path)
        assert not result["issues"], result["issues"]
        assert result["has_errors"] is False


@pytest.mark.parametrize("name,payload,code,names", [
    # a dunder walks from an allowlisted class into the interpreter
    ("dunder", _pickle(_reduce2(_g("builtins", "getattr"), _g("collections", "OrderedDict"), _s("__init__"))),
     "MA-P001", "__init__"),
    # an owner that is not an allowlisted class: the module os, reached through __import__
    ("imported", _pickle(_reduce2(_g("builtins", "getattr"), _reduce2(_g("builtins", "__import__"), _s("os")),
                                  _s("system"))), "MA-P001", "os.system"),
    # an allowlisted class, but the method it names writes files
    ("writer", _pickle(_reduce2(_g("builtins", "getattr"), _g("numpy", "ndarray"), _s("tofile"))),
     "MA-P001", "numpy.ndarray.tofile"),
    # a default argument hides what the lookup returns
    ("default", _pickle(_reduce2(_g("builtins", "getattr"), _g("builtins", "float"), _s("fromhex"),
                                 _g("builtins", "eval"))), "MA-P001", "builtins.getattr"),
])
def test_getattr_outside_plain_methods_of_allowlisted_classes_is_critical(tmp_path, name, payload, code, names):
    path = tmp_path / f"getattr_{name}.pkl"
    path.write_bytes(payload)
    hits = [i for i in findings(scan(path), "critical") if i["rule_code"] == code and names in i["message"]]
    assert hits, scan(path)["issues"]


def test_getattr_naming_an_unlisted_method_is_critical_naming_it(tmp_path):
    path = tmp_path / "getattr_unlisted.pkl"
    path.write_bytes(_pickle(_reduce2(_g("builtins", "getattr"), _g("builtins", "dict"), _s("get"))))
    result = scan(path)
    assert any("builtins.dict.get" in i["message"] for i in findings(result, "critical")), result["issues"]


def _ndarray_by_reconstruct() -> bytes:
    """numpy._core.multiarray._reconstruct(numpy.ndarray, (0,), b"b"): how every pickled array starts."""
    return _reduce2(_g("numpy._core.multiarray", "_reconstruct"), _g("numpy", "ndarray"), b"K\x00\x85", _s("b"))


@pytest.mark.parametrize("name,owner,method", [
    # unlisted methods of allowlisted classes that write, map or save files
    ("matrix_dump", _g("numpy", "matrix"), "dump"),
    ("scalar_tofile", _reduce2(_g("numpy", "float64"), b"G?\xf0\x00\x00\x00\x00\x00\x00"), "tofile"),
    ("storage_from_file", _g("torch.storage", "UntypedStorage"), "from_file"),
    ("booster_save", _reduce2(_g("xgboost.core", "Booster")), "save_model"),
    # an instance built by a factory is an ndarray, though the walker names it after the factory
    ("factory_tofile", _ndarray_by_reconstruct(), "tofile"),
    # a legacy module record naming an allowlisted class
    ("record_dump", b"(" + _s("module") + _g("numpy", "matrix") + _s("f") + _s("src") + b"tQ", "dump"),
])
def test_getattr_of_an_unlisted_method_then_called_is_critical(tmp_path, name, owner, method):
    path = tmp_path / f"getattr_{name}.pkl"
    path.write_bytes(_pickle(_reduce2(_reduce2(_g("builtins", "getattr"), owner, _s(method)),
                                      _s(str(tmp_path / "written")))))
    assert "MA-P001" in _codes(path, "critical"), scan(path)["issues"]


@pytest.mark.parametrize("zip_format", [True, False])
def test_uninitialised_lazy_module_saved_whole_is_clean(tmp_path, zip_format):
    """Lazy modules keep bound-method hooks: getattr(module, '_infer_parameters'), whose owner is a class
    record (legacy format: a ("module", cls, file, source) persistent id) or an instance."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "lazy.pt"
    torch.save(torch.nn.Sequential(torch.nn.LazyLinear(4), torch.nn.ReLU()), path,
               _use_new_zipfile_serialization=zip_format)
    result = scan(path)
    assert result["issues"] == [] or {i["rule_code"] for i in result["issues"]} <= {"MA-S008"}, result["issues"]
    assert result["has_errors"] is False


def test_getattr_on_a_persistent_object_that_is_not_a_module_record_is_critical(tmp_path):
    pid = b"(X\x07\x00\x00\x00storageX\x01\x00\x00\x00xtQ"  # ("storage", "x") via BINPERSID
    path = tmp_path / "getattr_persistent.pkl"
    path.write_bytes(_pickle(_reduce2(_g("builtins", "getattr"), pid, _s("system"))))
    assert "MA-P001" in _codes(path, "critical")


@pytest.mark.parametrize("module,name", [
    ("numpy", "matrix.dump"), ("numpy", "float64.tofile"), ("torch.storage", "UntypedStorage.from_file"),
    ("torch", "Tensor.save"), ("pathlib", "PurePosixPath.touch"),
])
def test_methods_of_allowlisted_classes_named_directly_by_what_they_do(module, name):
    """Protocol 4 names nested attributes in one global (`numpy` + `matrix.dump`): a method that reads or
    writes files is dangerous whatever class holds it."""
    verdict = classify(module, name)
    assert verdict.level is Level.DANGEROUS and verdict.family == "file-access", verdict


def test_direct_dotted_file_writer_in_a_pickle_is_critical(tmp_path):
    path = tmp_path / "dotted_writer.pkl"
    # STACK_GLOBAL("numpy", "matrix.dump")("/tmp/modelaudit-test")
    path.write_bytes(b"\x80\x04\x8c\x05numpy\x8c\x0bmatrix.dump\x93" + _s("/tmp/modelaudit-test") + b"\x85R.")
    assert "MA-P001" in _codes(path, "critical")
