"""What the walker concludes from calls: arguments of dangerous calls, embedded
pickles handed to loaders, computed callees, discarded results and BUILD tricks."""

from __future__ import annotations

import base64
import binascii
import bz2
import codecs
import lzma
import re
import zlib
from collections.abc import Callable
from typing import Any

from ._pickle_values import OPAQUE, Call, Container, Finding, Global, LazyBytes, Persistent, func_repr, short_repr
from . import _pickle_relaxations as relaxations
from ._pickle_relaxations import ProvenGlobal
from .pickle_policy import ARGUMENT_CHECKED, Level, classify, split_reference

# Callables that deserialize their first argument: the argument is scanned as a nested blob.
LOADERS = frozenset({
    "pickle.loads", "pickle.load", "pickle._loads", "pickle.Unpickler", "dill.loads", "dill._dill.loads",
    "cloudpickle.loads", "torch.load", "torch.serialization.load", "torch.storage._load_from_bytes",
    "numpy.load", "joblib.load", "pandas.read_pickle", "marshal.loads",
})
# Pure decoders the walker evaluates itself (bounded) so loaders see the decoded bytes.
# Each takes the bytes of the first argument and the full argument tuple.
_MAX_DECODE = 64 * 1024 * 1024
Decoder = Callable[[bytes, tuple], "bytes | None"]


def _inflate(data: bytes, make: Callable[[], Any]) -> bytes:
    out = make().decompress(data, _MAX_DECODE + 1)  # max_length keeps decompression bombs bounded
    if len(out) > _MAX_DECODE:
        raise ValueError("decoded data exceeds the budget")
    return out


_TEXT_CODECS = frozenset({"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1", "utf-8", "utf8", "ascii", "us-ascii",
                          "raw_unicode_escape", "unicode_escape"})
_BYTES_CODECS: dict[str, Callable[[bytes], bytes]] = {
    "hex": binascii.unhexlify, "hex_codec": binascii.unhexlify,
    "base64": base64.decodebytes, "base_64": base64.decodebytes, "base64_codec": base64.decodebytes,
    "zlib": lambda b: _inflate(b, zlib.decompressobj), "zip": lambda b: _inflate(b, zlib.decompressobj),
    "zlib_codec": lambda b: _inflate(b, zlib.decompressobj), "bz2": lambda b: _inflate(b, bz2.BZ2Decompressor),
    "bz2_codec": lambda b: _inflate(b, bz2.BZ2Decompressor), "uu": lambda b: codecs.decode(b, "uu"),
    "uu_codec": lambda b: codecs.decode(b, "uu"), "quopri": lambda b: codecs.decode(b, "quopri"),
    "quopri_codec": lambda b: codecs.decode(b, "quopri"), "quotedprintable": lambda b: codecs.decode(b, "quopri"),
}


def _codec_arg(args: tuple, index: int, default: str) -> str | None:
    value = args[index] if len(args) > index else default
    return value.lower().replace(" ", "") if isinstance(value, str) else None


def _codecs_decode(data: bytes, args: tuple) -> bytes | None:
    """codecs.decode(obj, encoding): bytes-to-bytes codecs decode; text codecs give text (kept as bytes)."""
    codec = _codec_arg(args, 1, "utf-8")
    if codec in _BYTES_CODECS:
        return _BYTES_CODECS[codec](data)
    if codec in ("rot13", "rot_13") and isinstance(args[0], str):
        return codecs.decode(args[0], "rot13").encode("latin-1", "replace")
    return data if codec in _TEXT_CODECS else None


def _text_encode(data: bytes, args: tuple) -> bytes | None:
    """codecs.encode(text, "latin1") / str.encode / bytes(text, enc): the text's own bytes."""
    codec = _codec_arg(args, 1, "utf-8")
    if codec in ("rot13", "rot_13") and isinstance(args[0], str):
        return codecs.encode(args[0], "rot13").encode("latin-1", "replace")
    if codec in _TEXT_CODECS and isinstance(args[0], str):
        return args[0].encode("latin-1" if codec not in ("utf-8", "utf8") else "utf-8", "replace")
    return data if codec in _TEXT_CODECS else None


