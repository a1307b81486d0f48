"""torch.export archives (.pt2: torch.export.save, mlflow.pytorch.save_model): the serialized program.

A PT2 archive is a zip whose `<root>/archive_format` holds b"pt2". The program is JSON
(`models/<name>.json`); weights and constants are raw bytes or torch.save pickles under `data/`
(those are scanned as members like any other). Loading the program runs three kinds of strings
from the JSON, so they are checked here:

- node targets: `torch.ops.<namespace>.<op>` resolves an operator (a namespace PyTorch does not
  define needs a native library: MA-H008); `torch.<attr>`, `_operator.<attr>` and `math.<attr>`
  resolve any attribute of those modules by getattr, called when the program runs, so only the
  symbolic-shape helpers the exporter writes are accepted;
- symbolic expressions (`expr_str`) go through sympy.sympify, which evaluates Python;
- `guards_code` lines are compiled with exec by ExportedProgram.module().
Expressions must use only the calls, names and operators the exporter writes (MA-T002 otherwise).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

from .torchscript import KNOWN_NAMESPACES

MAX_PROGRAM_JSON = 64 * 1024 * 1024
_OP_TARGET = re.compile(r"torch\.ops\.([A-Za-z_]\w*)\.[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?")
# python-level callables the exporter serializes by name (_SYM_OPS and friends)
_PLAIN_TARGETS = frozenset({
    *(f"_operator.{n}" for n in ("getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos",
                                 "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "not_", "xor", "abs", "invert",
                                 "lshift", "rshift")),
    *(f"math.{n}" for n in ("sqrt", "floor", "ceil", "trunc", "log", "exp", "pow", "fabs")),
    *(f"torch.{n}" for n in ("sym_int", "sym_float", "sym_max", "sym_min", "sym_not", "sym_ite", "sym_sqrt",
                             "sym_sum", "sym_fresh_size", "_sym_sqrt", "_assert", "_check", "_check_is_size")),
})
# sympy classes and torch.utils._sympy functions a serialized expression calls (srepr form)
_SYMPY_CALLS = frozenset({
    "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Mod", "Max", "Min", "Abs", "Eq", "Ne", "Lt",
    "Le", "Gt", "Ge", "Equality", "Unequality", "StrictLessThan", "LessThan", "StrictGreaterThan", "GreaterThan",
    "And", "Or", "Not", "Piecewise", "ExprCondPair", "floor", "ceiling", "sqrt", "Sum", "FloorDiv",
    "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv", "LShift", "RShift",
    "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator",
    "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity", "BitwiseFn_bitwise_and",
    "BitwiseFn_bitwise_or", "BitwiseFn_bitwise_xor",
})
# not S: S("...") is sympify itself, which would evaluate the string it is given
_SYMPY_NAMES = frozenset({"oo", "zoo", "nan", "true", "false", "True", "False", "None", "Infinity",
                          "NegativeInfinity", "NaN", "Zero", "One", "NegativeOne", "Half", "pi", "E", "L", "math"})
# strings the exporter writes: symbol names (Symbol('s0')) and numbers (Float('1.5', precision=53))
# (`\d+(?:\.\d*)?`, not `\d+\.?\d*`: two adjacent digit runs backtrack quadratically on a long number)
_PLAIN_STRING = re.compile(r"[A-Za-z_]\w*|[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_GUARD_METHODS = frozenset({"size", "stride", "storage_offset", "dim", "numel"})
_EXPR_NODES = (ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Constant, ast.Load,
               ast.Subscript, ast.keyword, ast.Tuple, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)


def is_archive(zf: Any, names: list[str]) -> bool:
    """torch.export's own test: `<root>/archive_format` holds b"pt2"."""
    for name in names:
        if name == "archive_format" or (name.count("/") == 1 and name.endswith("/archive_format")):
            try:
                return zf.read(name)[:16].strip() == b"pt2"
            except Exception:  # noqa: BLE001 - a broken member is reported by the zip scan itself
                return False
    return False


def raw_members(zf: Any, names: list[str]) -> set[str]:
    """Weight and constant members the payload configs declare raw tensor bytes (use_pickle false) and
    never pickled: torch.export.load reads them with as_strided, so sniffing them as pickles is noise."""
    raw: set[str] = set()
    pickled: set[str] = set()
    for name in names:
        parts = name.split("/")
        if len(parts) < 3 or parts[-3] != "data" or parts[-2] not in ("weights", "constants") \
                or not parts[-1].endswith("_config.json"):
            continue
        try:
            config = json.loads(zf.read(name)[:MAX_PROGRAM_JSON]).get("config")
        except Exception:  # noqa: BLE001 - an unreadable config leaves every member to the content scan
            continue
        for entry in (config.values() if isinstance(config, dict) else ()):
            path = entry.get("path_name") if isinstance(entry, dict) else None
            if isinstance(path, str):
                member = "/".join([*parts[:-1], path])
                (pickled if entry.get("use_pickle") is not False else raw).add(member)
    return raw - pickled


