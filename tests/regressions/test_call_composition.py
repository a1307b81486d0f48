"""Hiding the real callee: attrgetter/methodcaller/itemgetter, partial, reduce, getattr chains,
and functions that call whatever they are given (atexit, starmap, apply)."""

from __future__ import annotations

import pytest

from tests.builders import (HARMLESS_CMD, binget, build, call, callee, empty_tuple, get, global_, mark, memoize, none,
                            pickle, pop, proto, push, put, reduce, reduce_pickle, short_binunicode, stack_global,
                            stop, tuple1, tuple2, tuple_, unicode_)
from tests.regressions.corpus import family, assert_dangerous, assert_warning, case, scan_bytes, scan_case


@case("picklescan_malicious12_attrgetter.pkl")
def picklescan_attrgetter_chain() -> bytes:
    """attrgetter('system')(__import__('os'))('...'), everything memoized as pickleassem writes it."""
    return pickle(proto(4), short_binunicode("operator"), memoize(), short_binunicode("attrgetter"), memoize(),
                  stack_global(), memoize(), short_binunicode("system"), memoize(), tuple1(), memoize(), reduce(),
                  memoize(), short_binunicode("builtins"), memoize(), short_binunicode("__import__"), memoize(),
                  stack_global(), memoize(), short_binunicode("os"), memoize(), tuple1(), memoize(), reduce(),
                  memoize(), tuple1(), memoize(), reduce(), memoize(), short_binunicode(HARMLESS_CMD), memoize(),
                  tuple1(), memoize(), reduce(), memoize(), stop())


def test_picklescan_attrgetter_chain(tmp_path):
    result = scan_case(tmp_path, picklescan_attrgetter_chain)
    assert_dangerous(result, "operator.attrgetter")
    assert_dangerous(result, "builtins.__import__")
    assert_warning(result, "MA-P004")  # the attrgetter's result is called


@case("GHSA-84r2-jw7c-4r5q.pkl")
def ghsa_84r2_jw7c_4r5q_methodcaller_pydoc_locate() -> bytes:
    """methodcaller('system', cmd)(pydoc.locate('os'))."""
    return pickle(proto(4), callee("operator", "methodcaller"), push(("system", HARMLESS_CMD)), reduce(),
                  call("pydoc", "locate", "os"), tuple1(), reduce(), stop())


def test_ghsa_84r2_jw7c_4r5q_methodcaller_pydoc_locate(tmp_path):
    result = scan_case(tmp_path, ghsa_84r2_jw7c_4r5q_methodcaller_pydoc_locate)
    assert_dangerous(result, "operator.methodcaller")
    assert_dangerous(result, "pydoc.locate")


@case("GHSA-955r-x9j8-7rhh.pkl")
def ghsa_955r_x9j8_7rhh_private_operator_methodcaller() -> bytes:
    """_operator.methodcaller with __import__('os') kept in the memo by PUT/GET."""
    return pickle(global_("builtins", "__import__"), mark(), unicode_("os"), tuple_(), reduce(), put(0), pop(),
                  global_("_operator", "methodcaller"), mark(), unicode_("system"), unicode_(HARMLESS_CMD),
                  tuple_(), reduce(), mark(), get(0), tuple_(), reduce(), stop())


def test_ghsa_955r_x9j8_7rhh_private_operator_methodcaller(tmp_path):
    result = scan_case(tmp_path, ghsa_955r_x9j8_7rhh_private_operator_methodcaller)
    assert_dangerous(result, "operator.methodcaller")
    assert_dangerous(result, "builtins.__import__")


@case("picklescan_malicious19_partial_torch_load.pkl")
def picklescan_partial_torch_load() -> bytes:
    """functools.partial(torch.load, path, weights_only=False), then called with no arguments."""
    partial = pickle(callee("functools", "partial"), callee("torch", "load"), tuple1(), reduce(),
                     mark(), callee("torch", "load"), push(("some_other_model.bin",)), push({"weights_only": False}),
                     none(), tuple_(), build())
    return pickle(proto(4), partial, empty_tuple(), reduce(), stop())


def test_picklescan_partial_torch_load(tmp_path):
    result = scan_case(tmp_path, picklescan_partial_torch_load)
    assert_dangerous(result, "functools.partial")
    assert_dangerous(result, "torch.load")


COMPOSERS = [("functools", "reduce", ("x", [HARMLESS_CMD])), ("functools", "partial", ("x",)),
             ("itertools", "starmap", ("x", [(HARMLESS_CMD,)])), ("atexit", "register", ("x", HARMLESS_CMD)),
             ("operator", "call", ("x", HARMLESS_CMD)), ("operator", "attrgetter", ("system",)),
             ("operator", "methodcaller", ("system", HARMLESS_CMD)), ("_functools", "reduce", ("x", [1])),
             ("copyreg", "__reduce_ex__", ("x", 2)), ("__builtin__", "apply", ("x", (HARMLESS_CMD,)))]


COMPOSER_CASES = family("compose", {f"{m}.{n}": (f"compose_{m}_{n}.pkl", reduce_pickle(m, n, *a, protocol=2))
                                    for m, n, a in COMPOSERS})


@pytest.mark.parametrize("target", sorted(COMPOSER_CASES))
def test_call_composers(tmp_path, target):
    name = target.rsplit(".", 1)[1]
    result = scan_bytes(tmp_path, COMPOSER_CASES[target])
    assert [i for i in result["issues"] if i["severity"] == "critical" and name in i["message"]], result["issues"]


@case("getattr_builtins_import_chain.pkl")
def getattr_on_a_safe_class_instance() -> bytes:
    """getattr(collections.OrderedDict(), '__class__') walks into a safe object's internals."""
    return pickle(proto(2), global_("builtins", "getattr"), global_("collections", "OrderedDict"), empty_tuple(),
                  reduce(), push("__class__", 2), tuple2(), reduce(), stop())


def test_getattr_on_a_safe_class_instance(tmp_path):
    result = scan_case(tmp_path, getattr_on_a_safe_class_instance)
    assert_dangerous(result, "builtins.getattr")
    assert_dangerous(result, "collections.OrderedDict.__class__", code="MA-P003")


@case("modelscan_issue331_join_built_names.pkl")
def modelscan_issue331_names_built_by_calls() -> bytes:
    """The module name is assembled at load time (str.join) so no string in the file says 'os'."""
    return pickle(proto(4), call("importlib", "import_module", "builtins"), memoize(), pop(),
                  callee("builtins", "getattr"), memoize(), pop(),
                  # callee() memoizes its two strings too: getattr is memo 5, the builtins module memo 2
                  binget(5), binget(5), binget(2), push("str"), tuple2(), reduce(), push("join"), tuple2(), reduce(),
                  push(""), push(["o", "s"]), tuple2(), reduce(), push("system"), stack_global(),
                  push((HARMLESS_CMD,)), reduce(), stop())


def test_modelscan_issue331_names_built_by_calls(tmp_path):
    result = scan_case(tmp_path, modelscan_issue331_names_built_by_calls)
    assert_dangerous(result, "importlib.import_module")
    assert_dangerous(result, "builtins.getattr")
    assert_dangerous(result, "non-text operands", code="MA-P007")  # STACK_GLOBAL on a computed name
