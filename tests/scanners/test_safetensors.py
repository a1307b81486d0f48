"""safetensors: honest files from the real writer are clean; crafted headers are findings."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from tests.conftest import codes, findings, scan


def _write(path, header: dict | bytes, data: bytes = b"") -> None:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def test_real_writer_all_dtypes_is_clean(tmp_path):
    tensors = {
        "f32": torch.randn(3, 4), "f16": torch.randn(2, dtype=torch.float16), "bf16": torch.zeros(5, dtype=torch.bfloat16),
        "i64": torch.arange(4), "u8": torch.ones(7, dtype=torch.uint8), "b": torch.ones(3, dtype=torch.bool),
        "fp8a": torch.ones(6, dtype=torch.float8_e4m3fn), "fp8b": torch.ones(6, dtype=torch.float8_e5m2),
        "scalar": torch.tensor(1.0), "empty": torch.zeros(0, 3),
    }
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt", "source": "https://example.com/model"})
    result = scan(path)
    assert findings(result) == [] and result["has_errors"] is False
    assert result["assets"][0]["type"] == "safetensors"


def test_huge_file_is_validated_from_the_header_only(tmp_path):
    size = 100 * 1000**3
    header = {"w": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}
    raw = json.dumps(header).encode()
    path = tmp_path / "huge.safetensors"
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + size)  # sparse: nothing is written to disk
    result = scan(path)
    assert findings(result) == [] and result["bytes_scanned"] < 4096


@pytest.mark.parametrize("header,data,needle", [
    (b"{not json}", b"", "not valid JSON"),
    (b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], '
     b'"data_offsets": [0, 4]}}', b"\0" * 4, "repeats the key"),
    ({"a": {"dtype": "X99", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "unknown dtype"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, "needs 8 bytes"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}, b"\0" * 6, "overlaps"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "gap"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4 + b"HIDDEN", "not described"),
    ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 4, "file holds only"),
    ({"__metadata__": {"n": 5}}, b"", "not a string"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "invalid shape"),
])
def test_malformed_headers(tmp_path, header, data, needle):
    path = tmp_path / "bad.safetensors"
    _write(path, header, data)
    result = scan(path)
    assert any(needle in i["message"] and i["rule_code"] in ("MA-F001", "MA-F002") for i in result["issues"]), \
        result["issues"]


def test_header_length_out_of_bounds(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    # content no longer looks like safetensors: the mismatch itself and the unknown content are reported
    assert findings(scan(path))


def test_metadata_code_and_credentials(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={
        "note": "__import__('os').system('echo modelaudit-test')",
        "token": "hf_" + "a1B2c3D4" * 5,
        "aws": "AKIA" + "ABCDEFGHIJKLMNOP",
    })
    result = scan(path)
    assert {"MA-C001", "MA-C002"} <= codes(result)
    assert sum(1 for i in result["issues"] if i["rule_code"] == "MA-C002") == 2


# --- hostile headers found by fuzzing: findings, never a crash, a stall or a flood ---------------
def test_header_nesting_past_the_json_parser(tmp_path):
    path = tmp_path / "deep.safetensors"
    _write(path, b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    result = scan(path)
    assert any("nests deeper" in i["message"] for i in result["issues"] if i["rule_code"] == "MA-F001")
    assert "MA-S005" not in codes(result) and result["has_errors"] is True


def test_unreadable_header_is_incomplete(tmp_path):
    path = tmp_path / "bad.safetensors"
    _write(path, b"{not json}")
    assert scan(path)["has_errors"] is True


def test_shape_of_many_huge_dimensions(tmp_path):
    path = tmp_path / "dims.safetensors"
    _write(path, {"a": {"dtype": "F32", "shape": [10**18] * 20_000, "data_offsets": [0, 4]}}, b"\0" * 4)
    (issue,) = [i for i in scan(path)["issues"] if i["details"].get("tensor") == "'a'"]
    assert "needs more than the 4 bytes" in issue["message"]


def test_sub_byte_dtype_sizes_are_exact(tmp_path):
    path = tmp_path / "f4.safetensors"
    _write(path, {"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, b"\0" * 2)
    assert any("needs 1.5 bytes" in i["message"] for i in scan(path)["issues"])


def test_findings_and_names_are_bounded(tmp_path):
    path = tmp_path / "flood.safetensors"
    header = {f"t{i}": {"dtype": "X"} for i in range(100)}
    header["n" * 10_000] = {"dtype": "X"}
    header["__metadata__"] = {f"k{i}": "eval(x)" for i in range(40)}
    _write(path, header)
    result = scan(path)
    layout = [i for i in result["issues"] if i["rule_code"] == "MA-F002"]
    assert len(layout) == 26 and "76 more MA-F002 findings" in layout[-1]["message"]
    assert len([i for i in result["issues"] if i["rule_code"] == "MA-C001"]) == 26
    assert max(len(i["message"]) for i in result["issues"]) < 1000
