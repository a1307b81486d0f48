"""The walker's memory bounds never hide a reference: large memos, long runs, long tuples."""

from __future__ import annotations

import pickle
import struct

from modelaudit.scanners._pickle_vm import _MEMO_KEEP_ALL, PickleWalker


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _long_binget(index: int) -> bytes:
    return b"j" + struct.pack("<I", index)


def test_names_memoized_after_the_keep_all_threshold_still_resolve():
    n = _MEMO_KEEP_ALL + 1000
    body = b"".join(_u(f"s{i}") + b"\x94" for i in range(n))
    os_index, system_index = n + 1, n + 2  # the list itself is memo entry 0
    data = (b"\x80\x04]\x94(" + body + b"e"
            + _u("os") + b"\x94" + _u("system") + b"\x94" + b"00"  # memoize both names, then drop them
            + _long_binget(os_index) + _long_binget(system_index) + b"\x93"
            + _u("echo modelaudit-test") + b"\x85R0.")
    outcome = PickleWalker(data).run()
    assert outcome.error is None
    hits = [f for f in outcome.findings if f.rule_code == "MA-P001"]
    assert hits and hits[0].message.endswith("os.system")


def test_honest_dense_pickle_with_many_memo_entries_is_clean():
    data = pickle.dumps([(i, float(i), f"k {i}", {"a": i}) for i in range(_MEMO_KEEP_ALL // 2)], protocol=4)
    outcome = PickleWalker(data).run()
    assert outcome.error is None and outcome.findings == []
