"""Flax / msgpack: a state dict laid out as flax.serialization writes it is clean; crafted streams are findings."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from tests.conftest import codes, findings, scan

# what pickle.dumps(os.system-call) looks like at protocol 2: GLOBAL os.system, ('id',), REDUCE
EVIL_PICKLE = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


def _ndarray(arr: np.ndarray) -> msgpack.ExtType:
    """flax.serialization._ndarray_to_bytes: ext 1 holding packb((shape, dtype name, C-order bytes))."""
    return msgpack.ExtType(1, msgpack.packb((arr.shape, arr.dtype.name, arr.tobytes("C")), use_bin_type=True))


def _flax_state() -> dict:
    rng = np.random.default_rng(0)
    big = rng.standard_normal(64).astype(np.float32)
    return {
        "params": {
            "Dense_0": {"kernel": _ndarray(rng.standard_normal((3, 4)).astype(np.float32)),
                        "bias": _ndarray(np.zeros(4, np.float32))},
            "Embed_0": {"embedding": _ndarray(rng.standard_normal((10, 2)).astype(np.float16))},
            "LayerNorm_0": {"scale": _ndarray(np.ones(4, np.float64)), "mask": _ndarray(np.ones(3, bool))},
            # flax chunks arrays past MAX_CHUNK_SIZE into a plain dict of pieces
            "Big_0": {"w": {"__msgpack_chunked_array__": True, "shape": (64,),
                            "chunks": {"0": _ndarray(big[:32]), "1": _ndarray(big[32:])}}},
        },
        "opt_state": {"0": {"count": msgpack.ExtType(3, msgpack.packb(("int32", np.int32(7).tobytes()),
                                                                       use_bin_type=True)),
                            "mu": {}, "nu": None}},
        "step": 1000,
        "rate": msgpack.ExtType(2, msgpack.packb((1.5, -0.5), use_bin_type=True)),
        "labels": ["cat", "dog"],
        "empty": _ndarray(np.zeros((0, 3), np.int64)),
    }


def _write(tmp_path, data: bytes, name: str = "model.msgpack"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_flax_layout_is_clean(tmp_path):
    result = scan(_write(tmp_path, msgpack.packb(_flax_state(), use_bin_type=True)))
    assert findings(result) == [] and result["has_errors"] is False
    assert "msgpack" in result["scanner_names"]


def test_unknown_extension_type(tmp_path):
    state = _flax_state()
    state["params"]["evil"] = msgpack.ExtType(42, b"\x00" * 16)
    hits = [i for i in scan(_write(tmp_path, msgpack.packb(state)))["issues"] if i["rule_code"] == "MA-X113"]
    assert hits and "42" in hits[0]["message"] and "params/evil" in hits[0]["message"]


def test_embedded_pickle_is_reported_and_scanned(tmp_path):
    state = _flax_state()
    state["params"]["blob"] = EVIL_PICKLE
    result = scan(_write(tmp_path, msgpack.packb(state, use_bin_type=True)))
    assert "MA-X114" in codes(result)
    assert any(i["severity"] == "critical" and "system" in i["message"] for i in result["issues"]), result["issues"]


@pytest.mark.parametrize("payload,needle", [
    (((10, 10), "float32", b"\x00" * 4), "needs 400 bytes"),
    (((2,), "object", b"\x00" * 16), "unknown dtype"),
    (((-1,), "float32", b""), "invalid shape"),
    (("float32", b"\x00" * 4), "not (shape, dtype, data)"),
])
def test_malformed_flax_arrays(tmp_path, payload, needle):
    state = {"params": {"w": msgpack.ExtType(1, msgpack.packb(payload, use_bin_type=True))}}
    hits = [i for i in scan(_write(tmp_path, msgpack.packb(state)))["issues"] if i["rule_code"] == "MA-X111"]
    assert hits and needle in hits[0]["message"]


@pytest.mark.parametrize("data,code", [
    (b"\x91" * 200 + b"\xc0", "MA-X112"),  # nesting bomb
    (b"\xdd\xff\xff\xff\xff\xc0", "MA-X112"),  # array claims 4 billion entries
    (b"\xdf\x7f\xff\xff\xff", "MA-X112"),  # map claims 2 billion pairs
    (b"\x81\xa1k\xdb\x7f\xff\xff\xffabc", "MA-X112"),  # string longer than the file
    (b"\x81\xa1k\xc6\x00\x10\x00\x00xx", "MA-X112"),  # bin longer than the file
    (b"\x81\xa1k\xc1", "MA-X111"),  # reserved marker
    (b"\x81\xa1k\xcb\x00\x00", "MA-X111"),  # truncated float64
    (b"\x81\x91\xc0\xc0", "MA-X111"),  # a container as map key
])
def test_structure_limits_and_malformed_streams(tmp_path, data, code):
    result = scan(_write(tmp_path, data))
    assert code in codes(result) and result["has_errors"] is True


def test_trailing_bytes(tmp_path):
    result = scan(_write(tmp_path, msgpack.packb(_flax_state(), use_bin_type=True) + b"HIDDEN PAYLOAD"))
    assert any("follow the msgpack object" in i["message"] for i in result["issues"])


def test_credentials_and_code_in_strings(tmp_path):
    state = {"meta": {"note": "token hf_" + "a" * 34, "hook": "__import__('os').system('id')"}}
    assert {"MA-C001", "MA-C002"} <= codes(scan(_write(tmp_path, msgpack.packb(state))))


def test_deeply_nested_flax_payload_is_a_finding(tmp_path):
    """An ndarray ext whose payload is 100,000 nested arrays: refused at a small depth, not recursed into."""
    payload = b"\x91" * 100_000 + b"\xc0"
    state = {"params": {"w": msgpack.ExtType(1, payload)}}
    result = scan(_write(tmp_path, msgpack.packb(state)))
    hits = [i for i in result["issues"] if i["rule_code"] == "MA-X111"]
    assert hits and "nest deeper than 4" in hits[0]["message"] and "MA-S005" not in codes(result)


def test_key_paths_of_deep_long_keys_are_cut(tmp_path):
    """64 levels of 200-character keys: each value's path would be 13 KB; only its end is kept."""
    state: dict = {"hook": "__import__('os').system('id')"}
    for level in range(60):
        state = {f"{level:03d}" + "k" * 197: state}
    result = scan(_write(tmp_path, msgpack.packb(state)))
    (hit,) = [i for i in result["issues"] if i["rule_code"] == "MA-C001"]
    assert hit["message"].startswith("String at '...") and "/hook'" in hit["message"]
    assert len(hit["message"]) < 600


def test_warnings_in_front_do_not_hide_a_pickle(tmp_path):
    """Fifty unknown extension values used to exhaust the findings cap, and the pickle after them went unread."""
    state = {f"odd{i:02d}": msgpack.ExtType(42, b"\x00") for i in range(60)}
    state["zz"] = EVIL_PICKLE
    result = scan(_write(tmp_path, msgpack.packb(state, use_bin_type=True)))
    assert {"MA-X113", "MA-X114"} <= codes(result)
    assert any(i["severity"] == "critical" and "system" in i["message"] for i in result["issues"])


def test_pickles_past_the_cap_are_counted_and_the_scan_incomplete(tmp_path):
    state = {f"p{i:02d}": EVIL_PICKLE for i in range(53)}
    result = scan(_write(tmp_path, msgpack.packb(state, use_bin_type=True)))
    assert any("3 more binary values hold pickle streams" in i["message"] for i in result["issues"])
    assert result["has_errors"] is True
