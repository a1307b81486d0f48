"""dill's own helpers: argument-checked, never a way around the policy.

Honest dill pickles write complex numbers, defaultdict(list) and numpy arrays through
dill._dill._load_type(name) and dill._dill._create_array(f, args, state, npdict). Those two
are quiet only for the pairs in scanners/_pickle_relaxations.py; every other use names the
helper as a critical MA-P001, and dill's code-object helpers (_create_code, _create_function)
stay critical whatever they are called with.
"""

from __future__ import annotations

import pytest

from tests.builders import (CANARY_MODULE, binfloat, HARMLESS_CMD, HARMLESS_CODE, callee, call, empty_dict, empty_tuple,
                            mark, payload, pickle, proto, push, reduce, short_binunicode, stop, tuple1, tuple2,
                            tuple3, tuple_)
from tests.regressions.corpus import (add, assert_clean, assert_dangerous, assert_warning, case, describe, family,
                                      issues, scan_bytes, scan_case)

DILL = "dill._dill"


def load_type(name: bytes) -> bytes:
    """Push dill._dill._load_type(<name>), the name given as opcodes (a constant or a computed value)."""
    return pickle(callee(DILL, "_load_type"), name, tuple1(), reduce())


def create_array(func: bytes, args: bytes, state: bytes = b"N") -> bytes:
    """Push dill._dill._create_array(<func>, <args>, <state>)."""
    return pickle(callee(DILL, "_create_array"), func, args, state, tuple3(), reduce())


def _helper_finding(result: dict, helper: str, contains: str = "") -> dict:
    """The critical MA-P001 that names dill._dill.<helper> itself and says `contains`."""
    assert_dangerous(result, f"{DILL}.{helper}")
    hits = [i for i in issues(result, "MA-P001", "critical") if i["details"].get("module") == DILL
            and i["details"].get("function") == helper and contains in i["message"]]
    assert hits, f"no critical MA-P001 for {helper} saying {contains!r}; got:\n{describe(result)}"
    return hits[0]


# ------------------------------------------------------------------------ _load_type(name)
# Names from dill's type table that hand out code, function, module, frame or call-through types,
# and spellings near the allowed ones: every one stays critical.
HOSTILE_TYPE_NAMES = ["CodeType", "FunctionType", "LambdaType", "ModuleType", "CellType", "MethodType",
                      "BuiltinFunctionType", "BuiltinMethodType", "FrameType", "TracebackType", "GeneratorType",
                      "type", "PartialType", "AttrGetterType", "ItemGetterType", "map", "filter", "property",
                      "classmethod", "staticmethod", "super", "FileType", "TextWrapperType", "PyCapsuleType",
                      "ExitType", "memoryview", "MappingProxyType", "complex ", "Complex", "builtins.complex", ""]

LOAD_TYPE_CASES = family("dill-load-type", {
    name or "<empty>": (f"dill_load_type_{i}.pkl", pickle(proto(4), load_type(push(name)), stop()))
    for i, name in enumerate(HOSTILE_TYPE_NAMES)})


@pytest.mark.parametrize("key", sorted(LOAD_TYPE_CASES))
def test_dill_load_type_of_a_non_data_type_is_critical(tmp_path, key):
    finding = _helper_finding(scan_bytes(tmp_path, LOAD_TYPE_CASES[key]), "_load_type", "not proven harmless")
    assert finding["details"]["family"] == "code-evaluation"
    assert "call_args" in finding["details"]


@case("dill_load_type_function_from_code.pkl")
def dill_load_type_function_from_code() -> bytes:
    """What dill writes for a function, spelled with _load_type only:
    _load_type('FunctionType')(_load_type('CodeType')(<code fields>), {})()."""
    code_fields = (0, 0, 0, 0, 1, 67, b"d\x00S\x00", (None,), (), (), "<payload>", "f", "f", 1, b"", b"")
    code = pickle(load_type(push("CodeType")), push(code_fields), reduce())
    function = pickle(load_type(push("FunctionType")), code, empty_dict(), tuple2(), reduce())
    return pickle(proto(4), function, empty_tuple(), reduce(), stop())


