"""Loaders inside pickles: pickle.loads(b"...") and friends, with the embedded data decoded
(base64, hex, codecs, zlib, BytesIO) and scanned as a nested stream, within a depth budget."""

from __future__ import annotations

import base64
import binascii
import zlib

import pytest

from tests.builders import (benign, call, callee, global_, mark, payload, pickle, proto, push, reduce,
                            reduce_pickle, stop, tuple1, tuple_)
from tests.regressions.corpus import (family, assert_dangerous, assert_warning, case, issues, scan_bytes, scan_case)

INNER = payload(4)


def nested_loads(data: bytes, loader: tuple[str, str] = ("pickle", "loads"), protocol: int = 4) -> bytes:
    return reduce_pickle(*loader, data, protocol=protocol)


@case("picklescan_malicious13a_cpickle.pkl")
def picklescan_nested_loads_cpickle() -> bytes:
    """Protocol 0 spells pickle.loads as cPickle.loads (and its bytes argument as _codecs.encode)."""
    return nested_loads(INNER, ("cPickle", "loads"), protocol=0)


@case("modelscan_issue267_nested_loads.pkl")
def modelscan_issue267_nested_pickle_loads() -> bytes:
    """Protocol 4 spells it _pickle.loads."""
    return nested_loads(pickle(global_("builtins", "print"), mark(), push("modelaudit-test", 0), tuple_(), reduce(),
                               stop()), ("_pickle", "loads"))


def test_picklescan_nested_loads_cpickle(tmp_path):
    result = scan_case(tmp_path, picklescan_nested_loads_cpickle)
    assert_dangerous(result, "pickle.loads")
    assert_dangerous(result, "posix.system")  # the embedded stream, scanned
    assert issues(result, "MA-P012", "info")


def test_modelscan_issue267_nested_pickle_loads(tmp_path):
    result = scan_case(tmp_path, modelscan_issue267_nested_pickle_loads)
    assert_dangerous(result, "pickle.loads")
    assert_warning(result, "MA-P002", "builtins.print")  # inside the embedded stream


def _decoded(decoder: tuple[str, str], encoded: object, *extra: object) -> bytes:
    return pickle(proto(4), callee("pickle", "loads"), call(*decoder, encoded, *extra), tuple1(), reduce(), stop())


ENCODINGS = family("nested", {k: (f"nested_{k}.pkl", build()) for k, build in {
    "base64.b64decode": lambda: _decoded(("base64", "b64decode"), base64.b64encode(INNER).decode()),
    "base64.b85decode": lambda: _decoded(("base64", "b85decode"), base64.b85encode(INNER)),
    "bytes.fromhex": lambda: _decoded(("builtins", "bytes.fromhex"), INNER.hex()),
    "binascii.unhexlify": lambda: _decoded(("binascii", "unhexlify"), binascii.hexlify(INNER)),
    "codecs.decode_hex": lambda: _decoded(("codecs", "decode"), INNER.hex(), "hex"),
    "codecs.decode_base64": lambda: _decoded(("codecs", "decode"), base64.b64encode(INNER), "base64"),
    "_codecs.decode_zlib": lambda: _decoded(("_codecs", "decode"), zlib.compress(INNER), "zlib"),
    "zlib.decompress": lambda: _decoded(("zlib", "decompress"), zlib.compress(INNER)),
    "latin1_bytes_proto2": lambda: nested_loads(INNER, protocol=2),
    "io.BytesIO": lambda: pickle(proto(4), callee("pickle", "load"), call("io", "BytesIO", INNER), tuple1(), reduce(),
                                 stop()),
    "base64_then_zlib": lambda: pickle(proto(4), callee("pickle", "loads"), callee("zlib", "decompress"),
                                       call("base64", "b64decode", base64.b64encode(zlib.compress(INNER))), tuple1(),
                                       reduce(), tuple1(), reduce(), stop()),
}.items()})


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_encoded_nested_pickles_are_decoded_and_scanned(tmp_path, encoding):
    result = scan_bytes(tmp_path, ENCODINGS[encoding])
    assert_dangerous(result, "posix.system")
    embedded = issues(result, "MA-P012", "info")
    assert embedded and embedded[0]["details"]["size"] == len(INNER)


def _nest(levels: int) -> bytes:
    data = INNER
    for _ in range(levels):
        data = nested_loads(data)
    return data


DEPTHS = family("nested_depth", {n: (f"nested_depth_{n}.pkl", _nest(n)) for n in (3, 7)})


def test_nested_pickles_within_the_depth_budget(tmp_path):
    result = scan_bytes(tmp_path, DEPTHS[3])
    assert_dangerous(result, "posix.system")
    assert len(issues(result, "MA-P012")) == 3


