"""Input generators for the benchmarks (written into bench/out/, which git ignores).

Run as a script to build one input in a separate process, so the memory used to build
a big pickle never inflates the process that measures:

    python bench/_gen.py KIND SIZE_BYTES PATH

Pickle kinds (all `pickle.dumps(obj, protocol=4)`; the real pickler writes them):

* ``mixed``   - opcode-dense: one big list whose items cycle through six shapes, one each
                per six items:
                  0. small int ``i % 1000``          -> BININT1 / BININT2
                  1. float ``i * 0.5``               -> BINFLOAT
                  2. short unique text ``"s<i>"``     -> SHORT_BINUNICODE + MEMOIZE
                  3. tuple ``(i, "a", 1.5)``          -> BININT*, BINGET (shared "a"), BINFLOAT, TUPLE3, MEMOIZE
                  4. dict ``{"k": i, "v": [1, 2]}``   -> EMPTY_DICT, MEMOIZE, MARK, BINGET, BININT*, EMPTY_LIST,
                                                       MEMOIZE, MARK, BININT1 x2, APPENDS, SETITEMS
                  5. list ``[i, None, True]``         -> EMPTY_LIST, MEMOIZE, MARK, BININT*, NONE, NEWTRUE, APPENDS
                About 2.4 bytes per opcode; the outer list is written as MARK ... APPENDS batches of 1000.
                Opcode share: MEMOIZE 17%, MARK 10%, BINGET 10%, BININT 8%, BININT1 8%, APPENDS 7%,
                EMPTY_LIST 7%, BINFLOAT 7%, BININT2 5%, SHORT_BINUNICODE/TUPLE3/EMPTY_DICT/SETITEMS/NONE/NEWTRUE 3.4% each.
* ``floats``  - a list of floats ``i * 0.37`` (runs of BINFLOAT: the walker's numeric-run fast path).
* ``strings`` - a list of short unique strings ``"w<i>"`` (SHORT_BINUNICODE + MEMOIZE per item).
* ``ndarray`` - a dict of 4 MiB float32 numpy arrays (few opcodes, big BINBYTES payloads), the
                shape of a typical pickled model state.

Torch checkpoints: ``torch_zip`` (torch.save, zip format) and ``torch_legacy``
(``_use_new_zipfile_serialization=False``), a state_dict of float32 tensors, ``tensors``
of them, summing to SIZE bytes.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

PICKLE_KINDS = ("mixed", "floats", "strings", "ndarray")
TORCH_KINDS = ("torch_zip", "torch_legacy")


def mixed_items(n: int, start: int = 0) -> list:
    out: list = []
    append = out.append
    for i in range(start, start + n):
        k = i % 6
        if k == 0:
            append(i % 1000)
        elif k == 1:
            append(i * 0.5)
        elif k == 2:
            append("s%d" % i)
        elif k == 3:
            append((i, "a", 1.5))
        elif k == 4:
            append({"k": i, "v": [1, 2]})
        else:
            append([i, None, True])
    return out


def _items(kind: str, n: int, start: int = 0) -> list:
    if kind == "mixed":
        return mixed_items(n, start)
    if kind == "floats":
        return [i * 0.37 for i in range(start, start + n)]
    if kind == "strings":
        return ["w%d" % i for i in range(start, start + n)]
    raise ValueError(kind)


def pickle_bytes(kind: str, size: int) -> bytes:
    """A protocol-4 pickle of `kind` of roughly `size` bytes."""
    if kind == "ndarray":
        import numpy as np

        per = 4 * 1024 * 1024
        count = max(1, round(size / per))
        rng = np.random.default_rng(0)
        state = {f"layer{i}.weight": rng.standard_normal(per // 4, dtype=np.float32) for i in range(count)}
        return pickle.dumps(state, protocol=4)
    sample_n = 60_000
    per_item = len(pickle.dumps(_items(kind, sample_n), protocol=4)) / sample_n
    n = max(1, int(size / per_item))
    if n > 2 * sample_n:  # item sizes grow with the index: re-estimate from the middle of the range
        mid = len(pickle.dumps(_items(kind, sample_n, n // 2), protocol=4)) / sample_n
        n = max(1, int(size / mid))
    return pickle.dumps(_items(kind, n), protocol=4)


def write_pickle(kind: str, size: int, path: str | os.PathLike[str]) -> int:
    data = pickle_bytes(kind, size)
    Path(path).write_bytes(data)
    return len(data)


def write_torch(kind: str, size: int, path: str | os.PathLike[str], tensors: int = 16) -> int:
    import torch

    per = max(1, size // 4 // tensors)
    torch.manual_seed(0)
    state = {f"layers.{i}.weight": torch.empty(per, dtype=torch.float32).uniform_(-1, 1) for i in range(tensors)}
    torch.save(state, str(path), _use_new_zipfile_serialization=(kind == "torch_zip"))
    return os.path.getsize(path)


def build(kind: str, size: int, path: str | os.PathLike[str], tensors: int = 16) -> int:
    """Build one input in a child process (keeps the caller's memory lean); returns its size."""
    import subprocess

    marker = Path(str(path) + ".params")
    params = f"{kind} {size} {tensors}"
    if Path(path).exists() and marker.exists() and marker.read_text() == params:
        return os.path.getsize(path)  # reuse an input built by an earlier run
    subprocess.run([sys.executable, __file__, kind, str(size), str(path), str(tensors)], check=True)
    marker.write_text(params)
    return os.path.getsize(path)


def cleanup(path: str | os.PathLike[str]) -> None:
    for p in (Path(path), Path(str(path) + ".params")):
        p.unlink(missing_ok=True)


def main(argv: list[str]) -> None:
    kind, size, path = argv[0], int(argv[1]), argv[2]
    tensors = int(argv[3]) if len(argv) > 3 else 16
    if kind in PICKLE_KINDS:
        write_pickle(kind, size, path)
    elif kind in TORCH_KINDS:
        write_torch(kind, size, path, tensors)
    else:
        raise SystemExit(f"unknown kind {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
