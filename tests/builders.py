"""Build hostile (and honest) model files byte by byte for tests.

Pickles are assembled from opcode helpers so a test states exactly which opcodes it
uses; containers (zip, torch zip, legacy torch, .npy/.npz, joblib compression) wrap
those bytes the way the real libraries do. Nothing here ever unpickles anything.

Payloads are harmless even if something did run them: commands are `echo
modelaudit-test`, code strings only print, paths point into a temporary directory.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import zipfile
import zlib
from typing import Any

HARMLESS_CMD = "echo modelaudit-test"
HARMLESS_CODE = "print('modelaudit-test')"
CANARY_MODULE = "modelaudit_canary_mod"  # never importable from a normal sys.path


# --------------------------------------------------------------------------- structure
def proto(n: int) -> bytes:
    return b"\x80" + bytes([n])


def frame(n: int) -> bytes:
    return b"\x95" + n.to_bytes(8, "little")


def stop() -> bytes:
    return b"."


def mark() -> bytes:
    return b"("


def pop() -> bytes:
    return b"0"


def pop_mark() -> bytes:
    return b"1"


def dup() -> bytes:
    return b"2"


# --------------------------------------------------------------------------- globals and calls
def _line(text: str) -> bytes:
    return text.encode("utf-8") + b"\n"


def global_(module: str, name: str) -> bytes:
    """GLOBAL: two newline-terminated text arguments (protocols 0-3)."""
    return b"c" + _line(module) + _line(name)


def inst(module: str, name: str) -> bytes:
    """INST: calls module.name with the items above the last MARK."""
    return b"i" + _line(module) + _line(name)


def stack_global() -> bytes:
    return b"\x93"


def reduce() -> bytes:
    return b"R"


def build() -> bytes:
    return b"b"


def obj() -> bytes:
    return b"o"


def newobj() -> bytes:
    return b"\x81"


def newobj_ex() -> bytes:
    return b"\x92"


def ext1(code: int) -> bytes:
    return b"\x82" + bytes([code])


def ext2(code: int) -> bytes:
    return b"\x83" + code.to_bytes(2, "little")


def ext4(code: int) -> bytes:
    return b"\x84" + code.to_bytes(4, "little")


def persid(pid: str) -> bytes:
    return b"P" + _line(pid)


def binpersid() -> bytes:
    return b"Q"


# --------------------------------------------------------------------------- memo
def memoize() -> bytes:
    return b"\x94"


def put(i: int) -> bytes:
    return b"p" + _line(str(i))


def binput(i: int) -> bytes:
    return b"q" + bytes([i])


def long_binput(i: int) -> bytes:
    return b"r" + i.to_bytes(4, "little")


def get(i: int) -> bytes:
    return b"g" + _line(str(i))


def binget(i: int) -> bytes:
    return b"h" + bytes([i])


def long_binget(i: int) -> bytes:
    return b"j" + i.to_bytes(4, "little")


# --------------------------------------------------------------------------- scalars
def none() -> bytes:
    return b"N"


def newtrue() -> bytes:
    return b"\x88"


def newfalse() -> bytes:
    return b"\x89"


def int_(n: int) -> bytes:
    return b"I" + _line(str(n))


def long_(n: int) -> bytes:
    return b"L" + _line(f"{n}L")


def binint(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def binint1(n: int) -> bytes:
    return b"K" + bytes([n])


def binint2(n: int) -> bytes:
    return b"M" + struct.pack("<H", n)


def long1(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8 or 1, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def binfloat(x: float) -> bytes:
    return b"G" + struct.pack(">d", x)


# --------------------------------------------------------------------------- text and bytes
def string(s: str) -> bytes:
    """STRING (protocol 0): a quoted, escaped latin-1 literal."""
    return b"S" + repr(s.encode("latin-1"))[1:].encode("ascii") + b"\n"


def unicode_(s: str) -> bytes:
    """UNICODE (protocol 0): raw-unicode-escape text up to a newline."""
    return b"V" + s.encode("raw_unicode_escape").replace(b"\n", b"\\u000a") + b"\n"


def short_binunicode(s: str) -> bytes:
    raw = s.encode("utf-8")
    assert len(raw) < 256
    return b"\x8c" + bytes([len(raw)]) + raw


def binunicode(s: str) -> bytes:
    raw = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def binunicode8(s: str) -> bytes:
    raw = s.encode("utf-8")
    return b"\x8d" + struct.pack("<Q", len(raw)) + raw


def short_binstring(s: str) -> bytes:
    raw = s.encode("latin-1")
    assert len(raw) < 256
    return b"U" + bytes([len(raw)]) + raw


def binstring(s: str) -> bytes:
    raw = s.encode("latin-1")
    return b"T" + struct.pack("<i", len(raw)) + raw


def short_binbytes(data: bytes) -> bytes:
    assert len(data) < 256
    return b"C" + bytes([len(data)]) + data


def binbytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def binbytes8(data: bytes) -> bytes:
    return b"\x8e" + struct.pack("<Q", len(data)) + data


def bytearray8(data: bytes) -> bytes:
    return b"\x96" + struct.pack("<Q", len(data)) + data


# --------------------------------------------------------------------------- containers
def empty_tuple() -> bytes:
    return b")"


def tuple_() -> bytes:
    return b"t"


def tuple1() -> bytes:
    return b"\x85"


def tuple2() -> bytes:
    return b"\x86"


def tuple3() -> bytes:
    return b"\x87"


def empty_list() -> bytes:
    return b"]"


def list_() -> bytes:
    return b"l"


def append() -> bytes:
    return b"a"


def appends() -> bytes:
    return b"e"


def empty_dict() -> bytes:
    return b"}"


def dict_() -> bytes:
    return b"d"


def setitem() -> bytes:
    return b"s"


def setitems() -> bytes:
    return b"u"


def empty_set() -> bytes:
    return b"\x8f"


def additems() -> bytes:
    return b"\x90"


def frozenset_() -> bytes:
    return b"\x91"


def pickle(*parts: bytes) -> bytes:
    """Concatenate opcode fragments into one byte string."""
    return b"".join(parts)


# --------------------------------------------------------------------------- values
def push(value: Any, protocol: int = 4) -> bytes:
    """Opcodes that push a plain constant (None, bool, int, str, bytes, tuple, list, dict)."""
    if value is None:
        return none()
    if value is True or value is False:
        if protocol >= 2:
            return newtrue() if value else newfalse()
        return b"I01\n" if value else b"I00\n"
    if isinstance(value, int):
        if protocol == 0:
            return int_(value)
        if 0 <= value < 256:
            return binint1(value)
        if 0 <= value < 65536:
            return binint2(value)
        return binint(value) if -(2**31) <= value < 2**31 else long1(value)
    if isinstance(value, str):
        if protocol == 0:
            return unicode_(value)
        if protocol < 3:
            return binunicode(value)
        return short_binunicode(value) if len(value.encode()) < 256 else binunicode(value)
    if isinstance(value, (bytes, bytearray)):
        if protocol < 3:  # what pickle itself writes: codecs.encode(text, "latin1")
            return pickle(global_("_codecs", "encode"), mark() if protocol < 2 else b"",
                          push(bytes(value).decode("latin-1"), protocol), push("latin1", protocol),
                          tuple_() if protocol < 2 else tuple2(), reduce())
        return short_binbytes(bytes(value)) if len(value) < 256 else binbytes(bytes(value))
    if isinstance(value, tuple):
        if not value:
            return empty_tuple()
        if protocol >= 2 and len(value) <= 3:
            return b"".join(push(v, protocol) for v in value) + (tuple1(), tuple2(), tuple3())[len(value) - 1]
        return mark() + b"".join(push(v, protocol) for v in value) + tuple_()
    if isinstance(value, list):
        if protocol == 0:
            return mark() + b"".join(push(v, protocol) for v in value) + list_()
        body = b"".join(push(v, protocol) for v in value)
        return empty_list() + (mark() + body + appends() if value else b"")
    if isinstance(value, dict):
        if protocol == 0:
            return mark() + b"".join(push(k, protocol) + push(v, protocol) for k, v in value.items()) + dict_()
        body = b"".join(push(k, protocol) + push(v, protocol) for k, v in value.items())
        return empty_dict() + (mark() + body + setitems() if value else b"")
    raise TypeError(f"push() cannot encode {type(value).__name__}")


def callee(module: str, name: str, protocol: int = 4) -> bytes:
    """Push module.name: GLOBAL before protocol 4, STACK_GLOBAL from strings after."""
    if protocol >= 4:
        return pickle(short_binunicode(module), memoize(), short_binunicode(name), memoize(), stack_global())
    return global_(module, name)


def call(module: str, name: str, *args: Any, protocol: int = 4) -> bytes:
    """Opcodes that push module.name(*args) (no PROTO, no STOP): a composable fragment."""
    return pickle(callee(module, name, protocol), push(tuple(args), protocol), reduce())


def reduce_pickle(module: str, name: str, *args: Any, protocol: int = 4) -> bytes:
    """A complete pickle whose loading calls module.name(*args), as pickle.dumps writes it."""
    head = proto(protocol) if protocol >= 2 else b""
    return pickle(head, call(module, name, *args, protocol=protocol), stop())


def payload(protocol: int = 4) -> bytes:
    """The canonical payload: os.system("echo modelaudit-test") spelled as CPython does (posix)."""
    return reduce_pickle("posix", "system", HARMLESS_CMD, protocol=protocol)


def benign(protocol: int = 4) -> bytes:
    """A plain data pickle: {'weights': [1, 2, 3], 'name': 'model'}."""
    head = proto(protocol) if protocol >= 2 else b""
    return pickle(head, push({"weights": [1, 2, 3], "name": "model"}, protocol), stop())


class Reduce:
    """An object that pickles as `func(*args)`; for fixtures written by the real pickler."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


