"""Callables that evaluate, compile or import code: builtins, runpy/code/codeop, profilers and
debuggers that exec their argument, framework internals that eval strings, and marshal'd code."""

from __future__ import annotations

import marshal

import pytest

from tests.builders import (HARMLESS_CODE, binget, call, callee, empty_dict, empty_tuple, global_, mark, memoize,
                            pickle, pop, proto, push, put, get, reduce, reduce_pickle, short_binbytes,
                            short_binunicode, stack_global, stop, string, tuple1, tuple2, tuple_, inst, build,
                            none, setitem, unicode_)
from tests.regressions.corpus import assert_dangerous, case, family, issues, scan_bytes, scan_case

BUILTINS = [("eval", (HARMLESS_CODE,)), ("exec", (HARMLESS_CODE,)), ("compile", (HARMLESS_CODE, "<m>", "exec")),
            ("__import__", ("os",)), ("getattr", ("x", "upper")), ("open", ("/dev/null",)),
            ("breakpoint", ()), ("globals", ()), ("vars", ()), ("setattr", ("x", "y", "z"))]


BUILTIN_CASES = family("builtins", {f"{m}.{n}": (f"builtins_{m}_{n}.pkl", reduce_pickle(m, n, *a, protocol=2))
                                    for m in ("builtins", "__builtin__", "__builtins__") for n, a in BUILTINS})


@pytest.mark.parametrize("key", sorted(BUILTIN_CASES))
def test_dangerous_builtins(tmp_path, key):
    """Every spelling of the builtins module (Python 3, Python 2, the dict alias)."""
    finding = assert_dangerous(scan_bytes(tmp_path, BUILTIN_CASES[key]), f"builtins.{key.rsplit('.', 1)[1]}")
    assert finding["details"]["family"] in ("code-evaluation", "file-access")


@case("sour_pickles_2011.pkl")
def sour_pickles_slaviero_2011() -> bytes:
    """The Black Hat 2011 'Sour Pickles' payload: globals, compile, eval, getattr and apply chained."""
    return (b"c__builtin__\nglobals\n(tRp100\n0c__builtin__\ncompile\n(S'picklesmashed=1'\nS''\nS'exec'\ntRp101\n0"
            b"c__builtin__\neval\n(g101\ng100\ntRp102\n0c__builtin__\ngetattr\n(c__builtin__\ndict\nS'get'\ntRp103\n0"
            b"c__builtin__\napply\n(g103\n(g100\nS'picklesmashed'\nltRp104\n0g104\n.")


def test_sour_pickles_slaviero_2011(tmp_path):
    result = scan_case(tmp_path, sour_pickles_slaviero_2011)
    for target in ("builtins.globals", "builtins.compile", "builtins.eval", "builtins.apply"):
        assert_dangerous(result, target)
    # getattr(dict, 'get') itself is how methods pickle: the method it names is reported, not allowlisted
    assert any("builtins.dict.get" in i["message"] for i in issues(result, "MA-P002", "warning"))


@case("picklescan_malicious10_inst_exec.pkl")
def picklescan_inst_exec() -> bytes:
    """INST names the callable inline: (S'...'\\ni__builtin__\\nexec\\n."""
    return pickle(mark(), string(HARMLESS_CODE), inst("__builtin__", "exec"), stop())


def test_picklescan_inst_exec(tmp_path):
    finding = assert_dangerous(scan_case(tmp_path, picklescan_inst_exec), "builtins.exec")
    assert finding["details"]["opcode"] == "INST"


@case("GHSA-9m3x-qqw2-h32h.pkl")
def ghsa_9m3x_qqw2_h32h_eval_through_getattr() -> bytes:
    """builtins.eval never named by GLOBAL: getattr(__import__('builtins'), 'eval')(code)."""
    return pickle(proto(2), global_("builtins", "getattr"), global_("builtins", "__import__"), push(("builtins",), 2),
                  reduce(), push("eval", 2), tuple2(), reduce(), push((HARMLESS_CODE,), 2), reduce(), stop())


def test_ghsa_9m3x_qqw2_h32h_eval_through_getattr(tmp_path):
    result = scan_case(tmp_path, ghsa_9m3x_qqw2_h32h_eval_through_getattr)
    assert_dangerous(result, "builtins.eval")  # the attribute lookup is resolved and classified
    assert_dangerous(result, "builtins.getattr")


