"""Archives and resource-exhaustion defences: tar (plain and compressed), 7z, lz4/zstd wrappers,
zip bombs, the shared decompression budget, links in directories, and temporary-file hygiene.
Every hostile archive is built here, byte by byte where the writers refuse."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import struct
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib

import pytest

from modelaudit import spool
from modelaudit.context import ScanContext
from modelaudit.errors import ScanTimeout
from tests.builders import benign, payload, zip_bytes
from tests.conftest import scan
from tests.regressions.corpus import assert_dangerous, assert_warning, describe, issues

PAYLOAD = payload(4)
TRAVERSAL = "Archive entry {} attempted path traversal outside the archive"


# ----------------------------------------------------------------------------- builders
def tar_bytes(*entries: tarfile.TarInfo | tuple[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tf:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tf.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tf.addfile(info, io.BytesIO(entry[1]))
    return buf.getvalue()


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def seven_zip(members: dict[str, bytes], rename: dict[str, str] | None = None, encoded: bool = False) -> bytes:
    """A 7z written by py7zr, its header plain (or compressed: `encoded`); `rename` patches names py7zr
    refuses to write (same length, UTF-16 in a plain header) and fixes the header CRCs."""
    py7zr = pytest.importorskip("py7zr")
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.set_encoded_header_mode(encoded)
        for name, data in members.items():
            archive.writestr(data, name)
    if not rename:
        return buf.getvalue()
    assert not encoded, "names can be patched in a plain header only"
    data = bytearray(buf.getvalue())
    for old, new in rename.items():
        assert len(old) == len(new)
        at = data.find(old.encode("utf-16-le"))
        data[at:at + 2 * len(old)] = new.encode("utf-16-le")
    offset, size = struct.unpack_from("<QQ", data, 12)
    struct.pack_into("<I", data, 28, zlib.crc32(bytes(data[32 + offset:32 + offset + size])))
    struct.pack_into("<I", data, 8, zlib.crc32(bytes(data[12:32])))
    return bytes(data)


def claimed_size_zip(name: str, content: bytes, claimed: int) -> bytes:
    """One deflated member whose zip64 sizes claim `claimed` bytes (written by hand: zipfile would not)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = comp.compress(content) + comp.flush()
    crc, encoded = zlib.crc32(content), name.encode()
    extra = struct.pack("<HHQQ", 1, 16, claimed, len(raw))
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 45, 0, 8, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                        len(encoded), len(extra)) + encoded + extra + raw
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45, 45, 0, 8, 0, 0, crc, 0xFFFFFFFF,
                          0xFFFFFFFF, len(encoded), len(extra), 0, 0, 0, 0, 0) + encoded + extra
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + end


# ----------------------------------------------------------------------------- tar
@pytest.mark.parametrize("mode,suffix", [("w", ".tar"), ("w:gz", ".tar.gz"), ("w:bz2", ".tar.bz2"),
                                         ("w:xz", ".tar.xz")])
def test_tar_members_are_scanned_by_content(tmp_path, mode, suffix):
    data = tar_bytes(("model/weights.bin", PAYLOAD), ("model/ok.pkl", benign()), mode=mode)
    result = scan(write(tmp_path, f"bundle{suffix}", data))
    finding = assert_dangerous(result, "posix.system")
    assert "model/weights.bin" in finding["location"]


def test_tar_recurses_into_nested_archives(tmp_path):
    inner = zip_bytes({"inner/data.pkl": PAYLOAD}, zipfile.ZIP_DEFLATED)
    data = tar_bytes(("nested.zip", inner), ("more.tar.gz", gzip.compress(tar_bytes(("deep.pkl", PAYLOAD)))),
                     mode="w:gz")
    result = scan(write(tmp_path, "outer.tgz", data))
    locations = [i["location"] for i in issues(result, "MA-P001", "critical")]
    assert any("nested.zip:inner/data.pkl" in loc for loc in locations), describe(result)
    assert any("deep.pkl" in loc for loc in locations), describe(result)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/cron.d/evil", "C:\\Windows\\evil.dll",
                                  "models\\..\\..\\..\\evil.pkl", "ok/../../escape.pkl"])
def test_tar_traversal_names(tmp_path, name):
    result = scan(write(tmp_path, "t.tar", tar_bytes((name, benign()))))
    hits = [i for i in issues(result, "MA-A001", "critical") if i["message"] == TRAVERSAL.format(name)]
    assert hits, describe(result)


def test_tar_symlink_to_etc_passwd_is_reported_never_followed(tmp_path):
    data = tar_bytes(special("model.pkl", tarfile.SYMTYPE, "/etc/passwd"),
                     special("weights.bin", tarfile.LNKTYPE, "../../etc/shadow"),
                     special("sub/rel", tarfile.SYMTYPE, "../../outside"),
                     special("sub/fine", tarfile.SYMTYPE, "../model.pkl"))
    result = scan(write(tmp_path, "links.tar", data))
    flagged = {i["details"]["entry"]: i for i in issues(result, "MA-A005", "critical")}
    assert set(flagged) == {"model.pkl", "weights.bin", "sub/rel"}, describe(result)
    assert "symbolic link to /etc/passwd outside the archive" in flagged["model.pkl"]["message"]
    assert "hard link" in flagged["weights.bin"]["message"]
    assert result["summary"]["exit_code"] == 1


