"""Constant folding over a Jinja AST: the strings an expression can evaluate to.

Used to see through names spelled in pieces ('__cla' ~ 'ss__', ['__','class','__']|join,
'%sclass%s'|format('__','__'), '__ssalc__'|reverse, '_' * 2 …). Only literal values are
combined, with caps on the number of choices and the length of strings, and only with
operations on str/int/tuple; format strings that would read attributes are never applied.
Unknown inputs yield UNKNOWN, so a result is a set of possible values, some known.
"""

from __future__ import annotations

import re
import string
from itertools import product
from typing import Any

UNKNOWN = object()
_UNKNOWN_ONLY = frozenset({UNKNOWN})
MAX_CHOICES = 32
MAX_LEN = 4096
MAX_ITEMS = 64
MAX_DEPTH = 64
MAX_INT = 2**64
MAX_FOLDED = 4 * 1024 * 1024  # characters of folded values kept over one template (honest ones fold a few KiB)

STR_FILTERS = frozenset({"join", "format", "replace", "reverse", "lower", "upper", "title", "capitalize", "trim",
                         "string", "first", "last", "list"})
STR_METHODS = frozenset({"format", "join", "replace", "upper", "lower", "strip", "lstrip", "rstrip", "title",
                         "capitalize", "swapcase"})
_BIG_NUMBER = re.compile(r"\d{3,}|\*")
_ERRORS = (ValueError, TypeError, IndexError, KeyError, OverflowError, ZeroDivisionError, AttributeError)


def _kind(node: Any) -> str:
    return type(node).__name__


def children(node: Any, node_type: type) -> list[Any]:
    """node.iter_child_nodes() as a list: the `node_type` values among its fields, in field order (read
    directly from the class's field names, several times faster than Jinja's generator over iter_fields)."""
    out = []
    for name in node.fields:
        item = getattr(node, name, None)
        if isinstance(item, list):
            out.extend(n for n in item if isinstance(n, node_type))
        elif isinstance(item, node_type):
            out.append(item)
    return out


