"""Reference loops for the walker benchmark (not used by modelaudit itself).

`framing_only` is the floor of any per-opcode pure-Python design: it only steps from one
opcode to the next (no stack, no memo). `lean_walk` is a prototype of the suggested hot-loop
restructuring: the same stack / mark / memo bookkeeping as PickleWalker (underflow checks,
containers that keep 64 items and count the rest, memo budget, symbolic TUPLE/LIST/DICT) for
the opcodes that dominate data pickles, written with locals, an if-chain ordered by
frequency and no per-opcode method calls or byte copies. Any other opcode raises
NotImplementedError: the prototype measures the loop shape, it is not a scanner.
"""

from __future__ import annotations

import struct
from typing import Any

from modelaudit.pickle_ops import LEN1, LEN4, LEN8, LINE, OPCODES
from modelaudit.scanners._pickle_values import MAX_KEPT_ITEMS, Container

_WIDTH: list[int | None] = [None] * 256
for _code, (_name, _kind) in OPCODES.items():
    _WIDTH[_code] = _kind


def framing_only(buf: Any, start: int = 0, end: int | None = None) -> int:
    """Step over every opcode and its argument until STOP; return the opcode count."""
    width, find = _WIDTH, buf.find
    pos, end, n = start, len(buf) if end is None else end, 0
    while pos < end:
        op = buf[pos]
        w = width[op]
        pos += 1
        n += 1
        if w is None:
            raise ValueError(f"unknown opcode {op:#x}")
        if w >= 0:
            pos += w
        elif w == LEN1:
            pos += 1 + buf[pos]
        elif w == LEN4:
            pos += 4 + int.from_bytes(buf[pos:pos + 4], "little")
        elif w == LEN8:
            pos += 8 + int.from_bytes(buf[pos:pos + 8], "little")
        elif w == LINE:
            pos = find(b"\n", pos) + 1
        else:
            pos = find(b"\n", find(b"\n", pos) + 1) + 1
        if op == 0x2E:  # STOP
            break
    return n


class Underflow(Exception):
    pass


def _add(target: Any, items: list[Any]) -> None:
    if type(target) is not Container:
        raise NotImplementedError("method calls on non-containers")
    room = MAX_KEPT_ITEMS - len(target.items)
    if room > 0:
        target.items.extend(items[:room])
    target.count += len(items)


def lean_walk(buf: Any, start: int = 0, end: int | None = None, max_memo: int = 5_000_000) -> int:
    """Walk one pickle stream with the common data opcodes inlined; return the opcode count."""
    end = len(buf) if end is None else end
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    push, pop = stack.append, stack.pop
    floor = 0  # len(stack) may not drop below the innermost mark
    unpack_d = struct.Struct(">d").unpack_from
    unpack_i = struct.Struct("<i").unpack_from
    unpack_h = struct.Struct("<H").unpack_from
    pos, n = start, 0
    try:
        while True:
            op = buf[pos]
            pos += 1
            n += 1
            if op == 0x94:  # MEMOIZE
                if len(memo) >= max_memo:
                    raise MemoryError("memo budget")
                memo[len(memo)] = stack[-1]
            elif op == 0x28:  # MARK
                marks.append(floor)
                floor = len(stack)
            elif op == 0x68:  # BINGET
                push(memo[buf[pos]])
                pos += 1
            elif op == 0x4A:  # BININT
                push(unpack_i(buf, pos)[0])
                pos += 4
            elif op == 0x4B:  # BININT1
                push(buf[pos])
                pos += 1
            elif op == 0x65 or op == 0x75:  # APPENDS, SETITEMS
                items = stack[floor:]
                del stack[floor:]
                floor = marks.pop()
                if len(stack) <= floor:
                    raise Underflow
                _add(stack[-1], items)
            elif op == 0x5D:  # EMPTY_LIST
                push(Container("list"))
            elif op == 0x47:  # BINFLOAT
                push(unpack_d(buf, pos)[0])
                pos += 8
            elif op == 0x4D:  # BININT2
                push(unpack_h(buf, pos)[0])
                pos += 2
            elif op == 0x8C:  # SHORT_BINUNICODE
                length = buf[pos]
                pos += 1 + length
                if pos > end:
                    raise Underflow
                push(bytes(buf[pos - length:pos]).decode("utf-8", "surrogatepass"))
            elif op == 0x87:  # TUPLE3
                if len(stack) - 3 < floor:
                    raise Underflow
                item = tuple(stack[-3:])
                del stack[-3:]
                push(item)
            elif op == 0x7D:  # EMPTY_DICT
                push(Container("dict"))
            elif op == 0x4E:  # NONE
                push(None)
            elif op == 0x88:  # NEWTRUE
                push(True)
            elif op == 0x89:  # NEWFALSE
                push(False)
            elif op == 0x95:  # FRAME
                pos += 8
            elif op == 0x80:  # PROTO
                pos += 1
            elif op == 0x2E:  # STOP
                if len(stack) <= floor:
                    raise Underflow
                pop()
                return n
            else:
                raise NotImplementedError(f"opcode {op:#x} is outside the prototype")
    except IndexError:
        raise Underflow from None