def test_tar_entry_written_through_a_link(tmp_path):
    data = tar_bytes(special("cache", tarfile.SYMTYPE, "/home/user/.ssh"), ("cache/authorized_keys", b"ssh-rsa x"))
    result = scan(write(tmp_path, "through.tar", data))
    assert_hit = [i for i in issues(result, "MA-A005") if "written through the link cache" in i["message"]]
    assert assert_hit, describe(result)


@pytest.mark.parametrize("kind,label", [(tarfile.FIFOTYPE, "FIFO"), (tarfile.CHRTYPE, "character device"),
                                        (tarfile.BLKTYPE, "block device")])
def test_tar_special_files_are_reported(tmp_path, kind, label):
    result = scan(write(tmp_path, "dev.tar", tar_bytes(special("dev/sda", kind), ("ok.pkl", benign()))))
    assert_warning(result, "MA-A006", f"is a {label}")


def test_tar_member_budget_makes_the_scan_incomplete(tmp_path):
    data = tar_bytes(*[(f"m{i}.txt", b"x") for i in range(12)])
    result = scan(write(tmp_path, "many.tar", data), max_members=10)
    assert issues(result, "MA-S012"), describe(result)
    assert result["summary"]["exit_code"] == 2


def test_truncated_tar_is_malformed_and_incomplete(tmp_path):
    data = tar_bytes(("a.pkl", benign()), ("b.bin", os.urandom(4096)))
    result = scan(write(tmp_path, "cut.tar", data[:512 + 512 + 512 + 700]))
    assert_warning(result, "MA-A003", "Malformed tar archive")
    assert result["incomplete_files"]


# ----------------------------------------------------------------------------- 7z, lz4, zstd
def test_7z_members_are_scanned(tmp_path):
    result = scan(write(tmp_path, "m.7z", seven_zip({"a/model.pkl": PAYLOAD, "b.txt": b"hello"})))
    finding = assert_dangerous(result, "posix.system")
    assert "m.7z:a/model.pkl" in finding["location"]


def test_7z_traversal_name(tmp_path):
    data = seven_zip({"aa/aa/evil.pkl": PAYLOAD, "ok.pkl": benign()}, rename={"aa/aa/evil.pkl": "../../evil.pkl"})
    result = scan(write(tmp_path, "evil.7z", data))
    assert any(i["message"] == TRAVERSAL.format("../../evil.pkl") for i in issues(result, "MA-A001", "critical"))


def test_7z_budget(tmp_path):
    data = seven_zip({"zeros.bin": bytes(3 << 20), "more.bin": bytes(3 << 20)})
    result = scan(write(tmp_path, "big.7z", data), max_decompressed="4MB")
    assert issues(result, "MA-J001"), describe(result)
    assert issues(result, "MA-A002"), describe(result)
    assert result["incomplete_files"]


def test_7z_without_py7zr_is_incomplete(tmp_path, monkeypatch):
    data = seven_zip({"model.pkl": PAYLOAD})
    monkeypatch.setitem(sys.modules, "py7zr", None)
    result = scan(write(tmp_path, "m.7z", data))
    missing = assert_warning(result, "MA-S006", "py7zr not installed, cannot scan 7z archives")
    assert "modelaudit[archives]" in missing["message"]
    assert result["summary"]["exit_code"] == 2


@pytest.mark.parametrize("fmt", ["lz4", "zst"])
def test_lz4_and_zstd_wrappers(tmp_path, fmt):
    if fmt == "lz4":
        data = pytest.importorskip("lz4.frame").compress(PAYLOAD)
    else:
        data = pytest.importorskip("zstandard").ZstdCompressor().compress(PAYLOAD)
    result = scan(write(tmp_path, f"model.pkl.{fmt}", data))
    assert_dangerous(result, "posix.system")
    assert not issues(result, "MA-S007")


@pytest.mark.parametrize("module,fmt", [("lz4", "lz4"), ("zstandard", "zst")])
def test_lz4_and_zstd_missing_dependency(tmp_path, monkeypatch, module, fmt):
    magic = b"\x04\x22\x4d\x18" if fmt == "lz4" else b"\x28\xb5\x2f\xfd"
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, f"{module}.frame", None)
    result = scan(write(tmp_path, f"model.{fmt}", magic + bytes(64)))
    assert_warning(result, "MA-S006", f"{module} not installed")
    assert result["summary"]["exit_code"] == 2


# ----------------------------------------------------------------------------- bombs and budgets
@pytest.mark.parametrize("compress,suffix", [(gzip.compress, ".gz"), (bz2.compress, ".bz2"),
                                             (lzma.compress, ".xz")])
def test_compressed_wrapper_ratio(tmp_path, compress, suffix):
    result = scan(write(tmp_path, f"zeros.bin{suffix}", compress(bytes(4 << 20))))
    assert_warning(result, "MA-A002", "compression ratio of")


