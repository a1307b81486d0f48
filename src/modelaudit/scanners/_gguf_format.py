"""GGUF structure: a bounded, streaming parser of the header, key-values and tensor infos.

Every length and count is checked against the bytes left in the file before anything is
read or skipped, so a hostile header costs a few small reads. Only the values the scanner
inspects (chat templates, general.* text, general.alignment) are read into memory; every
other value is skipped by seeking. Tensor data is never read.

Problems are handed to an `emit(code, message, details)` callback; a problem that leaves
the rest of the header unreadable raises `Malformed`, which the caller reports.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..errors import BudgetExceeded

Emit = Callable[[str, str, dict[str, Any]], None]

DEFAULT_ALIGNMENT = 32
MAX_DIMS = 8
MAX_NESTING = 4  # arrays of arrays: llama.cpp reads none; the spec allows them
MAX_KEY = 65535  # the spec caps keys at 2^16 - 1 bytes
MAX_NAME = 65535
MAX_KEPT_STRING = 16 * 1024 * 1024  # chat templates and general.* text read into memory
MAX_KEPT_TOTAL = 64 * 1024 * 1024
MAX_KEPT_ARRAY = 1024  # strings kept from one array (template lists and tags are short)
MAX_KV = 1_000_000
MAX_TENSORS = 1_000_000
MAX_ITEMS = 50_000_000  # string / array elements walked one by one, over the whole file
CHUNK = 1024 * 1024
INT64_MAX = 2**63 - 1
BUDGET = "MA-G008"

# ggml tensor types: id -> (name, elements per block, bytes per block)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}
# ids that once existed and that current readers refuse
REMOVED_TYPES = {4: "Q4_2", 5: "Q4_3", 31: "Q4_0_4_4", 32: "Q4_0_4_8", 33: "Q4_0_8_8",
                 36: "IQ4_NL_4_4", 37: "IQ4_NL_4_8", 38: "IQ4_NL_8_8"}

# metadata value types: id -> struct code of fixed-size scalars
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9
TYPE_NAMES = {0: "uint8", 1: "int8", 2: "uint16", 3: "int16", 4: "uint32", 5: "int32", 6: "float32", 7: "bool",
              8: "string", 9: "array", 10: "uint64", 11: "int64", 12: "float64"}


class Malformed(Exception):
    """The header cannot be read past this point."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


@dataclass(slots=True)  # a hostile header lists up to MAX_TENSORS of them
class TensorInfo:
    name: str
    dims: tuple[int, ...]
    ggml_type: int
    offset: int
    nbytes: int | None = None  # None when the type or shape makes the size unknowable


@dataclass
class GgufHeader:
    version: int = 0
    endian: str = "<"
    tensor_count: int = 0
    kv_count: int = 0
    strings: dict[str, list[str]] = field(default_factory=dict)  # kept text values, by key
    alignment: int = DEFAULT_ALIGNMENT
    tensors: list[TensorInfo] = field(default_factory=list)
    header_end: int = 0
    complete: bool = False


def keeps_text(key: str) -> bool:
    """Keys whose string values the scanner inspects."""
    return key == "tokenizer.chat_template" or key.startswith(("tokenizer.chat_template.", "general."))