# --------------------------------------------------------------------------- zip containers
def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def torch_zip(data_pkl: bytes, extra: dict[str, bytes] | None = None, prefix: str = "archive") -> bytes:
    """A checkpoint laid out like torch.save: data.pkl, version, byteorder, data/<n> storages."""
    members = {
        f"{prefix}/data.pkl": data_pkl,
        f"{prefix}/byteorder": b"little",
        f"{prefix}/data/0": b"\x00" * 16,
        f"{prefix}/version": b"3\n",
        f"{prefix}/.data/serialization_id": b"0123456789",
    }
    for name, data in (extra or {}).items():
        members[f"{prefix}/{name}"] = data
    return zip_bytes(members)


def patch_zip_flags(data: bytes, flag_bits: int, local: bool = True, central: bool = True) -> bytes:
    """OR `flag_bits` into every general-purpose flag field (CVE-2025-1945 style)."""
    out = bytearray(data)
    for sig, offset, enabled in ((b"PK\x03\x04", 6, local), (b"PK\x01\x02", 8, central)):
        pos = out.find(sig) if enabled else -1
        while pos >= 0:
            flags = struct.unpack_from("<H", out, pos + offset)[0]
            struct.pack_into("<H", out, pos + offset, flags | flag_bits)
            pos = out.find(sig, pos + 4)
    return bytes(out)