@case("GHSA-46h3-79wf-xr6c.pkl")
def ghsa_46h3_79wf_xr6c_builtins_import() -> bytes:
    return pickle(proto(4), call("builtins", "__import__", "os"), stop())


def test_ghsa_46h3_79wf_xr6c_builtins_import(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_46h3_79wf_xr6c_builtins_import), "builtins.__import__")


# ----------------------------------------------------------------------------- runpy, code, compilers
@case("picklescan_malicious14_runpy.pkl")
def picklescan_runpy_run_code() -> bytes:
    return reduce_pickle("runpy", "_run_code", HARMLESS_CODE, {})


@case("GHSA-wfq2-52f7-7qvj.pkl")
def ghsa_wfq2_52f7_7qvj_runpy_run_path() -> bytes:
    return pickle(proto(5), frame_free_stack_call("runpy", "run_path", "/tmp/modelaudit-test.py"), stop())


def frame_free_stack_call(module: str, name: str, *args: object) -> bytes:
    return pickle(short_binunicode(module), memoize(), short_binunicode(name), memoize(), stack_global(),
                  memoize(), push(tuple(args)), memoize(), reduce(), memoize())


def test_picklescan_runpy_run_code(tmp_path):
    assert_dangerous(scan_case(tmp_path, picklescan_runpy_run_code), "runpy._run_code")


def test_ghsa_wfq2_52f7_7qvj_runpy_run_path(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_wfq2_52f7_7qvj_runpy_run_path), "runpy.run_path")


@case("GHSA-cj3c-v495-4xqh.pkl")
def ghsa_cj3c_v495_4xqh_code_interactive_interpreter() -> bytes:
    return reduce_pickle("code", "InteractiveInterpreter.runcode", {}, HARMLESS_CODE)


@case("GHSA-q5qq-mvfm-j35x-code.pkl")
def ghsa_q5qq_mvfm_j35x_code_runsource() -> bytes:
    """fickling: getattr(code.InteractiveInterpreter(), 'runsource')(source)."""
    return pickle(proto(5), callee("builtins", "getattr"), callee("code", "InteractiveInterpreter"), empty_tuple(),
                  reduce(), push("runsource"), tuple2(), reduce(), push((HARMLESS_CODE,)), reduce(), stop())


@case("code_interact.pkl")
def code_interact() -> bytes:
    return reduce_pickle("code", "interact", "modelaudit-test", None, {"x": 1})


def test_ghsa_cj3c_v495_4xqh_code_interactive_interpreter(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_cj3c_v495_4xqh_code_interactive_interpreter),
                     "code.InteractiveInterpreter.runcode")


def test_ghsa_q5qq_mvfm_j35x_code_runsource(tmp_path):
    result = scan_case(tmp_path, ghsa_q5qq_mvfm_j35x_code_runsource)
    assert_dangerous(result, "code.InteractiveInterpreter")
    assert_dangerous(result, "code.InteractiveInterpreter.runsource")  # the getattr result, resolved


def test_code_interact(tmp_path):
    assert_dangerous(scan_case(tmp_path, code_interact), "code.interact")


# GHSA-g38g-8gr9-h9xp (code evaluation half): compilers and interpreters outside the usual lists.
COMPILERS = [("codeop", "compile_command", (HARMLESS_CODE,)), ("compileall", "compile_dir", ("/tmp/modelaudit",)),
             ("py_compile", "compile", ("/tmp/modelaudit-test.py",)), ("pdb", "run", (HARMLESS_CODE,)),
             ("profile", "run", (HARMLESS_CODE,)), ("runpy", "run_module", ("modelaudit_canary_mod",))]


COMPILER_CASES = family("GHSA-g38g-8gr9-h9xp", {f"{m}.{n}": (f"GHSA-g38g-8gr9-h9xp-{m}.pkl", reduce_pickle(m, n, *a))
                                                for m, n, a in COMPILERS})


@pytest.mark.parametrize("target", sorted(COMPILER_CASES))
def test_ghsa_g38g_8gr9_h9xp_code_modules(tmp_path, target):
    assert_dangerous(scan_bytes(tmp_path, COMPILER_CASES[target]), target)


