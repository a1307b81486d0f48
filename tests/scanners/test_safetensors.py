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
