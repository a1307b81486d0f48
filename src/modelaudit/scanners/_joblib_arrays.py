"""Layout of the raw array data joblib writes inline after a NumpyArrayWrapper.

joblib pickles each numpy array as a NumpyArrayWrapper whose BUILD state describes the
array; the array bytes (or, for object arrays, another pickle) follow immediately in
the file, outside the pickle opcodes. The walker must step over them exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ._pickle_values import OPAQUE, Call, Container, Global

WRAPPERS = frozenset({"joblib.numpy_pickle.NumpyArrayWrapper"})
_DESCR = re.compile(r"^[<>|=]?([a-zA-Z])(\d*)")
_SIZES = {"b": 1, "?": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8, "Q": 8,
          "e": 2, "f": 4, "d": 8, "g": 16, "F": 8, "D": 16, "G": 32}


@dataclass(frozen=True)
class ArrayLayout:
    has_object: bool
    nbytes: int
    aligned: bool


def is_wrapper(target: Any) -> bool:
    return isinstance(target, Call) and isinstance(target.func, Global) and target.func.verdict.target in WRAPPERS


def layout(state: Any) -> ArrayLayout | None:
    """None when the state does not say how much data follows (the stream is then malformed)."""
    if not isinstance(state, Container) or state.kind != "dict":
        return None
    fields = dict(zip(state.items[0::2], state.items[1::2]))
    shape, dtype = fields.get("shape"), fields.get("dtype")
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        return None
    aligned = "numpy_array_alignment_bytes" in fields and fields["numpy_array_alignment_bytes"] is not None
    if _has_object(dtype):
        return ArrayLayout(True, 0, aligned)
    itemsize = _itemsize(dtype)
    if itemsize is None:
        return None
    count = 1
    for dim in shape:
        count *= dim
    return ArrayLayout(False, count * itemsize, aligned)


def _dtype_args(dtype: Any) -> tuple[str | None, Any]:
    if isinstance(dtype, Call) and isinstance(dtype.args, tuple) and dtype.args and isinstance(dtype.args[0], str):
        return dtype.args[0], getattr(dtype, "state", None)
    return None, None


def _has_object(dtype: Any, depth: int = 0) -> bool:
    name, state = _dtype_args(dtype)
    if name is None or depth > 8:
        return False
    if name.lstrip("<>|=").startswith("O"):
        return True
    fields = state[4] if isinstance(state, tuple) and len(state) > 4 else None
    if isinstance(fields, Container):
        for value in fields.items[1::2]:
            if isinstance(value, tuple) and value and _has_object(value[0], depth + 1):
                return True
    return False


def _itemsize(dtype: Any) -> int | None:
    name, state = _dtype_args(dtype)
    if name is None:
        return None
    if isinstance(state, tuple) and len(state) > 5 and isinstance(state[5], int) and state[5] > 0:
        return state[5]  # elsize recorded by numpy for flexible and structured types
    match = _DESCR.match(name)
    if not match:
        return None
    kind, digits = match.group(1), match.group(2)
    if digits:
        size = int(digits)
        return size * 4 if kind == "U" else size
    return _SIZES.get(kind)


__all__ = ["ArrayLayout", "WRAPPERS", "is_wrapper", "layout", "OPAQUE"]