def is_program(name: str) -> bool:
    parts = name.split("/")
    return len(parts) >= 2 and parts[-2] == "models" and parts[-1].endswith(".json")


def check_program(text: bytes) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(rule code, message, details) for each problem of one serialized program."""
    try:
        program = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nesting past Python's limit
        yield "MA-T001", f"torch.export program is not valid JSON ({exc})", {}
        return
    custom: set[str] = set()
    too_deep = False
    for kind, value in _strings(program):
        if kind == "too deep":
            if not too_deep:
                yield "MA-T001", (f"torch.export program nests values over {MAX_DEPTH} levels deep, far beyond what "
                                  "the exporter writes; the strings below that depth were not checked"), {}
            too_deep = True
            continue
        if kind == "target":
            problem = _target_problem(value, custom)
        else:
            problem = _expression_problem(value, guard=kind == "guard")
        if problem is not None:
            yield problem[0], problem[1], {"field": kind, "value": value[:300]}


MAX_DEPTH = 200


def _strings(node: Any, depth: int = 0) -> Iterator[tuple[str, str]]:
    """Node targets, symbolic expressions and guard lines anywhere in the program (subgraphs included)."""
    if depth > MAX_DEPTH:
        if isinstance(node, (dict, list)) and node:
            yield "too deep", ""  # a target hidden below the walk's depth must not pass silently
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "target" and isinstance(value, str):
                yield "target", value
            elif key == "expr_str" and isinstance(value, str):
                yield "expression", value
            elif key == "guards_code" and isinstance(value, list):
                yield from (("guard", v) for v in value if isinstance(v, str))
            else:
                yield from _strings(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value, depth + 1)


def _target_problem(target: str, custom: set[str]) -> tuple[str, str] | None:
    match = _OP_TARGET.fullmatch(target)
    if match:
        namespace = match.group(1)
        if namespace in KNOWN_NAMESPACES or namespace in custom:
            return None
        custom.add(namespace)
        return "MA-H008", (f"torch.export program calls {target} from the custom namespace {namespace!r}, which needs "
                           "a native library registering it")
    if target.startswith("#"):
        return "MA-H008", f"torch.export program calls the extension operator {target[:120]!r}, registered outside PyTorch"
    if target in _PLAIN_TARGETS or not target.startswith(("torch", "_operator", "math")):
        return None  # names the loader does not resolve stay strings, and fail when run
    return "MA-T002", (f"torch.export program calls {target}, which the loader resolves by getattr on the module; "
                       "the exporter only writes operators and symbolic-shape helpers")


def _expression_problem(text: str, guard: bool) -> tuple[str, str] | None:
    what = "guard line" if guard else "symbolic expression"
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "MA-T002", f"torch.export {what} {text[:120]!r} is not an expression the exporter writes"
    keys = {id(n.slice) for n in ast.walk(tree) if isinstance(n, ast.Subscript)}  # guards index L['x']
    for node in ast.walk(tree):
        reason = _node_problem(node, guard)
        if reason is None and isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in keys and not _PLAIN_STRING.fullmatch(node.value):
            # sympy functions (Max, Abs, FloorDiv, Piecewise ...) sympify string arguments: Python code again
            reason = f"passes the string {node.value[:60]!r}, which sympy would evaluate as code"
        if reason:
            return "MA-T002", (f"torch.export {what} {text[:120]!r} {reason}; loading evaluates it "
                               f"({'exec in ExportedProgram.module()' if guard else 'sympy.sympify'})")
    return None


def _node_problem(node: ast.AST, guard: bool) -> str | None:
    if isinstance(node, _EXPR_NODES):
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool, type(None))):
            return "holds a constant of an unexpected type"
        return None
    if isinstance(node, ast.Name):
        name = node.id
        if name in _SYMPY_CALLS or name in _SYMPY_NAMES or re.fullmatch(r"[a-z]{1,3}\d+|OpaqueUnaryFn_\w+", name):
            return None if "__" not in name else f"uses the name {name}"
        return f"uses the name {name}"
    if isinstance(node, ast.Attribute):
        if guard and node.attr in _GUARD_METHODS:
            return None
        if isinstance(node.value, ast.Name) and node.value.id == "math" and not node.attr.startswith("_"):
            return None
        return f"reads the attribute .{node.attr}"
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) or (isinstance(func, ast.Attribute) and guard):
            return None  # the name or method is checked when the walk reaches it
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "math":
            return None
        return "calls a computed callable"
    return f"uses {type(node).__name__} syntax"
