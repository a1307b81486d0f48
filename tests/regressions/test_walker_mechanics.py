"""How the opcode walker resolves globals and calls: every opcode that names or calls a
global, memo tricks from published bypasses, discarded calls, broken tails, stacked
streams, every protocol and text spelling, and unknown globals (never clean)."""

from __future__ import annotations

import pytest

from tests.builders import (CANARY_MODULE, HARMLESS_CMD, benign, binget, binint, binint1, binpersid, binput, build,
                            call, callee, dup, empty_dict, empty_list, empty_tuple, ext1, ext2, ext4, frame, get,
                            global_, inst, long_binget, long_binput, mark, memoize, newobj, newobj_ex, none, obj,
                            payload, persid, pickle, pop, pop_mark, proto, push, put, reduce, reduce_pickle,
                            setitem, short_binunicode, stack_global, stop, string, tuple1, tuple2, tuple_, unicode_,
                            binunicode, binunicode8, short_binstring, binstring, appends)
from tests.regressions.corpus import (family, assert_clean, assert_dangerous, assert_warning, case, issues, scan_bytes,
                                      scan_case)

CMD = (HARMLESS_CMD,)


# ----------------------------------------------------------------------------- GLOBAL and STACK_GLOBAL
STRING_OPS = {"short_binunicode": short_binunicode, "binunicode": binunicode, "binunicode8": binunicode8,
              "unicode": unicode_, "string": string, "short_binstring": short_binstring, "binstring": binstring}


STACK_GLOBAL_TEXT = family("stack_global", {
    op: (f"stack_global_{op}.pkl", pickle(proto(4), text("os"), text("system"), stack_global(), text(HARMLESS_CMD),
                                          tuple1(), reduce(), stop())) for op, text in STRING_OPS.items()})


@pytest.mark.parametrize("op", sorted(STACK_GLOBAL_TEXT))
def test_stack_global_from_every_string_opcode(tmp_path, op):
    """STACK_GLOBAL takes its operands from any text-pushing opcode (GHSA-9gvj-pp9x-gcfr used STRING)."""
    finding = assert_dangerous(scan_bytes(tmp_path, STACK_GLOBAL_TEXT[op]), "os.system")
    assert finding["details"]["opcode"] == "STACK_GLOBAL"


@case("GHSA-9gvj-pp9x-gcfr.pkl")
def ghsa_9gvj_pp9x_gcfr_string_stack_global() -> bytes:
    """picklescan: STRING operands for STACK_GLOBAL, no PROTO at all."""
    return pickle(string("os"), string("system"), stack_global(), string("echo"), tuple1(), reduce(), stop())


def test_ghsa_9gvj_pp9x_gcfr_string_stack_global(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_9gvj_pp9x_gcfr_string_stack_global), "os.system")


MEMO_GETS = {
    "binget": (lambda i: binput(i), lambda i: binget(i)),
    "long_binget": (lambda i: long_binput(i + 300), lambda i: long_binget(i + 300)),
    "get": (lambda i: put(i), lambda i: get(i)),
    "memoize": (lambda i: memoize(), lambda i: binget(i)),
}


MEMO_CASES = family("memo", {
    kind: (f"memo_{kind}.pkl", pickle(proto(4), short_binunicode("os"), store(0), pop(), short_binunicode("system"),
                                      store(1), pop(), push({"weights": [1, 2], "name": "model"}), pop(),
                                      load(0), load(1), stack_global(), push(CMD), reduce(), stop()))
    for kind, (store, load) in MEMO_GETS.items()})


@pytest.mark.parametrize("kind", sorted(MEMO_CASES))
def test_stack_global_operands_from_the_memo(tmp_path, kind):
    """Module and name are stored in the memo long before STACK_GLOBAL reads them back."""
    assert_dangerous(scan_bytes(tmp_path, MEMO_CASES[kind]), "os.system")


@case("picklescan_issue14_memo_confusion.pkl")
def picklescan_issue14_memo_confusion() -> bytes:
    """BINPUT and MEMOIZE mixed so a naive memo model sees torch._utils where the real memo holds os."""
    return pickle(proto(4), binstring("os"), binput(0), binstring("system"), binput(1), short_binunicode("torch._utils"),
                  memoize(), short_binunicode("_rebuild_tensor_v2"), memoize(), binget(0), binget(1),
                  stack_global(), push(CMD), reduce(), stop())


