"""Every magic number content_format knows is found, with text and tensor bytes skipping those checks."""

from __future__ import annotations

import struct

import pytest

from modelaudit.detect import TORCH_LEGACY_MAGIC, content_format

_PAD = b"\0" * 64
# a head that starts with each signature, and the format it must be told as
SIGNATURES = [
    (TORCH_LEGACY_MAGIC + _PAD, "pytorch_legacy"),
    (b"PK\x05\x06" + b"\0" * 18, "zip"),
    (b"\x93NUMPY\x01\x00" + _PAD, "numpy"),
    (b"GGUF" + _PAD, "gguf"),
    *[(magic + _PAD, "ggml") for magic in (b"lmgg", b"fmgg", b"tjgg", b"algg", b"ggla", b"ggjt", b"ggmf", b"ggml")],
    (b"\x89HDF\r\n\x1a\n" + _PAD, "hdf5"),
    (b"\x7fELF" + _PAD, "executable"),
    *[(magic + _PAD, "executable") for magic in (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
                                                 b"\xcf\xfa\xed\xfe")],
    (b"MZ" + b"\0" * 58 + struct.pack("<I", 64) + b"PE\0\0" + _PAD, "executable"),
    (struct.pack("<I", 16) + b"TFL3" + _PAD, "tflite"),
    (struct.pack("<I", 16) + b"ET12" + _PAD, "executorch"),
    (b"\x1f\x8b\x08\x00" + _PAD, "gzip"),
    (b"BZh9" + _PAD, "bzip2"),
    (b"\xfd7zXZ\x00" + _PAD, "xz"),
    (b"7z\xbc\xaf\x27\x1c" + _PAD, "7z"),
    (b"\x04\x22\x4d\x18" + _PAD, "lz4"),
    (b"\x28\xb5\x2f\xfd" + _PAD, "zstd"),
    (b"ZF0x00000000000000000000 " + _PAD, "joblib_zfile"),
]


@pytest.mark.parametrize(("head", "expected"), SIGNATURES, ids=[fmt for _, fmt in SIGNATURES])
def test_each_signature_is_found(head, expected):
    assert content_format(head, len(head)) == expected


@pytest.mark.parametrize(("head", "expected"), [
    (b"little", "text"), (b"3\n", "text"), (b"{\"a\": 1}", "json"), (b"\0" * 16, "unknown"),
    (b"#!/bin/sh\necho hi\n", "script"), (b"MZ not a PE file, just text", "text"),
    (b"BZh? plain text after all", "text"), (b"GGU", "text"),
])
def test_near_misses_fall_through_to_the_content_checks(head, expected):
    assert content_format(head, len(head)) == expected


def test_offset_four_identifiers_win_over_later_signatures():
    # the check order is part of the contract: a flatbuffer identifier is tested before gzip's magic
    head = b"\x1f\x8b\0\0TFL3" + _PAD
    assert content_format(head, len(head)) == "tflite"