@case("GHSA-7wx9-6375-f5wh.pkl")
def ghsa_7wx9_6375_f5wh_profile_run() -> bytes:
    """profile.run, the module-level function (a blocklist entry for Profile.run missed it)."""
    return pickle(global_("profile", "run"), mark(), short_binunicode(HARMLESS_CODE), tuple_(), reduce(), stop())


def test_ghsa_7wx9_6375_f5wh_profile_run(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_7wx9_6375_f5wh_profile_run), "profile.run")


PROFILERS = {  # advisory -> (module, name, args)
    "ghsa_x696_vm39_cp64": ("profile", "Profile.run", ({}, HARMLESS_CODE)),
    "ghsa_6vqj_c2q5_j97w": ("profile", "Profile.runctx", ({}, HARMLESS_CODE, {}, {})),
    "ghsa_49gj_c84q_6qm9": ("cProfile", "run", (HARMLESS_CODE,)),
    "ghsa_p523_jq9w_64x9": ("cProfile", "run", (HARMLESS_CODE,)),
    "ghsa_9w88_8rmg_7g2p": ("cProfile", "runctx", (HARMLESS_CODE, None, None)),
    "ghsa_5qwp_399c_mjwf": ("trace", "Trace.run", ({}, HARMLESS_CODE)),
    "ghsa_g344_hcph_8vgg": ("trace", "Trace.runctx", ({}, HARMLESS_CODE, {}, {})),
    "ghsa_v7x6_rv5q_mhwc": ("timeit", "timeit", ("", HARMLESS_CODE)),
    "ghsa_fqq6_7vqf_w3fg": ("doctest", "debug_script", (HARMLESS_CODE, True)),
    "picklescan_malicious15_bdb": ("bdb", "Bdb.run", ({}, HARMLESS_CODE)),
}


PROFILER_CASES = family("profilers", {k: (f"{k}.pkl", reduce_pickle(m, n, *a)) for k, (m, n, a) in PROFILERS.items()})


def _profiler_case(advisory: str) -> tuple[str, str, bytes]:
    module, name, _ = PROFILERS[advisory]
    return module, name, PROFILER_CASES[advisory]


def test_ghsa_x696_vm39_cp64_profile_profile_run(tmp_path):
    module, name, data = _profiler_case("ghsa_x696_vm39_cp64")
    assert_dangerous(scan_bytes(tmp_path, data), f"{module}.{name}")


def test_ghsa_6vqj_c2q5_j97w_profile_runctx(tmp_path):
    module, name, data = _profiler_case("ghsa_6vqj_c2q5_j97w")
    assert_dangerous(scan_bytes(tmp_path, data), f"{module}.{name}")


def test_ghsa_49gj_c84q_6qm9_cprofile_run(tmp_path):
    module, name, data = _profiler_case("ghsa_49gj_c84q_6qm9")
    assert_dangerous(scan_bytes(tmp_path, data), f"{module}.{name}")


def test_ghsa_p523_jq9w_64x9_cprofile_run_fickling(tmp_path):
    module, name, data = _profiler_case("ghsa_p523_jq9w_64x9")
    assert_dangerous(scan_bytes(tmp_path, data), f"{module}.{name}")


def test_ghsa_9w88_8rmg_7g2p_cprofile_runctx(tmp_path):
    module, name, data = _profiler_case("ghsa_9w88_8rmg_7g2p")
    assert_dangerous(scan_bytes(tmp_path, data), f"{module}.{name}")


def test_ghsa_5qwp_399c_mjwf_trace_run(tmp_path):
    module, name, data = _profiler_case("ghsa_5qwp_399c_mjwf")
    assert_dangerous(scan_bytes(tmp_path, data), f"{module}.{name}")


def test_ghsa_g344_hcph_8vgg_trace_runctx(tmp_path):
    module, name, data = _profiler_case("ghsa_g344_hcph_8vgg")
    assert_dangerous(scan_bytes(tmp_path, data), f"{module}.{name}")