DECODERS: dict[str, Decoder] = {
    "base64.b64decode": lambda b, a: base64.b64decode(b),
    "base64.standard_b64decode": lambda b, a: base64.standard_b64decode(b),
    "base64.urlsafe_b64decode": lambda b, a: base64.urlsafe_b64decode(b),
    "base64.decodebytes": lambda b, a: base64.decodebytes(b),
    "base64.decodestring": lambda b, a: base64.decodebytes(b),
    "base64.b32decode": lambda b, a: base64.b32decode(b),
    "base64.b16decode": lambda b, a: base64.b16decode(b, casefold=True),
    "base64.a85decode": lambda b, a: base64.a85decode(b),
    "base64.b85decode": lambda b, a: base64.b85decode(b),
    "binascii.a2b_base64": lambda b, a: binascii.a2b_base64(b),
    "binascii.unhexlify": lambda b, a: binascii.unhexlify(b),
    "binascii.a2b_hex": lambda b, a: binascii.a2b_hex(b),
    "builtins.bytes.fromhex": lambda b, a: bytes.fromhex(b.decode("ascii")),
    "builtins.bytearray.fromhex": lambda b, a: bytes.fromhex(b.decode("ascii")),
    "codecs.decode": _codecs_decode,
    "codecs.encode": _text_encode,  # protocol 2 spelling of bytes: codecs.encode(text, "latin1")
    "builtins.str.encode": _text_encode,
    "builtins.bytes": _text_encode,
    "builtins.bytearray": _text_encode,
    "zlib.decompress": lambda b, a: _inflate(b, zlib.decompressobj),
    "gzip.decompress": lambda b, a: _inflate(b, lambda: zlib.decompressobj(47)),
    "bz2.decompress": lambda b, a: _inflate(b, bz2.BZ2Decompressor),
    "lzma.decompress": lambda b, a: _inflate(b, lzma.LZMADecompressor),
    "io.BytesIO": lambda b, a: b,  # a file object over the data, handed to a loader
}
# Callables that turn a constant "module:attr" / "module.attr" string into the object it names.
_NAME_RESOLVERS = frozenset({"pkgutil.resolve_name", "pydoc.locate", "pydoc.resolve", "torch._utils._import_dotted_name"})
_IMPORTERS = frozenset({"importlib.import_module", "builtins.__import__", "importlib.__import__"})
_ATTR_GETTERS = frozenset({"builtins.getattr", "operator.attrgetter"})


# callables record() looks at beyond their verdict
_ANALYSED = frozenset(ARGUMENT_CHECKED | DECODERS.keys() | LOADERS | _IMPORTERS | _ATTR_GETTERS | _NAME_RESOLVERS)


class ModuleRef:
    """A module object obtained by calling an importer with a constant name."""

    def __init__(self, name: str) -> None:
        self.name = name