def test_tar_gz_bomb_stops_at_the_budget_and_reports_the_ratio(tmp_path):
    data = tar_bytes(("zeros.bin", bytes(16 << 20)), mode="w:gz")
    started = time.monotonic()
    result = scan(write(tmp_path, "bomb.tar.gz", data), max_decompressed="4MB")
    assert time.monotonic() - started < 5
    assert_warning(result, "MA-A002", "compression ratio of at least")
    assert_warning(result, "MA-J001", "decompression budget")
    assert result["incomplete_files"]


def test_zip_claiming_10_gb_in_a_few_kb(tmp_path):
    data = claimed_size_zip("weights.bin", bytes(2 << 20), 10 * 1000**3)
    assert len(data) < 8192
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].file_size == 10 * 1000**3
    started = time.monotonic()
    result = scan(write(tmp_path, "bomb.zip", data))
    assert time.monotonic() - started < 5
    ratio = assert_warning(result, "MA-A002", "weights.bin has a compression ratio of")
    assert ratio["details"]["uncompressed"] == 10 * 1000**3


def test_zip_bomb_of_overlapping_members_is_bounded_by_the_file_budget(tmp_path):
    """Many directory entries pointing at the same deflated data (no zipfile writer does this)."""
    single = claimed_size_zip("m0.bin", bytes(4 << 20), 4 << 20)
    local_len = single.index(b"PK\x01\x02")
    central = single[local_len:single.index(b"PK\x05\x06")]
    entries = [central.replace(b"m0.bin", f"m{i % 10}.bin".encode()) for i in range(50)]
    directory = b"".join(entries)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 50, 50, len(directory), local_len, 0)
    started = time.monotonic()
    result = scan(write(tmp_path, "overlap.zip", single[:local_len] + directory + end), max_decompressed="32MB")
    assert time.monotonic() - started < 10
    assert issues(result, "MA-J001"), describe(result)
    assert result["incomplete_files"]


def nested_zip(levels: int, member_size: int) -> bytes:
    data = zip_bytes({"w.bin": bytes(member_size)}, zipfile.ZIP_DEFLATED)
    for level in range(levels - 1):
        data = zip_bytes({f"level{level}.zip": data, f"w{level}.bin": bytes(member_size)}, zipfile.ZIP_DEFLATED)
    return data


def test_nesting_cannot_multiply_the_decompression_budget(tmp_path):
    """zip in zip in zip: each member stays under the budget, together they pass it."""
    path = write(tmp_path, "nested.zip", nested_zip(3, 3 << 20))
    over = scan(path, max_decompressed="8MB")
    assert issues(over, "MA-J001"), describe(over)
    assert over["incomplete_files"]
    within = scan(path, max_decompressed="32MB")
    assert not issues(within, "MA-J001"), describe(within)


def test_plain_tar_members_are_copies_not_charged_to_the_budget(tmp_path):
    """A big uncompressed bundle is not a bomb: its members are bounded by the file itself."""
    data = tar_bytes(("a.bin", os.urandom(3 << 20)), ("b.bin", os.urandom(3 << 20)))
    result = scan(write(tmp_path, "bundle.tar", data), max_decompressed="4MB")
    assert not issues(result, "MA-J001"), describe(result)
    assert not result["incomplete_files"]


# ----------------------------------------------------------------------------- directories
@pytest.fixture
def outside(tmp_path):
    target = tmp_path / "outside"
    target.mkdir()
    (target / "evil.pkl").write_bytes(PAYLOAD)
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.pkl").write_bytes(benign())
    return target, root


def test_file_link_out_of_the_root_is_reported_not_followed(outside):
    target, root = outside
    os.symlink(target / "evil.pkl", root / "link.pkl")
    result = scan(root)
    assert_warning(result, "MA-S011", "outside the scanned directory")
    assert not issues(result, "MA-P001")


def test_directory_link_out_of_the_root_is_reported_not_followed(outside):
    target, root = outside
    (root / "sub").mkdir()
    os.symlink(target, root / "sub" / "linked_dir")
    result = scan(root)
    hit = assert_warning(result, "MA-S011", "outside the scanned directory")
    assert "linked_dir" in hit["location"]
    assert not issues(result, "MA-P001")


def test_directory_link_inside_the_root_is_not_a_finding(outside):
    _, root = outside
    (root / "real").mkdir()
    (root / "real" / "evil.pkl").write_bytes(PAYLOAD)
    os.symlink(root / "real", root / "alias")
    result = scan(root)
    assert not issues(result, "MA-S011")
    assert any("real/evil.pkl" in i["location"] for i in issues(result, "MA-P001", "critical")), describe(result)