class ConstEvaluator:
    """Possible values of expressions in one template (flow-insensitive, memoised)."""

    def __init__(self, nodes: list[Any], node_type: type) -> None:
        self.node_type = node_type  # jinja2.nodes.Node (jinja2 is imported only when a template is read)
        self.assigned: dict[str, list[Any]] = {}
        self.memo: dict[int, frozenset] = {}
        self.active: set[int] = set()
        self.names: dict[str, frozenset] = {}
        self.active_names: set[str] = set()
        self.folded = 0
        self.exhausted = False  # MAX_FOLDED was reached: later expressions were not folded
        for node in nodes:
            self._collect(node)

    # --- public -----------------------------------------------------------------
    def strings(self, node: Any) -> frozenset[str]:
        """The known string values `node` may take (empty when none is known)."""
        return frozenset(v for v in self.values(node) if isinstance(v, str))

    def literal_pieces(self, node: Any) -> list[str]:
        """Known strings of the largest sub-expressions that fold, left to right."""
        pieces: list[str] = []
        stack = [node]
        while stack and len(pieces) < MAX_ITEMS:
            current = stack.pop()
            known = sorted(self.strings(current))
            if known:
                pieces.extend(known)
            else:
                stack.extend(reversed(children(current, self.node_type)))
        return pieces

    @staticmethod
    def is_operation(node: Any) -> bool:
        kind = _kind(node)
        if kind in ("Add", "Concat", "Mul", "Mod"):
            return True
        if kind == "Filter":
            return node.name in STR_FILTERS
        if kind == "Call":
            return _kind(node.node) == "Getattr" and node.node.attr in STR_METHODS
        return kind == "Getitem" and _kind(node.arg) == "Slice"

    def values(self, node: Any, depth: int = 0) -> frozenset:
        key = id(node)
        if key in self.memo:
            return self.memo[key]
        if key in self.active or depth > MAX_DEPTH or self.exhausted:
            return _UNKNOWN_ONLY
        self.active.add(key)
        try:
            result = self._compute(node, depth + 1)
        finally:
            self.active.discard(key)
        if len(result) > MAX_CHOICES:
            result = _UNKNOWN_ONLY
        self.folded += sum(len(v) for v in result if isinstance(v, (str, tuple)))
        if self.folded > MAX_FOLDED:  # thousands of long folded strings: stop before memory runs out
            self.exhausted = True
            result = _UNKNOWN_ONLY
        self.memo[key] = result
        return result

    # --- bindings -------------------------------------------------------------------
    def _collect(self, node: Any) -> None:
        kind = _kind(node)
        if kind == "Assign":
            self._bind(node.target, node.node)
        elif kind == "For":
            items = node.iter.items if _kind(node.iter) in ("List", "Tuple") else [None]
            for item in items:
                self._bind(node.target, item)
        elif kind == "With":
            for target, value in zip(node.targets, node.values, strict=False):
                self._bind(target, value)
        elif kind in ("Macro", "CallBlock"):
            for arg in node.args:
                self._bind(arg, None)
        elif kind == "AssignBlock":
            self._bind(node.target, None)

    def _bind(self, target: Any, expr: Any) -> None:
        kind = _kind(target)
        if kind == "Name":
            self.assigned.setdefault(target.name, []).append(expr)
            if expr is not None and _kind(expr) == "Call" and _kind(expr.node) == "Name" \
                    and expr.node.name == "namespace":
                for kw in expr.kwargs:
                    self.assigned.setdefault(f"{target.name}.{kw.key}", []).append(kw.value)
        elif kind == "NSRef":
            self.assigned.setdefault(f"{target.name}.{target.attr}", []).append(expr)
        elif kind == "Tuple":
            for item in target.items:
                self._bind(item, None)

    def _lookup(self, key: str, depth: int) -> frozenset:
        """Union over every assignment of a variable, computed once per variable."""
        if key in self.names:
            return self.names[key]
        if key in self.active_names:
            return _UNKNOWN_ONLY
        self.active_names.add(key)
        out: set = set()
        try:
            for expr in self.assigned.get(key, [None]):
                out |= {UNKNOWN} if expr is None else self.values(expr, depth)
                if len(out) > MAX_CHOICES:
                    out = {UNKNOWN}
                    break
        finally:
            self.active_names.discard(key)
        self.names[key] = frozenset(out)
        return self.names[key]

    # --- folding --------------------------------------------------------------------
    def _compute(self, node: Any, depth: int) -> frozenset:
        kind = _kind(node)
        handler = getattr(self, "_v_" + kind, None)
        if handler is None:
            return _UNKNOWN_ONLY
        return handler(node, depth)

    def _v_Const(self, node: Any, depth: int) -> frozenset:  # noqa: N802 - dispatch on node class names
        return frozenset({_literal(node.value)})

    def _v_Name(self, node: Any, depth: int) -> frozenset:  # noqa: N802
        return self._lookup(node.name, depth)

    def _v_Getattr(self, node: Any, depth: int) -> frozenset:  # noqa: N802
        if _kind(node.node) == "Name" and f"{node.node.name}.{node.attr}" in self.assigned:
            return self._lookup(f"{node.node.name}.{node.attr}", depth)
        return _UNKNOWN_ONLY

    def _v_List(self, node: Any, depth: int) -> frozenset:  # noqa: N802
        if len(node.items) > MAX_ITEMS:
            return _UNKNOWN_ONLY
        choices = [self.values(item, depth) for item in node.items]
        return _combine(choices, lambda *items: tuple(items))

    _v_Tuple = _v_List  # noqa: N815

    def _v_Concat(self, node: Any, depth: int) -> frozenset:  # noqa: N802
        choices = [self.values(item, depth) for item in node.nodes]
        return _combine(choices, lambda *parts: _short("".join(str(p) for p in parts)))

    def _v_Add(self, node: Any, depth: int) -> frozenset:  # noqa: N802
        return _combine([self.values(node.left, depth), self.values(node.right, depth)], _add)

    def _v_Mul(self, node: Any, depth: int) -> frozenset:  # noqa: N802
        return _combine([self.values(node.left, depth), self.values(node.right, depth)], _mul)

    def _v_Mod(self, node: Any, depth: int) -> frozenset:  # noqa: N802
        return _combine([self.values(node.left, depth), self.values(node.right, depth)], _percent)

    def _v_Neg(self, node: Any, depth: int) -> frozenset:  # noqa: N802
        return _combine([self.values(node.node, depth)], lambda v: -_number(v))

    def _v_CondExpr(self, node: Any, depth: int) -> frozenset:  # noqa: N802
        other = self.values(node.expr2, depth) if node.expr2 is not None else _UNKNOWN_ONLY
        return self.values(node.expr1, depth) | other

    def _v_Getitem(self, node: Any, depth: int) -> frozenset:  # noqa: N802
        base = self.values(node.node, depth)
        if _kind(node.arg) == "Slice":
            parts = [node.arg.start, node.arg.stop, node.arg.step]
            bounds = [frozenset({None}) if p is None else self.values(p, depth) for p in parts]
            return _combine([base, *bounds], lambda b, s, e, st: _sequence(b)[slice(s, e, st)])
        return _combine([base, self.values(node.arg, depth)], lambda b, i: _sequence(b)[_number(i)])

    def _v_Filter(self, node: Any, depth: int) -> frozenset:  # noqa: N802
        if node.name not in STR_FILTERS or node.node is None or node.kwargs or node.dyn_args or node.dyn_kwargs:
            return _UNKNOWN_ONLY
        choices = [self.values(node.node, depth)] + [self.values(a, depth) for a in node.args]
        return _combine(choices, lambda value, *args: _apply(node.name, value, args))

    def _v_Call(self, node: Any, depth: int) -> frozenset:  # noqa: N802
        callee = node.node
        if _kind(callee) != "Getattr" or callee.attr not in STR_METHODS or node.kwargs or node.dyn_args \
                or node.dyn_kwargs:
            return _UNKNOWN_ONLY
        choices = [self.values(callee.node, depth)] + [self.values(a, depth) for a in node.args]
        return _combine(choices, lambda value, *args: _method(callee.attr, value, args))


