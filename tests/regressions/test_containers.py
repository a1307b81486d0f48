"""Pickles inside model containers and behind misleading names: renamed files, torch zip
checkpoints (and zip tricks strict readers reject), legacy torch, joblib compression and
arrays, .npy object arrays and .npz archives."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from tests.builders import (HARMLESS_CMD, JOBLIB_METHODS, Reduce, benign, binbytes, build, compress, empty_dict,
                            empty_tuple, global_, legacy_torch, mark, newfalse, newobj, npy, npy_object, npz, payload,
                            patch_zip_flags, pickle, pop, proto, push, reduce, setitems, stop, torch_tar, torch_zip,
                            zip_bytes)
from tests.regressions.corpus import (CASES, add, family, assert_clean, assert_dangerous, assert_warning, case, issues, scan_bytes,
                                      scan_case)

PAYLOAD = payload(4)


# ----------------------------------------------------------------------------- renamed pickles
RENAMED = {".safetensors": "safetensors", ".bin": "tensor_binary", ".txt": "text", ".npy": "numpy", ".json": "json",
           ".h5": "hdf5", ".gguf": "gguf", ".zip": "zip", ".yaml": "yaml"}
family("renamed", {ext: (f"renamed_model{ext}", PAYLOAD) for ext in RENAMED})


@pytest.mark.parametrize("ext", sorted(RENAMED))
def test_renamed_pickle_is_a_mismatch_and_still_scanned(tmp_path, ext):
    """CVE-2025-1889 / CVE-2025-10155: loaders dispatch on content, so the extension must not decide."""
    promised = RENAMED[ext]
    result = scan_bytes(tmp_path, PAYLOAD, f"model{ext}")
    mismatch = assert_warning(result, "MA-S007", "File type validation failed: extension indicates")
    assert mismatch["message"].startswith(f"File type validation failed: extension indicates {promised} but magic "
                                          "bytes indicate pickle")
    assert_dangerous(result, "posix.system")


@case("CVE-2025-10155.bin")
def cve_2025_10155_pickle_with_pytorch_extension() -> bytes:
    """JFrog (GHSA-jgw4-cr84-mqxg): a plain pickle named pytorch_model.bin, so a torch-only parser fails."""
    return pickle(proto(4), global_("asyncio.unix_events", "_UnixSubprocessTransport._start"),
                  push(({}, HARMLESS_CMD, True, None, None, None, 0)), reduce(), stop())


def test_cve_2025_10155_pickle_with_pytorch_extension(tmp_path):
    result = scan_case(tmp_path, cve_2025_10155_pickle_with_pytorch_extension)
    assert_dangerous(result, "_UnixSubprocessTransport._start")
    assert_warning(result, "MA-S007", "extension indicates tensor_binary but magic bytes indicate pickle")


@pytest.mark.parametrize("ext", [".pt", ".pth", ".ckpt", ".pkl", ".joblib", ".dill", ".p", ".sav"])
def test_pickle_under_pickle_like_extensions_is_not_a_mismatch(tmp_path, ext):
    result = scan_bytes(tmp_path, PAYLOAD, f"model{ext}")
    assert_dangerous(result, "posix.system")
    assert not issues(result, "MA-S007")


# ----------------------------------------------------------------------------- torch zip checkpoints
@case("torch_zip_data_pkl.pt")
def torch_zip_payload_in_data_pkl() -> bytes:
    return torch_zip(PAYLOAD)


@case("torch_zip_other_member.pt")
def torch_zip_payload_in_another_pkl_member() -> bytes:
    return torch_zip(benign(2), {"extra/helpers.pkl": PAYLOAD})


@case("CVE-2025-1889.pt")
def cve_2025_1889_pickle_member_with_unusual_name() -> bytes:
    """Sonatype: a pickle member whose name does not end in .pkl."""
    return torch_zip(benign(2), {"config.txt": PAYLOAD, "weights.bin": payload(2)})


def test_torch_zip_payload_in_data_pkl(tmp_path):
    result = scan_case(tmp_path, torch_zip_payload_in_data_pkl)
    finding = assert_dangerous(result, "posix.system")
    assert "archive/data.pkl" in finding["location"]


def test_torch_zip_payload_in_another_pkl_member(tmp_path):
    finding = assert_dangerous(scan_case(tmp_path, torch_zip_payload_in_another_pkl_member), "posix.system")
    assert "extra/helpers.pkl" in finding["location"]


def test_cve_2025_1889_pickle_member_with_unusual_name(tmp_path):
    result = scan_case(tmp_path, cve_2025_1889_pickle_member_with_unusual_name)
    locations = {i["location"].split(" (pos")[0].rsplit(":", 1)[-1] for i in issues(result, "MA-P001")}
    assert {"archive/config.txt", "archive/weights.bin"} <= locations, result["issues"]


@case("CVE-2025-10156.pt")
def cve_2025_10156_zip_crc_error() -> bytes:
    """JFrog (GHSA-mjqp-26hc-grxg): a wrong CRC makes zipfile raise; torch never checks it."""
    good = torch_zip(PAYLOAD)
    return good.replace(b"modelaudit-test", b"modelaudit-tesT", 1)


@case("CVE-2025-1944.pt")
def cve_2025_1944_zip_local_name_differs() -> bytes:
    """Sonatype: the local header's file name differs from the central directory's."""
    return torch_zip(PAYLOAD).replace(b"archive/data.pkl", b"archive/datap.kl", 1)


FLAG_BITS = family("CVE-2025-1945", {bits: (f"CVE-2025-1945-0x{bits:02x}.pt", patch_zip_flags(torch_zip(PAYLOAD), bits))
                                      for bits in (0x1, 0x20, 0x40)})


@pytest.mark.parametrize("bits", sorted(FLAG_BITS))
def test_cve_2025_1945_zip_flag_bits(tmp_path, bits):
    """Sonatype: flag bits (encrypted, patched data, strong encryption) make zipfile refuse; torch does not."""
    result = scan_bytes(tmp_path, FLAG_BITS[bits], "model.pt")
    assert_dangerous(result, "posix.system")
    assert_warning(result, "MA-A004", "strict zip reader")
    assert not issues(result, "MA-S005")


def test_cve_2025_10156_zip_crc_error(tmp_path):
    result = scan_case(tmp_path, cve_2025_10156_zip_crc_error)
    assert_dangerous(result, "posix.system")
    assert_warning(result, "MA-A004", "CRC")


def test_cve_2025_1944_zip_local_name_differs(tmp_path):
    result = scan_case(tmp_path, cve_2025_1944_zip_local_name_differs)
    assert_dangerous(result, "posix.system")
    assert_warning(result, "MA-A004", "strict zip reader")


def test_zip_member_tricks_in_a_plain_zip(tmp_path):
    data = patch_zip_flags(zip_bytes({"model/data.txt": PAYLOAD}, zipfile.ZIP_DEFLATED), 0x1)
    assert_dangerous(scan_bytes(tmp_path, data, "bundle.zip"), "posix.system")


def test_honest_torch_checkpoint_is_clean(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "honest.pt"
    torch.save({"w": torch.ones(3), "b": torch.zeros(2, dtype=torch.int64)}, path)
    assert_clean(scan_bytes(tmp_path, path.read_bytes(), "honest.pt"))
    legacy = tmp_path / "honest_legacy.pt"
    torch.save({"w": torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    assert_clean(scan_bytes(tmp_path, legacy.read_bytes(), "honest_legacy.bin"))


# ----------------------------------------------------------------------------- legacy torch
@case("legacy_torch_payload.pt")
def legacy_torch_payload_in_object_pickle() -> bytes:
    return legacy_torch(PAYLOAD)


@case("legacy_torch_payload_in_sys_info.bin")
def legacy_torch_payload_in_sys_info() -> bytes:
    """torch unpickles every header pickle before looking at the object; the third one carries the payload."""
    return legacy_torch(benign(2), sys_info=payload(2))


def test_legacy_torch_payload_in_object_pickle(tmp_path):
    result = scan_case(tmp_path, legacy_torch_payload_in_object_pickle)
    assert_dangerous(result, "posix.system")
    assert "pytorch" in result["scanner_names"]


def test_legacy_torch_payload_in_sys_info(tmp_path):
    assert_dangerous(scan_case(tmp_path, legacy_torch_payload_in_sys_info), "posix.system")


@case("legacy_torch_tar.pt")
def legacy_torch_tar_format() -> bytes:
    """torch.load still reads the pre-0.1.10 tar format: its "pickle" member is unpickled."""
    return torch_tar(PAYLOAD)


def test_legacy_torch_tar_format(tmp_path):
    result = scan_case(tmp_path, legacy_torch_tar_format)
    finding = assert_dangerous(result, "posix.system")
    assert finding["location"].split(" (pos")[0].endswith(":pickle")
    assert not issues(result, "MA-S004") and not issues(result, "MA-S007")


def test_honest_legacy_torch_tar_is_clean(tmp_path):
    assert_clean(scan_bytes(tmp_path, torch_tar(benign(2)), "old.pt"))


# ----------------------------------------------------------------------------- joblib
COMPRESSED = family("joblib", {m: (f"joblib_{m}.joblib", compress(PAYLOAD, m)) for m in JOBLIB_METHODS})


@pytest.mark.parametrize("method", JOBLIB_METHODS)
def test_joblib_compressed_payload(tmp_path, method):
    result = scan_bytes(tmp_path, COMPRESSED[method], "model.joblib")
    assert_dangerous(result, "posix.system")
    assert "compressed" in result["scanner_names"]


def _joblib_dump(value: object, method: str | None) -> bytes:
    """Bytes written by joblib.dump itself (the payload object only pickles, nothing runs)."""
    import tempfile

    import joblib

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.joblib")
        joblib.dump(value, path, compress=(method, 3) if method else 0)
        with open(path, "rb") as fh:
            return fh.read()


def _object_arrays() -> dict:
    import numpy as np

    return {"w": np.arange(6.0), "objects": np.array([1, Reduce(os.system, HARMLESS_CMD)], dtype=object)}


for _method in JOBLIB_METHODS:
    add(f"joblib_real:{_method}", f"joblib_real_{_method}.joblib",
        lambda m=_method: _joblib_dump({"model": Reduce(os.system, HARMLESS_CMD)}, m))
for _method in (None, *JOBLIB_METHODS):
    add(f"joblib_object_array:{_method}", f"joblib_object_array_{_method}.joblib",
        lambda m=_method: _joblib_dump(_object_arrays(), m))


@pytest.mark.parametrize("method", JOBLIB_METHODS)
def test_joblib_written_by_joblib_with_payload(tmp_path, method):
    pytest.importorskip("joblib")
    data = CASES[f"joblib_real:{method}"].build()
    assert_dangerous(scan_bytes(tmp_path, data, f"real_{method}.joblib"), "posix.system")


@pytest.mark.parametrize("method", [None, *JOBLIB_METHODS])
def test_joblib_object_array_with_payload(tmp_path, method):
    """joblib writes an object array as one more pickle right after its NumpyArrayWrapper."""
    pytest.importorskip("joblib")
    data = CASES[f"joblib_object_array:{method}"].build()
    assert_dangerous(scan_bytes(tmp_path, data, "objects.joblib"), "posix.system")


def _joblib_wrapper(nbytes: int) -> bytes:
    """A NumpyArrayWrapper for a uint8 array of `nbytes`, without alignment padding."""
    dtype = pickle(global_("numpy", "dtype"), push(("u1", False, True), 2), reduce(),
                   push((3, "|", None, None, None, -1, -1, 0), 2), build())
    state = pickle(empty_dict(), mark(), push("subclass", 2), global_("numpy", "ndarray"), push("shape", 2),
                   push((nbytes,), 2), push("order", 2), push("C", 2), push("dtype", 2), dtype, push("allow_mmap", 2),
                   newfalse(), setitems())
    return pickle(proto(2), global_("joblib.numpy_pickle", "NumpyArrayWrapper"), empty_tuple(), newobj(), state, build())


@case("joblib_array_bytes_are_opcodes.pkl")
def joblib_array_bytes_that_pickle_load_runs() -> bytes:
    """A polyglot: joblib.load reads these bytes as uint8 array data, pickle.load runs them as opcodes."""
    evil = pickle(global_("posix", "system"), push((HARMLESS_CMD,), 2), reduce(), pop())
    return _joblib_wrapper(len(evil)) + evil + stop()


def test_joblib_array_bytes_that_pickle_load_runs(tmp_path):
    result = scan_case(tmp_path, joblib_array_bytes_that_pickle_load_runs)
    finding = assert_dangerous(result, "posix.system")
    assert "pickle.load" in finding["details"]["reading"]


def test_honest_joblib_files_are_clean(tmp_path):
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    arrays = {"u8": np.arange(256, dtype=np.uint8), "f": np.linspace(0, 1, 50), "s": np.array(["cos\nsystem\n"]),
              "objects": np.array([1, "two", (3,)], dtype=object)}
    for method in (None, *JOBLIB_METHODS):
        path = tmp_path / f"honest_{method}.joblib"
        joblib.dump(arrays, path, compress=(method, 3) if method else 0)
        assert_clean(scan_bytes(tmp_path, path.read_bytes(), path.name))


# ----------------------------------------------------------------------------- numpy
@case("object_array_payload.npy")
def npy_object_array_with_payload() -> bytes:
    return npy_object(PAYLOAD)


@case("npz_with_malicious_member.npz")
def npz_with_a_malicious_npy() -> bytes:
    return npz({"weights": npy("<f4", (2,), b"\x00" * 8), "meta": npy_object(payload(2))})


def test_npy_object_array_with_payload(tmp_path):
    result = scan_case(tmp_path, npy_object_array_with_payload)
    assert_dangerous(result, "posix.system")
    assert issues(result, "MA-N001", "info")


@case("numpy_save_object_payload.npy")
def npy_written_by_numpy_with_payload() -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.array([Reduce(os.system, HARMLESS_CMD)], dtype=object), allow_pickle=True)
    return buf.getvalue()


def test_npy_written_by_numpy_with_payload(tmp_path):
    pytest.importorskip("numpy")
    assert_dangerous(scan_case(tmp_path, npy_written_by_numpy_with_payload), "posix.system")


def test_npz_with_a_malicious_npy(tmp_path):
    finding = assert_dangerous(scan_case(tmp_path, npz_with_a_malicious_npy), "posix.system")
    assert "meta.npy" in finding["location"]


def _savez(compressed: bool) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, w=np.arange(3.0),
                                                      o=np.array([Reduce(os.system, HARMLESS_CMD)], dtype=object))
    return buf.getvalue()


for _compressed in (False, True):
    add(f"numpy_savez:{_compressed}", f"numpy_savez_{_compressed}.npz", lambda c=_compressed: _savez(c))


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_written_by_numpy_with_payload(tmp_path, compressed):
    pytest.importorskip("numpy")
    data = CASES[f"numpy_savez:{compressed}"].build()
    assert_dangerous(scan_bytes(tmp_path, data, "arrays.npz"), "posix.system")


def test_honest_numpy_files_are_clean(tmp_path):
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    np.save(buf, np.array([1, "two", (3.0,)], dtype=object), allow_pickle=True)
    result = scan_bytes(tmp_path, buf.getvalue(), "objects.npy")
    assert_clean(result)
    assert issues(result, "MA-N001", "info")  # object arrays are noted, not flagged
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.arange(10), b=np.eye(3))
    assert_clean(scan_bytes(tmp_path, buf.getvalue(), "arrays.npz"))


def test_object_array_pickle_in_a_plain_zip_with_binbytes(tmp_path):
    """A .npy whose pickle hides the payload in a nested loads of BINBYTES data, zipped as .npz."""
    inner = pickle(proto(4), global_("pickle", "loads"), binbytes(PAYLOAD), b"\x85", reduce(), stop())
    data = npz({"x": npy_object(inner)}, compressed=True)
    result = scan_bytes(tmp_path, data, "x.npz")
    assert_dangerous(result, "pickle.loads")
    assert_dangerous(result, "posix.system")


OBJECT_DESCRS = family("object_dtype", {key: (f"object_dtype_{key}.npy", npy(descr, (1,), PAYLOAD)) for key, descr in {
    "object": "object", "object_": "object_", "big-endian": ">O", "O8": "O8", "subarray": ("O", (1,)),
    "structured": [("a", "<f4"), ("b", "object")]}.items()})


@pytest.mark.parametrize("key", sorted(OBJECT_DESCRS))
def test_every_spelling_of_the_object_dtype(tmp_path, key):
    """np.load accepts any descr np.dtype understands; each one that holds objects unpickles the data."""
    assert_dangerous(scan_bytes(tmp_path, OBJECT_DESCRS[key], "array.npy"), "posix.system")


@case("joblib_zfile_compat.pkl")
def joblib_compat_zfile() -> bytes:
    """joblib.load still reads the pre-0.10 'ZF' + hex length + zlib format ("compat")."""
    from tests.builders import joblib_zfile

    return joblib_zfile(PAYLOAD)


def test_joblib_compat_zfile(tmp_path):
    result = scan_case(tmp_path, joblib_compat_zfile)
    assert_dangerous(result, "posix.system")
    assert not issues(result, "MA-S007") and not issues(result, "MA-P006")


def test_joblib_compat_zfile_detected_like_joblib_does(tmp_path):
    pytest.importorskip("joblib")
    from joblib.numpy_pickle_compat import read_zfile
    from joblib.numpy_pickle_utils import _detect_compressor
    from tests.builders import joblib_zfile

    honest = joblib_zfile(benign(2))
    assert _detect_compressor(io.BytesIO(honest)) == "compat"
    assert read_zfile(io.BytesIO(honest)) == benign(2)  # decompression only, nothing is unpickled
    assert_clean(scan_bytes(tmp_path, honest, "old.joblib"))