def test_dill_load_type_function_from_code(tmp_path):
    result = scan_case(tmp_path, dill_load_type_function_from_code)
    _helper_finding(result, "_load_type", "'CodeType'")
    _helper_finding(result, "_load_type", "'FunctionType'")
    assert_warning(result, "MA-P004")  # calling what an unproven _load_type returned stays a computed call


COMPUTED_NAMES = {
    "str_join": call("builtins", "str.join", "", ["Code", "Type"]),  # "".join(["Code", "Type"])
    "rot13": call("codecs", "decode", "PbqrGlcr", "rot13"),  # the walker decodes it, to bytes: still not a name
    "memo_call": call("builtins", "str", "CodeType"),  # str("CodeType"): a call result, not a constant
    "persistent": pickle(push("CodeType"), b"Q"),  # BINPERSID: whatever the loader's persistent_load returns
}
COMPUTED_CASES = family("dill-load-type-computed", {
    key: (f"dill_load_type_computed_{key}.pkl", pickle(proto(4), load_type(fragment), stop()))
    for key, fragment in COMPUTED_NAMES.items()})


@pytest.mark.parametrize("key", sorted(COMPUTED_CASES))
def test_dill_load_type_of_a_computed_name_is_critical(tmp_path, key):
    _helper_finding(scan_bytes(tmp_path, COMPUTED_CASES[key]), "_load_type", "not proven harmless")


@case("dill_load_type_two_args.pkl")
def dill_load_type_two_args() -> bytes:
    return pickle(proto(4), callee(DILL, "_load_type"), push(("complex", "CodeType")), reduce(), stop())


def test_dill_load_type_two_args(tmp_path):
    _helper_finding(scan_case(tmp_path, dill_load_type_two_args), "_load_type", "exactly one constant type name")


@case("dill_load_type_build_on_type.pkl")
def dill_load_type_build_on_type() -> bytes:
    """BUILD on what _load_type('list') returns mutates builtins.list itself, as BUILD on the global would."""
    return pickle(proto(4), load_type(push("list")), push({"append": HARMLESS_CODE}), b"b", stop())


def test_dill_load_type_build_on_type(tmp_path):
    assert_warning(scan_case(tmp_path, dill_load_type_build_on_type), "MA-P011", "builtins.list")


# ------------------------------------------------------------------------ _create_array(f, args, state)
@case("dill_create_array_os_system.pkl")
def dill_create_array_os_system() -> bytes:
    return pickle(proto(4), create_array(callee("posix", "system"), push((HARMLESS_CMD,))), stop())


def test_dill_create_array_os_system(tmp_path):
    result = scan_case(tmp_path, dill_create_array_os_system)
    assert_dangerous(result, "posix.system")
    finding = _helper_finding(result, "_create_array", "posix.system")
    assert finding["details"]["family"] == "call-composition"


@case("dill_create_array_unknown_global.pkl")
def dill_create_array_unknown_global() -> bytes:
    return pickle(proto(4), create_array(callee(CANARY_MODULE, "boom"), push(("x",))), stop())


def test_dill_create_array_unknown_global(tmp_path):
    result = scan_case(tmp_path, dill_create_array_unknown_global)
    assert_warning(result, "MA-P002", CANARY_MODULE)
    _helper_finding(result, "_create_array", f"{CANARY_MODULE}.boom")


CREATE_ARRAY_FUNCS = {
    "eval": callee("builtins", "eval"),
    "computed_type": load_type(push("FunctionType")),  # f is whatever _load_type returned
    "allowed_type_call": load_type(push("list")),  # even a proven type: f must be a global itself
    "load_type_helper": callee(DILL, "_load_type"),  # f(*args) would be an unchecked _load_type call
    "create_array_helper": callee(DILL, "_create_array"),
    "persistent": pickle(push("f"), b"Q"),
    "none": b"N",
}
CREATE_ARRAY_CASES = family("dill-create-array", {
    key: (f"dill_create_array_{key}.pkl", pickle(proto(4), create_array(fragment, push(("CodeType",))), stop()))
    for key, fragment in CREATE_ARRAY_FUNCS.items()})


@pytest.mark.parametrize("key", sorted(CREATE_ARRAY_CASES))
def test_dill_create_array_of_a_non_allowlisted_callable_is_critical(tmp_path, key):
    _helper_finding(scan_bytes(tmp_path, CREATE_ARRAY_CASES[key]), "_create_array", "not proven harmless")