# ----------------------------------------------------------------------------- temporary files
def test_no_temporary_file_survives_scans(tmp_path, monkeypatch):
    """Every spool goes to disk here; scans that finish, exceed a budget or time out leave nothing behind."""
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    monkeypatch.setattr(spool, "IN_MEMORY_LIMIT", 1024)
    made = []
    real_mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: made.append(real_mkdtemp(*a, **k)) or made[-1])
    before = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith(spool.TEMP_PREFIX)}
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write(corpus, "a.tar.gz", tar_bytes(("model.pkl", PAYLOAD), ("n.zip", nested_zip(3, 64 << 10)), mode="w:gz"))
    write(corpus, "b.zip", nested_zip(4, 128 << 10))
    write(corpus, "c.7z", seven_zip({"m.pkl": PAYLOAD, "z.bin": bytes(256 << 10)}))
    write(corpus, "d.tar.xz", tar_bytes(("zeros.bin", bytes(8 << 20)), mode="w:xz"))
    scan(corpus)
    scan(corpus / "d.tar.xz", max_decompressed="1MB")  # interrupted by the budget mid-spool
    calls = {"n": 0}

    def slow_clock(self):  # noqa: ANN001 - the deadline passes a few chunks into the scan
        calls["n"] += 1
        if calls["n"] > 3:
            raise ScanTimeout(self.config.limits.timeout)

    monkeypatch.setattr(ScanContext, "check_deadline", slow_clock)
    timed_out = scan(corpus / "b.zip")
    assert issues(timed_out, "MA-S003"), describe(timed_out)
    assert made, "the corpus should have spooled to disk"
    after = {p for p in os.listdir(tempfile.gettempdir()) if p.startswith(spool.TEMP_PREFIX)}
    assert after == before, f"left behind: {sorted(after - before)}"


def test_7z_symlink_leaving_the_archive_is_critical(tmp_path):
    py7zr = pytest.importorskip("py7zr")
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "inside.txt").write_text("hello")
    os.symlink("/etc/passwd", src / "d" / "passwd")
    os.symlink("../inside.txt", src / "d" / "ok")
    archive = tmp_path / "links.7z"
    with py7zr.SevenZipFile(archive, "w") as zf:
        for name in ("d/passwd", "d/ok", "inside.txt"):
            zf.write(src / name, name)
    result = scan(archive)
    links = [i for i in result["issues"] if i["rule_code"] == "MA-A005"]
    assert [i["details"]["entry"] for i in links] == ["d/passwd"] and links[0]["severity"] == "critical"


class _Payload:
    """Pickles as os.system("echo ..."): harmless if ever loaded."""

    def __reduce__(self):
        return (os.system, ("echo modelaudit-test",))


def _payload_pickle() -> bytes:
    import pickle as _pickle

    return _pickle.dumps(_Payload())


def test_zip_after_other_data_is_scanned_and_reported(tmp_path):
    """zipfile finds an archive from its end: data before it must not hide the members."""
    import pickle as _pickle

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", _payload_pickle())
    path = tmp_path / "model.pt"
    path.write_bytes(_pickle.dumps({"honest": [1, 2, 3]}) + buf.getvalue())
    result = scan(path)
    codes = {i["rule_code"] for i in result["issues"]}
    assert {"MA-A004", "MA-P001"} <= codes
    assert any("archive/data.pkl" in (i["location"] or "") for i in result["issues"] if i["rule_code"] == "MA-P001")


def test_torch_written_zip_after_other_data_is_found(tmp_path):
    """PyTorch's writer adds a zip64 end record: the directory ends there, not at the plain end record."""
    import pickle as _pickle

    torch = pytest.importorskip("torch")
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"w": torch.zeros(2), "hook": _Payload()}, ckpt)
    path = tmp_path / "model.pkl"
    path.write_bytes(_pickle.dumps({"honest": 1}) + ckpt.read_bytes())
    result = scan(path)
    assert [i["details"]["prefix_bytes"] for i in issues(result, "MA-A004")] == [len(_pickle.dumps({"honest": 1}))]
    assert any("data.pkl" in (i["location"] or "") for i in issues(result, "MA-P001")), describe(result)


@pytest.mark.parametrize("mode", ["w:", "w:gz"])
def test_nemo_tar_holding_a_torch_checkpoint_is_clean(tmp_path, mode):
    """A .nemo is a tar whose last member is a torch zip: zipfile finds that zip from the tar's end, but it
    is one member of the tar, scanned as such."""
    torch = pytest.importorskip("torch")
    ckpt = tmp_path / "model_weights.ckpt"
    torch.save({"w": torch.zeros(64)}, ckpt)
    config = tmp_path / "model_config.yaml"
    config.write_text("target: nemo.collections.asr.models.EncDecCTCModel\nsample_rate: 16000\n")
    path = tmp_path / "honest.nemo"
    with tarfile.open(path, mode) as tf:
        tf.add(config, "./model_config.yaml")
        tf.add(ckpt, "./model_weights.ckpt")
    result = scan(path)
    assert result["issues"] == [] and result["has_errors"] is False, describe(result)


def test_zip_after_the_end_of_a_tar_is_reported(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("readme.txt")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"hello"))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("archive/data.pkl", _payload_pickle())
    path = tmp_path / "bundle.tar"
    path.write_bytes(buf.getvalue() + archive.getvalue())
    result = scan(path)
    assert issues(result, "MA-A004") and issues(result, "MA-P001"), describe(result)