def test_picklescan_issue14_memo_confusion(tmp_path):
    """memoize writes at len(memo) (2, 3 here), so binget 0/1 still read "os"/"system"."""
    assert_dangerous(scan_case(tmp_path, picklescan_issue14_memo_confusion), "os.system")


@case("picklescan_issue22_ctf_memo.pkl")
def picklescan_issue22_ctf_memo() -> bytes:
    """imaginaryctf 'Safe Pickle': PUT/GET text opcodes with decoy torch.LongStorage entries."""
    return pickle(unicode_("os"), put(2), pop(), unicode_("system"), put(3), pop(), unicode_("torch"), put(0), pop(),
                  unicode_("LongStorage"), put(1), pop(), get(2), get(3), stack_global(), mark(),
                  unicode_("echo modelaudit-test"), tuple_(), reduce(), stop())


def test_picklescan_issue22_ctf_memo(tmp_path):
    assert_dangerous(scan_case(tmp_path, picklescan_issue22_ctf_memo), "os.system")


@case("modelscan_issue85_build_setattr.pkl")
def modelscan_issue85_build_setattr() -> bytes:
    """BUILD on a global sets attributes (numpy.prod.a = 'os'), then GLOBAL reads them back."""
    return pickle(proto(5), global_("numpy", "prod"), none(), mark(), unicode_("a"), unicode_("os"), b"d", tuple2(),
                  build(), none(), mark(), unicode_("b"), unicode_("system"), b"d", tuple2(), build(), pop(),
                  global_("numpy", "prod.a"), put(0), global_("numpy", "prod.b"), put(1), pop(), pop(), get(0),
                  get(1), stack_global(), unicode_(HARMLESS_CMD), tuple1(), reduce(), stop())


def test_modelscan_issue85_build_setattr(tmp_path):
    result = scan_case(tmp_path, modelscan_issue85_build_setattr)
    assert_warning(result, "MA-P011", "numpy.prod")  # BUILD applied to a global
    assert issues(result, "MA-P007", "critical"), "STACK_GLOBAL on non-text operands must be critical"


@case("modelscan_issue89_numpy_builtins.pkl")
def modelscan_issue89_numpy_builtins() -> bytes:
    """numpy.__builtins__ is the builtins dict; dict.get on it fetches exec."""
    return pickle(proto(5), global_("builtins", "dict.get"), global_("numpy", "__builtins__"), unicode_("exec"),
                  tuple2(), reduce(), unicode_("print('modelaudit-test')"), tuple1(), reduce(), stop())


@case("modelscan_issue89_sys_modules.pkl")
def modelscan_issue89_sys_modules_walk() -> bytes:
    """Reach os through an innocent module's attributes: numpy core._internal.sys.modules."""
    return pickle(proto(5), global_("numpy", "prod"), none(), global_("numpy", "core._internal.sys.modules"),
                  tuple2(), build(), pop(), global_("numpy", "prod.os.system"), unicode_(HARMLESS_CMD), tuple1(),
                  reduce(), stop())


def test_modelscan_issue89_numpy_builtins(tmp_path):
    result = scan_case(tmp_path, modelscan_issue89_numpy_builtins)
    assert_dangerous(result, "numpy.__builtins__", code="MA-P003")
    assert_warning(result, "MA-P004")  # dict.get(...)'s result is then called


def test_modelscan_issue89_sys_modules_walk(tmp_path):
    result = scan_case(tmp_path, modelscan_issue89_sys_modules_walk)
    assert_dangerous(result, "numpy.core._internal.sys.modules")
    assert_dangerous(result, "numpy.prod.os.system")


DOTTED = [("pathlib", "os.system"), ("torch", "serialization.pickle.loads"), ("collections", "abc.sys.modules"),
          ("tqdm.auto", "os.system"), ("builtins", "__builtins__.eval")]