class CallAnalysis:
    def __init__(self, report: Callable[[Finding], None],
                 on_embedded: Callable[[bytes, int, str], None] | None) -> None:
        self._report = report
        self._on_embedded = on_embedded
        self._helper_findings: dict[tuple[str, str], Finding] = {}
        # Whether any value of this walk names an argument-checked helper: until one does, no
        # value can hold one, and the search in _helpers_as_data (once per call) is skipped.
        self._checked_named = False

    def note(self, glob: Global) -> Global:
        """Every Global the walk creates passes here."""
        target = glob.verdict.target
        if target in ARGUMENT_CHECKED:
            self._checked_named = True
        glob.inert = glob.verdict.level is Level.SAFE and target not in _ANALYSED
        return glob

    def inert_call(self, func: Any, args: Any) -> bool:
        """record() would conclude nothing about func(*args): a plain allowlisted callable, arguments in a
        tuple, and no argument-checked helper named yet (one could hide among the arguments)."""
        return type(func) is Global and func.inert and type(args) is tuple and not self._checked_named

    def _finding(self, code: str, message: str, pos: int, **details: Any) -> None:
        self._report(Finding(code, message, pos, {"position": pos, **details}))

    # ---------------------------------------------------------------- calls
    def record(self, call: Call, global_findings: dict[tuple[str, str], Finding]) -> None:
        func = call.func
        self._helpers_as_data(call.args, call.pos, "an argument of", func)
        if isinstance(func, Call):
            if not isinstance(func.value, ProvenGlobal):  # _load_type('complex')(...) is builtins.complex(...)
                self._finding("MA-P004", f"Call of a computed callable: {func_repr(func)} returns the object that "
                              f"{call.opcode} then calls", call.pos, opcode=call.opcode, callee=repr(func)[:300])
            func = func.value if isinstance(func.value, Global) else func
        if not isinstance(func, Global):
            return
        target = func.verdict.target
        if target in ARGUMENT_CHECKED:
            self._checked_helper(call, target, global_findings)
            return
        if func.verdict.level is not Level.SAFE:
            finding = global_findings.get((target, func.verdict.rule_code))
            if finding is not None and "call_args" not in finding.details:
                finding.details["call_args"] = short_repr(call.args, 300)
                finding.details["call_position"] = call.pos
        first = _first_arg(call.args)
        if target in DECODERS:
            call.value = _decode(target, first, call.args)
        elif target in _IMPORTERS and isinstance(first, str):
            call.value = ModuleRef(first)
        elif target in _ATTR_GETTERS:
            call.value = self._attribute(call, first)
        elif target in _NAME_RESOLVERS and isinstance(first, str):
            call.value = self._resolved_name(call, target, first)
        elif func.verdict.level is Level.UNKNOWN:
            self._dangerous_names_handed_to(call, target)
        if target in LOADERS:
            data = _as_bytes(first)
            if data is not None and self._on_embedded is not None:
                self._on_embedded(data, call.pos, target)
            elif data is None and isinstance(call.args, tuple) and call.args and func.verdict.level is Level.SAFE:
                # An allowlisted loader (torch.storage._load_from_bytes) fed bytes computed at load time:
                # the nested stream runs and cannot be checked.
                self._report(_finding_obj("MA-P013", f"{target} loads data computed at load time "
                                          f"({short_repr(first, 120)}); the nested pickle cannot be checked", call.pos,
                                          {"position": call.pos, "loader": target, "family": "nested-loader",
                                           "call_args": short_repr(call.args, 300)},
                                          f"{target} unpickles its argument; honest files pass it literal bytes, "
                                          "so a computed argument hides a nested pickle from the scan."))

    # ------------------------------------------------------ argument-checked helpers
    def _checked_helper(self, call: Call, target: str, global_findings: dict[tuple[str, str], Finding]) -> None:
        """A call of a helper whose verdict depends on its arguments (see _pickle_relaxations)."""
        outcome = relaxations.check(target, call.args, call.pos, call.opcode)
        if isinstance(outcome, relaxations.Rejection):
            self._helper_finding(target, f"{target}{short_repr(call.args, 160)} is not proven harmless: "
                                 f"{outcome.reason}", call.pos, outcome.family, opcode=call.opcode,
                                 call_args=short_repr(call.args, 300))
            if target in _ATTR_GETTERS:  # still name what it reaches: getattr(__import__('os'), 'system')
                call.value = self._attribute(call, _first_arg(call.args))
            return
        call.value = outcome.value
        if isinstance(outcome.value, Global):
            self.note(outcome.value)
            verdict = outcome.value.verdict
            if verdict.level is Level.DANGEROUS:  # getattr(numpy.ndarray, "tofile"): allowlisted class, bad method
                self._finding(verdict.rule_code,
                              f"Attribute lookup {target}{short_repr(call.args, 160)} resolves to {verdict.target}",
                              call.pos, opcode=call.opcode, module=outcome.value.module,
                              function=outcome.value.name, family=verdict.family)
        if outcome.inner_call is not None:  # the helper runs f(*args), then applies state like BUILD
            func, args, state, npdict = outcome.inner_call
            inner = Call(func, args, call.pos, call.opcode)
            self.record(inner, global_findings)
            for part in (state, npdict):
                if part is not None:
                    self.build(inner, part, call.pos)

    def _helpers_as_data(self, value: Any, pos: int, where: str, receiver: Any = None) -> None:
        """An argument-checked helper handed to something else could be called out of the walker's sight."""
        if not self._checked_named:
            return
        for ref in relaxations.helper_refs(value):
            target = ref.verdict.target
            place = where if receiver is None else f"{where} {func_repr(receiver)}"
            self._helper_finding(target, f"{target} is passed as data ({place}), where its arguments cannot be "
                                 "checked", pos, "call-composition", module=ref.module, function=ref.name)

    def _helper_finding(self, target: str, message: str, pos: int, family: str, **details: Any) -> None:
        """One finding per helper and message; past a few distinct ones, further calls are counted."""
        same = [f for (t, _), f in self._helper_findings.items() if t == target]
        existing = self._helper_findings.get((target, message)) or (same[0] if len(same) >= 8 else None)
        if existing is not None:
            existing.details["occurrences"] = existing.details.get("occurrences", 1) + 1
            return
        module, _, name = target.rpartition(".")
        finding = _finding_obj("MA-P001", message, pos,
                               {"position": pos, "module": module, "function": name, "family": family, **details},
                               f"{target} is allowed only with the arguments listed in _pickle_relaxations; with "
                               "any other it can hand out code or function types, or call an arbitrary callable.")
        self._helper_findings[(target, message)] = finding
        self._report(finding)

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
        elif isinstance(obj, Call) and isinstance(obj.func, Global):  # a method of an instance: Cls().attr
            module, name = obj.func.module, f"{obj.func.name}.{attr}"
        else:
            return None
        verdict = classify(module, name)
        if verdict.level is not Level.SAFE:
            self._finding(verdict.rule_code if verdict.level is Level.DANGEROUS else "MA-P002",
                          f"Suspicious attribute lookup resolves to {verdict.target}", call.pos,
                          opcode=call.opcode, module=module, function=name, family=verdict.family)
        return self.note(Global(module, name, verdict, call.pos, call.opcode))

    def _resolved_name(self, call: Call, via: str, text: str) -> Global | None:
        """pkgutil.resolve_name("os:system") names os.system without a GLOBAL opcode: classify it."""
        module, name = split_reference(text)
        if not module or not name:
            module, name = text, "*"
        verdict = classify(module, name.replace(":", "."))
        if verdict.level is not Level.SAFE:
            self._finding(verdict.rule_code if verdict.level is Level.DANGEROUS else "MA-P002",
                          f"{via} resolves the name {text!r} to {verdict.target}", call.pos, opcode=call.opcode,
                          module=module, function=name, family=verdict.family, resolver=via)
        return self.note(Global(module, name, verdict, call.pos, call.opcode))

    def _dangerous_names_handed_to(self, call: Call, target: str) -> None:
        """An unknown callable given "os.system" or "os:system" (hydra.utils.instantiate({"_target_": ...}),
        a registry's make("module:attr")) is most likely a resolver the lists do not know yet."""
        for text in _name_strings(call.args):
            module, name = split_reference(text)
            verdict = classify(module, name.replace(":", "."))
            if verdict.level is Level.DANGEROUS:
                self._finding(verdict.rule_code, f"{target} is handed the name {text!r}, which resolves to "
                              f"{verdict.target}", call.pos, opcode=call.opcode, module=module, function=name,
                              family=verdict.family, receiver=target)
                return

    def discarded(self, values: list[Any], pos: int) -> None:
        for value in values:
            if isinstance(value, Call) and not value.discarded:
                value.discarded = True
                self._finding("MA-P005", f"Result of call to {func_repr(value.func)} is discarded: the call "
                              "exists only for its side effect", pos, opcode="POP", call=repr(value)[:300],
                              call_position=value.pos)

    def method_call(self, target: Any, opcode: str, items: list[Any], pos: int) -> None:
        self._helpers_as_data(tuple(items[:256]), pos, f"an item {opcode} hands to an object")
        target = _proven(target)
        if isinstance(target, Global):
            self._finding("MA-P011", f"{opcode} mutates the global {target.verdict.target} in the loading process",
                          pos, opcode=opcode, target=target.verdict.target)

    def build(self, target: Any, state: Any, pos: int) -> None:
        from ._pickle_vm import Malformed

        target = _proven(target)
        if isinstance(target, Global):
            self._finding("MA-P011", f"BUILD applies state to the global {target.verdict.target} itself",
                          pos, opcode="BUILD", target=target.verdict.target)
        elif not isinstance(target, (Call, Persistent, Container)) and target is not OPAQUE:
            raise Malformed(f"BUILD on an object of type {type(target).__name__}")
        func = target.func if isinstance(target, Call) else None
        if isinstance(func, Global) and func.verdict.target in ARGUMENT_CHECKED:
            helper = func.verdict.target  # a partial's state replaces the function it wraps
            rejected = relaxations.check_state(helper, state)
            if rejected is not None:
                self._helper_finding(helper, f"BUILD state of {helper} is not proven harmless: {rejected.reason}",
                                     pos, rejected.family, opcode="BUILD", state=short_repr(state, 300))
        self._helpers_as_data(state, pos, "object state applied by BUILD")
        for part in (state if isinstance(state, tuple) else (state,)):
            if isinstance(part, Container) and part.kind == "dict":
                keys = [k for k in part.items[0::2] if isinstance(k, str) and k.startswith("__") and k.endswith("__")]
                if keys:
                    self._finding("MA-P010", f"BUILD sets special attribute(s) {', '.join(sorted(set(keys)))}",
                                  pos, opcode="BUILD", attributes=sorted(set(keys)))