def _zip_split_around(entries_at: int) -> tuple[bytes, bytes]:
    """(directory + end record, local headers and data) of a stored zip holding a payload pickle: the
    directory points `entries_at` bytes past the start of the first part."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        zf.writestr("archive/data.pkl", _payload_pickle())
    raw = raw.getvalue()
    end_at = raw.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", raw, end_at + 12)
    directory, end = bytearray(raw[cd_offset:cd_offset + cd_size]), bytearray(raw[end_at:])
    struct.pack_into("<I", directory, 42, entries_at)  # the one entry's local header offset
    struct.pack_into("<I", end, 16, 0)  # the directory starts the zip
    return bytes(directory + end), raw[:cd_offset]


@pytest.mark.parametrize("where", ["padding", "after-end"])
def test_tar_member_zip_whose_entries_lie_outside_the_member_is_reported(tmp_path, where):
    """The last member is a zip directory only; its entry lies in the member's padding or after the tar's
    end, which the tar scanner never reads, while zipfile (finding the zip from the end) loads it."""
    head, entries = _zip_split_around(0)
    tail_at = 512 + len(head) if where == "padding" else 512 + len(head) + (-len(head)) % 512 + 1024
    head, entries = _zip_split_around(tail_at - 512)
    info = tarfile.TarInfo("model_weights.ckpt")
    info.size = len(head)
    body = info.tobuf(tarfile.USTAR_FORMAT) + head
    if where == "padding":
        body += entries
    body += b"\0" * ((-len(body)) % 512) + b"\0" * 1024
    if where == "after-end":
        body += entries
    path = tmp_path / "bundle.tar"
    path.write_bytes(body)
    with zipfile.ZipFile(path) as zf:  # the fixture is what zipfile loads
        assert zf.read("archive/data.pkl") == _payload_pickle()
    result = scan(path)
    assert issues(result, "MA-A004") and issues(result, "MA-P001"), describe(result)


def test_tar_member_whose_pax_size_hides_a_zip_is_reported(tmp_path):
    """A pax header sets the member's size to 0: tarfile reads nothing, yet the ustar header right before the
    zip still declares its full length."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("archive/data.pkl", _payload_pickle())
    data = archive.getvalue()
    info = tarfile.TarInfo("model_weights.ckpt")
    info.size = len(data)
    info.pax_headers = {"size": "0"}
    body = info.tobuf(tarfile.PAX_FORMAT) + data
    path = tmp_path / "bundle.tar"
    path.write_bytes(body + b"\0" * ((-len(body)) % 512) + b"\0" * 1024)
    result = scan(path)
    assert issues(result, "MA-A004") and issues(result, "MA-P001"), describe(result)


def test_duplicate_member_names_are_all_scanned(tmp_path):
    import pickle as _pickle
    import warnings

    path = tmp_path / "dup.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name we write on purpose
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("archive/data.pkl", _pickle.dumps({"w": 1}))
            zf.writestr("archive/data.pkl", _payload_pickle())
    result = scan(path)
    assert "MA-P001" in {i["rule_code"] for i in result["issues"]}
    assert "MA-T001" in {i["rule_code"] for i in result["issues"]}  # two data.pkl where torch expects one


def test_honest_files_have_no_hidden_zip(tmp_path):
    import pickle as _pickle

    path = tmp_path / "ok.pkl"
    path.write_bytes(_pickle.dumps({"PK\x05\x06": "not a zip"}))
    assert scan(path)["issues"] == []


def test_max_decompressed_flag(tmp_path):
    from tests.conftest import run_cli

    path = tmp_path / "zeros.bin.gz"
    path.write_bytes(gzip.compress(b"\0" * 3_000_000))
    out = run_cli("scan", "--format", "json", "--max-decompressed", "1MB", str(path))
    assert out.code in (1, 2) and "MA-J001" in {i["rule_code"] for i in out.json()["issues"]}
    assert run_cli("scan", "--max-decompressed", "nope", str(path)).code == 2


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/cron.d/evil", "C:\\Windows\\evil.dll",
                                  "models\\..\\..\\evil.pkl", "ok/../../escape.pkl"])
def test_zip_traversal_name_among_many_honest_members(tmp_path, name):
    # archives of many members take a quick look at all names at once; one bad name must still be found
    members = {f"archive/data/{i}": b"\0" * 4 for i in range(300)}
    members[name] = benign()
    result = scan(write(tmp_path, "many.zip", zip_bytes(members)))
    hits = [i for i in issues(result, "MA-A001", "critical") if i["message"] == TRAVERSAL.format(name)]
    assert len(hits) == 1, describe(result)


def test_zip_of_plain_names_has_no_traversal_finding(tmp_path):
    members = {f"model/layer_{i}.bin": b"\0" * 4 for i in range(300)} | {"model/notes..txt": b"ok"}
    result = scan(write(tmp_path, "plain.zip", zip_bytes(members)))
    assert not issues(result, "MA-A001"), describe(result)