def test_ghsa_v7x6_rv5q_mhwc_timeit_with_code_string(tmp_path):
    module, name, data = _profiler_case("ghsa_v7x6_rv5q_mhwc")
    assert_dangerous(scan_bytes(tmp_path, data), f"{module}.{name}")


def test_ghsa_fqq6_7vqf_w3fg_doctest_debug_script(tmp_path):
    module, name, data = _profiler_case("ghsa_fqq6_7vqf_w3fg")
    assert_dangerous(scan_bytes(tmp_path, data), f"{module}.{name}")


def test_picklescan_bdb_run(tmp_path):
    module, name, data = _profiler_case("picklescan_malicious15_bdb")
    assert_dangerous(scan_bytes(tmp_path, data), f"{module}.{name}")


IDE_TOOLS = {
    "ghsa_3vg9_h568_4w9m": ("idlelib.debugobj", "ObjectTreeItem.SetText", ({}, HARMLESS_CODE)),
    "ghsa_6w4w_5w54_rjvr": ("idlelib.autocomplete", "AutoComplete.get_entity", ({}, HARMLESS_CODE)),
    "ghsa_7cq8_mj8x_j263": ("idlelib.autocomplete", "AutoComplete.fetch_completions", ({}, HARMLESS_CODE, 1)),
    "ghsa_8r4j_24qv_fmq9": ("idlelib.calltip", "Calltip.fetch_tip", ({}, HARMLESS_CODE)),
    "ghsa_9xph_j2h6_g47v": ("idlelib.calltip", "get_entity", (HARMLESS_CODE,)),
    "ghsa_m869_42cg_3xwr": ("idlelib.run", "Executive.runcode", ({}, HARMLESS_CODE)),
    "ghsa_j343_8v2j_ff7w": ("idlelib.pyshell", "ModifiedInterpreter.runcommand", ({}, HARMLESS_CODE)),
    "ghsa_3gf5_cxq9_w223": ("idlelib.pyshell", "ModifiedInterpreter.runcode", ({}, HARMLESS_CODE)),
    "ghsa_f54q_57x4_jg88": ("lib2to3.pgen2.grammar", "Grammar.loads", ({}, b"")),
    "ghsa_p9w7_82w4_7q8m": ("lib2to3.pgen2.pgen", "ParserGenerator.make_label", (None, {}, '""+' + HARMLESS_CODE)),
}


IDE_CASES = family("ide", {k: (f"{k}.pkl", reduce_pickle(m, n, *a)) for k, (m, n, a) in IDE_TOOLS.items()})


def _ide_case(advisory: str) -> tuple[str, bytes]:
    module, name, _ = IDE_TOOLS[advisory]
    return f"{module}.{name}", IDE_CASES[advisory]


def test_ghsa_3vg9_h568_4w9m_idlelib_debugobj(tmp_path):
    target, data = _ide_case("ghsa_3vg9_h568_4w9m")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_6w4w_5w54_rjvr_idlelib_autocomplete_get_entity(tmp_path):
    target, data = _ide_case("ghsa_6w4w_5w54_rjvr")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_7cq8_mj8x_j263_idlelib_autocomplete_fetch_completions(tmp_path):
    target, data = _ide_case("ghsa_7cq8_mj8x_j263")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_8r4j_24qv_fmq9_idlelib_calltip_fetch_tip(tmp_path):
    target, data = _ide_case("ghsa_8r4j_24qv_fmq9")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_9xph_j2h6_g47v_idlelib_calltip_get_entity(tmp_path):
    target, data = _ide_case("ghsa_9xph_j2h6_g47v")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_m869_42cg_3xwr_idlelib_run_executive(tmp_path):
    target, data = _ide_case("ghsa_m869_42cg_3xwr")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_j343_8v2j_ff7w_idlelib_pyshell_runcommand(tmp_path):
    target, data = _ide_case("ghsa_j343_8v2j_ff7w")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_3gf5_cxq9_w223_idlelib_pyshell_runcode(tmp_path):
    target, data = _ide_case("ghsa_3gf5_cxq9_w223")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_f54q_57x4_jg88_lib2to3_grammar_loads(tmp_path):
    target, data = _ide_case("ghsa_f54q_57x4_jg88")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_p9w7_82w4_7q8m_lib2to3_make_label(tmp_path):
    target, data = _ide_case("ghsa_p9w7_82w4_7q8m")
    assert_dangerous(scan_bytes(tmp_path, data), target)


