"""Pickle opcode table and a cheap structural probe (used by format detection)."""

from __future__ import annotations

# Argument kinds: fixed byte count, or one of the variable-length readers below.
LINE = -1  # text argument up to b"\n"
LINE2 = -2  # two text lines (GLOBAL, INST)
LEN1 = -3  # 1-byte length then data
LEN4 = -4  # 4-byte little-endian length then data
LEN8 = -5  # 8-byte little-endian length then data

# opcode byte -> (name, argument kind)
OPCODES: dict[int, tuple[str, int]] = {
    ord(k): v
    for k, v in {
        "(": ("MARK", 0), ".": ("STOP", 0), "0": ("POP", 0), "1": ("POP_MARK", 0), "2": ("DUP", 0),
        "F": ("FLOAT", LINE), "I": ("INT", LINE), "J": ("BININT", 4), "K": ("BININT1", 1),
        "L": ("LONG", LINE), "M": ("BININT2", 2), "N": ("NONE", 0), "P": ("PERSID", LINE),
        "Q": ("BINPERSID", 0), "R": ("REDUCE", 0), "S": ("STRING", LINE), "T": ("BINSTRING", LEN4),
        "U": ("SHORT_BINSTRING", LEN1), "V": ("UNICODE", LINE), "X": ("BINUNICODE", LEN4),
        "a": ("APPEND", 0), "b": ("BUILD", 0), "c": ("GLOBAL", LINE2), "d": ("DICT", 0),
        "}": ("EMPTY_DICT", 0), "e": ("APPENDS", 0), "g": ("GET", LINE), "h": ("BINGET", 1),
        "i": ("INST", LINE2), "j": ("LONG_BINGET", 4), "l": ("LIST", 0), "]": ("EMPTY_LIST", 0),
        "o": ("OBJ", 0), "p": ("PUT", LINE), "q": ("BINPUT", 1), "r": ("LONG_BINPUT", 4),
        "s": ("SETITEM", 0), "t": ("TUPLE", 0), ")": ("EMPTY_TUPLE", 0), "u": ("SETITEMS", 0),
        "G": ("BINFLOAT", 8),
        "\x80": ("PROTO", 1), "\x81": ("NEWOBJ", 0), "\x82": ("EXT1", 1), "\x83": ("EXT2", 2),
        "\x84": ("EXT4", 4), "\x85": ("TUPLE1", 0), "\x86": ("TUPLE2", 0), "\x87": ("TUPLE3", 0),
        "\x88": ("NEWTRUE", 0), "\x89": ("NEWFALSE", 0), "\x8a": ("LONG1", LEN1), "\x8b": ("LONG4", LEN4),
        "B": ("BINBYTES", LEN4), "C": ("SHORT_BINBYTES", LEN1), "\x8c": ("SHORT_BINUNICODE", LEN1),
        "\x8d": ("BINUNICODE8", LEN8), "\x8e": ("BINBYTES8", LEN8), "\x8f": ("EMPTY_SET", 0),
        "\x90": ("ADDITEMS", 0), "\x91": ("FROZENSET", 0), "\x92": ("NEWOBJ_EX", 0),
        "\x93": ("STACK_GLOBAL", 0), "\x94": ("MEMOIZE", 0), "\x95": ("FRAME", 8),
        "\x96": ("BYTEARRAY8", LEN8), "\x97": ("NEXT_BUFFER", 0), "\x98": ("READONLY_BUFFER", 0),
    }.items()
}

# Opcodes a pickle without a PROTO header can start with: the first value pushed, or a MARK.
# The unpickler does not require PROTO, so binary opcodes of later protocols count too.
_TEXT_STARTS = frozenset(b"(cilIJKLMFGNSTUVX]})\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x95\x96BC")
_MAX_PROTOCOL = 5


def probe(head: bytes, max_ops: int = 4096) -> bool:
    """True when `head` starts with a structurally valid run of pickle opcodes.

    Only opcode bytes and argument framing are checked. A run must reach STOP, the end of
    the sample, or at least 8 opcodes before anything invalid.
    """
    if not head:
        return False
    first = head[0]
    if first == 0x80:
        return len(head) >= 2 and head[1] <= _MAX_PROTOCOL + 2 and _walk_ok(head, max_ops, 1)
    if first not in _TEXT_STARTS:
        return False
    return _walk_ok(head, max_ops, 8)


def _walk_ok(head: bytes, max_ops: int, min_ops: int) -> bool:
    pos, n, end = 0, 0, len(head)
    saw_global_or_stop = named_global = called = False  # a GLOBAL with identifier lines, then a call
    while pos < end and n < max_ops:
        spec = OPCODES.get(head[pos])
        if spec is None:  # a payload followed by a deliberately broken tail is still a pickle
            return (n >= 8 and saw_global_or_stop) or (named_global and called)
        name, kind = spec
        pos += 1
        n += 1
        if kind >= 0:
            pos += kind
        elif kind in (LINE, LINE2):
            for _ in range(1 if kind == LINE else 2):
                nl = head.find(b"\n", pos, pos + 4096)
                if nl < 0:
                    return pos + 4096 > end and n >= min_ops  # the sample ended inside the line
                if not _plausible_line(name, head[pos:nl]):
                    return False
                pos = nl + 1
        else:
            width = {LEN1: 1, LEN4: 4, LEN8: 8}[kind]
            if pos + width > end:
                return n >= min_ops
            pos += width + int.from_bytes(head[pos:pos + width], "little")
        if name in ("STOP", "GLOBAL", "STACK_GLOBAL", "REDUCE"):
            saw_global_or_stop = True
        named_global = named_global or name in ("GLOBAL", "INST", "STACK_GLOBAL")
        called = called or name in ("REDUCE", "OBJ", "INST", "NEWOBJ", "NEWOBJ_EX", "BUILD")
        if name == "STOP":
            return n >= 2
    # the sample ended (or an argument runs past it), or enough opcodes parsed
    return n >= min_ops or (named_global and n >= 2)


def _plausible_line(name: str, arg: bytes) -> bool:
    text = arg.strip()
    if name in ("INT", "LONG", "GET", "PUT"):
        body = text[:-1] if name == "LONG" and text.endswith(b"L") else text
        return body.lstrip(b"-+").isdigit() or (name == "INT" and text in (b"00", b"01"))
    if name == "FLOAT":
        try:
            float(text)
        except ValueError:
            return False
        return True
    if name in ("GLOBAL", "INST"):
        return bool(text) and all(part.isidentifier() for part in text.decode("latin-1").split("."))
    if name == "STRING":
        return len(text) >= 2 and text[:1] in (b"'", b'"') and text[-1:] == text[:1]
    return True