class Reader:
    """Bounded little/big-endian reads from a file object; never past `size`."""

    def __init__(self, fh: BinaryIO, size: int, endian: str = "<", wide: bool = True) -> None:
        self.fh, self.size, self.pos, self.endian = fh, size, 0, endian
        self.len_code = "Q" if wide else "I"  # GGUF v1 used 32-bit lengths and counts
        self.len_size = 8 if wide else 4

    @property
    def left(self) -> int:
        return self.size - self.pos

    def take(self, n: int, what: str, code: str = "MA-G002") -> bytes:
        if n > self.left:
            raise Malformed(code, f"{what} needs {n} bytes at offset {self.pos} but only {self.left} remain",
                            offset=self.pos, needed=n)
        data = self.fh.read(n)
        if len(data) != n:
            raise Malformed(code, f"{what}: file ended early at offset {self.pos}", offset=self.pos)
        self.pos += n
        return data

    def skip(self, n: int, what: str, code: str = "MA-G002") -> None:
        if n > self.left:
            raise Malformed(code, f"{what} needs {n} bytes at offset {self.pos} but only {self.left} remain",
                            offset=self.pos, needed=n)
        self.fh.seek(n, 1)
        self.pos += n

    def unpack(self, fmt: str, what: str, code: str = "MA-G002") -> Any:
        raw = self.take(struct.calcsize(fmt), what, code)
        return struct.unpack(self.endian + fmt, raw)[0]

    def u32(self, what: str, code: str = "MA-G002") -> int:
        return self.unpack("I", what, code)

    def u64(self, what: str, code: str = "MA-G002") -> int:
        return self.unpack("Q", what, code)

    def length(self, what: str, code: str = "MA-G002") -> int:
        return self.unpack(self.len_code, what, code)

    def skip_strings(self, count: int, what: str, tick: Callable[[], None]) -> None:
        """Skip `count` length-prefixed strings, reading ahead in chunks (token lists hold 100k+)."""
        unpack, width = struct.Struct(self.endian + self.len_code).unpack_from, self.len_size
        base, at, buf = self.pos, 0, b""
        for index in range(count):
            if at + width > len(buf):
                tick()
                base, at = base + at, 0
                self.fh.seek(base)
                buf = self.fh.read(min(CHUNK, self.size - base))
                if len(buf) < width:
                    raise Malformed("MA-G002", f"{what}: element #{index} is cut off at offset {base}", offset=base)
            n = unpack(buf, at)[0]
            at += width
            if n > self.size - base - at:
                raise Malformed("MA-G002", f"{what}: element #{index} claims {n} bytes but only "
                                f"{self.size - base - at} remain in the file", index=index, length=n)
            at += n
        self.pos = base + at
        self.fh.seek(self.pos)


