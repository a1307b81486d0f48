"""Seeded mutation of honest and hostile files, and the checks every mutant must pass.

A scanner may find anything in a mutant, but it must handle it: no internal error (MA-S005, an
exception the scanner did not turn into a finding), no timeout (MA-S003, a parser that loops), and
nothing reported clean that could not be read (an incomplete scan is exit 2, never 0). Mutants are
scanned in this process, so a crash in native code fails the test run loudly.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

from modelaudit.core import scan_model_directory_or_file

#: values that break length and count fields
_EDGE_INTS = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 1 << 40)
#: the per-file timeout for mutants: generous for a small file, short enough that a loop shows
FUZZ_TIMEOUT = 20.0


def mutate(rng: random.Random, data: bytes, donors: list[bytes] | None = None) -> tuple[str, bytes]:
    """One mutant of `data` and a short description of what was done."""
    if not data:
        return "grow", bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    buf = bytearray(data)
    kind = rng.choice(("flip", "byte", "int", "truncate", "cut", "repeat", "insert", "splice"))
    at = rng.randrange(len(buf))
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == "byte":
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    elif kind == "int":
        width = rng.choice((1, 2, 4, 8))
        value = rng.choice(_EDGE_INTS) & ((1 << (8 * width)) - 1)
        packed = value.to_bytes(width, rng.choice(("little", "big")))
        buf[at:at + width] = packed
    elif kind == "truncate":
        del buf[at:]
    elif kind == "cut":
        del buf[at:at + rng.randint(1, max(1, len(buf) // 8))]
    elif kind == "repeat":
        chunk = buf[at:at + rng.randint(1, 256)]
        buf[at:at] = chunk * rng.randint(1, 16)
    elif kind == "insert":
        buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    else:  # splice: a piece of another file of the corpus
        donor = rng.choice(donors) if donors else data
        start = rng.randrange(len(donor)) if donor else 0
        buf[at:at + rng.randint(0, 64)] = donor[start:start + rng.randint(1, 512)]
    return f"{kind}@{at}", bytes(buf)


def mutants(seed: int, data: bytes, count: int, donors: list[bytes] | None = None) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    for _ in range(count):
        yield mutate(rng, data, donors)


def scan_mutant(tmp_path: Path, name: str, data: bytes, **config: object) -> dict:
    """Write `data` as `name` in a fresh folder and scan it in this process."""
    folder = tmp_path / f"m{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    path = folder / name
    path.write_bytes(data)
    config.setdefault("timeout", FUZZ_TIMEOUT)
    return scan_model_directory_or_file(str(path), **config)


def problems(result: dict) -> list[str]:
    """What is wrong with how a mutant was handled (empty: handled well)."""
    out = []
    for issue in result["issues"]:
        if issue.get("rule_code") == "MA-S005":
            out.append(f"internal error: {issue['message']}")
        elif issue.get("rule_code") == "MA-S003":
            out.append(f"timeout: {issue['message']}")
    exit_code = result.get("summary", {}).get("exit_code")
    if result.get("has_errors") and exit_code == 0:
        out.append("scan had errors but exit code 0")
    return out


def smash_u32(data: bytes, offset: int, value: int) -> bytes:
    """`data` with a little-endian u32 written at `offset` (for hand-aimed mutants)."""
    return data[:offset] + struct.pack("<I", value & 0xFFFFFFFF) + data[offset + 4:]