@case("dill_create_array_computed_args.pkl")
def dill_create_array_computed_args() -> bytes:
    """f is allowlisted, but the arguments it is called with are computed: nothing to check them by."""
    args = call("builtins", "tuple", ["x"])
    return pickle(proto(4), create_array(callee("torch.storage", "_load_from_bytes"), args), stop())


def test_dill_create_array_computed_args(tmp_path):
    _helper_finding(scan_case(tmp_path, dill_create_array_computed_args), "_create_array", "literal tuple")


@case("dill_create_array_nested_pickle.pkl")
def dill_create_array_nested_pickle() -> bytes:
    """An allowlisted f is checked like the REDUCE it stands for: a loader's bytes are scanned."""
    return pickle(proto(4), create_array(callee("torch.storage", "_load_from_bytes"), push((payload(4),))), stop())


def test_dill_create_array_nested_pickle(tmp_path):
    result = scan_case(tmp_path, dill_create_array_nested_pickle)
    assert_dangerous(result, "posix.system")
    assert issues(result, "MA-P012")


@case("dill_create_array_dunder_npdict.pkl")
def dill_create_array_dunder_npdict() -> bytes:
    """npdict goes to array.__dict__.update(), state to __setstate__: checked like BUILD state."""
    func = callee("numpy._core.multiarray", "_reconstruct")
    args = pickle(callee("numpy", "ndarray"), push(((0,), "b")), tuple2())
    npdict = push({"__reduce_ex__": HARMLESS_CODE})
    return pickle(proto(4), callee(DILL, "_create_array"), mark(), func, args, b"N", npdict, tuple_(), reduce(),
                  stop())


def test_dill_create_array_dunder_npdict(tmp_path):
    finding = assert_dangerous(scan_case(tmp_path, dill_create_array_dunder_npdict), "__reduce_ex__", "MA-P010")
    assert finding["details"]["attributes"] == ["__reduce_ex__"]


# ------------------------------------------------------------------------ helpers handed over as data
@case("dill_load_type_via_rebuild_from_type.pkl")
def dill_load_type_via_rebuild_from_type() -> bytes:
    """torch._tensor._rebuild_from_type_v2(func, new_type, args, state) calls func(*args) itself."""
    return pickle(proto(4), callee("torch._tensor", "_rebuild_from_type_v2"), mark(), callee(DILL, "_load_type"),
                  callee("builtins", "type"), push(("FunctionType",)), empty_dict(), tuple_(), reduce(), stop())


def test_dill_load_type_via_rebuild_from_type(tmp_path):
    _helper_finding(scan_case(tmp_path, dill_load_type_via_rebuild_from_type), "_load_type", "passed as data")


@case("dill_load_type_as_randomstate_ctor.pkl")
def dill_load_type_as_randomstate_ctor() -> bytes:
    """numpy's __RandomState_ctor(name, bit_generator_ctor) calls bit_generator_ctor(name)."""
    return pickle(proto(4), callee("numpy.random._pickle", "__RandomState_ctor"), push("CodeType"),
                  callee(DILL, "_load_type"), tuple2(), reduce(), stop())


def test_dill_load_type_as_randomstate_ctor(tmp_path):
    _helper_finding(scan_case(tmp_path, dill_load_type_as_randomstate_ctor), "_load_type", "passed as data")


@case("dill_create_array_in_build_state.pkl")
def dill_create_array_in_build_state() -> bytes:
    return pickle(proto(4), call("collections", "OrderedDict"), empty_dict(), short_binunicode("hook"),
                  callee(DILL, "_create_array"), b"s", b"b", stop())


def test_dill_create_array_in_build_state(tmp_path):
    _helper_finding(scan_case(tmp_path, dill_create_array_in_build_state), "_create_array", "passed as data")