DOTTED_CASES = family("dotted", {f"{m}+{n}": (f"dotted_{m}_{n}.pkl", reduce_pickle(m, n, HARMLESS_CMD, protocol=2))
                                  for m, n in DOTTED})


@pytest.mark.parametrize("key", sorted(DOTTED_CASES))
def test_dotted_names_walk_attributes_of_innocent_modules(tmp_path, key):
    name = key.split("+", 1)[1]
    result = scan_bytes(tmp_path, DOTTED_CASES[key])
    hits = issues(result, severity="critical")
    assert any(h["rule_code"] in ("MA-P001", "MA-P003") and name in h["message"] for h in hits), result["issues"]


PY2 = [("__builtin__", "eval", "builtins.eval"), ("__builtin__", "reduce", "builtins.reduce"),
       ("__builtin__", "intern", "builtins.intern"), ("copy_reg", "__reduce_ex__", "copyreg.__reduce_ex__"),
       ("cPickle", "loads", "pickle.loads"), ("httplib", "HTTPSConnection", "httplib.HTTPSConnection"),
       ("urllib2", "urlopen", "urllib2.urlopen"), ("commands", "getstatusoutput", "subprocess.getstatusoutput"),
       ("SocketServer", "TCPServer", "SocketServer.TCPServer"), ("thread", "start_new_thread", "thread.start_new_thread")]


PY2_CASES = family("py2", {f"{m}.{n}": (f"py2_{m}_{n}.pkl", reduce_pickle(m, n, "x", protocol=0)) for m, n, _ in PY2})


@pytest.mark.parametrize("module,name,target", PY2, ids=[f"{m}.{n}" for m, n, _ in PY2])
def test_python2_aliases(tmp_path, module, name, target):
    """find_class maps Python 2 names (fix_imports): __builtin__.reduce is functools.reduce."""
    assert_dangerous(scan_bytes(tmp_path, PY2_CASES[f"{module}.{name}"]), target)


# ----------------------------------------------------------------------------- every calling opcode
CALLS = family("calls", {k: (f"calls_{k}.pkl", v) for k, v in {
    "reduce": pickle(proto(2), global_("os", "system"), push(CMD, 2), reduce(), stop()),
    "inst": pickle(mark(), string(HARMLESS_CMD), inst("os", "system"), stop()),
    "obj": pickle(mark(), global_("os", "system"), string(HARMLESS_CMD), obj(), stop()),
    "newobj": pickle(proto(2), global_("subprocess", "Popen"), push((["echo", "modelaudit-test"],), 2), newobj(),
                     stop()),
    "newobj_ex": pickle(proto(4), callee("subprocess", "Popen"), push((["echo", "modelaudit-test"],)), empty_dict(),
                        newobj_ex(), stop()),
}.items()})


@pytest.mark.parametrize("opcode", sorted(CALLS))
def test_every_calling_opcode(tmp_path, opcode):
    data = CALLS[opcode]
    finding = assert_dangerous(scan_bytes(tmp_path, data), "system" if opcode in ("reduce", "inst", "obj") else "Popen")
    assert "call_args" in finding["details"], "the call and its arguments are recorded on the finding"


@case("build_setstate.pkl")
def build_sets_setstate() -> bytes:
    """BUILD installs __setstate__ = os.system on an object; the next BUILD calls it with the state."""
    return pickle(proto(2), global_("collections", "OrderedDict"), empty_tuple(), reduce(), empty_dict(),
                  unicode_("__setstate__"), global_("os", "system"), setitem(), build(), unicode_(HARMLESS_CMD),
                  build(), stop())


@case("build_reduce_slotstate.pkl")
def build_sets_reduce_in_slotstate() -> bytes:
    return pickle(proto(2), global_("collections", "OrderedDict"), empty_tuple(), reduce(), none(), empty_dict(),
                  unicode_("__reduce__"), global_("os", "system"), setitem(), tuple2(), build(), stop())


def test_build_sets_setstate(tmp_path):
    result = scan_case(tmp_path, build_sets_setstate)
    assert_dangerous(result, "__setstate__", code="MA-P010")
    assert_dangerous(result, "os.system")