def raw_zip(members: list[tuple[bytes, bytes]], flag_bits: int = 0) -> bytes:
    """A stored zip written byte by byte, for names zipfile will not write (empty, not UTF-8)."""
    body, directory = b"", b""
    for name, data in members:
        crc = zlib.crc32(data)
        directory += struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, flag_bits, 0, 0, 0x21, crc,
                                 len(data), len(data), len(name), 0, 0, 0, 0, 0, len(body)) + name
        body += struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, flag_bits, 0, 0, 0x21, crc, len(data), len(data),
                            len(name), 0) + name + data
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), len(body), 0)
    return body + directory + end


# --------------------------------------------------------------------------- legacy torch
TORCH_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C


def legacy_torch(obj_pickle: bytes, storage_keys: tuple[str, ...] = (), storage: bytes = b"",
                 sys_info: bytes | None = None) -> bytes:
    """torch.save(..., _use_new_zipfile_serialization=False): five stacked pickles, then raw storage."""
    magic = pickle(proto(2), long1(TORCH_MAGIC_NUMBER), stop())
    version = pickle(proto(2), binint2(1001), stop())
    if sys_info is None:
        sys_info = pickle(proto(2), push({"protocol_version": 1001, "little_endian": True,
                                          "type_sizes": {"short": 2, "int": 4, "long": 4}}, 2), stop())
    keys = pickle(proto(2), push(list(storage_keys), 2), stop())
    return magic + version + sys_info + obj_pickle + keys + storage


def torch_tar(obj_pickle: bytes) -> bytes:
    """torch's oldest format (still read by torch.load): a tar of sys_info, pickle, storages, tensors."""
    import tarfile

    members = {"sys_info": pickle(proto(2), push({"protocol_version": 1001, "little_endian": True}, 2), stop()),
               "pickle": obj_pickle,
               "storages": pickle(proto(2), binint1(0), stop()) + pickle(proto(2), empty_list(), stop()),
               "tensors": pickle(proto(2), binint1(0), stop())}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# --------------------------------------------------------------------------- numpy
def npy(descr: str, shape: tuple[int, ...], data: bytes, fortran: bool = False) -> bytes:
    header = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    raw = header.encode("latin-1")
    pad = 64 - (10 + len(raw) + 1) % 64
    raw += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + data


def npy_object(pickle_bytes: bytes, shape: tuple[int, ...] = (1,)) -> bytes:
    """An object-dtype .npy: the header, then the array written as one pickle."""
    return npy("|O", shape, pickle_bytes)


def npz(members: dict[str, bytes], compressed: bool = False) -> bytes:
    return zip_bytes({name if name.endswith(".npy") else f"{name}.npy": data for name, data in members.items()},
                     zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED)


# --------------------------------------------------------------------------- joblib compression
def compress(data: bytes, method: str) -> bytes:
    """The single-stream compressors joblib.dump(compress=(method, level)) writes."""
    if method == "zlib":
        return zlib.compress(data, 3)
    if method == "gzip":
        return gzip.compress(data, 3)
    if method == "bz2":
        return bz2.compress(data, 3)
    if method == "xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ)
    if method == "lzma":
        return lzma.compress(data, format=lzma.FORMAT_ALONE)
    raise ValueError(f"unknown compression method {method!r}")


JOBLIB_METHODS = ("zlib", "gzip", "bz2", "xz", "lzma")


def joblib_zfile(data: bytes) -> bytes:
    """joblib's pre-0.10 compressed format, still read by joblib.load: b"ZF" + hex length (19 wide) + zlib."""
    return b"ZF" + hex(len(data)).encode().ljust(19) + zlib.compress(data, 1)
