"""Gadgets beyond the obvious modules: string evaluators, name resolvers the policy does not list,
vendored and private mirrors of dangerous modules, callables named after what they do, and calls
that change what later opcodes resolve to. Each used to be only an "unknown global" warning."""

from __future__ import annotations

import pytest

from tests.builders import (HARMLESS_CMD, HARMLESS_CODE, callee, ext1, global_, pickle, pop, proto, push, reduce,
                            reduce_pickle, stop, tuple1)
from tests.regressions.corpus import assert_dangerous, assert_warning, case, family, issues, scan_bytes, scan_case

EVAL_EXPR = "__import__('os').system('echo modelaudit-test')"


@case("copyreg_add_extension_then_ext1.pkl")
def copyreg_add_extension_then_ext1() -> bytes:
    """The file registers extension code 240 as posix.system itself, then calls EXT1 240."""
    return pickle(proto(2), global_("copyreg", "add_extension"), push(("posix", "system", 240), 2), reduce(), pop(),
                  ext1(240), push((HARMLESS_CMD,), 2), reduce(), stop())


def test_copyreg_extension_registered_in_the_file(tmp_path):
    finding = assert_dangerous(scan_case(tmp_path, copyreg_add_extension_then_ext1), "copyreg.add_extension")
    assert finding["details"]["family"] == "interpreter-state"


@case("typing_get_type_hints_eval.pkl")
def typing_get_type_hints_eval() -> bytes:
    """type("X", (), {"__annotations__": {"a": <code>}}) then typing.get_type_hints(X): eval() of the string."""
    return pickle(proto(4), callee("typing", "get_type_hints"), callee("builtins", "type"),
                  push(("X", (), {"__annotations__": {"a": EVAL_EXPR}})), reduce(), tuple1(), reduce(), stop())


def test_typing_get_type_hints_evaluates_annotations(tmp_path):
    finding = assert_dangerous(scan_case(tmp_path, typing_get_type_hints_eval), "typing.get_type_hints")
    assert finding["details"]["family"] == "code-evaluation"


@case("unknown_resolver_handed_os_system.pkl")
def unknown_resolver_handed_os_system() -> bytes:
    """An unlisted registry lookup turns "os:system" into the function, which REDUCE then calls."""
    return pickle(proto(4), callee("somepkg.registry", "get_callable"), push(("os:system",)), reduce(),
                  push((HARMLESS_CMD,)), reduce(), stop())


@case("hydra_like_instantiate_dict.pkl")
def hydra_like_instantiate_dict() -> bytes:
    return reduce_pickle("somepkg.utils", "instantiate", {"_target_": "posix.system", "_args_": [HARMLESS_CMD]})


def test_unknown_callable_handed_a_dangerous_name(tmp_path):
    result = scan_case(tmp_path, unknown_resolver_handed_os_system)
    finding = assert_dangerous(result, "os.system")
    assert "is handed the name 'os:system'" in finding["message"]
    assert_dangerous(scan_case(tmp_path, hydra_like_instantiate_dict), "posix.system")


def test_unknown_callable_handed_an_ordinary_name_stays_a_warning(tmp_path):
    result = scan_bytes(tmp_path, reduce_pickle("somepkg", "Thing", "torch.nn.functional.relu"))
    assert_warning(result, "MA-P002", "somepkg.Thing")
    assert not issues(result, severity="critical")


# Every member is the gadget called with harmless arguments; the name it is reported under follows.
GADGETS = family("gadgets", {f"{m}.{n}": (f"gadget_{m}_{n}.pkl", reduce_pickle(m, n, *a)) for m, n, a in [
    # vendored and private mirrors of dangerous modules
    ("joblib.externals.cloudpickle", "loads", (b"\x80\x04N.",)),
    ("joblib.externals.loky.backend.popen_loky_posix", "Popen", (["echo", "modelaudit-test"],)),
    ("keras.src.saving.saving_lib", "load_model", ("/tmp/modelaudit-test.keras",)),
    ("tf_keras.models", "load_model", ("/tmp/modelaudit-test.h5",)),
    # string evaluators
    ("PIL.ImageMath", "unsafe_eval", (EVAL_EXPR,)),
    ("Cython", "inline", (HARMLESS_CODE,)),
    ("langchain_experimental.utilities.python", "PythonREPL.worker", (HARMLESS_CODE, {}, {}, None)),
    ("sklearn.utils._testing", "assert_run_python_script", (HARMLESS_CODE,)),
    ("pandas.core.frame", "DataFrame.eval", ("a + 1",)),
    # resolvers: "module:attr" strings become callables
    ("gymnasium", "make", ("os:system",)),
    ("hydra.utils", "get_method", ("os.system",)),
    # hub loaders and callables named after what they do
    ("transformers", "AutoModel.from_pretrained", ("attacker/repo",)),
    ("fastai.learner", "load_learner", ("/tmp/modelaudit-test.pkl",)),
    ("yaml", "unsafe_load_all", ("a: 1",)),
    ("yaml", "full_load", ("a: 1",)),
    ("IPython_lookalike.utils.process", "system", (HARMLESS_CMD,)),
    ("jupyter_client.launcher", "launch_kernel", (["echo", "modelaudit-test"],)),
    ("mlflow.utils.process", "_exec_cmd", (["echo", "modelaudit-test"],)),
    # files and network outside the obvious modules
    ("pathlib", "PosixPath.write_text", ("/tmp/modelaudit-test",)),
    ("pathlib", "Path.touch", ("/tmp/modelaudit-test",)),
    ("gzip", "GzipFile", ("/tmp/modelaudit-test.gz", "wb")),
    ("logging", "basicConfig", ()),
    ("xml.sax", "parse", ("http://127.0.0.1:9/x", None)),
    ("numpy.lib._datasource", "open", ("http://127.0.0.1:9/x",)),
    ("pandas", "read_json", ("http://127.0.0.1:9/x",)),
    ("torch.utils.model_zoo", "load_url", ("http://127.0.0.1:9/x",)),
    ("datasets", "load_dataset", ("attacker/dataset",)),
    ("wsgiref.simple_server", "make_server", ("127.0.0.1", 0, None)),
    # later loads and the terminal
    ("torch.serialization", "add_safe_globals", ([],)),
    ("fcntl", "ioctl", (0, 0x5412, b"e")),  # TIOCSTI types into the user's shell
]})


@pytest.mark.parametrize("target", sorted(GADGETS))
def test_published_gadget_families(tmp_path, target):
    finding = assert_dangerous(scan_bytes(tmp_path, GADGETS[target]), target)
    assert finding["why"]
