"""spooled_blob keeps everything a stream yields, whatever size the archive declared for it, within the budget;
the tar reader's clamped file keeps its own position in step with the file's."""

from __future__ import annotations

import io
import tarfile

import pytest

from modelaudit.errors import BudgetExceeded
from modelaudit.scanners.tar import _Clamped
from modelaudit.spool import ByteBudget, spooled_blob


class _Counting(io.BytesIO):
    """A stream that remembers the sizes it was asked for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []

    def read(self, n: int | None = -1) -> bytes:
        self.asked.append(-1 if n is None else n)
        return super().read(n)


@pytest.mark.parametrize("declared", [0, 5, 99, 100, 101, 4096])
def test_all_the_data_is_kept_whatever_size_was_declared(declared):
    data = bytes(range(100))
    budget = ByteBudget(0)
    with spooled_blob(io.BytesIO(data), "a.tar:m", "m", 1, budget, declared) as blob:
        assert blob.data == data and blob.size == len(data)
    assert budget.used == len(data)


def test_a_small_member_is_read_by_its_declared_size():
    stream = _Counting(b"x" * 10)
    with spooled_blob(stream, "a.tar:m", "m", 1, ByteBudget(0), 10) as blob:
        assert blob.size == 10
    assert stream.asked[0] == 11  # not the 32 MiB in-memory limit


def test_a_member_longer_than_declared_still_meets_the_budget():
    with pytest.raises(BudgetExceeded):
        with spooled_blob(io.BytesIO(b"y" * 1000), "a.tar:m", "m", 1, ByteBudget(500), 10):
            pass


def test_clamped_position_follows_reads_and_seeks():
    raw = io.BytesIO(bytes(range(256)) * 4)
    fh = _Clamped(raw, 1000)
    assert fh.read(10) == bytes(range(10)) and fh.tell() == raw.tell() == 10
    assert fh.seek(2**80) == 1000 and fh.tell() == raw.tell() and fh.read() == b""
    assert fh.seek(-5, 2) == raw.tell() == fh.tell() == 1019 and fh.read(5) == b""  # past the clamp: nothing
    assert fh.seek(990) == 990 and fh.read() == raw.getvalue()[990:1000] and fh.tell() == 1000


def test_clamped_file_reads_a_real_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("a.txt", b"alpha"), ("b.txt", b"beta" * 300)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    buf.seek(0)
    with tarfile.open(fileobj=_Clamped(buf, len(buf.getvalue())), mode="r:") as tf:
        got = {m.name: tf.extractfile(m).read() for m in tf}
    assert got == {"a.txt": b"alpha", "b.txt": b"beta" * 300}
