"""Argument-aware relaxations: the only library helpers whose calls are judged by their arguments.

Verdicts are per global (pickle_policy). A few helpers that honest writers use for plain data
are harmless or dangerous depending on what they are called with, so pickle_policy marks their
exact dotted paths ARGUMENT_CHECKED: naming one is quiet, and every call of one comes here.
`check(target, args)` either proves the call equivalent to something the allowlist already
accepts, or returns a Rejection that the walker reports as a critical MA-P001 naming the helper.
Anything not proven harmless is rejected.

Allowed pairs (nothing else):

- ``dill._dill._load_type(name)``: `name` is a constant string in DILL_DATA_TYPES. The call
  returns dill's ``_reverse_typemap[name]``, which for those names is the very object an
  allowlisted ``builtins`` global names (``_load_type('complex')`` is ``builtins.complex``).
- ``dill._dill._create_array(f, args, state[, npdict])``: `f` is an allowlisted global and `args`
  a literal tuple. dill runs ``a = f(*args); a.__setstate__(state); a.__dict__.update(npdict)``,
  which is what REDUCE and BUILD do, so the walker records that inner call and state itself and
  the usual checks (loaders, decoders, dunder state keys) apply to them.
- ``functools.partial(f, *args, **kwargs)``: `f` is an allowlisted global. Building the partial calls
  nothing; calling it later is calling `f`, which the allowlist already accepts with any arguments.
  Its BUILD state ``(f, args, kwargs, dict)`` replaces `f`, so the state's `f` must be allowlisted too
  (check_state).
- ``torch.ScriptObject()`` then BUILD ``(state, qualified_name)``: the object takes no arguments, and the
  state's class name is one of PyTorch's own TorchBind classes in TORCHBIND_CLASSES (quantized packed
  weights), whose C++ __setstate__ only unpacks tensors and numbers. Any other class comes from a
  native library loaded beforehand.
- ``builtins.getattr(owner, name)``: how Python pickles a method (``float.fromhex``, a bound method, the
  ``ZoneInfo._unpickle`` of every timezone-aware datetime). `owner` is an allowlisted global, or an
  instance of one, and `name` a plain identifier that is not a dunder (``__globals__``, ``__builtins__``
  and the like walk from any function to the interpreter). The call evaluates to the global
  ``owner.name``, which must itself be allowlisted (a dangerous one reports its own family). An
  unlisted method is rejected, not a warning: allowlisted classes also have methods that write files
  (``numpy.matrix.dump``, ``numpy.float64.tofile``) or map them (``UntypedStorage.from_file``), and an
  instance built by a factory (``_reconstruct(...)`` is an ndarray) is named after the factory.

A helper seen anywhere but as a callee (another call's argument, BUILD state, an appended item)
could be called out of the walker's sight, so it is reported critical too (helper_refs). One kept
only as plain data in the loaded object is never called at load time and is not reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._pickle_values import Call, Container, Global, Persistent, short_repr
from .pickle_policy import ARGUMENT_CHECKED, Level, classify

# dill._dill._reverse_typemap names of plain data types -> the allowlisted global that is the same object.
# Not here, on purpose: CodeType, FunctionType, LambdaType, ModuleType, CellType, MethodType, FrameType,
# BuiltinFunctionType, type, PartialType, map/filter/zip (call their argument), property, classmethod,
# file and io types, and data-only types with no allowlisted global (MappingProxyType, EllipsisType).
DILL_DATA_TYPES: dict[str, str] = {
    name: f"builtins.{name}" for name in ("complex", "list", "dict", "set", "frozenset", "tuple", "bytes",
                                          "bytearray", "int", "float", "str", "bool", "NoneType", "slice",
                                          "range", "object")
}

LOAD_TYPE = "dill._dill._load_type"
CREATE_ARRAY = "dill._dill._create_array"
PARTIAL = "functools.partial"
SCRIPT_OBJECT = "torch.ScriptObject"
GETATTR = "builtins.getattr"
TORCHBIND_CLASSES = frozenset(f"__torch__.torch.classes.{name}" for name in (
    "quantized.LinearPackedParamsBase", "quantized.Conv2dPackedParamsBase", "quantized.Conv3dPackedParamsBase",
    "quantized.EmbeddingPackedParamsBase", "rnn.CellParamsBase", "sparse.LinearPackedParamsBase",
    "xnnpack.LinearOpContext", "xnnpack.Conv2dOpContext", "xnnpack.TransposeConv2dOpContext"))


class ProvenGlobal(Global):
    """A global the walker computed itself from an allowed helper call (_load_type('list') is builtins.list)."""


@dataclass(frozen=True)
class Rejection:
    family: str
    reason: str  # completes "dill._dill._load_type(...) is not proven harmless: <reason>"


@dataclass(frozen=True)
class Relaxed:
    value: Any = None  # what the call evaluates to, when that is a global (for the computed-callable check)
    inner_call: tuple[Any, tuple, Any, Any] | None = None  # (f, args, state, npdict) the helper runs


def check(target: str, args: Any, pos: int, opcode: str) -> Relaxed | Rejection:
    """Judge one call of an ARGUMENT_CHECKED helper."""
    if target == LOAD_TYPE:
        return _load_type(args, pos, opcode)
    if target == CREATE_ARRAY:
        return _create_array(args)
    if target == PARTIAL:
        return _partial(args[0] if isinstance(args, tuple) and args else None, "it wraps")
    if target == GETATTR:
        return _getattr(args, pos, opcode)
    if target == SCRIPT_OBJECT:
        return Relaxed() if args == () else Rejection("native-code", "it takes no arguments; the object's class "
                                                      "is named by the state BUILD applies")
    return Rejection("nested-loader", "no argument rule covers this helper")


def _load_type(args: Any, pos: int, opcode: str) -> Relaxed | Rejection:
    if not (isinstance(args, tuple) and len(args) == 1):
        return Rejection("code-evaluation", "it takes exactly one constant type name")
    name = args[0]
    if not isinstance(name, str):
        return Rejection("code-evaluation", "the type name is computed at load time, so the type it "
                         "returns (code, function, module types among them) cannot be checked")
    equivalent = DILL_DATA_TYPES.get(name)
    if equivalent is None:
        return Rejection("code-evaluation", f"{name!r} is not a plain data type; dill's type table hands out "
                         "code, function, module, frame and other types that build runnable objects")
    module, _, attr = equivalent.rpartition(".")
    verdict = classify(module, attr)
    if verdict.level is not Level.SAFE:  # the table must only name allowlisted globals
        return Rejection("code-evaluation", f"{name!r} maps to {equivalent}, which is not allowlisted")
    return Relaxed(value=ProvenGlobal(module, attr, verdict, pos, opcode))


def _create_array(args: Any) -> Relaxed | Rejection:
    if not (isinstance(args, tuple) and len(args) in (3, 4)):
        return Rejection("call-composition", "it takes (f, args, state[, npdict]) and calls f(*args)")
    func, call_args, state = args[:3]
    npdict = args[3] if len(args) == 4 else None
    if not is_allowlisted(func):
        return Rejection("call-composition", f"it calls its first argument, {_describe(func)}, which is not an "
                         "allowlisted global")
    if not isinstance(call_args, tuple):
        return Rejection("call-composition", "the arguments it passes to f are not a literal tuple")
    if npdict is not None and not (isinstance(npdict, Container) and npdict.kind == "dict"):
        return Rejection("call-composition", "the attribute dict it applies is not a literal dict")
    return Relaxed(inner_call=(func, call_args, state, npdict))


def _partial(func: Any, verb: str) -> Relaxed | Rejection:
    if not is_allowlisted(func):
        return Rejection("call-composition", f"{verb} {_describe(func)}, which is not an allowlisted global, "
                         "and calling the partial calls it")
    return Relaxed()


def _getattr(args: Any, pos: int, opcode: str) -> Relaxed | Rejection:
    if not (isinstance(args, tuple) and len(args) == 2):
        return Rejection("code-evaluation", "it takes exactly (object, attribute name); anything else hides "
                         "what it returns")
    owner, attr = args
    if not (isinstance(attr, str) and attr.isidentifier()) or attr.startswith("__"):
        return Rejection("code-evaluation", f"the attribute {short_repr(attr, 80)} is not a plain method name; "
                         "dunder and computed names reach a function's globals, code and builtins")
    cls = owner.func if isinstance(owner, Call) else owner  # a bound method: an instance's class
    if isinstance(cls, Persistent) and isinstance(cls.pid, tuple) and len(cls.pid) > 1 and cls.pid[0] == "module":
        cls = cls.pid[1]  # legacy torch.save keeps module classes as ("module", cls, file, source) records
    if not is_allowlisted(cls):
        return Rejection("code-evaluation", f"it looks up {attr!r} on {_describe(cls)}, which is not an "
                         "allowlisted class")
    name = f"{cls.name}.{attr}"
    verdict = classify(cls.module, name)
    if verdict.level is Level.UNKNOWN:  # an unlisted method, or a factory's result whose real class is unseen
        return Rejection("code-evaluation", f"it resolves to {verdict.target}, which is not an allowlisted method "
                         "(methods of allowlisted classes write files, map memory or save models)")
    return Relaxed(value=ProvenGlobal(cls.module, name, verdict, pos, opcode))


def check_state(target: str, state: Any) -> Rejection | None:
    """Judge the BUILD state applied to the result of an argument-checked helper (None: harmless)."""
    if target == SCRIPT_OBJECT:
        name = state[1] if isinstance(state, tuple) and len(state) == 2 else None
        if name in TORCHBIND_CLASSES:
            return None
        return Rejection("native-code", f"the state names the TorchBind class {short_repr(name, 120)}, not one of "
                         "PyTorch's own; its __setstate__ is native code from a library loaded beforehand")
    if target != PARTIAL:
        return None
    func = state[0] if isinstance(state, tuple) and state else None
    outcome = _partial(func, "its state swaps in")
    return outcome if isinstance(outcome, Rejection) else None


def is_allowlisted(value: Any) -> bool:
    """A global the allowlist accepts on its own name (argument-checked helpers are not)."""
    return (isinstance(value, Global) and not isinstance(value, ProvenGlobal) and value.verdict.level is Level.SAFE
            and value.verdict.target not in ARGUMENT_CHECKED)


def _describe(value: Any) -> str:
    if isinstance(value, Global):
        return value.verdict.target
    return f"a {type(value).__name__} value computed at load time" if value is not None else "None"


def helper_refs(value: Any, budget: int = 256) -> list[Global]:
    """Argument-checked helpers found inside a value (tuples and kept container items, bounded).

    Such a helper passed as data to another callable could be called by it out of the walker's sight."""
    found: list[Global] = []
    todo = [value]
    while todo and budget > 0:
        item = todo.pop()
        budget -= 1
        kind = type(item)
        if kind is tuple:
            todo.extend(item[:budget])
        elif kind is Container:
            todo.extend(item.items[:budget])
        elif isinstance(item, Global) and item.verdict.target in ARGUMENT_CHECKED:
            found.append(item)
    return found


assert set(ARGUMENT_CHECKED) == {LOAD_TYPE, CREATE_ARRAY, PARTIAL, SCRIPT_OBJECT, GETATTR}, \
    "every argument-checked helper needs a rule here"