_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:[.:][A-Za-z_]\w*)+")


def _name_strings(args: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """Strings shaped like a dotted or module:attr name among the arguments (two container levels, bounded)."""
    budget = [256] if budget is None else budget
    items = args if isinstance(args, tuple) else args.items if isinstance(args, Container) else ()
    for item in items:
        budget[0] -= 1
        if budget[0] < 0:
            return
        if isinstance(item, str):
            if len(item) <= 200 and _DOTTED_NAME.fullmatch(item):
                yield item
        elif depth < 2 and isinstance(item, (tuple, Container)):
            yield from _name_strings(item, depth + 1, budget)


def _proven(value: Any) -> Any:
    """A call whose result the walker proved to be a global (_load_type('list')) stands for that global."""
    return value.value if isinstance(value, Call) and isinstance(value.value, ProvenGlobal) else value


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


def _finding_obj(code: str, message: str, pos: int, details: dict, why: str) -> Finding:
    return Finding(code, message, pos, details, why)


def _int_list(value: Any) -> bytes | None:
    """bytes([128, 4, ...]): a fully kept list of byte values."""
    if isinstance(value, Container) and value.kind == "list" and value.count == len(value.items):
        if all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 256 for i in value.items):
            return bytes(value.items)
    return None


def _decode(target: str, arg: Any, args: Any) -> bytes | None:
    data = _as_bytes(arg)
    if data is None and target in ("builtins.bytes", "builtins.bytearray"):
        return _int_list(arg)
    if data is None or len(data) > _MAX_DECODE:
        return None
    plain = tuple(a.value if isinstance(a, Call) and isinstance(a.value, bytes) else a
                  for a in (args if isinstance(args, tuple) else ()))
    try:
        return DECODERS[target](data, plain)
    except (ValueError, TypeError, LookupError, EOFError, binascii.Error, zlib.error, lzma.LZMAError, OSError):
        return None