def test_build_sets_reduce_in_slotstate(tmp_path):
    assert_dangerous(scan_case(tmp_path, build_sets_reduce_in_slotstate), "__reduce__", code="MA-P010")


EXT_CASES = family("ext", {k: (f"ext_{k}.pkl", pickle(proto(2), op, push(CMD, 2), reduce(), stop()))
                          for k, op in [("EXT1", ext1(1)), ("EXT2", ext2(0x1234)), ("EXT4", ext4(0x123456))]})


@pytest.mark.parametrize("opcode", sorted(EXT_CASES))
def test_extension_registry_opcodes(tmp_path, opcode):
    """EXT* name a global through copyreg's registry, set up by the loading process: always a warning."""
    finding = assert_warning(scan_bytes(tmp_path, EXT_CASES[opcode]), "MA-P008", opcode)
    assert finding["details"]["opcode"] == opcode


@case("binpersid_dangerous.pkl")
def binpersid_with_dangerous_pid() -> bytes:
    """A persistent id handed to persistent_load carries a callable; the callable is classified."""
    return pickle(proto(2), push("storage", 2), global_("os", "system"), push(HARMLESS_CMD, 2), b"\x87", binpersid(),
                  stop())


def test_binpersid_with_dangerous_pid(tmp_path):
    assert_dangerous(scan_case(tmp_path, binpersid_with_dangerous_pid), "os.system")


def test_persid_and_binpersid_for_storages_stay_quiet(tmp_path):
    """The honest use (torch storage references) is not a finding by itself."""
    honest = pickle(proto(2), push(("storage", "0", "cpu", 4), 2), binpersid(), pop(), mark(), persid("0"), b"l",
                    stop())
    assert_clean(scan_bytes(tmp_path, honest))


# ----------------------------------------------------------------------------- discarded calls
@case("GHSA-mxhj-88fx-4pcv.pkl")
def ghsa_mxhj_88fx_4pcv_obj_pop() -> bytes:
    """fickling: a call made by OBJ and thrown away by POP vanished from its AST."""
    return pickle(proto(4), mark(), short_binunicode("smtplib"), short_binunicode("SMTP"), stack_global(),
                  short_binunicode("127.0.0.1"), obj(), pop(), none(), stop())


def test_ghsa_mxhj_88fx_4pcv_obj_pop(tmp_path):
    result = scan_case(tmp_path, ghsa_mxhj_88fx_4pcv_obj_pop)
    assert_dangerous(result, "smtplib.SMTP")
    assert_warning(result, "MA-P005", "smtplib.SMTP")


_BODY = call("posix", "system", HARMLESS_CMD)
DISCARDS = family("discard", {k: (f"discard_{k}.pkl", pickle(proto(4), v, push({"weights": [1, 2]}), stop()))
                              for k, v in {"pop": pickle(_BODY, pop()),
                                           "pop_mark": pickle(mark(), _BODY, dup(), pop_mark()),
                                           "setitem_then_pop": pickle(empty_dict(), push("k"), _BODY, setitem(),
                                                                      pop())}.items()})


@pytest.mark.parametrize("discard", sorted(DISCARDS))
def test_discarded_calls(tmp_path, discard):
    result = scan_bytes(tmp_path, DISCARDS[discard])
    assert_dangerous(result, "posix.system")
    if discard != "setitem_then_pop":
        assert_warning(result, "MA-P005", "posix.system")


# ----------------------------------------------------------------------------- broken and stacked streams
@case("nullifai_broken_tail.pkl")
def nullifai_payload_before_broken_tail() -> bytes:
    """nullifAI (ReversingLabs 2025): the payload runs, then the stream breaks so scanners give up."""
    return pickle(proto(2), call("posix", "system", HARMLESS_CMD, protocol=2), pop(), b"X\x00\x00\x10\x00broken")


@case("picklescan_broken_model.pkl")
def picklescan_broken_model() -> bytes:
    return b"cbuiltins\nexec\n(X>\nf = open('my_file.txt', 'a'); f.write('Malicious'); f.close()tRX."


