"""File type validation over every extension x content pair the detector knows."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile

import pytest

from modelaudit.detect import EXTENSION_FORMATS, detect


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello")
    return buf.getvalue()


def _safetensors() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * 4


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo modelaudit-test",))


# one sample of each content format, as the bytes a file would start with
SAMPLES = {
    "pickle": pickle.dumps(_Payload(), protocol=2),
    "zip": _zip(),
    "safetensors": _safetensors(),
    "numpy": b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }".ljust(128, b" ")
             + b"\0" * 4,
    "gguf": b"GGUF" + struct.pack("<IQQ", 3, 0, 0),
    "hdf5": b"\x89HDF\r\n\x1a\n" + b"\0" * 64,
    "executable": b"\x7fELF\x02\x01\x01" + b"\0" * 64,
    "gzip": b"\x1f\x8b\x08\x00" + b"\0" * 32,
}


@pytest.mark.parametrize("ext", sorted(EXTENSION_FORMATS))
@pytest.mark.parametrize("content", sorted(SAMPLES))
def test_every_extension_content_pair(ext, content):
    name = f"model{ext}"
    data = SAMPLES[content]
    found = detect(data, name, len(data))
    promised, honest = EXTENSION_FORMATS[ext]
    if found.format in honest:
        assert not found.mismatch
    else:
        assert found.mismatch and found.expected == promised, (ext, content, found)


def test_reference_case_tensor_binary_vs_pickle():
    found = detect(SAMPLES["pickle"], "model.bin", len(SAMPLES["pickle"]))
    assert (found.expected, found.format) == ("tensor_binary", "pickle")


@pytest.mark.parametrize("content", sorted(SAMPLES))
def test_samples_are_detected_by_content_alone(content):
    data = SAMPLES[content]
    assert detect(data, "no-extension", len(data)).format == content
