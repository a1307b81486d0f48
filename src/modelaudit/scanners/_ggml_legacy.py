"""Legacy GGML files (the formats before GGUF): header sanity and bounds only.

`ggml` (unversioned, any model family), `ggmf` and `ggjt` (llama.cpp, with a vocabulary
that is walked with bounds) and `ggla` (LoRA adapters). Tensors are not walked: their
block layouts changed between versions of these formats.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import BinaryIO

from ._gguf_format import Emit, Malformed, Reader

CODE = "MA-G007"
# magic as stored in the file -> (format, accepted versions; () when the format has no version)
_FORMATS = {"ggml": (), "ggmf": (1,), "ggjt": (1, 2, 3), "ggla": (1,)}
_LLAMA_HPARAMS = ("n_vocab", "n_embd", "n_mult", "n_head", "n_layer", "n_rot", "ftype")
# upper bounds no real model reaches; beyond them the numbers are noise or an attack on allocators
_CAPS = {"n_vocab": 4_000_000, "n_embd": 1_000_000, "n_mult": 1_000_000, "n_head": 65_536, "n_layer": 65_536,
         "n_rot": 1_000_000, "ftype": 1_000_000}
_MIN_ONE = ("n_vocab", "n_embd", "n_mult", "n_head", "n_layer")


def identify(magic: bytes) -> tuple[str, str] | None:
    """(format, struct byte order) for a legacy magic, whichever way round it was written."""
    if magic[::-1].decode("latin-1") in _FORMATS:
        return magic[::-1].decode("latin-1"), "<"
    if magic.decode("latin-1") in _FORMATS:
        return magic.decode("latin-1"), ">"
    return None


def check_legacy(fh: BinaryIO, size: int, emit: Emit, tick: Callable[[], None]) -> str:
    """Validate the header; returns a one-line summary. Raises Malformed when it cannot go on."""
    found = identify(fh.read(4))
    if found is None:
        raise Malformed(CODE, "not a GGML file")
    fmt, endian = found
    reader = Reader(fh, size, endian, wide=False)
    reader.pos = 4
    versions = _FORMATS[fmt]
    version = 0
    if versions:
        version = reader.u32(f"{fmt} version", CODE)
        if version not in versions:
            raise Malformed(CODE, f"{fmt} version {version} is not one readers know ({', '.join(map(str, versions))})",
                            version=version)
    if fmt == "ggla":
        rank, alpha = reader.u32("LoRA rank", CODE), reader.u32("LoRA alpha", CODE)
        if not 0 < rank <= 65_536:
            emit(CODE, f"ggla LoRA rank {rank} is implausible", {"rank": rank, "alpha": alpha})
        return f"ggla v{version}, rank {rank}"
    if fmt == "ggml":
        return _unversioned(reader, emit)
    hparams = _llama_hparams(reader, emit)
    _walk_vocab(reader, hparams["n_vocab"], tick)
    return f"{fmt} v{version}, {hparams['n_vocab']} tokens, {hparams['n_layer']} layers"


def _int32(reader: Reader, what: str) -> int:
    return struct.unpack(reader.endian + "i", reader.take(4, what, CODE))[0]


def _unversioned(reader: Reader, emit: Emit) -> str:
    """Hyper-parameters differ by model family; every family starts with at least six int32."""
    values = [_int32(reader, "ggml hyper-parameters") for _ in range(6)]
    if not 0 < values[0] <= _CAPS["n_vocab"]:
        emit(CODE, f"ggml vocabulary size {values[0]} is implausible", {"n_vocab": values[0]})
    if any(v < 0 for v in values[1:]):
        emit(CODE, f"ggml hyper-parameters contain negative values {values}", {"hparams": values})
    return f"ggml (unversioned), vocabulary {values[0]}"


def _llama_hparams(reader: Reader, emit: Emit) -> dict[str, int]:
    hparams = {name: _int32(reader, f"hyper-parameter {name}") for name in _LLAMA_HPARAMS}
    for name, value in hparams.items():
        low = 1 if name in _MIN_ONE else 0
        if not low <= value <= _CAPS[name]:
            emit(CODE, f"Hyper-parameter {name} = {value} is out of range ({low} to {_CAPS[name]})",
                 {"name": name, "value": value})
    if not 1 <= hparams["n_vocab"] <= _CAPS["n_vocab"]:
        raise Malformed(CODE, f"vocabulary size {hparams['n_vocab']} cannot be walked", n_vocab=hparams["n_vocab"])
    return hparams


def _walk_vocab(reader: Reader, n_vocab: int, tick: Callable[[], None]) -> None:
    if n_vocab * 8 > reader.left:  # each token: a length and a score at least
        raise Malformed(CODE, f"vocabulary of {n_vocab} tokens cannot fit in the {reader.left} remaining bytes",
                        n_vocab=n_vocab)
    for index in range(n_vocab):
        if index % 4096 == 4095:
            tick()
        length = reader.u32(f"length of token #{index}", CODE)
        if length > reader.left:
            raise Malformed(CODE, f"token #{index} claims {length} bytes but only {reader.left} remain",
                            index=index, length=length)
        reader.skip(length + 4, f"token #{index} and its score", CODE)