def test_small_stored_members_read_directly_only_when_zipfile_would_accept_them(tmp_path):
    from modelaudit.scanners._zip_raw import read_stored as _read_stored

    data = zip_bytes({"archive/version": b"3\n", "archive/big": b"x" * 5000, "archive/empty": b""})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert _read_stored(zf, zf.getinfo("archive/version")) == b"3\n"
        assert _read_stored(zf, zf.getinfo("archive/big")) == b"x" * 5000
        assert _read_stored(zf, zf.getinfo("archive/empty")) is None  # nothing to gain: zipfile reads it
    tampered = {
        "local name differs": data.replace(b"archive/version", b"archive/versioX", 1),
        "crc differs": data.replace(b"3\n", b"4\n", 1),
        "encrypted flag": data[:6] + b"\x01\x00" + data[8:],
    }
    for label, raw in tampered.items():
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            info = zf.infolist()[0]
            info.flag_bits |= 1 if label == "encrypted flag" else 0
            assert _read_stored(zf, info) is None, label


def test_checkpoint_member_with_a_wrong_crc_is_still_reported(tmp_path):
    # a metadata member zipfile rejects is read leniently, with the strict reader's finding
    from tests.builders import torch_zip

    data = torch_zip(benign())
    start = data.index(b"archive/byteorderlittle") + len(b"archive/byteorder")
    data = data[:start] + b"LITTLE" + data[start + 6:]
    result = scan(write(tmp_path, "ckpt.pt", data))
    assert [i["details"]["entry"] for i in issues(result, "MA-A004")] == ["archive/byteorder"], describe(result)


def _invalid_utf8_name(data: bytes, name: bytes) -> bytes:
    """`data` with member `name` renamed to bytes that are not UTF-8, flagged as UTF-8 (0x800) in the directory."""
    bad = b"\xff\xfe" + name[2:]
    data = data.replace(name, bad)
    at = data.index(b"PK\x01\x02")  # the first directory entry
    while True:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_len].endswith(bad):
            flags = struct.unpack_from("<H", data, at + 8)[0] | 0x800
            return data[:at + 8] + struct.pack("<H", flags) + data[at + 10:]
        at = data.index(b"PK\x01\x02", at + 4)


def test_zip_directory_zipfile_refuses_is_still_scanned(tmp_path):
    # one member named with bytes that are not UTF-8 though flagged UTF-8: zipfile refuses the whole archive,
    # other readers load it, so the payload in data.pkl must still be found
    from tests.builders import torch_zip

    data = _invalid_utf8_name(torch_zip(payload(), extra={"archive/zzjunk": b"x"}), b"zzjunk")
    with pytest.raises(UnicodeDecodeError):
        zipfile.ZipFile(io.BytesIO(data))
    result = scan(write(tmp_path, "ckpt.pt", data))
    assert_dangerous(result, "posix.system")
    lenient = [i for i in issues(result, "MA-A003") if i["details"].get("lenient")]
    assert len(lenient) == 1 and "UnicodeDecodeError" in lenient[0]["message"], describe(result)


@pytest.mark.parametrize("damage", ["offset past the end", "end record cut", "directory entry cut"])
def test_zip_directory_nobody_can_read_is_incomplete_never_clean(tmp_path, damage):
    from tests.builders import torch_zip

    data = torch_zip(benign())
    end = data.rindex(b"PK\x05\x06")
    broken = {"offset past the end": data[:end + 16] + struct.pack("<I", len(data) * 4) + data[end + 20:],
              "end record cut": data[:-8],
              "directory entry cut": data[:data.index(b"PK\x01\x02") + 20] + data[end:]}[damage]
    result = scan(write(tmp_path, "ckpt.pt", broken))
    assert issues(result, "MA-A003") and not issues(result, "MA-S005"), describe(result)
    assert result["summary"]["exit_code"] != 0


def test_lenient_listing_matches_zipfile_on_honest_archives():
    from modelaudit.blob import Blob
    from modelaudit.scanners._zip_raw import LenientZip
    from tests.builders import torch_zip

    archives = {"torch": torch_zip(benign()), "deflated": zip_bytes({"a/b.txt": b"hi" * 100, "c.pkl": benign()},
                                                                    zipfile.ZIP_DEFLATED),
                "prefixed": b"#!/bin/sh\nexit 0\n" + zip_bytes({"m.pkl": benign()})}
    for label, data in archives.items():
        blob = Blob.from_bytes(data, label)
        with blob.open() as fh, zipfile.ZipFile(io.BytesIO(data)) as zf:
            lenient = LenientZip(blob, fh)
            assert [(i.filename, i.header_offset, i.file_size, i.CRC) for i in lenient.infolist()] == \
                [(i.filename, i.header_offset, i.file_size, i.CRC) for i in zf.infolist()], label
            for info in zf.infolist():
                assert lenient.read(lenient.getinfo(info.filename)) == zf.read(info), (label, info.filename)


def test_member_with_an_empty_name_is_scanned(tmp_path):
    from tests.builders import raw_zip

    data = raw_zip([(b"", payload()), (b"ok.npy", b"\x93NUMPY")])
    result = scan(write(tmp_path, "weights.npz", data))
    assert not issues(result, "MA-S005"), describe(result)
    assert_dangerous(result, "posix.system")