# ----------------------------------------------------------------------------- framework internals
FRAMEWORK = {
    "ghsa_4r9r_ch6f_vxmx": ("torch.utils.bottleneck.__main__", "run_cprofile", (HARMLESS_CODE, {})),
    "ghsa_4whj_rm5r_c2v8": ("torch.utils.bottleneck.__main__", "run_autograd_prof", (HARMLESS_CODE, {})),
    "ghsa_86cj_95qr_2p4f": ("torch._dynamo.guards", "GuardBuilder.get", ({}, HARMLESS_CODE)),
    "ghsa_f4x7_rfwp_v3xw": ("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression",
                            ({}, HARMLESS_CODE, [])),
    "ghsa_vr7h_p6mm_wpmh": ("torch.jit.unsupported_tensor_ops", "execWrapper", (HARMLESS_CODE, {}, {})),
    "ghsa_h3qp_7fh3_f8h4": ("torch.utils.data.datapipes.utils.decoder", "basichandlers", ("pickle", b"")),
    "ghsa_vv6j_3g6g_2pvj": ("torch.utils._config_module", "ConfigModule.load_config", ({}, b"")),
    "picklescan_malicious17_inductor": ("torch._inductor.codecache", "compile_file", ("", "", ["echo"])),
    "ghsa_r8g5_cgf2_4m4m": ("numpy.f2py.crackfortran", "getlincoef", (HARMLESS_CODE, {})),
    "picklescan_malicious22_numpy_runstring": ("numpy.testing._private.utils", "runstring", (HARMLESS_CODE, {})),
}


FRAMEWORK_CASES = family("framework", {k: (f"{k}.pkl", reduce_pickle(m, n, *a)) for k, (m, n, a) in FRAMEWORK.items()})


def _framework_case(advisory: str) -> tuple[str, bytes]:
    module, name, _ = FRAMEWORK[advisory]
    return f"{module}.{name}", FRAMEWORK_CASES[advisory]


def test_ghsa_4r9r_ch6f_vxmx_torch_bottleneck_run_cprofile(tmp_path):
    target, data = _framework_case("ghsa_4r9r_ch6f_vxmx")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_4whj_rm5r_c2v8_torch_bottleneck_run_autograd_prof(tmp_path):
    target, data = _framework_case("ghsa_4whj_rm5r_c2v8")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_86cj_95qr_2p4f_torch_dynamo_guards(tmp_path):
    target, data = _framework_case("ghsa_86cj_95qr_2p4f")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_f4x7_rfwp_v3xw_torch_fx_symbolic_shapes(tmp_path):
    target, data = _framework_case("ghsa_f4x7_rfwp_v3xw")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_vr7h_p6mm_wpmh_torch_jit_exec_wrapper(tmp_path):
    target, data = _framework_case("ghsa_vr7h_p6mm_wpmh")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_h3qp_7fh3_f8h4_torch_datapipes_decoder(tmp_path):
    target, data = _framework_case("ghsa_h3qp_7fh3_f8h4")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_vv6j_3g6g_2pvj_torch_config_module_load_config(tmp_path):
    target, data = _framework_case("ghsa_vv6j_3g6g_2pvj")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_picklescan_torch_inductor_compile_file(tmp_path):
    target, data = _framework_case("picklescan_malicious17_inductor")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_ghsa_r8g5_cgf2_4m4m_numpy_f2py_getlincoef(tmp_path):
    target, data = _framework_case("ghsa_r8g5_cgf2_4m4m")
    assert_dangerous(scan_bytes(tmp_path, data), target)


def test_picklescan_numpy_testing_runstring(tmp_path):
    target, data = _framework_case("picklescan_malicious22_numpy_runstring")
    assert_dangerous(scan_bytes(tmp_path, data), target)


@case("pkg_dunder_main.pkl")
def package_main_module() -> bytes:
    return reduce_pickle("somepkg.__main__", "main")


def test_package_main_module_is_a_dunder_path(tmp_path):
    """Importing pkg.__main__ runs a script: any such module path is critical, whatever the package."""
    assert_dangerous(scan_case(tmp_path, package_main_module), "somepkg.__main__.main", code="MA-P003")


