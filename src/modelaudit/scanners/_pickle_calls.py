"""What the walker concludes from calls: arguments of dangerous calls, embedded
pickles handed to loaders, computed callees, discarded results and BUILD tricks."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._pickle_values import OPAQUE, Call, Container, Global, LazyBytes, Persistent, func_repr, short_repr
from .pickle_policy import Level, classify

if TYPE_CHECKING:
    from ._pickle_vm import Finding

# Callables that deserialize their first argument: the argument is scanned as a nested blob.
LOADERS = frozenset({
    "pickle.loads", "pickle.load", "pickle._loads", "pickle.Unpickler", "dill.loads", "dill._dill.loads",
    "cloudpickle.loads", "torch.load", "torch.serialization.load", "torch.storage._load_from_bytes",
    "numpy.load", "joblib.load", "pandas.read_pickle", "marshal.loads",
})
# Pure decoders the walker evaluates itself (bounded) so loaders see the decoded bytes.
_MAX_DECODE = 64 * 1024 * 1024
DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "base64.b64decode": lambda b: base64.b64decode(b),
    "base64.standard_b64decode": lambda b: base64.standard_b64decode(b),
    "base64.urlsafe_b64decode": lambda b: base64.urlsafe_b64decode(b),
    "base64.decodebytes": lambda b: base64.decodebytes(b),
    "base64.b32decode": lambda b: base64.b32decode(b),
    "base64.b16decode": lambda b: base64.b16decode(b, casefold=True),
    "base64.a85decode": lambda b: base64.a85decode(b),
    "base64.b85decode": lambda b: base64.b85decode(b),
    "binascii.a2b_base64": lambda b: binascii.a2b_base64(b),
    "binascii.unhexlify": lambda b: binascii.unhexlify(b),
    "binascii.a2b_hex": lambda b: binascii.a2b_hex(b),
    "builtins.bytes.fromhex": lambda b: bytes.fromhex(b.decode("ascii")),
    "codecs.encode": lambda b: b,  # protocol 2 spelling of bytes: codecs.encode(text, "latin1")
}
_IMPORTERS = frozenset({"importlib.import_module", "builtins.__import__", "importlib.__import__"})
_ATTR_GETTERS = frozenset({"builtins.getattr", "operator.attrgetter"})


class ModuleRef:
    """A module object obtained by calling an importer with a constant name."""

    def __init__(self, name: str) -> None:
        self.name = name


class CallAnalysis:
    def __init__(self, report: Callable[[Finding], None],
                 on_embedded: Callable[[bytes, int, str], None] | None) -> None:
        self._report = report
        self._on_embedded = on_embedded
        self._seen_calls: set[int] = set()

    def _finding(self, code: str, message: str, pos: int, **details: Any) -> None:
        from ._pickle_vm import Finding

        self._report(Finding(code, message, pos, {"position": pos, **details}))

    # ---------------------------------------------------------------- calls
    def record(self, call: Call, global_findings: dict[tuple[str, str], Finding]) -> None:
        func = call.func
        if isinstance(func, Call):
            self._finding("MA-P004", f"Call of a computed callable: {func_repr(func)} returns the object that "
                          f"{call.opcode} then calls", call.pos, opcode=call.opcode, callee=repr(func)[:300])
            func = func.value if isinstance(func.value, Global) else func
        if not isinstance(func, Global):
            return
        target = func.verdict.target
        if func.verdict.level is not Level.SAFE:
            finding = global_findings.get((target, func.verdict.rule_code))
            if finding is not None and "call_args" not in finding.details:
                finding.details["call_args"] = short_repr(call.args, 300)
                finding.details["call_position"] = call.pos
        first = _first_arg(call.args)
        if target in DECODERS:
            call.value = _decode(target, first)
        elif target in _IMPORTERS and isinstance(first, str):
            call.value = ModuleRef(first)
        elif target in _ATTR_GETTERS:
            call.value = self._attribute(call, first)
        if target in LOADERS:
            data = _as_bytes(first)
            if data is not None and self._on_embedded is not None:
                self._on_embedded(data, call.pos, target)

    def _attribute(self, call: Call, obj: Any) -> Global | None:
        """getattr(<module or global>, "name") names a new global: classify it too."""
        args = call.args if isinstance(call.args, tuple) else ()
        attr = args[1] if len(args) > 1 else None
        if not isinstance(attr, str):
            return None
        if isinstance(obj, ModuleRef):
            module, name = obj.name, attr
        elif isinstance(obj, Global):
            module, name = obj.module, f"{obj.name}.{attr}"
        elif isinstance(obj, Call) and isinstance(obj.value, (ModuleRef, Global)):
            return self._attribute(Call(call.func, (obj.value, attr), call.pos, call.opcode), obj.value)
        else:
            return None
        verdict = classify(module, name)
        if verdict.level is not Level.SAFE:
            self._finding(verdict.rule_code if verdict.level is Level.DANGEROUS else "MA-P002",
                          f"Suspicious attribute lookup resolves to {verdict.target}", call.pos,
                          opcode=call.opcode, module=module, function=name, family=verdict.family)
        return Global(module, name, verdict, call.pos, call.opcode)

    def discarded(self, values: list[Any], pos: int) -> None:
        for value in values:
            if isinstance(value, Call) and id(value) not in self._seen_calls:
                self._seen_calls.add(id(value))
                self._finding("MA-P005", f"Result of call to {func_repr(value.func)} is discarded: the call "
                              "exists only for its side effect", pos, opcode="POP", call=repr(value)[:300],
                              call_position=value.pos)

    def method_call(self, target: Any, opcode: str, items: list[Any], pos: int) -> None:
        if isinstance(target, Global):
            self._finding("MA-P011", f"{opcode} mutates the global {target.verdict.target} in the loading process",
                          pos, opcode=opcode, target=target.verdict.target)

    def build(self, target: Any, state: Any, pos: int) -> None:
        from ._pickle_vm import Malformed

        if isinstance(target, Global):
            self._finding("MA-P011", f"BUILD applies state to the global {target.verdict.target} itself",
                          pos, opcode="BUILD", target=target.verdict.target)
        elif not isinstance(target, (Call, Persistent, Container)) and target is not OPAQUE:
            raise Malformed(f"BUILD on an object of type {type(target).__name__}")
        for part in (state if isinstance(state, tuple) else (state,)):
            if isinstance(part, Container) and part.kind == "dict":
                keys = [k for k in part.items[0::2] if isinstance(k, str) and k.startswith("__") and k.endswith("__")]
                if keys:
                    self._finding("MA-P010", f"BUILD sets special attribute(s) {', '.join(sorted(set(keys)))}",
                                  pos, opcode="BUILD", attributes=sorted(set(keys)))


def _first_arg(args: Any) -> Any:
    if isinstance(args, tuple) and args:
        return args[0]
    return None


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, Call):
        value = value.value
    if isinstance(value, LazyBytes):
        return value.materialize()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("latin-1", "replace")
    return None


def _decode(target: str, arg: Any) -> bytes | None:
    data = _as_bytes(arg)
    if data is None or len(data) > _MAX_DECODE:
        return None
    try:
        return DECODERS[target](data)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