class GgufParser:
    """Walks one GGUF header. `parse()` fills and returns a GgufHeader."""

    def __init__(self, fh: BinaryIO, size: int, emit: Emit, tick: Callable[[], None]) -> None:
        self.fh, self.size, self.emit, self.tick = fh, size, emit, tick
        self.head = GgufHeader()
        self.items = 0
        self.kept = 0
        self.reader = Reader(fh, size)

    def parse(self) -> GgufHeader:
        self._header()
        self._key_values()
        self._tensor_infos()
        self.head.header_end = self.reader.pos
        self.head.complete = True
        return self.head

    # --- fixed header ---------------------------------------------------------------
    def _header(self) -> None:
        raw = self.reader.take(8, "GGUF magic and version", "MA-G001")
        if raw[:4] != b"GGUF":
            raise Malformed("MA-G001", f"bad GGUF magic {raw[:4]!r}", magic=raw[:4].hex())
        little, big = struct.unpack("<I", raw[4:])[0], struct.unpack(">I", raw[4:])[0]
        if not 1 <= little <= 3 and 1 <= big <= 3:
            self.reader.endian = self.head.endian = ">"
        version = little if self.head.endian == "<" else big
        if not 1 <= version <= 3:
            raise Malformed("MA-G001", f"unsupported GGUF version {little} (readers know 1 to 3)", version=little)
        self.head.version = version
        if version == 1:
            self.reader.len_code, self.reader.len_size = "I", 4
        n_tensors = self.reader.length("tensor count", "MA-G001")
        n_kv = self.reader.length("key-value count", "MA-G001")
        self.head.tensor_count, self.head.kv_count = n_tensors, n_kv
        self._bound_counts(n_tensors, n_kv)

    def _bound_counts(self, n_tensors: int, n_kv: int) -> None:
        width = self.reader.len_size
        # smallest possible records: empty name + n_dims + type + offset; empty key + type + one-byte value
        tensor_min, kv_min = width + 4 + 4 + 8, width + 4 + 1
        if n_tensors * tensor_min > self.reader.left or n_kv * kv_min > self.reader.left:
            raise Malformed("MA-G001", f"header claims {n_tensors} tensors and {n_kv} key-values, more than the "
                            f"{self.size} byte file can hold", tensor_count=n_tensors, kv_count=n_kv)
        if n_tensors > MAX_TENSORS:
            raise BudgetExceeded(f"GGUF header lists {n_tensors} tensors (budget {MAX_TENSORS})", BUDGET)
        if n_kv > MAX_KV:
            raise BudgetExceeded(f"GGUF header lists {n_kv} key-values (budget {MAX_KV})", BUDGET)

    # --- key-values -----------------------------------------------------------------
    def _key_values(self) -> None:
        seen: set[str] = set()
        for index in range(self.head.kv_count):
            if index % 1024 == 0:
                self.tick()
            key = self._key(index)
            vtype = self.reader.u32(f"type of {key!r}")
            if key in seen:
                self.emit("MA-G002", f"Key {key!r} appears more than once; readers disagree on which value wins",
                          {"key": key})
            seen.add(key)
            keep = keeps_text(key)
            if key == "general.alignment":
                self._alignment(vtype)
            else:
                self._value(key, vtype, keep, 0)

    def _key(self, index: int) -> str:
        n = self.reader.length(f"length of key #{index}")
        if n > self.reader.left:
            raise Malformed("MA-G002", f"Key #{index} claims {n} bytes but only {self.reader.left} remain in the "
                            "file", index=index, length=n)
        if n > MAX_KEY:
            self.reader.skip(n, f"key #{index}")
            self.emit("MA-G002", f"Key #{index} is {n} bytes long (the format allows {MAX_KEY})",
                      {"index": index, "length": n})
            return f"<key #{index}>"
        return self._utf8(self.reader.take(n, f"key #{index}"), "MA-G002", "Key", "key")

    def _utf8(self, raw: bytes, code: str, what: str, detail: str) -> str:
        """`raw` as text; bytes that are not UTF-8 are reported (as `what`) and shown replaced."""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            self.emit(code, f"{what} {text!r} is not valid UTF-8", {detail: text})
            return text

    def _alignment(self, vtype: int) -> None:
        if vtype != 4:
            self._value("general.alignment", vtype, False, 0)
            self.emit("MA-G002", f"general.alignment has type {TYPE_NAMES.get(vtype, vtype)}, not uint32: "
                      "llama.cpp aborts on it", {"key": "general.alignment", "type": vtype})
            return
        value = self.reader.u32("general.alignment")
        if value == 0 or value & (value - 1):
            self.emit("MA-G002", f"general.alignment {value} is not a power of two", {"alignment": value})
            return
        self.head.alignment = value

    def _value(self, key: str, vtype: int, keep: bool, depth: int) -> None:
        if vtype in SCALARS:
            self.reader.skip(struct.calcsize(SCALARS[vtype]), f"value of {key!r}")
        elif vtype == STRING:
            self._string(key, keep)
        elif vtype == ARRAY:
            self._array(key, keep, depth + 1)
        else:
            raise Malformed("MA-G002", f"Key {key!r} has unknown value type {vtype}", key=key, type=vtype)

    def _string(self, key: str, keep: bool) -> None:
        n = self.reader.length(f"string length of {key!r}")
        if n > self.reader.left:
            raise Malformed("MA-G002", f"String value of {key!r} claims {n} bytes but only {self.reader.left} "
                            "remain in the file", key=key, length=n)
        if not keep:
            self.reader.skip(n, f"string value of {key!r}")
            return
        if n > MAX_KEPT_STRING or self.kept + n > MAX_KEPT_TOTAL:
            self.reader.skip(n, f"string value of {key!r}")
            self.emit(BUDGET, f"String value of {key!r} ({n} bytes) is past the budget for inspected text "
                      f"({MAX_KEPT_STRING} bytes per value, {MAX_KEPT_TOTAL} per file)", {"key": key, "length": n})
            return
        self.kept += n
        raw = self.reader.take(n, f"string value of {key!r}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            self.emit("MA-G002", f"String value of {key!r} is not valid UTF-8", {"key": key})
        self.head.strings.setdefault(key, []).append(text)

    def _array(self, key: str, keep: bool, depth: int) -> None:
        if depth > MAX_NESTING:
            raise Malformed("MA-G002", f"Arrays in {key!r} nest deeper than {MAX_NESTING} levels", key=key)
        etype = self.reader.u32(f"element type of {key!r}")
        count = self.reader.length(f"element count of {key!r}")
        if etype in SCALARS:
            width = struct.calcsize(SCALARS[etype])
            if count * width > self.reader.left:
                raise Malformed("MA-G002", f"Array {key!r} claims {count} x {width}-byte elements "
                                f"({count * width} bytes) but only {self.reader.left} remain", key=key, count=count)
            self.reader.skip(count * width, f"array {key!r}")
            return
        if etype not in (STRING, ARRAY):
            raise Malformed("MA-G002", f"Array {key!r} has unknown element type {etype}", key=key, type=etype)
        smallest = self.reader.len_size if etype == STRING else 4 + self.reader.len_size
        if count * smallest > self.reader.left:
            raise Malformed("MA-G002", f"Array {key!r} claims {count} {TYPE_NAMES[etype]} elements, more than the "
                            f"{self.reader.left} remaining bytes can hold", key=key, count=count)
        self._count_items(count)
        if keep and count > MAX_KEPT_ARRAY:
            self.emit(BUDGET, f"Array {key!r} holds {count} strings; only arrays of up to {MAX_KEPT_ARRAY} are "
                      "inspected", {"key": key, "count": count})
            keep = False
        if etype == STRING and not keep:
            self.reader.skip_strings(count, f"Array {key!r}", self.tick)
            return
        for index in range(count):
            if index % 4096 == 4095:
                self.tick()
            if etype == STRING:
                self._string(key, keep)
            else:
                self._array(key, keep, depth + 1)

    def _count_items(self, count: int) -> None:
        self.items += count
        if self.items > MAX_ITEMS:
            raise BudgetExceeded(f"GGUF metadata holds more than {MAX_ITEMS} array elements", BUDGET)

    # --- tensor infos ---------------------------------------------------------------
    def _tensor_infos(self) -> None:
        for index in range(self.head.tensor_count):
            if index % 1024 == 0:
                self.tick()
            self.head.tensors.append(self._tensor(index))

    def _tensor(self, index: int) -> TensorInfo:
        name = self._tensor_name(index)
        n_dims = self.reader.u32(f"n_dims of tensor {name!r}", "MA-G003")
        if n_dims > MAX_DIMS:
            raise Malformed("MA-G003", f"Tensor {name!r} claims {n_dims} dimensions (at most {MAX_DIMS})",
                            tensor=name, n_dims=n_dims)
        dims = tuple(self.reader.length(f"dimensions of tensor {name!r}", "MA-G003") for _ in range(n_dims))
        ggml_type = self.reader.u32(f"type of tensor {name!r}", "MA-G003")
        offset = self.reader.u64(f"offset of tensor {name!r}", "MA-G003")
        info = TensorInfo(name, dims, ggml_type, offset)
        info.nbytes = self._tensor_size(info)
        return info

    def _tensor_name(self, index: int) -> str:
        n = self.reader.length(f"name length of tensor #{index}", "MA-G003")
        if n > MAX_NAME:
            raise Malformed("MA-G003", f"Tensor #{index} name is {n} bytes long (at most {MAX_NAME})",
                            index=index, length=n)
        return self._utf8(self.reader.take(n, f"name of tensor #{index}", "MA-G003"), "MA-G003", "Tensor name",
                          "tensor")

    def _tensor_size(self, info: TensorInfo) -> int | None:
        where = {"tensor": info.name}
        if info.ggml_type not in GGML_TYPES:
            old = REMOVED_TYPES.get(info.ggml_type)
            what = f"removed ggml type {old} ({info.ggml_type})" if old else f"unknown ggml type {info.ggml_type}"
            self.emit("MA-G003", f"Tensor {info.name!r} has {what}", {**where, "type": info.ggml_type})
            return None
        type_name, block, block_bytes = GGML_TYPES[info.ggml_type]
        count = 1
        for dim in info.dims:
            if dim > INT64_MAX:
                self.emit("MA-G003", f"Tensor {info.name!r} has dimension {dim}, which is negative as int64",
                          {**where, "dims": list(info.dims)})
                return None
            count *= dim
        if count > INT64_MAX:
            self.emit("MA-G003", f"Tensor {info.name!r} dimensions {list(info.dims)} overflow the element count",
                      {**where, "dims": list(info.dims)})
            return None
        row = info.dims[0] if info.dims else 1
        if row % block:
            self.emit("MA-G003", f"Tensor {info.name!r} rows of {row} elements are not a multiple of the "
                      f"{type_name} block size {block}", {**where, "type": type_name, "row": row})
            return None
        return count // block * block_bytes