# ----------------------------------------------------------------------------- marshal'd code, importers
@case("GHSA-565g-hwwr-4pp3.pkl")
def ghsa_565g_hwwr_4pp3_marshal_function_type() -> bytes:
    """fickling: types.FunctionType(marshal.loads(code), {})() — code smuggled as bytes."""
    code = marshal.dumps(compile(HARMLESS_CODE, "<modelaudit-test>", "exec"))
    return pickle(proto(4), short_binunicode("marshal"), short_binunicode("loads"), stack_global(), memoize(),
                  binget(0), short_binbytes(code), tuple1(), reduce(), memoize(), short_binunicode("types"),
                  short_binunicode("FunctionType"), stack_global(), memoize(), binget(2), binget(1), empty_dict(),
                  tuple2(), reduce(), memoize(), binget(3), empty_tuple(), reduce(), memoize(),
                  short_binunicode("gottem"), build(), stop())


def test_ghsa_565g_hwwr_4pp3_marshal_function_type(tmp_path):
    result = scan_case(tmp_path, ghsa_565g_hwwr_4pp3_marshal_function_type)
    assert_dangerous(result, "marshal.loads")
    assert_dangerous(result, "types.FunctionType")


@case("types_code_type.pkl")
def types_code_type() -> bytes:
    return reduce_pickle("types", "CodeType", 0, 0, 0, 0, 0, 0, b"", (), (), (), "", "", "", 0, b"", b"", (), ())


def test_types_code_type(tmp_path):
    assert_dangerous(scan_case(tmp_path, types_code_type), "types.CodeType")


@case("GHSA-q5qq-mvfm-j35x-importlib.pkl")
def ghsa_q5qq_mvfm_j35x_importlib_import_module() -> bytes:
    """fickling: getattr(importlib.import_module('os'), 'system')('...')."""
    return pickle(proto(5), callee("builtins", "getattr"), call("importlib", "import_module", "os"),
                  push("system"), tuple2(), reduce(), push(("echo modelaudit-test",)), reduce(), stop())


def test_ghsa_q5qq_mvfm_j35x_importlib_import_module(tmp_path):
    result = scan_case(tmp_path, ghsa_q5qq_mvfm_j35x_importlib_import_module)
    assert_dangerous(result, "importlib.import_module")
    assert_dangerous(result, "os.system")  # the getattr on the imported module, resolved


@case("GHSA-h4rm-mm56-xf63.pkl")
def ghsa_h4rm_mm56_xf63_builtins_import_getattr() -> bytes:
    """fickling CVE-2026-22612: __import__ then getattr through PUT/GET, protocol 0 style."""
    return pickle(global_("builtins", "__import__"), string("os"), tuple1(), reduce(), put(0), pop(),
                  global_("builtins", "getattr"), get(0), string("system"), tuple2(), reduce(), put(1), pop(),
                  get(1), string("echo modelaudit-test"), tuple1(), reduce(), stop())


def test_ghsa_h4rm_mm56_xf63_builtins_import_getattr(tmp_path):
    result = scan_case(tmp_path, ghsa_h4rm_mm56_xf63_builtins_import_getattr)
    assert_dangerous(result, "builtins.__import__")
    assert_dangerous(result, "os.system")


@case("GHSA-vvpj-8cmc-gx39.pkl")
def ghsa_vvpj_8cmc_gx39_pkgutil_resolve_name() -> bytes:
    """pkgutil.resolve_name('os:system') names os.system as data; its result is then called."""
    return pickle(global_("pkgutil", "resolve_name"), mark(), short_binunicode("os:system"), tuple_(), reduce(),
                  push(("echo modelaudit-test",), 2), reduce(), stop())


def test_ghsa_vvpj_8cmc_gx39_pkgutil_resolve_name(tmp_path):
    result = scan_case(tmp_path, ghsa_vvpj_8cmc_gx39_pkgutil_resolve_name)
    assert_dangerous(result, "pkgutil.resolve_name")
    resolved = assert_dangerous(result, "os.system")
    assert resolved["details"]["resolver"] == "pkgutil.resolve_name"


