"""The native walker core gives exactly the pure-Python walker's results.

Every pickle-bearing input the suite knows (regression corpus, honest corpus, pickles the real
pickle module writes for many values and every protocol) and thousands of seeded mutations of
them are walked by both; outcomes, raised budgets, embedded-loader hand-offs and deadline checks
must be identical. Skipped only when the extension is not built, which fails in CI.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import io
import os
import pickle
import random
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from modelaudit.scanners import _pickle_scan, _pickle_vm
from modelaudit.scanners._pickle_vm import PurePickleWalker, native_walker_class
from tests.benign.conftest import benign_corpus  # noqa: F401 - the session fixture of honest model files
from tests.regressions.corpus import load_all

NATIVE = native_walker_class()
needs_native = pytest.mark.skipif(NATIVE is None, reason="the _walkcore extension is not built here")


def test_extension_is_built_in_ci():
    """CI must run the native core: a failed build must not silently fall back to pure Python."""
    if os.environ.get("CI", "").lower() != "true":
        pytest.skip("only enforced in CI (CI=true)")
    assert NATIVE is not None, "modelaudit.scanners._walkcore did not build"
    assert _pickle_vm.PickleWalker is NATIVE


# ----------------------------------------------------------------------------------- helpers
def walk(cls: type, data: Any, **kwargs: Any) -> tuple:
    """Everything observable about one walk."""
    embedded: list[tuple[bytes, int, str]] = []
    checks = [0]

    def check_deadline() -> None:
        checks[0] += 1

    walker = cls(data, on_embedded=lambda d, p, v: embedded.append((d, p, v)), check_deadline=check_deadline,
                 **kwargs)
    try:
        outcome = walker.run()
    except Exception as exc:  # noqa: BLE001 - budgets and anything else must match too
        return ("raised", type(exc).__name__, str(exc), walker.findings, embedded, checks[0])
    return ("ok", outcome, embedded, checks[0])


def assert_same(data: Any, label: str = "", **kwargs: Any) -> tuple:
    pure = walk(PurePickleWalker, data, **kwargs)
    native = walk(NATIVE, data, **kwargs)
    assert native == pure, f"{label}: native and pure walkers differ on {data[:200]!r}"
    return pure


def corpus_pickles() -> dict[str, bytes]:
    """Raw bytes of every regression payload, plus each member of the zip-based ones."""
    out: dict[str, bytes] = {}
    for name, case in sorted(load_all().items()):
        data = case.build()
        out[name] = data
        if data[:2] == b"PK":
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    for info in zf.infolist()[:64]:
                        if info.file_size <= 4 << 20:
                            out[f"{name}/{info.filename}"] = zf.read(info)
            except (zipfile.BadZipFile, NotImplementedError, OSError, RuntimeError, ValueError):
                pass
    return out


class Point:
    """Pickled by reference (a GLOBAL to this module) with instance state (BUILD)."""

    def __init__(self, x: int) -> None:
        self.x = x
        self.label = "p"


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self) -> None:
        self.a, self.b = 1, [2]


def python_values() -> list[Any]:
    shared = [1, 2]
    loop: list[Any] = []
    loop.append(loop)
    cyc: dict[str, Any] = {}
    cyc["self"] = (cyc, cyc)
    return [
        None, True, False, 0, 1, -1, 255, 256, 65535, 65536, -(2**31), 2**31 - 1, 2**31, 2**63, -(2**63) - 1,
        2**64 + 7, 2**600, -(2**600), 2**5000, 0.0, -0.0, 1.5, float("inf"), float("nan"), 1e300,
        "", "a", "os", "héllo wörld", "日本語", "\ud800 lone surrogate", "x" * 300, "y" * 70_000,
        b"", b"\x00\xff", b"z" * 70_000, bytearray(b"abc"), bytearray(70_000),
        (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), tuple(range(1500)), [], list(range(100)), [shared, shared],
        {}, {"a": 1, "b": [1, 2]}, {i: str(i) for i in range(200)}, set(), {1, 2, 3}, frozenset({"q"}),
        frozenset(range(100)), loop, cyc, [[[[[[[[[[1]]]]]]]]]], complex(1, 2), range(3), slice(1, 5, 2),
        collections.OrderedDict(a=1), collections.Counter("hello"), collections.deque([1, 2]),
        datetime.datetime(2024, 1, 2, 3, 4, 5), datetime.date(2020, 2, 2), decimal.Decimal("1.25"),
        Point(3), [Point(i) for i in range(5)], Slotted(), {"k": Point(1), "t": (Point(2),)},
        [i * 0.5 for i in range(300)], [i for i in range(300)], [i * 1000 for i in range(300)],
        [2**20 + i for i in range(300)], ["s%d" % i for i in range(300)], [(i, "a", 1.5) for i in range(100)],
    ]


def module_pickles() -> list[tuple[str, bytes]]:
    out = []
    for i, value in enumerate(python_values()):
        for proto in range(6):
            try:
                out.append((f"value{i}-p{proto}", pickle.dumps(value, protocol=proto)))
            except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
                pass
    # several streams back to back, and a stream followed by trailing bytes
    out.append(("stacked", pickle.dumps(1) + pickle.dumps([2]) + pickle.dumps({"c": 3})))
    out.append(("trailing", pickle.dumps([1, 2]) + b"\x00garbage"))
    return out


# ----------------------------------------------------------------------------------- parity
@needs_native
@pytest.mark.parametrize("label,data", module_pickles(), ids=lambda x: x if isinstance(x, str) else "")
def test_pickle_module_output(label, data):
    assert_same(data, label)


@needs_native
def test_regression_corpus_walks():
    for name, data in corpus_pickles().items():
        assert_same(data, name)


@needs_native
def test_regression_corpus_walks_with_records_made_by_their_init():
    """The core makes Call/Persistent records without running __init__ when the classes allow it; through
    __init__ (direct=False) the results are the same."""
    from modelaudit.scanners import _pickle_native

    assert _pickle_native._SETUP["direct"], "Call/Persistent no longer allow direct records: update make_record"
    _pickle_native.configure(direct=False)
    try:
        for name, data in corpus_pickles().items():
            assert_same(data, name)
    finally:
        _pickle_native.configure()


def test_direct_records_only_for_plain_dataclasses():
    from dataclasses import dataclass, field

    from modelaudit.scanners._pickle_native import _made_by_fields

    @dataclass(eq=False)
    class Plain:
        func: Any
        pos: int
        extra: Any = None

    @dataclass(eq=False)
    class Factory:
        func: Any
        items: list = field(default_factory=list)

    @dataclass(eq=False)
    class PostInit:
        func: Any

        def __post_init__(self) -> None:
            self.seen = True

    @dataclass(frozen=True)
    class Frozen:
        func: Any

    assert _made_by_fields(Plain, ("func", "pos"))
    assert not _made_by_fields(Plain, ("pos", "func"))  # the fields must come first, in order
    assert not _made_by_fields(Plain, ("func",))  # pos has no default
    assert not _made_by_fields(Factory, ("func",))
    assert not _made_by_fields(PostInit, ("func",))
    assert not _made_by_fields(Frozen, ("func",))
    assert not _made_by_fields(Point, ("x",))  # not a dataclass


_WALKS: collections.Counter = collections.Counter()


def _report(path: Path, walker: type, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The scan report of `path` with every pickle walked by `walker` (counted in _WALKS)."""
    from modelaudit.core import scan_model_directory_or_file

    class Counted(walker):  # type: ignore[misc, valid-type]
        def run(self, max_streams: int | None = None):  # noqa: ANN202
            _WALKS[walker] += 1
            return super().run(max_streams)

    monkeypatch.setattr(_pickle_scan, "PickleWalker", Counted)
    result = scan_model_directory_or_file(str(path))
    return _stable(result)