def _combine(choices: list[frozenset], op: Any) -> frozenset:
    total = 1
    for c in choices:
        total *= len(c)
    if total > MAX_CHOICES or (total and any(len(c) == 1 and UNKNOWN in c for c in choices)):
        return _UNKNOWN_ONLY  # (the second: every combination holds UNKNOWN)
    out = set()
    for combo in product(*choices):
        if any(v is UNKNOWN for v in combo):
            out.add(UNKNOWN)
            continue
        try:
            out.add(_literal(op(*combo)))
        except _ERRORS:
            out.add(UNKNOWN)
    return frozenset(out)


def _literal(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_LEN else UNKNOWN
    if isinstance(value, (bool, int)):
        return value if abs(value) <= MAX_INT else UNKNOWN
    if isinstance(value, float) or value is None:
        return value
    if isinstance(value, tuple) and len(value) <= MAX_ITEMS:
        return value
    return UNKNOWN


def _short(text: str) -> str:
    if len(text) > MAX_LEN:
        raise ValueError("too long")
    return text


def _number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an integer")
    return value


def _sequence(value: Any) -> str | tuple:
    if not isinstance(value, (str, tuple)):
        raise TypeError("not a sequence")
    return value


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, str) and isinstance(right, str):
        return _short(left + right)
    return _number(left) + _number(right)


def _mul(left: Any, right: Any) -> Any:
    if isinstance(right, str):
        left, right = right, left
    if isinstance(left, str):
        count = _number(right)
        if len(left) * max(count, 0) > MAX_LEN:
            raise ValueError("too long")
        return left * count
    return _number(left) * _number(right)


def _percent(fmt: Any, args: Any) -> str:
    if not isinstance(fmt, str) or _BIG_NUMBER.search(fmt):
        raise ValueError("not a foldable format")
    if not isinstance(args, (tuple, str, int, float)):
        raise TypeError("unsupported argument")
    return _short(fmt % args)


def _brace_format(fmt: Any, args: tuple) -> str:
    if not isinstance(fmt, str) or _BIG_NUMBER.search(fmt):
        raise ValueError("not a foldable format")
    for _, field, spec, _ in string.Formatter().parse(fmt):
        if field and ("." in field or "[" in field) or spec and "{" in spec:
            raise ValueError("format reads attributes")  # never traverse, even on literals
    if not all(isinstance(a, (str, int, float)) for a in args):
        raise TypeError("unsupported argument")
    return _short(fmt.format(*args))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _apply(name: str, value: Any, args: tuple) -> Any:  # noqa: PLR0911 - one line per filter
    if name == "join":
        sep = _text(args[0]) if args else ""
        return _short(sep.join(str(v) for v in _sequence(value)))
    if name == "format":
        return _percent(value, args)
    if name == "replace":
        return _short(_text(value).replace(_text(args[0]), _text(args[1]), *[_number(a) for a in args[2:3]]))
    if name == "reverse":
        return _sequence(value)[::-1]
    if name in ("first", "last"):
        seq = _sequence(value)
        return seq[0] if name == "first" else seq[-1]
    if name == "list":
        return tuple(_sequence(value))
    if name == "string":
        return _short(str(value))
    simple = {"lower": str.lower, "upper": str.upper, "title": str.title, "capitalize": str.capitalize,
              "trim": str.strip}
    return simple[name](_text(value))


def _method(name: str, value: Any, args: tuple) -> Any:
    if name == "format":
        return _brace_format(value, args)
    if name == "join":
        return _short(_text(value).join(str(v) for v in _sequence(args[0])))
    if name == "replace":
        return _short(_text(value).replace(_text(args[0]), _text(args[1])))
    text_args = [_text(a) for a in args[:1]]
    return getattr(_text(value), name)(*text_args)