@case("GHSA-5hvc-6wx8-mvv4-pydoc.pkl")
def ghsa_5hvc_6wx8_mvv4_pydoc_locate() -> bytes:
    return pickle(proto(5), frame_free_stack_call("pydoc", "locate", "os.system"), push(("echo modelaudit-test",)),
                  reduce(), stop())


def test_ghsa_5hvc_6wx8_mvv4_pydoc_locate(tmp_path):
    result = scan_case(tmp_path, ghsa_5hvc_6wx8_mvv4_pydoc_locate)
    assert_dangerous(result, "pydoc.locate")
    assert_dangerous(result, "os.system")


@case("picklescan_malicious18_pydoc_pipepager.pkl")
def picklescan_pydoc_pipepager() -> bytes:
    return reduce_pickle("pydoc", "pipepager", "", "echo modelaudit-test")


def test_picklescan_pydoc_pipepager(tmp_path):
    assert_dangerous(scan_case(tmp_path, picklescan_pydoc_pipepager), "pydoc.pipepager")


@case("GHSA-6ggj-6f2q-f7mx.pkl")
def ghsa_6ggj_6f2q_f7mx_subinterpreters_via_setstate() -> bytes:
    """fickling: _interpreters.create()/run_string() routed through BUILD so nothing looks unused."""
    return pickle(proto(4), callee("collections", "OrderedDict"), empty_tuple(), reduce(), none(), empty_dict(),
                  push("a"), call("_interpreters", "create"), setitem(), push("b"),
                  call("_xxsubinterpreters", "run_string", 1, HARMLESS_CODE), setitem(), tuple2(), build(), stop())


def test_ghsa_6ggj_6f2q_f7mx_subinterpreters_via_setstate(tmp_path):
    result = scan_case(tmp_path, ghsa_6ggj_6f2q_f7mx_subinterpreters_via_setstate)
    assert_dangerous(result, "_interpreters.create")
    assert_dangerous(result, "_xxsubinterpreters.run_string")


PRIVATE = family("private", {f"{m}.{n}": (f"private_{m}_{n}.pkl", reduce_pickle(m, n, 1)) for m, n in [
    ("_imp", "create_dynamic"), ("_frozen_importlib", "_call_with_frames_removed"), ("_winapi", "CreateProcess"),
    ("_testcapi", "run_in_subinterp"), ("_sitebuiltins", "_Helper"), ("_some_future_internal", "spawn")]})


@pytest.mark.parametrize("target", sorted(PRIVATE))
def test_private_modules_are_dangerous_as_a_family(tmp_path, target):
    """Private interpreter modules are one family, not a list of names: a new one is still critical."""
    assert_dangerous(scan_bytes(tmp_path, PRIVATE[target]), target.split(".", 1)[1])


@case("unicode_proto0_eval.pkl")
def unicode_proto0_eval() -> bytes:
    return pickle(global_("__builtin__", "eval"), mark(), unicode_(HARMLESS_CODE), tuple_(), reduce(), stop())


def test_unicode_proto0_eval(tmp_path):
    assert_dangerous(scan_case(tmp_path, unicode_proto0_eval), "builtins.eval")


THIRD_PARTY = family("third-party-evaluators", {f"{m}.{n}": (f"third_party_{m}_{n}.pkl", reduce_pickle(m, n, *a))
                                                for m, n, a in [
    ("numexpr", "evaluate", ("__import__('os').system('echo modelaudit-test')",)),  # CVE-2023-39631
    ("sympy", "sympify", ("__import__('os').system('echo modelaudit-test')",)),
    ("sympy.parsing.sympy_parser", "parse_expr", ("1",)),
    ("transformers.dynamic_module_utils", "get_class_from_dynamic_module", ("m.M", "attacker/repo")),
    ("mlflow.pyfunc", "load_model", ("runs:/0/model",)),
    ("numpy", "ndarray.tofile", ("/tmp/modelaudit-test",))]})


@pytest.mark.parametrize("target", sorted(THIRD_PARTY))
def test_third_party_evaluators_loaders_and_writers(tmp_path, target):
    """Libraries that eval expression strings, import hub code, load models or write files are critical."""
    assert_dangerous(scan_bytes(tmp_path, THIRD_PARTY[target]), target)
