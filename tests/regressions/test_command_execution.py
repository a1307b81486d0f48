"""Callables that start processes: os/posix, subprocess, pty, asyncio internals, private
spawn helpers, and stdlib functions that shell out on the attacker's behalf."""

from __future__ import annotations

import pytest

from tests.builders import (HARMLESS_CMD, call, callee, empty_dict, global_, mark, memoize, newtrue, none, obj,
                            pickle, proto, push, reduce, reduce_pickle, short_binunicode, stack_global, stop,
                            string, tuple1, tuple2, tuple_, binint1, build, frame)
from tests.regressions.corpus import assert_dangerous, case, family, scan_bytes, scan_case


PROTOCOLS = family("protocols", {f"posix_system_p{p}": (f"posix_system_p{p}.pkl", reduce_pickle("posix", "system", HARMLESS_CMD,
                                                                                   protocol=p)) for p in range(6)})


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_posix_system_every_protocol(tmp_path, name):
    """The textbook payload, written as CPython writes os.system (posix.system), in every protocol."""
    finding = assert_dangerous(scan_bytes(tmp_path, PROTOCOLS[name]), "posix.system")
    assert finding["details"]["family"] == "command-execution"
    assert "call_args" in finding["details"] and "modelaudit-test" in finding["details"]["call_args"]


COMMAND_CALLABLES = [
    ("os", "system", (HARMLESS_CMD,)),
    ("nt", "system", (HARMLESS_CMD,)),
    ("os", "popen", (HARMLESS_CMD,)),
    ("os", "execv", ("/bin/echo", ["echo", "modelaudit-test"])),
    ("os", "posix_spawn", ("/bin/echo", ["echo", "modelaudit-test"], {})),
    ("os", "spawnlp", (0, "echo", "echo", "modelaudit-test")),
    ("subprocess", "Popen", (["echo", "modelaudit-test"],)),
    ("subprocess", "run", (["echo", "modelaudit-test"],)),
    ("subprocess", "check_output", (["echo", "modelaudit-test"],)),
    ("subprocess", "getoutput", (HARMLESS_CMD,)),
    ("commands", "getoutput", (HARMLESS_CMD,)),  # Python 2 name, mapped to subprocess
    ("platform", "popen", (HARMLESS_CMD,)),
    ("pty", "spawn", (["echo", "modelaudit-test"],)),
    ("multiprocessing.util", "spawnv_passfds", (b"/bin/echo", [b"echo", b"modelaudit-test"], ())),
    ("distutils.spawn", "spawn", (["echo", "modelaudit-test"],)),
    ("mailcap", "findmatch", ({"text/plain": [{"view": "cat %s", "test": HARMLESS_CMD}]}, "text/plain")),
    ("asyncio.subprocess", "create_subprocess_shell", (HARMLESS_CMD,)),
    ("pexpect", "run", (HARMLESS_CMD,)),
]


COMMANDS = family("commands", {f"{m}.{n}": (f"cmd_{m}_{n}.pkl", reduce_pickle(m, n, *a)) for m, n, a in COMMAND_CALLABLES})


@pytest.mark.parametrize("target", sorted(COMMANDS))
def test_command_execution_callables(tmp_path, target):
    finding = assert_dangerous(scan_bytes(tmp_path, COMMANDS[target]), target.rsplit(".", 1)[1])
    assert finding["details"]["family"] == "command-execution"


# ----------------------------------------------------------------------------- published bypasses
@case("cve_2025_10157.pkl")
def cve_2025_10157_asyncio_subclass_import() -> bytes:
    """GHSA-f7qq-56ww-84cr: a class inside asyncio.unix_events, named through its attribute path."""
    return pickle(proto(4), frame(81), short_binunicode("asyncio.unix_events"), memoize(),
                  short_binunicode("_UnixSubprocessTransport._start"), memoize(), stack_global(), memoize(),
                  mark(), empty_dict(), memoize(), short_binunicode(HARMLESS_CMD), memoize(), newtrue(), none(),
                  none(), none(), binint1(0), tuple_(), memoize(), reduce(), memoize(), stop())


def test_cve_2025_10157_asyncio_subclass_import(tmp_path):
    finding = assert_dangerous(scan_case(tmp_path, cve_2025_10157_asyncio_subclass_import),
                               "asyncio.unix_events._UnixSubprocessTransport._start")
    assert finding["details"]["opcode"] == "STACK_GLOBAL"


@case("GHSA-q77w-mwjj-7mqx.pkl")
def ghsa_q77w_mwjj_7mqx_asyncio_unix_events() -> bytes:
    return reduce_pickle("asyncio.unix_events", "_UnixSubprocessTransport._start", {}, HARMLESS_CMD, True, None,
                         None, None, 0, protocol=2)


def test_ghsa_q77w_mwjj_7mqx_asyncio_unix_events(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_q77w_mwjj_7mqx_asyncio_unix_events), "_UnixSubprocessTransport._start")