def _stable(value: Any) -> Any:
    """A report without the fields that change from run to run (times)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in ("timestamp", "start_time", "duration",
                                                                        "scan_duration", "elapsed")}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


@needs_native
def test_regression_corpus_scans(tmp_path, monkeypatch):
    """Whole scans (torch zips, joblib arrays, numpy, nested loaders) report the same with either core."""
    from tests.regressions.corpus import write

    _WALKS.clear()
    for name in sorted(load_all()):
        path = write(tmp_path, name)
        pure = _report(path, PurePickleWalker, monkeypatch)
        native = _report(path, NATIVE, monkeypatch)
        assert native == pure, name
        path.unlink()
    assert _WALKS[NATIVE] == _WALKS[PurePickleWalker] > 400  # the scans really went through both walkers


@needs_native
def test_benign_corpus_scans(benign_corpus, monkeypatch):
    _WALKS.clear()
    pure = _report(benign_corpus, PurePickleWalker, monkeypatch)
    native = _report(benign_corpus, NATIVE, monkeypatch)
    assert native == pure
    assert _WALKS[NATIVE] == _WALKS[PurePickleWalker] > 10


@needs_native
def test_joblib_arrays_and_object_arrays(tmp_path):
    """joblib's inline array data: stepped over, shadow-walked, and object arrays walked as pickles."""
    import joblib
    import numpy as np

    values = [np.arange(10, dtype=np.float32), np.array(["a", 1, None], dtype=object),
              {"w": np.ones((3, 4)), "o": np.array([Point(1)], dtype=object), "n": [np.zeros(2)] * 2},
              np.frombuffer(pickle.dumps([1, 2]) * 3, dtype=np.uint8)]
    for i, value in enumerate(values):
        path = tmp_path / f"v{i}.joblib"
        joblib.dump(value, path)
        data = path.read_bytes()
        assert_same(data, path.name)
        for cut in range(0, len(data), max(1, len(data) // 40)):
            assert_same(data[:cut], f"{path.name}[:{cut}]")


def test_joblib_array_with_a_negative_dimension_is_malformed():
    """A negative shape must not send the walk backwards over bytes it already read (a loop)."""
    import joblib
    import numpy as np

    out = io.BytesIO()
    joblib.dump(np.arange(10, dtype=np.float32), out)
    data = out.getvalue()
    assert data.count(b"K\n\x85") == 1  # shape (10,)
    bad = data.replace(b"K\n\x85", b"J" + struct.pack("<i", -4) + b"\x85")
    for cls in (PurePickleWalker, NATIVE) if NATIVE else (PurePickleWalker,):
        outcome = cls(bad).run()
        assert outcome.error == "joblib array wrapper without a readable shape and dtype"


@needs_native
@pytest.mark.parametrize("depth", [10, 100_000])
def test_deeply_nested_values_handed_to_calls(depth):
    """Nested far deeper than any recursion limit, then passed to a call: no crash, same outcome."""
    call = b"\x8c\x08builtins\x8c\x03len\x93"
    lists = b"\x80\x04" + call + b"]" * depth + b"a" * (depth - 1) + b"\x85R0."
    tuples = b"\x80\x04" + call + b"K\x01" + b"\x85" * depth + b"\x85R0."
    cycle = b"\x80\x04" + call + b"]\x94h\x00a" + b"(h\x00h\x00\x86t" * 3 + b"\x85R0."
    for data in (lists, tuples, cycle):
        result = assert_same(data, f"depth {depth}")
        assert result[0] == "ok" and result[1].findings  # the discarded call is reported


@needs_native
def test_window_inside_a_larger_buffer():
    inner = pickle.dumps({"a": [1, 2, (3, "x")]}, protocol=4) + pickle.dumps(Point(1), protocol=2)
    buf = b"junk" * 10 + inner + b"tail\x00"
    for start, end in ((40, 40 + len(inner)), (40, len(buf)), (40, 60), (0, len(buf))):
        assert_same(buf, f"{start}:{end}", start=start, end=end)


@needs_native
def test_mmap_input_with_a_large_embedded_pickle(tmp_path):
    """Data over 64 KiB stays a window on the mmap (LazyBytes) and reaches the loader hook intact."""
    import mmap

    nested = pickle.dumps(["x" * 80_000, Point(2)], protocol=4)
    data = (b"\x80\x04\x8c\x06pickle\x8c\x05loads\x93\x8e" + struct.pack("<Q", len(nested)) + nested
            + b"\x85R.")
    path = tmp_path / "big.pkl"
    path.write_bytes(data)
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        from_mmap = assert_same(mm, "mmap")  # type: ignore[arg-type]
    assert from_mmap == assert_same(data, "bytes")
    assert from_mmap[0] == "ok" and from_mmap[2] and from_mmap[2][0][0] == nested


# ----------------------------------------------------------------------------------- fuzzing
_OPCODES = list(b"()0123.FGIJKLMNPQRSTUVXabcdeghijlopqrstu}]\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b"
                b"\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98")


def mutate(rng: random.Random, data: bytes, donors: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            buf.extend(rng.choice(donors)[:64])
        choice = rng.random()
        at = rng.randrange(len(buf))
        if choice < 0.25:
            buf[at] = rng.randrange(256)
        elif choice < 0.45:
            buf[at] = rng.choice(_OPCODES)
        elif choice < 0.6:
            buf.insert(at, rng.choice(_OPCODES))
        elif choice < 0.7:
            del buf[at:at + rng.randint(1, 8)]
        elif choice < 0.8:
            donor = rng.choice(donors)
            start = rng.randrange(max(1, len(donor)))
            buf[at:at] = donor[start:start + rng.randint(1, 40)]
        elif choice < 0.9:
            buf[at:at] = buf[at:at + rng.randint(1, 16)] * rng.randint(2, 70)  # repeats: runs, deep nesting
        else:
            del buf[rng.randrange(len(buf) + 1):]
    return bytes(buf)


def _fuzz_bases() -> list[bytes]:
    bases = [d for _, d in module_pickles() if len(d) <= 8192]
    bases += [d for d in corpus_pickles().values() if len(d) <= 8192]
    return bases


@needs_native
@pytest.mark.parametrize("seed", range(4))
def test_mutated_pickles(seed):
    rng = random.Random(seed)
    bases = _fuzz_bases()
    for i in range(1000):
        data = mutate(rng, rng.choice(bases), bases)
        assert_same(data, f"seed {seed} case {i}")


@needs_native
def test_mutated_pickles_under_tight_budgets(monkeypatch):
    """Small stack/memo budgets and frequent periodic checks: every budget message must match."""
    from modelaudit.scanners import _pickle_native

    monkeypatch.setattr(_pickle_vm, "_DEADLINE_EVERY", 5)
    _pickle_native.configure(deadline_every=5)
    try:
        rng = random.Random(99)
        bases = _fuzz_bases()
        for i in range(1000):
            data = mutate(rng, rng.choice(bases), bases)
            assert_same(data, f"tight case {i}", max_stack=rng.choice([3, 40, 500]), max_memo=rng.choice([1, 10, 300]))
    finally:
        _pickle_native.configure()


def _text_ops(name: str) -> list[bytes]:
    """`name` pushed by every text opcode that can spell it."""
    raw = name.encode("utf-8", "surrogatepass")
    ops = [b"X" + struct.pack("<I", len(raw)) + raw, b"V" + name.encode("raw-unicode-escape") + b"\n"]
    if len(raw) < 256:
        ops.append(b"\x8c" + bytes([len(raw)]) + raw)
    try:
        latin = name.encode("latin-1")
    except UnicodeEncodeError:
        return ops
    if len(latin) < 256:
        ops.append(b"U" + bytes([len(latin)]) + latin)
    return ops + [b"S" + repr(latin)[1:].encode() + b"\n"]


@needs_native
def test_memo_keep_rule_past_the_threshold(monkeypatch):
    """Past the keep-all threshold only name-like text and symbolic values stay in the memo."""
    from modelaudit.scanners import _pickle_native

    monkeypatch.setattr(_pickle_vm, "_MEMO_KEEP_ALL", 3)
    _pickle_native.configure(memo_keep_all=3)
    pads = b"(" + b"".join(b"\x8c\x03pad\x94" for _ in range(4)) + b"1"  # four memo entries, then dropped
    memo_ops = {b"\x94": b"h\x04", b"r\x05\x00\x00\x00": b"j\x05\x00\x00\x00", b"p7\n": b"g7\n", b"q\x07": b"h\x07"}
    try:
        names = ["os", "system", "os.path", "_x9", "9bad", "has space", "\u00e9_name", "name\u00e9", "a" * 128,
                 "a" * 129, "\u00b5", "x-y", "\u01c5", "a\u0301", "\u00aa", "\u00b2"]
        for name in names:
            for text in _text_ops(name):
                for put, get in memo_ops.items():
                    data = b"\x80\x04" + pads + text + put + b"0" + get + b"\x8c\x04attr\x93)R."
                    assert_same(data, f"{name!r} {text[:1]!r} {put!r}")
        for value in ([1], (1,), {"a": 1}, b"raw", 3, 2.5, 2**80, None, True, Point(1), "x" * 70_000):
            data = pickle.dumps(["a", "b", "c", "d", value, value], protocol=4)
            assert_same(data, repr(value)[:40])
    finally:
        _pickle_native.configure()


@needs_native
def test_values_shared_with_python_stay_in_sync():
    """A container handed to a call and extended afterwards is seen extended, as in the pure walker."""
    body = (b"\x80\x04]\x94\x8c\x08builtins\x94\x8c\x03len\x94\x93h\x00\x85R"  # len(l)
            + b"h\x00(K\x01K\x02e"  # l.extend(1, 2) after the call
            + b"h\x00h\x00a"  # l.append(l)
            + b"0.")  # discard the call: its repr shows l as it is now
    result = assert_same(body, "sync")
    assert result[0] == "ok"


@needs_native
def test_unreachable_values_are_freed_during_the_walk():
    """Popped containers and tuples are freed at once; the walk ends with nothing left alive."""
    body = b"\x80\x04N" + (b"](K\x01K\x02\x86e0") * 50_000 + b"."
    live: list[int] = []
    walker = NATIVE(body, check_deadline=lambda: live.append(walker._core.live_nodes()))
    outcome = walker.run()
    assert outcome.error is None and live and max(live) < 10
    assert walker._core.live_nodes() == 0
    cyclic = pickle.dumps([[1]] * 3 + [_cycle() for _ in range(100)], protocol=4)
    walker = NATIVE(cyclic)
    walker.run()
    assert walker._core.live_nodes() == 0


def _cycle() -> list:
    x: list = []
    x.append(x)
    return x


@needs_native
def test_large_walk_parity_counts_deadline_checks():
    data = pickle.dumps([(i, "a", 1.5, {"k": [i]}, "s%d" % i) for i in range(40_000)], protocol=4)
    result = assert_same(data, "large")
    assert result[0] == "ok" and result[-1] > 3  # several periodic checks, the same number in both


@pytest.mark.parametrize("walker", [PurePickleWalker, NATIVE] if NATIVE else [PurePickleWalker],
                         ids=lambda c: c.__name__)
def test_every_discarded_call_is_reported(walker):
    """Each discarded call is its own finding, even when a freed call's memory is reused by the next."""
    payload = b"\x8c\x02os\x8c\x06system\x93\x8c\x04echo\x85R0"
    outcome = walker(b"\x80\x04" + payload * 50 + b"N.").run()
    assert len([f for f in outcome.findings if f.rule_code == "MA-P005"]) == 50


@needs_native
def test_deadline_stops_both_walkers_at_the_same_point():
    from modelaudit.errors import ScanError

    payload = b"\x8c\x02os\x8c\x06system\x93\x8c\x04echo\x85R0"
    data = b"\x80\x04(" + (b"K\x01\x94G?\xf0\x00\x00\x00\x00\x00\x00" + payload) * 30_000 + b"1N."
    outcomes = []
    for cls in (PurePickleWalker, NATIVE):
        calls = [0]

        def check_deadline() -> None:
            calls[0] += 1
            if calls[0] == 3:
                raise ScanError("time budget exhausted")

        walker = cls(data, check_deadline=check_deadline)
        with pytest.raises(ScanError, match="time budget exhausted"):
            walker.run()
        outcomes.append((walker.findings, walker.globals_seen, calls[0]))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1]["os.system"] > 1000  # stopped part-way, at the same opcode


# ----------------------------------------------------------------------------------- selection
def _child(code: str, **env: str) -> str:
    full = {**os.environ, **env}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


_SCAN_CHILD = (
    "import pickle, sys, tempfile, os\n"
    "from modelaudit.scanners._pickle_vm import PickleWalker\n"
    "from modelaudit.core import scan_model_directory_or_file\n"
    "with tempfile.TemporaryDirectory() as d:\n"
    "    p = os.path.join(d, 'm.pkl')\n"
    "    open(p, 'wb').write(b'\\x80\\x04\\x8c\\x02os\\x8c\\x06system\\x93\\x8c\\x04echo\\x85R.')\n"
    "    r = scan_model_directory_or_file(p)\n"
    "print(PickleWalker.__name__, sorted({i['rule_code'] for i in r['issues']}))\n"
)


def test_pure_python_forced_by_environment():
    out = _child(_SCAN_CHILD, MODELAUDIT_PURE_PYTHON="1")
    assert out.startswith("PurePickleWalker ") and "MA-P001" in out


def test_missing_extension_falls_back_to_pure_python():
    blocker = "import sys; sys.modules['modelaudit.scanners._walkcore'] = None\n"
    out = _child(blocker + _SCAN_CHILD)
    assert out.startswith("PurePickleWalker ") and "MA-P001" in out


@needs_native
def test_native_is_the_default():
    out = _child(_SCAN_CHILD, MODELAUDIT_PURE_PYTHON="")
    assert out.startswith("NativePickleWalker ") and "MA-P001" in out