def test_local_name_flagged_utf8_that_is_not_is_read_leniently(tmp_path):
    # zipfile decodes the local header's name and fails; the member is read from its raw data instead
    from tests.builders import torch_zip

    data = torch_zip(payload())
    local = data.index(b"archive/data.pkl")
    data = data[:local] + b"\xff\xferchive/data.pkl"[:16] + data[local + 16:]
    flags = struct.unpack_from("<H", data, 6)[0] | 0x800
    data = data[:6] + struct.pack("<H", flags) + data[8:]
    for at in [i for i in range(len(data)) if data.startswith(b"PK\x01\x02", i)]:
        if data[at + 46:at + 62] == b"archive/data.pkl":
            data = data[:at + 8] + struct.pack("<H", struct.unpack_from("<H", data, at + 8)[0] | 0x800) + data[at + 10:]
    result = scan(write(tmp_path, "ckpt.pt", data))
    assert not issues(result, "MA-S005"), describe(result)
    assert_dangerous(result, "posix.system")
    assert [i["details"]["entry"] for i in issues(result, "MA-A004")] == ["archive/data.pkl"], describe(result)


# ----------------------------------------------------------------------------- hostile headers (fuzzing finds)
def _no_internal_error(result: dict) -> None:
    assert not issues(result, "MA-S005") and not issues(result, "MA-S015"), describe(result)
    assert result["summary"]["exit_code"] != 0 and result["incomplete_files"], describe(result)


def _tar_header(name: bytes, typeflag: bytes, size_field: bytes) -> bytes:
    header = bytearray(name.ljust(100, b"\0") + b"0000644\0" + b"0000000\0" * 2 + size_field + b"0" * 11 + b"\0")
    header += b" " * 8 + typeflag + b"\0" * 100 + b"ustar\x0000"
    header = header.ljust(512, b"\0")
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