@case("posixsubprocess.pkl")
def posixsubprocess_fork_exec() -> bytes:
    """_posixsubprocess.fork_exec: the C primitive under subprocess, a private module."""
    return reduce_pickle("_posixsubprocess", "fork_exec", [b"/bin/echo"], [b"/bin/echo"], True, (), None, None,
                         -1, -1, -1, -1, -1, -1, -1, -1, False, False, False, None, None, None, -1, None, protocol=4)


def test_posixsubprocess_fork_exec(tmp_path):
    finding = assert_dangerous(scan_case(tmp_path, posixsubprocess_fork_exec), "_posixsubprocess.fork_exec")
    assert finding["details"]["family"] == "command-execution"


@case("GHSA-r7v6-mfhq-g3m2.pkl")
def ghsa_r7v6_mfhq_g3m2_pty_spawn() -> bytes:
    """fickling: pty.spawn whose result is kept alive by BUILD, so no variable looks unused."""
    return pickle(proto(4), frame(26), short_binunicode("pty"), memoize(), short_binunicode("spawn"), memoize(),
                  stack_global(), memoize(), short_binunicode("echo"), memoize(), tuple1(), memoize(), reduce(),
                  memoize(), short_binunicode("gottem"), memoize(), build(), stop())


def test_ghsa_r7v6_mfhq_g3m2_pty_spawn(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_r7v6_mfhq_g3m2_pty_spawn), "pty.spawn")


@case("fickling_pr108_pty_obj.pkl")
def fickling_pr108_pty_spawn_obj() -> bytes:
    """fickling PR #108: (cpty\\nspawn\\nS"id"\\no. — OBJ with a protocol-0 GLOBAL."""
    return pickle(mark(), global_("pty", "spawn"), string("echo"), obj(), stop())


def test_fickling_pr108_pty_spawn_obj(tmp_path):
    finding = assert_dangerous(scan_case(tmp_path, fickling_pr108_pty_spawn_obj), "pty.spawn")
    assert finding["details"].get("call_args") == "('echo',)"


@case("GHSA-vqmv-47xg-9wpr.pkl")
def ghsa_vqmv_47xg_9wpr_pty_spawn() -> bytes:
    return reduce_pickle("pty", "spawn", ["/bin/sh", "-c", HARMLESS_CMD], protocol=4)


def test_ghsa_vqmv_47xg_9wpr_pty_spawn(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_vqmv_47xg_9wpr_pty_spawn), "pty.spawn")


@case("GHSA-5hwf-rc88-82xm.pkl")
def ghsa_5hwf_rc88_82xm_uuid_get_command_stdout() -> bytes:
    """fickling: uuid._get_command_stdout runs subprocess.Popen on its arguments."""
    return pickle(proto(4), call("uuid", "_get_command_stdout", "echo", "modelaudit-test"), stop())


def test_ghsa_5hwf_rc88_82xm_uuid_get_command_stdout(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_5hwf_rc88_82xm_uuid_get_command_stdout), "uuid._get_command_stdout")


# GHSA-g38g-8gr9-h9xp: stdlib modules with direct command execution that blocklists missed.
@case("GHSA-g38g-8gr9-h9xp-osx-support.pkl")
def ghsa_g38g_8gr9_h9xp_osx_support() -> bytes:
    return reduce_pickle("_osx_support", "_read_output", HARMLESS_CMD, protocol=4)


@case("GHSA-g38g-8gr9-h9xp-aix-support.pkl")
def ghsa_g38g_8gr9_h9xp_aix_support() -> bytes:
    return reduce_pickle("_aix_support", "_read_cmd_output", HARMLESS_CMD, protocol=4)


@case("GHSA-g38g-8gr9-h9xp-imaplib.pkl")
def ghsa_g38g_8gr9_h9xp_imaplib() -> bytes:
    return reduce_pickle("imaplib", "IMAP4_stream", HARMLESS_CMD, protocol=4)


@case("GHSA-g38g-8gr9-h9xp-pyrepl-pager.pkl")
def ghsa_g38g_8gr9_h9xp_pyrepl_pager() -> bytes:
    return reduce_pickle("_pyrepl.pager", "pipe_pager", "text", HARMLESS_CMD, protocol=4)


@case("GHSA-g38g-8gr9-h9xp-uuid.pkl")
def ghsa_g38g_8gr9_h9xp_uuid() -> bytes:
    return reduce_pickle("uuid", "_get_command_stdout", "echo", "modelaudit-test", protocol=2)


@case("GHSA-g38g-8gr9-h9xp-test.pkl")
def ghsa_g38g_8gr9_h9xp_test_support() -> bytes:
    return reduce_pickle("test.support.script_helper", "assert_python_ok", "-c", "print('modelaudit-test')")