def test_nested_pickles_past_the_depth_budget(tmp_path):
    """Past max_nested_pickle_depth the data is not decoded, but the file never reads as clean."""
    result = scan_bytes(tmp_path, DEPTHS[7])
    assert_dangerous(result, "pickle.loads")
    assert_warning(result, "MA-S012", "nested 5 pickles deep")
    assert not [i for i in issues(result) if "posix.system" in i["message"]]
    assert result["has_errors"], "a part left unscanned makes the result incomplete"


def test_depth_budget_is_configurable(tmp_path):
    from tests.conftest import scan

    path = tmp_path / "nested.pkl"
    path.write_bytes(_nest(3))
    result = scan(path, max_nested_pickle_depth=1)
    assert_warning(result, "MA-S012", "nested 2 pickles deep")
    assert_dangerous(result, "pickle.loads")


LOADERS = [("dill", "loads"), ("cloudpickle", "loads"), ("numpy", "load"), ("joblib", "load"), ("torch", "load"),
           ("torch.serialization", "load"), ("pandas", "read_pickle"), ("marshal", "loads"), ("yaml", "unsafe_load"),
           ("jsonpickle", "decode"), ("keras.models", "load_model"), ("numpy.lib.format", "read_array"),
           ("shelve", "open")]


LOADER_CASES = family("loader", {f"{m}.{n}": (f"loader_{m}_{n}.pkl", nested_loads(b"payload", (m, n)))
                                for m, n in LOADERS})


@pytest.mark.parametrize("target", sorted(LOADER_CASES))
def test_nested_loader_family(tmp_path, target):
    finding = assert_dangerous(scan_bytes(tmp_path, LOADER_CASES[target]), target)
    assert finding["details"]["family"] in ("nested-loader", "code-evaluation", "file-access")


@case("torch_load_bytesio.pkl")
def torch_load_of_embedded_bytes() -> bytes:
    return pickle(proto(4), callee("torch", "load"), call("io", "BytesIO", INNER), tuple1(), reduce(), stop())


def test_torch_load_of_embedded_bytes(tmp_path):
    result = scan_case(tmp_path, torch_load_of_embedded_bytes)
    assert_dangerous(result, "torch.load")
    assert_dangerous(result, "posix.system")


def test_embedded_honest_pickle_still_flags_the_loader(tmp_path):
    """pickle.loads itself is never honest in a model file, even when what it loads is."""
    result = scan_bytes(tmp_path, nested_loads(benign(4)))
    assert_dangerous(result, "pickle.loads")
    assert not [i for i in issues(result) if i["severity"] == "critical" and "pickle.loads" not in i["message"]]


def _load_from_bytes_of_int_list(data: bytes) -> bytes:
    from tests.builders import appends, empty_list

    return pickle(proto(2), global_("torch.storage", "_load_from_bytes"), global_("builtins", "bytes"), mark(),
                  empty_list(), mark(), *[push(b, 2) for b in data], appends(), tuple_(), reduce(), tuple1(),
                  reduce(), stop())


@case("load_from_bytes_int_list.pkl")
def allowlisted_loader_fed_an_int_list() -> bytes:
    """torch.storage._load_from_bytes is allowlisted (torch writes it with literal bytes); bytes([...]) is too."""
    return _load_from_bytes_of_int_list(INNER)


@case("load_from_bytes_computed.pkl")
def allowlisted_loader_fed_computed_bytes() -> bytes:
    """The same with more byte values than the walker keeps: the data cannot be rebuilt, so it is flagged."""
    return _load_from_bytes_of_int_list(INNER + b"N0" * 40)


def test_allowlisted_loader_fed_an_int_list(tmp_path):
    result = scan_case(tmp_path, allowlisted_loader_fed_an_int_list)
    assert_dangerous(result, "posix.system")
    assert issues(result, "MA-P012", "info")


def test_allowlisted_loader_fed_computed_bytes(tmp_path):
    result = scan_case(tmp_path, allowlisted_loader_fed_computed_bytes)
    finding = assert_dangerous(result, "torch.storage._load_from_bytes loads data computed at load time", "MA-P013")
    assert finding["details"]["family"] == "nested-loader"


def test_allowlisted_loader_with_literal_honest_bytes_is_clean(tmp_path):
    from tests.builders import binbytes, legacy_torch

    data = pickle(proto(2), global_("torch.storage", "_load_from_bytes"), binbytes(legacy_torch(benign(2))), tuple1(),
                  reduce(), stop())
    result = scan_bytes(tmp_path, data)
    assert not [i for i in result["issues"] if i["severity"] in ("warning", "critical")], result["issues"]
    assert issues(result, "MA-P012", "info")