@pytest.mark.parametrize("typeflag", [b"x", b"L", b"A"], ids=["pax", "gnu-longname", "unknown-type"])
def test_tar_header_declaring_exabytes_ends_the_archive_as_truncated(tmp_path, typeflag):
    # a base-256 size of 2**80: tarfile sizes the read of an extended header (and the seek to the next
    # header) from it, which allocated that much or overflowed instead of stopping at the end of the file
    huge = b"\x80" + (1 << 80).to_bytes(11, "big")
    first = tar_bytes(("model.pkl", PAYLOAD))[:512 + -(-len(PAYLOAD) // 512) * 512]  # without the end blocks
    data = first + _tar_header(b"big", typeflag, huge) + bytes(2048)
    result = scan(write(tmp_path, "huge.tar", data))
    _no_internal_error(result)
    assert_dangerous(result, "posix.system")
    assert_warning(result, "MA-A003", "Malformed tar archive after")


def test_corrupt_lz4_frame_is_malformed_not_an_internal_error(tmp_path):
    frame = bytearray(pytest.importorskip("lz4.frame").compress(PAYLOAD))
    frame[6] ^= 0xFF  # the frame descriptor's checksum byte
    result = scan(write(tmp_path, "model.pkl.lz4", bytes(frame)))
    _no_internal_error(result)
    assert_warning(result, "MA-A003", "Corrupt lz4 stream")


def _number_7z(n: int) -> bytes:
    """7z's variable-length integer (one byte below 0x80, else 0xFF and eight bytes is always accepted)."""
    return bytes([n]) if n < 0x80 else b"\xff" + struct.pack("<Q", n)


def raw_7z(header: bytes, encode: bool = True) -> bytes:
    """A 7z written byte by byte: `header` (a plain kHeader), stored as is or LZMA-encoded (kEncodedHeader)."""
    packed = b""
    if encode:
        filters = [{"id": lzma.FILTER_LZMA1, "dict_size": 1 << 20}]
        packed = lzma.compress(header, format=lzma.FORMAT_RAW, filters=filters)
        props = lzma._encode_filter_properties(filters[0])  # noqa: SLF001 - the 5 property bytes 7z stores
        coder = b"\x23\x03\x01\x01" + _number_7z(len(props)) + props
        header = (b"\x17\x06" + _number_7z(0) + _number_7z(1) + b"\x09" + _number_7z(len(packed)) + b"\x00"
                  b"\x07\x0b" + _number_7z(1) + b"\x00" + _number_7z(1) + coder + b"\x0c" + _number_7z(len(header))
                  + b"\x00\x00")
    start = struct.pack("<QQI", len(packed), len(header), zlib.crc32(header))
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(start)) + start + packed + header


def empty_files_header(count: int, extra: bytes = b"") -> bytes:
    """A kHeader listing `count` empty files named "a" (two header bytes each once compressed)."""
    names = "a\0".encode("utf-16-le") * count
    empty = b"\xff" * ((count + 7) // 8)
    return (b"\x01\x05" + _number_7z(count) + b"\x0e" + _number_7z(len(empty)) + empty
            + b"\x11" + _number_7z(len(names) + 1) + b"\x00" + names + extra + b"\x00\x00")


def test_7z_header_declaring_a_million_entries_is_refused_before_it_is_listed(tmp_path):
    # under 1 KB on disk; py7zr builds an object per entry (half a gigabyte and many seconds for this one,
    # 8 million entries are allowed): the count is read from the header first and held against max_members
    data = raw_7z(empty_files_header(1_000_000))
    assert len(data) < 2048
    result = scan(write(tmp_path, "many.7z", data))
    assert_warning(result, "MA-S012", "archive declares 1000000 entries (limit 100000)")
    assert result["incomplete_files"] and not issues(result, "MA-S005")
    small = scan(write(tmp_path, "few.7z", raw_7z(empty_files_header(3))))
    assert not issues(small, "MA-S012") and not small["incomplete_files"], describe(small)


def test_declared_7z_entries_match_what_py7zr_lists(tmp_path):
    py7zr = pytest.importorskip("py7zr")
    from modelaudit.scanners._sevenzip_header import declared_entries

    members = {f"dir/f{i}.txt": bytes([i % 256]) * (i % 5) for i in range(200)}
    variants = {"plain": seven_zip(members), "encoded": None, "bzip2": None, "copy": None}
    for label, filters in (("encoded", None), ("bzip2", [{"id": py7zr.FILTER_BZIP2}]),
                           ("copy", [{"id": py7zr.FILTER_COPY}])):
        buf = io.BytesIO()
        with py7zr.SevenZipFile(buf, "w", filters=filters) as archive:
            for name, data in members.items():
                archive.writestr(data, name)
        variants[label] = buf.getvalue()
    variants["byte-built"] = raw_7z(empty_files_header(12))
    variants["byte-built plain"] = raw_7z(empty_files_header(12), encode=False)
    for label, data in variants.items():
        with py7zr.SevenZipFile(io.BytesIO(data)) as archive:
            listed = len(archive.list())
        assert declared_entries(io.BytesIO(data), len(data), lambda: None) == listed, label


def test_7z_header_py7zr_chokes_on_is_malformed_not_an_internal_error(tmp_path):
    # a last-write-time property marked "external" (py7zr asserts it is not), and an LZMA-encoded header
    # whose packed bytes are corrupt (the CRCs are right, the stream is not)
    times = b"\x14" + _number_7z(3) + b"\x01\x01\x00"
    corrupt = bytearray(raw_7z(empty_files_header(4)))
    corrupt[40:48] = b"\xff" * 8
    offset, size = struct.unpack_from("<QQ", corrupt, 12)
    struct.pack_into("<I", corrupt, 28, zlib.crc32(bytes(corrupt[32 + offset:32 + offset + size])))
    struct.pack_into("<I", corrupt, 8, zlib.crc32(bytes(corrupt[12:32])))
    for name, data in (("times.7z", raw_7z(empty_files_header(4, times), encode=False)), ("lzma.7z", bytes(corrupt))):
        result = scan(write(tmp_path, name, data))
        _no_internal_error(result)
        assert_warning(result, "MA-A003", "Malformed 7z archive")


def test_7z_with_thousands_of_links_reads_them_in_one_pass(tmp_path, monkeypatch):
    # each link used to be read by reopening the archive (parsing the whole header again): quadratic
    py7zr = pytest.importorskip("py7zr")
    src = tmp_path / "src"
    src.mkdir()
    (src / "weights.bin").write_bytes(b"\0" * 8)
    names = []
    for i in range(600):
        os.symlink("/etc/passwd" if i % 3 == 0 else "weights.bin", src / f"l{i}")
        names.append(f"l{i}")
    archive = tmp_path / "links.7z"
    with py7zr.SevenZipFile(archive, "w") as zf:
        zf.write(src / "weights.bin", "weights.bin")
        for name in names:
            zf.write(src / name, name)
    opened = []
    real = py7zr.SevenZipFile

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        opened.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(py7zr, "SevenZipFile", counting)
    result = scan(archive)
    outside = sorted(i["details"]["entry"] for i in issues(result, "MA-A005", "critical"))
    assert outside == sorted(f"l{i}" for i in range(0, 600, 3)), describe(result)
    assert len(opened) <= 3  # listing and members, then all links together


def test_member_whose_compressed_data_breaks_mid_read_is_incomplete(tmp_path):
    # read_member (keras config) has no lenient fallback: a broken deflate stream ends the archive's scan
    config = b'{"class_name": "Sequential", "config": {"layers": []}, "pad": "' + b"x" * 4000 + b'"}'
    data = bytearray(zip_bytes({"config.json": config, "metadata.json": b'{"keras_version": "3.0.0"}'},
                               zipfile.ZIP_DEFLATED))
    start = data.index(b"config.json") + len(b"config.json")
    data[start + 2:start + 6] = b"\xff\xff\xff\xff"
    result = scan(write(tmp_path, "model.keras", bytes(data)))
    assert not issues(result, "MA-S005"), describe(result)
    assert issues(result, "MA-A003") and result["summary"]["exit_code"] != 0, describe(result)
