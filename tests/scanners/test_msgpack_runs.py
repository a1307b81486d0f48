"""msgpack arrays of plain values (numbers, nil, booleans, short strings) are stepped over in runs;
what the walker reports, where it stops and what it counts stay those of the value-by-value walk."""

from __future__ import annotations

import random

import msgpack
import pytest

from modelaudit.scanners import msgpack as scanner
from tests.conftest import scan

# what pickle.dumps(os.system-call) looks like at protocol 2: GLOBAL os.system, ('id',), REDUCE
EVIL_PICKLE = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


def _events(data: bytes, skipping: bool, limit: int | None = None, depth: int = scanner.MAX_DEPTH,
            monkeypatch=None) -> list:
    """The values the scanner acts on (plain ones left out), then where the walk ended or why it stopped."""
    walker = scanner.Walker(data, max_depth=depth, max_elements=limit)
    if not skipping:
        walker._skip_plain = lambda count: 0  # value by value
    out: list = []
    try:
        for kind, path, at, info in walker.walk():
            if limit is not None and walker.elements > limit:
                return [*out, ("limit", walker.pos)]
            plain = kind in ("int", "float", "nil", "bool") or (kind == "str" and info[1] < 16) or \
                (kind in ("map", "array") and info == 0)
            if not plain:
                out.append((kind, path, at, info))
        return [*out, ("end", walker.pos, walker.elements)]
    except scanner.MsgpackError as exc:
        return [*out, ("error", str(exc), exc.limit)]


def _random_value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth < 4 and roll < 0.15:
        return [_random_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 3, 16, 40]))]
    if depth < 4 and roll < 0.25:
        keys = [rng.choice(["k", "__x", "a" * 20]) + str(i) for i in range(rng.randint(0, 4))]
        return {key: _random_value(rng, depth + 1) for key in keys}
    return rng.choice([rng.randint(-40, 200), rng.randint(-2**40, 2**40), rng.random(), None, True,
                       "s" * rng.randint(0, 40), b"b" * rng.randint(0, 5), msgpack.ExtType(rng.randint(0, 5), b"\x01"),
                       [1] * rng.randint(0, 70), [0.5] * rng.randint(0, 30), ["abc"] * rng.randint(0, 20),
                       [70000, -3, 2.5, None] * 5])


@pytest.mark.parametrize("seed", range(4))
def test_runs_match_the_value_by_value_walk(seed):
    rng = random.Random(seed)
    for _ in range(300):
        data = bytearray(msgpack.packb(_random_value(rng), use_bin_type=rng.random() < 0.5))
        if rng.random() < 0.4:  # cut short or damaged
            if rng.random() < 0.5:
                data = data[:rng.randint(0, len(data))]
            else:
                for _ in range(rng.randint(1, 4)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
        limit = rng.choice([None, 5, 37])
        depth = rng.choice([scanner.MAX_DEPTH, 2])
        assert _events(bytes(data), True, limit, depth) == _events(bytes(data), False, limit, depth)


def test_cut_inside_a_float_run_is_reported_where_the_value_starts(tmp_path):
    data = msgpack.packb([0.25] * 1000)[:-4]  # the last float64 lacks 4 of its 8 bytes
    path = tmp_path / "cut.msgpack"
    path.write_bytes(data)
    result = scan(path)
    hits = [i for i in result["issues"] if i["rule_code"] == "MA-X111"]
    assert hits and f"at offset {len(data) - 4}" in hits[0]["message"] and result["has_errors"]


def test_element_budget_stops_at_the_same_value(tmp_path, monkeypatch):
    monkeypatch.setattr(scanner, "MAX_ELEMENTS", 1000)
    data = msgpack.packb([7] * 5000)  # array16 head (3 bytes), then one byte per value
    path = tmp_path / "many.msgpack"
    path.write_bytes(data)
    hits = [i for i in scan(path)["issues"] if i["rule_code"] == "MA-X112"]
    # the array is value 1, so value 1001 (the one past the budget) is element 1000: it ends at 3 + 1000
    assert hits and "more than 1000 values at offset 1003" in hits[0]["message"]


def test_payloads_after_a_million_plain_values_are_found(tmp_path):
    state = {"params": {"w": [0.125] * 500_000, "ids": list(range(300_000)), "tags": ["tok"] * 200_000},
             "evil": EVIL_PICKLE, "ext": msgpack.ExtType(42, b"\x00" * 16),
             "note": "import os; os.system('echo modelaudit-test')"}
    path = tmp_path / "big.msgpack"
    path.write_bytes(msgpack.packb(state, use_bin_type=True))
    result = scan(path)
    found = {i["rule_code"] for i in result["issues"]}
    assert {"MA-X114", "MA-X113", "MA-C001"} <= found
    assert any(i["severity"] == "critical" for i in result["issues"])  # the nested pickle's os.system
    check = next(c for c in result["checks"] if c["name"] == "msgpack structure")
    assert check["message"].startswith("1000015 values")  # keys and values, the skipped ones too