@case("picklescan_keyerror_exploit.pkl")
def picklescan_keyerror_exploit() -> bytes:
    """Payload first, then STACK_GLOBAL reading a memo index that was never written."""
    return pickle(proto(4), global_("os", "system"), unicode_(HARMLESS_CMD), tuple1(), reduce(), pop(),
                  short_binunicode("os"), memoize(), binget(3), binget(0), stack_global(), binint1(0x42), stop())


@case("picklescan_type_confusion.pkl")
def picklescan_type_confusion() -> bytes:
    return pickle(proto(4), global_("os", "system"), unicode_(HARMLESS_CMD), tuple1(), reduce(), pop(), binint(42),
                  memoize(), short_binunicode("os"), memoize(), binget(0), binget(1), stack_global(), binint1(0x42),
                  stop())


def test_nullifai_payload_before_broken_tail(tmp_path):
    result = scan_case(tmp_path, nullifai_payload_before_broken_tail)
    assert_dangerous(result, "posix.system")
    assert_warning(result, "MA-P006", "Malformed pickle stream")


def test_picklescan_broken_model(tmp_path):
    result = scan_case(tmp_path, picklescan_broken_model)
    assert_dangerous(result, "builtins.exec")
    assert_warning(result, "MA-P006")


def test_picklescan_keyerror_exploit(tmp_path):
    result = scan_case(tmp_path, picklescan_keyerror_exploit)
    assert_dangerous(result, "os.system")
    assert_warning(result, "MA-P006", "memo value not found")


def test_picklescan_type_confusion(tmp_path):
    result = scan_case(tmp_path, picklescan_type_confusion)
    assert_dangerous(result, "os.system")
    assert issues(result, "MA-P007", "critical")


BROKEN = family("broken_tail", {
    tail.hex(): (f"broken_{tail.hex()}.pkl", pickle(proto(4), call("posix", "system", HARMLESS_CMD), tail))
    for tail in [b"\xff\xfe", b"X\xff\xff\xff\x7f", b"(t", b"c\n", b"\x80\x09", b"N" * 9]})


@pytest.mark.parametrize("tail", sorted(BROKEN))
def test_payload_before_every_kind_of_break(tmp_path, tail):
    result = scan_bytes(tmp_path, BROKEN[tail])
    assert_dangerous(result, "posix.system")
    assert_warning(result, "MA-P006")


STACKED = family("stacked", {p: (f"stacked_{p}.pkl", b"".join([benign(2), benign(0)][: p - 1] + [payload(4)]))
                              for p in (2, 3)})


@pytest.mark.parametrize("position", sorted(STACKED))
def test_stacked_pickles_payload_later(tmp_path, position):
    """pickle.load in a loop (and torch's legacy format) reads every stream in a file."""
    assert_dangerous(scan_bytes(tmp_path, STACKED[position]), "posix.system")


def test_honest_stacked_pickles_are_clean(tmp_path):
    assert_clean(scan_bytes(tmp_path, benign(2) + benign(4) + benign(0)))


# ----------------------------------------------------------------------------- protocols and text spellings
TEXT_STARTS = family("start", {k: (f"start_{k}.pkl", v) for k, v in {
    "mark_string": pickle(mark(), string(HARMLESS_CMD), inst("os", "system"), stop()),
    "mark_dict": pickle(mark(), b"d", mark(), global_("os", "system"), string(HARMLESS_CMD), tuple_(), reduce(),
                        b"p0\n", pop(), stop()),
    "cos": pickle(global_("os", "system"), mark(), string(HARMLESS_CMD), tuple_(), reduce(), stop()),
    "c__builtin__": pickle(global_("__builtin__", "eval"), mark(), string("1+1"), tuple_(), reduce(), stop()),
    "headerless_binary": pickle(short_binunicode("posix"), short_binunicode("system"), stack_global(),
                                short_binunicode(HARMLESS_CMD), tuple1(), reduce(), stop()),
    "frame_first": pickle(frame(40), short_binunicode("posix"), short_binunicode("system"), stack_global(),
                          short_binunicode(HARMLESS_CMD), tuple1(), reduce(), stop()),
    "proto0_header": pickle(proto(0), global_("os", "system"), mark(), string(HARMLESS_CMD), tuple_(), reduce(),
                            stop()),
}.items()})


