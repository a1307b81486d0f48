""".npy headers: files numpy writes are clean; headers numpy would refuse, or that would make the scanner
multiply a hostile shape or convert a giant number, are findings (MA-N002), never a scanner error."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from tests.builders import npy
from tests.conftest import findings, scan


def _header(text: str, data: bytes = b"", major: int = 1) -> bytes:
    raw = text.encode("utf-8" if major == 3 else "latin-1")
    raw += b" " * ((64 - (12 + len(raw) + 1) % 64) % 64) + b"\n"
    size = struct.pack("<H", len(raw)) if major == 1 else struct.pack("<I", len(raw))
    return b"\x93NUMPY" + bytes([major, 0]) + size + raw + data


def _write(tmp_path, raw: bytes, name: str = "a.npy"):
    path = tmp_path / name
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.int64).reshape(3, 4), np.ones(5, ">u2"), np.zeros((0, 3)), np.array(2.5),
    np.zeros(2, dtype=[("x", [("y", "i4"), ("z", "f4", (2, 2))]), ("o", "u1")]), np.array(["γάμμα"]),
])
@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_arrays_numpy_writes_are_clean(tmp_path, array, version):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=version)
    result = scan(_write(tmp_path, buf.getvalue()))
    assert findings(result) == [] and result["has_errors"] is False


HOSTILE = {
    # numpy reads only version x.0
    "minor_version": (b"\x93NUMPY\x01\x07" + npy("<f4", (1,), b"\0" * 4)[8:], "unsupported .npy version 1.7"),
    "v2_length_cut_off": (b"\x93NUMPY\x02\x00\x10\x00", "cut off"),
    # Python's tokenizer, which numpy uses, takes neither Unicode blanks nor Unicode digits
    "unicode_blank": (_header("{'descr': '<f4',\u00a0'fortran_order': False, 'shape': (1,), }", b"\0" * 4),
                      "not a literal dict"),
    "unicode_digit": (_header("{'descr': '<f4', 'fortran_order': False, 'shape': (\u0663,), }", b"\0" * 12, 3),
                      "not a literal dict"),
    "number_past_python_limit": (_header("{'descr': '<f4', 'fortran_order': False, 'shape': (" + "9" * 5000 + ",), }"),
                                 "number too long"),
    # a product of 20,000 huge dimensions (quadratic big-integer work) and a size too long to print
    "many_huge_dimensions": (_header("{'descr': '<f4', 'fortran_order': False, 'shape': ("
                                     + "999999999999999999, " * 20_000 + "), }", major=2), "more than the"),
    "itemsize_digits": (_header("{'descr': '<U" + "9" * 5000 + "', 'fortran_order': False, 'shape': (1,), }"),
                        "Unrecognised NumPy dtype"),
    "field_shape_not_ints": (_header("{'descr': [('a', '<i4', ('x',))], 'fortran_order': False, 'shape': (1,), }"),
                             "Unrecognised NumPy dtype"),
    "field_shape_huge": (_header("{'descr': [('a', '<i4', (" + "999999999999999999, " * 4000 + "))], "
                                 "'fortran_order': False, 'shape': (1,), }", major=2), "Unrecognised NumPy dtype"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_headers(tmp_path, case):
    raw, needle = HOSTILE[case]
    result = scan(_write(tmp_path, raw))
    assert not [i for i in result["issues"] if i["rule_code"] == "MA-S005"], result["issues"]
    assert any(needle in i["message"] for i in result["issues"] if i["rule_code"] == "MA-N002"), result["issues"]
    assert max(len(i["message"]) for i in result["issues"]) < 1000


def test_unreadable_header_is_incomplete_but_a_size_mismatch_is_not(tmp_path):
    assert scan(_write(tmp_path, HOSTILE["minor_version"][0], "a.npy"))["has_errors"] is True
    truncated = scan(_write(tmp_path, npy("<f4", (4,), b"\0" * 4), "b.npy"))
    assert truncated["has_errors"] is False and "truncated" in truncated["issues"][0]["message"]


def test_sub_array_field_shape_given_as_an_int(tmp_path):
    raw = _header("{'descr': [('a', '<i4', 3)], 'fortran_order': False, 'shape': (2,), }", b"\0" * 24)
    assert findings(scan(_write(tmp_path, raw))) == []