# ------------------------------------------------------------------------ other spellings, other helpers
OTHER_HELPERS = {
    "dill._load_type": ("dill", "_load_type", ("complex",)),  # only the exact dill._dill path is checked
    "dill.dill._load_type": ("dill.dill", "_load_type", ("complex",)),
    "dill._dill._eval_repr": (DILL, "_eval_repr", ("Ellipsis",)),  # eval(): never relaxed
    "dill._dill._create_type": (DILL, "_create_type", ("x",)),
    "dill._dill._create_code": (DILL, "_create_code", (0,)),
    "dill._dill._create_function": (DILL, "_create_function", ("x", "y")),
    "dill._dill._import_module": (DILL, "_import_module", ("os",)),
    "dill._dill._get_attr": (DILL, "_get_attr", ("os", "system")),
}
OTHER_CASES = family("dill-helper", {key: (f"dill_helper_{key.replace('.', '_')}.pkl",
                                           pickle(proto(4), call(m, n, *a), stop()))
                                     for key, (m, n, a) in OTHER_HELPERS.items()})


@pytest.mark.parametrize("key", sorted(OTHER_CASES))
def test_dill_helpers_outside_the_table_stay_critical(tmp_path, key):
    finding = assert_dangerous(scan_bytes(tmp_path, OTHER_CASES[key]), key)
    assert finding["details"]["family"] in ("nested-loader", "code-evaluation")


def _lambda():
    return lambda x: x + 1


def _function():
    def scale(x, factor=2):
        return x * factor
    return scale


def _closure():
    secret = HARMLESS_CODE
    return lambda: secret


def _model_with_code():
    import numpy as np

    return {"weights": np.arange(3.0), "kind": 1 + 2j, "preprocess": lambda v: v * 2}


REAL_DILL = {"lambda": _lambda, "function": _function, "closure": _closure, "model_with_code": _model_with_code}


def _real_dill(make, recurse: bool):
    def build() -> bytes:
        import dill

        return dill.dumps(make(), recurse=recurse)
    return build


for _key, _make in REAL_DILL.items():
    for _recurse in (False, True):
        add(f"dill-real:{_key}:{_recurse}", f"dill_real_{_key}_{int(_recurse)}.dill", _real_dill(_make, _recurse))


@pytest.mark.parametrize("recurse", [False, True])
@pytest.mark.parametrize("key", sorted(REAL_DILL))
def test_dill_pickled_code_stays_critical(tmp_path, key, recurse):
    """dill.dumps of lambdas and functions serializes code objects: _create_code, _create_function."""
    import dill

    result = scan_bytes(tmp_path, dill.dumps(REAL_DILL[key](), recurse=recurse), "model.dill")
    assert_dangerous(result, f"{DILL}._create_code")
    assert_dangerous(result, f"{DILL}._create_function")


# ------------------------------------------------------------------------ the allowed pairs, hand-built
def test_allowed_pairs_are_quiet(tmp_path):
    """The equivalents of builtins.complex(3.0, 4.0), defaultdict(list) and a numpy array rebuild."""
    complex_ = pickle(load_type(push("complex")), binfloat(3.0), binfloat(4.0), tuple2(), reduce())
    default = pickle(callee("collections", "defaultdict"), load_type(push("list")), tuple1(), reduce())
    array = create_array(callee("numpy._core.multiarray", "_reconstruct"),
                         pickle(callee("numpy", "ndarray"), push(((0,), "b")), tuple2()))
    data = pickle(proto(4), mark(), complex_, default, array, tuple_(), stop())
    assert_clean(scan_bytes(tmp_path, data))


def test_relaxation_table_names_only_allowlisted_builtins():
    import builtins

    import dill._dill

    from modelaudit.scanners._pickle_relaxations import DILL_DATA_TYPES
    from modelaudit.scanners.pickle_policy import ARGUMENT_CHECKED, Level, classify

    # functools.partial, torch.ScriptObject and builtins.getattr have their own rules
    # (tests/scanners/test_honest_callables.py)
    assert ARGUMENT_CHECKED == {f"{DILL}._load_type", f"{DILL}._create_array", "functools.partial",
                                "torch.ScriptObject", "builtins.getattr"}
    for name, target in DILL_DATA_TYPES.items():
        module, _, attr = target.rpartition(".")
        assert classify(module, attr).level is Level.SAFE, target
        same = type(None) if attr == "NoneType" else getattr(builtins, attr)
        assert dill._dill._reverse_typemap[name] is same, name  # _load_type(name) is that very object
    assert not set(DILL_DATA_TYPES) & set(HOSTILE_TYPE_NAMES)