@pytest.mark.parametrize("start", sorted(TEXT_STARTS))
@pytest.mark.parametrize("ext", [".pkl", ".bin", ".dat"])
def test_text_and_headerless_pickles(tmp_path, start, ext):
    """Protocol 0/1 pickles begin with (S, (d, cos, c__builtin__; pickles need no PROTO header at all."""
    result = scan_bytes(tmp_path, TEXT_STARTS[start], f"model{ext}")
    assert [i for i in issues(result, severity="critical") if i["rule_code"] == "MA-P001"], result["issues"]


@pytest.mark.parametrize("protocol", range(6))
def test_honest_data_in_every_protocol_is_clean(tmp_path, protocol):
    assert_clean(scan_bytes(tmp_path, benign(protocol)))


# ----------------------------------------------------------------------------- unknown is never clean
UNKNOWN = family("unknown", {f"{m}.{n}": (f"unknown_{m}_{n}.pkl", reduce_pickle(m, n, 1, protocol=4)) for m, n in [
    ("some_pkg.mod", "thing"), ("__main__", "MyModel"), (CANARY_MODULE, "boom"), ("sklearn_lookalike", "Pipeline"),
    ("builtins", "dict.get")]})


@pytest.mark.parametrize("target", sorted(UNKNOWN))
def test_unknown_globals_are_warnings(tmp_path, target):
    result = scan_bytes(tmp_path, UNKNOWN[target])
    finding = assert_warning(result, "MA-P002", target)
    assert finding["details"]["opcode"] == "STACK_GLOBAL"
    assert result["summary"]["exit_code"] == 1


@case("unknown_reference_only.pkl")
def unknown_global_referenced_not_called() -> bytes:
    return pickle(proto(2), empty_list(), mark(), global_(CANARY_MODULE, "Thing"), appends(), stop())


def test_unknown_global_without_call_is_still_a_warning(tmp_path):
    assert_warning(scan_case(tmp_path, unknown_global_referenced_not_called), "MA-P002", CANARY_MODULE)


def test_honest_lookalikes_stay_quiet(tmp_path):
    """Dangerous names as data, OrderedDict rebuilt with BUILD, bytes spelled codecs.encode: all quiet."""
    text = push({"module": "os", "function": "system", "cmd": "eval('x')", "note": "cos\nsystem\n"}, 2)
    ordered = pickle(global_("collections", "OrderedDict"), empty_tuple(), reduce(), empty_dict(), push("a", 2),
                     push(1, 2), setitem(), build())
    data = pickle(proto(2), mark(), text, ordered, push(b"\x00binary\xff", 2), tuple_(), stop())
    assert_clean(scan_bytes(tmp_path, data))


STACKED_BROKEN = family("stacked_broken", {k: (f"stacked_broken_{k}.pkl", benign(4) + v) for k, v in {
    "headerless": pickle(short_binunicode("posix"), short_binunicode("system"), stack_global(),
                         short_binunicode(HARMLESS_CMD), tuple1(), reduce(), b"\xff\xff"),
    "proto4": pickle(proto(4), call("posix", "system", HARMLESS_CMD), b"\xff\xff"),
    "text": pickle(global_("posix", "system"), mark(), string(HARMLESS_CMD), tuple_(), reduce(), b"\xff"),
}.items()})


@pytest.mark.parametrize("kind", sorted(STACKED_BROKEN))
def test_second_stream_with_payload_then_break(tmp_path, kind):
    """A later stream that runs its payload and then breaks is still a stream, not trailing bytes."""
    result = scan_bytes(tmp_path, STACKED_BROKEN[kind])
    assert_dangerous(result, "posix.system")
    assert_warning(result, "MA-P006")


def test_honest_pickle_with_trailing_bytes_is_quiet(tmp_path):
    for tail in (b"\x8c\x05hello\xff\xff", b"hello world\n", b"\x00" * 64):
        result = scan_bytes(tmp_path, benign(4) + tail)
        assert not issues(result, "MA-P001") and not issues(result, "MA-P006"), result["issues"]