def test_ghsa_g38g_8gr9_h9xp_osx_support(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_g38g_8gr9_h9xp_osx_support), "_osx_support._read_output")


def test_ghsa_g38g_8gr9_h9xp_aix_support(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_g38g_8gr9_h9xp_aix_support), "_aix_support._read_cmd_output")


def test_ghsa_g38g_8gr9_h9xp_imaplib(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_g38g_8gr9_h9xp_imaplib), "imaplib.IMAP4_stream")


def test_ghsa_g38g_8gr9_h9xp_pyrepl_pager(tmp_path):
    finding = assert_dangerous(scan_case(tmp_path, ghsa_g38g_8gr9_h9xp_pyrepl_pager), "_pyrepl.pager.pipe_pager")
    assert finding["details"]["family"] in ("code-evaluation", "private-module")


def test_ghsa_g38g_8gr9_h9xp_uuid(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_g38g_8gr9_h9xp_uuid), "uuid._get_command_stdout")


def test_ghsa_g38g_8gr9_h9xp_test_support(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_g38g_8gr9_h9xp_test_support), "test.support.script_helper")


@case("GHSA-q5qq-mvfm-j35x-multiprocessing.pkl")
def ghsa_q5qq_mvfm_j35x_multiprocessing() -> bytes:
    """fickling: multiprocessing.util.spawnv_passfds with an argv list built by APPENDS."""
    from tests.builders import appends, binget, empty_list, empty_tuple, short_binbytes, tuple3

    return pickle(proto(5), frame(74), short_binunicode("multiprocessing.util"), memoize(),
                  short_binunicode("spawnv_passfds"), memoize(), stack_global(), memoize(),
                  short_binbytes(b"/bin/sh"), memoize(), empty_list(), memoize(), mark(), binget(3),
                  short_binbytes(b"-c"), memoize(), short_binbytes(HARMLESS_CMD.encode()), memoize(), appends(),
                  empty_tuple(), tuple3(), memoize(), reduce(), memoize(), stop())


def test_ghsa_q5qq_mvfm_j35x_multiprocessing(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_q5qq_mvfm_j35x_multiprocessing), "multiprocessing.util.spawnv_passfds")


@case("GHSA-f745-w6jp-hpxx.pkl")
def ghsa_f745_w6jp_hpxx_torch_collect_env_run() -> bytes:
    return reduce_pickle("torch.utils.collect_env", "run", HARMLESS_CMD)


@case("GHSA-jhph-76pp-mggw.pkl")
def ghsa_jhph_76pp_mggw_torch_collect_env_run_and_read_all() -> bytes:
    return pickle(proto(4), callee("torch.utils.collect_env", "run_and_read_all"),
                  callee("torch.utils.collect_env", "run"), push(HARMLESS_CMD), tuple2(), reduce(), stop())


def test_ghsa_f745_w6jp_hpxx_torch_collect_env_run(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_f745_w6jp_hpxx_torch_collect_env_run), "torch.utils.collect_env.run")


def test_ghsa_jhph_76pp_mggw_torch_collect_env_run_and_read_all(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_jhph_76pp_mggw_torch_collect_env_run_and_read_all),
                     "torch.utils.collect_env.run_and_read_all")


PRIVATE_HELPERS = family("private_helper", {f"{m}.{n}": (f"private_helper_{m}_{n}.pkl", reduce_pickle(m, n, *a))
                                            for m, n, a in [
    ("uuid", "_find_mac_near_keyword", ("echo", "modelaudit-test", [b"x"], 0)),
    ("platform", "_syscmd_file", ("/tmp/modelaudit-test",)),
    ("subprocess", "_args_from_interpreter_flags", ()),
    ("webbrowser", "_synthesize", (HARMLESS_CMD,)),
    ("ctypes.util", "_findLib_gcc", ("c",)),
    ("shutil", "_rmtree_unsafe", ("/tmp/modelaudit-test",)),
    ("pydoc", "_start_server", ()),
]})


@pytest.mark.parametrize("target", sorted(PRIVATE_HELPERS))
def test_private_stdlib_helpers_are_one_family(tmp_path, target):
    """Private module-level helpers of the standard library are internals: critical even when unlisted."""
    assert_dangerous(scan_bytes(tmp_path, PRIVATE_HELPERS[target]), target)


def test_allowlisted_private_stdlib_names_stay_quiet(tmp_path):
    """copyreg._reconstructor and re._compile are how protocol 0-2 write objects and patterns."""
    from tests.builders import global_, pickle, proto, push, reduce, stop
    from tests.regressions.corpus import assert_clean

    data = pickle(proto(2), mark(), global_("re", "_compile"), push(("a+", 0), 2), reduce(),
                  global_("copyreg", "_reconstructor"), global_("collections", "OrderedDict"),
                  global_("builtins", "dict"), push({"a": 1}, 2), b"\x87", reduce(), tuple_(), stop())
    assert_clean(scan_bytes(tmp_path, data))
