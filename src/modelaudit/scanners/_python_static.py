"""Static analysis of Python source shipped with models, from its tokens alone.

Imports and simple assignments give every name a qualified meaning (`from os import system
as s` makes `s` mean `os.system`); then every dotted name, call, `getattr(x, "name")`,
`__import__("m")`, `vars(m)[...]` and `sys.modules[...]` is resolved and checked against
_python_policy. Nothing is compiled, imported or run (see _python_lex for why tokens, not
`ast`). The analysis is flow-insensitive and errs towards reporting: a name keeps every
meaning it is ever given (an import is never "undone" by a later assignment), and a builtin
is only taken as shadowed by a module-level definition or import, or inside a function whose
parameter carries its name. Code in constant strings passed to exec/eval and in f-string
replacement fields is analysed too.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from ..model import IssueSeverity
from . import _python_args as pyargs
from . import _python_policy as policy
from ._python_lex import FRAGMENT_END, KEYWORDS, Lexed, SourceError, Tok, brackets, lex, statements

MAX_EXEC_DEPTH = 2  # code in string constants passed to exec/eval is analysed this deep
MAX_MEANINGS = 4  # distinct values one name may be bound to
MAX_NAMES = 20_000  # qualified names kept for format-specific checks (TorchScript operators)
MAX_NAME_LENGTH = 1024  # a dotted name stops growing here (x.a.a.a… would build ever longer copies)
MAX_EXPR_DEPTH = 8  # getattr(getattr(…)) arguments resolved this deep (each level is walked once per name)
_SKIP_AFTER = frozenset({"def", "class", "import", "as", "global", "nonlocal", "for", "del"})
_ASSIGN = frozenset({"=", "+=", "-=", "*=", "/=", "|=", "&=", ":="})


@dataclass(frozen=True)
class CodeFinding:
    code: str
    message: str
    line: int
    target: str  # what the finding is about, for de-duplication
    severity: IssueSeverity | None = None  # None: the rule's default


@dataclass(frozen=True)
class Value:
    """What an expression names: a qualified dotted path, and whether its root was imported."""

    name: str
    imported: bool

    def attr(self, attribute: str) -> Value:
        if len(self.name) > MAX_NAME_LENGTH:
            return self  # policy entries match their prefixes, so the prefix keeps every meaning that matters
        return Value(f"{self.name}.{attribute}", self.imported)


@dataclass
class Analysis:
    findings: list[CodeFinding] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)  # every qualified name used -> first line
    error: SourceError | None = None
    tokens: int = 0
    truncated: bool = False  # the token budget ran out; the rest of the source was not analysed
    disguised: list[tuple[str, int]] = field(default_factory=list)  # identifiers spelled with lookalikes


def analyze(text: str, deadline: Callable[[], None] | None = None, _depth: int = 0) -> Analysis:
    lexed = lex(text, deadline=deadline)
    result = Analysis(error=lexed.error, tokens=len(lexed.tokens), disguised=lexed.disguised,
                      truncated=lexed.truncated)
    _Module(lexed, result, deadline or (lambda: None), _depth).run()
    return result


class _Module:
    def __init__(self, lexed: Lexed, out: Analysis, deadline: Callable[[], None], depth: int) -> None:
        self.lexed, self.out, self.deadline, self.depth = lexed, out, deadline, depth
        self.aliases: dict[str, list[Value]] = {}
        self.shadowed: set[str] = set()
        self.star: list[str] = []
        self.imported_roots: set[str] = set()
        self.seen: set[tuple[str, str]] = set()
        #: token ranges of function bodies whose parameters hide builtins (def f(eval=False): …)
        self.local_builtins: dict[str, tuple[list[int], list[int]]] = {}
        self.expr_depth = 0
        #: set once every binding is made: then a name's meanings (outside builtin-hiding functions) are fixed
        self.meanings: dict[str, list[Value | None]] | None = None
        self.referenced: set[Value] = set()  # plain references already noted and checked (the rest repeat them)

    def run(self) -> None:
        main = _Stream(self.lexed.tokens, main=True)
        ranges = statements(main.toks)
        skip = self._bind_imports(main.toks, ranges)
        self.local_builtins = _builtin_parameters(main, ranges)
        for _ in range(3):  # aliases of aliases (s = os; f = s.system)
            before = ({name: list(values) for name, values in self.aliases.items()}, len(self.shadowed))
            self._bind_assignments(main, ranges)
            if before == ({name: list(values) for name, values in self.aliases.items()}, len(self.shadowed)):
                break  # nothing changed: another pass would read and bind the same
        self.meanings = {}
        self._scan(main, skip)
        if self.lexed.fragments:  # every f-string field in one pass (a stream per field costs ~50 µs each)
            self._scan(_fragment_stream(self.lexed.fragments), set())

    # --- bindings -----------------------------------------------------------------
    def _bind_imports(self, toks: list[Tok], ranges: list[tuple[int, int]]) -> set[int]:
        skip: set[int] = set()
        for start, end in ranges:
            first = toks[start]
            if first.kind == "name" and first.text in ("import", "from"):
                skip.update(range(start, end))
                (self._import if first.text == "import" else self._from_import)(toks[start + 1:end], first.col == 0)
            elif first.kind == "name" and first.text in ("def", "class") and first.col == 0 \
                    and start + 1 < end and toks[start + 1].kind == "name":
                self.shadowed.add(toks[start + 1].text)
        return skip

    def _import(self, toks: list[Tok], module_level: bool) -> None:
        for part in pyargs.split(toks, ","):
            dotted, alias = pyargs.dotted(part), pyargs.alias(part)
            if not dotted:
                continue
            self.imported_roots.add(policy.normalise(dotted).split(".")[0])
            root = dotted.split(".")[0]
            self._bind(alias or root, Value(dotted if alias else root, True), module_level)

    def _from_import(self, toks: list[Tok], module_level: bool) -> None:
        names = [t.text for t in toks]
        if "import" not in names:
            return
        cut = names.index("import")
        module = "".join(names[:cut])
        self.imported_roots.add(policy.normalise(module.lstrip(".")).split(".")[0])
        for part in pyargs.split([t for t in toks[cut + 1:] if t.text not in "()"], ","):
            if part and part[0].text == "*":
                self.star.append(module)
                continue
            name, alias = (part[0].text if part else ""), pyargs.alias(part)
            if name:
                target = f"{module}.{name}" if not module.endswith(".") else module + name
                self._bind(alias or name, Value(target, True), module_level)

    def _bind(self, name: str, value: Value, module_level: bool) -> None:
        """Names keep every meaning they are given (flow-insensitive); a module-level binding hides a builtin."""
        _add_meaning(self.aliases.setdefault(name, []), value)
        if module_level:
            self.shadowed.add(name)

    def _bind_assignments(self, stream: _Stream, ranges: list[tuple[int, int]]) -> None:
        toks = stream.toks
        for start, end in ranges:
            targets, i = [], start
            while i + 1 < end and toks[i].kind == "name" and toks[i + 1].kind == "op" and toks[i + 1].text == "=":
                targets.append(toks[i])
                i += 2
            if not targets or i >= end:
                continue
            values, stop = self._meanings(stream, i) if toks[i].kind == "name" else ([], i)
            names = {t.text for t in targets}
            mentions_self = any(t.kind == "name" and t.text in names for t in toks[i:end])
            for target in targets:
                resolved = [v for v in values if v is not None] if stop == end else []
                for value in resolved:
                    _add_meaning(self.aliases.setdefault(target.text, []), value)
                if not resolved and target.col == 0 and not mentions_self:
                    self.shadowed.add(target.text)

    # --- names ----------------------------------------------------------------------
    def resolve(self, name: str, pos: int | None = None) -> list[Value | None]:
        """Every meaning a bare name may have at token `pos` (None: a local value of unknown kind)."""
        if self.meanings is not None and (pos is None or name not in self.local_builtins):
            known = self.meanings.get(name)
            if known is None:
                known = self.meanings[name] = self._resolve(name, None)
            return known
        return self._resolve(name, pos)

    def _resolve(self, name: str, pos: int | None) -> list[Value | None]:
        out: list[Value | None] = list(self.aliases.get(name, ()))
        if name in policy.BUILTINS and name not in self.shadowed and not self._parameter(name, pos):
            out.append(Value("builtins" if name == "__builtins__" else f"builtins.{name}", True))
        out.extend(Value(f"{m}.{name}", True) for m in self.star if policy.lookup(f"{m}.{name}"))
        if not out:
            out.append(None if name in self.shadowed else
                       Value(name, policy.normalise(name) in self.imported_roots))
        return out

    def _parameter(self, name: str, pos: int | None) -> bool:
        if pos is None or name not in self.local_builtins:
            return False
        starts, ends = self.local_builtins[name]
        k = bisect_right(starts, pos) - 1
        return k >= 0 and pos < ends[k]

    def _meanings(self, stream: _Stream, i: int) -> tuple[list[Value | None], int]:
        """The values of the primary expression at `i` under each meaning of its first name (no findings)."""
        values, stop = [], i + 1
        for start in self.resolve(stream.toks[i].text, i if stream.main else None):
            value, stop = self._walk(stream, i, start, emit=False)
            values.append(value)
        return values, stop

    # --- the scan ---------------------------------------------------------------------
    def _scan(self, stream: _Stream, skip: set[int]) -> None:
        toks = stream.toks
        params = _parameter_positions(toks, stream.match)
        for i, tok in enumerate(toks):
            if i % 4096 == 0:
                self.deadline()
            if tok.kind != "name":
                continue
            prev = toks[i - 1] if i else None
            if prev is not None and prev.kind == "op" and prev.text == ".":
                if _gadget(stream, i):
                    self.report(policy.HIDDEN, f"reads .{tok.text}, a route from any object to interpreter internals "
                                "(the os module, eval) without naming them", tok.line, f".{tok.text}")
                continue
            if i in skip or i in params or tok.text in KEYWORDS or (
                    prev is not None and prev.kind == "name" and prev.text in _SKIP_AFTER):
                continue
            if i + 1 < len(toks) and toks[i + 1].kind == "op" and toks[i + 1].text in _ASSIGN:
                continue  # an assignment target or a keyword argument's name
            for start in self.resolve(tok.text, i if stream.main else None):
                self._walk(stream, i, start, emit=True)

    def _walk(self, stream: _Stream, i: int, value: Value | None, emit: bool) -> tuple[Value | None, int]:
        """Follow the name at `i`, meaning `value`, through its trailers (.attr, (call), [key])."""
        toks, match = stream.toks, stream.match
        j, called = i + 1, False
        while j < len(toks):
            tok = toks[j]
            if tok.kind == "op" and tok.text == "." and j + 1 < len(toks) and toks[j + 1].kind == "name":
                value = value.attr(toks[j + 1].text) if value else None
                j, called = j + 2, False
            elif tok.kind == "op" and tok.text == "(" and j in match:
                args = pyargs.arguments(j, match[j], stream.commas.get(j, []))
                if emit:
                    self._note(value, tok.line)
                    self._on_call(value, stream, args, tok.line)
                value = self._call_result(value, stream, args)
                j, called = match[j] + 1, value is None  # getattr(os, "system") names a new callable
            elif tok.kind == "op" and tok.text == "[" and j in match:
                value = self._subscript(value, stream, j + 1, match[j], emit, tok.line)
                j, called = match[j] + 1, False
            else:
                break
        if emit and value is not None and not called and value not in self.referenced:
            self.referenced.add(value)  # a later reference would note and report nothing new
            self._note(value, toks[i].line)
            self._on_reference(value, toks[i].line)
        return value, j

    def _note(self, value: Value | None, line: int) -> None:
        if value is not None and len(self.out.names) < MAX_NAMES:
            self.out.names.setdefault(value.name, line)

    def _call_result(self, value: Value | None, stream: _Stream, args: list[tuple[int, int]]) -> Value | None:
        if value is None:
            return None
        toks, name = stream.toks, policy.normalise(value.name)
        positional = pyargs.positional(toks, args)
        if name in policy.IMPORTERS and positional:
            module = pyargs.const_string(toks, *positional[0])
            return Value(module, True) if isinstance(module, str) else None
        if name == "builtins.getattr" and len(positional) >= 2:
            obj = self.expr_value(stream, *positional[0])
            attr = pyargs.const_string(toks, *positional[1])
            return obj.attr(attr) if obj is not None and isinstance(attr, str) else None
        if name == "builtins.vars" and positional:
            obj = self.expr_value(stream, *positional[0])
            return obj.attr("__dict__") if obj is not None else None
        if name == "builtins.globals":
            return Value("<globals>", True)
        return None

    def _subscript(self, value: Value | None, stream: _Stream, start: int, end: int, emit: bool,
                   line: int) -> Value | None:
        if value is None:
            return None
        base = policy.normalise(value.name)
        key = pyargs.const_string(stream.toks, start, end)
        if base == "sys.modules":
            return Value(key, True) if isinstance(key, str) else None
        if base == "<globals>":
            return self.resolve(key)[0] if isinstance(key, str) else None
        namespace = base[:-len(".__dict__")] if base.endswith(".__dict__") else "builtins" if base == "builtins" \
            else None
        if namespace is None:
            return None
        if isinstance(key, str):
            return Value(namespace, value.imported).attr(key)
        if emit and namespace.split(".")[0] in policy.NAMESPACE_DANGER:
            self.report(policy.CODE_EXEC, f"looks up a name in the {namespace} namespace by a computed key, "
                        "which hides the function used", line, f"{namespace}[…]")
        return None

    def expr_value(self, stream: _Stream, start: int, end: int) -> Value | None:
        """The value of an argument that is exactly one dotted name with trailers."""
        toks = stream.toks
        if start < end and toks[start].kind == "name" and toks[start].text not in KEYWORDS \
                and self.expr_depth < MAX_EXPR_DEPTH:
            self.expr_depth += 1
            try:
                values, stop = self._meanings(stream, start)
            finally:
                self.expr_depth -= 1
            return next((v for v in values if v is not None), None) if stop == end else None
        return None

    # --- findings ---------------------------------------------------------------------
    def _on_reference(self, value: Value, line: int) -> None:
        found = policy.lookup(value.name)
        if found is None:
            return
        key, entry = found
        if entry.on_reference and (value.imported or not entry.needs_import):
            self.report(entry.code, f"refers to {key}, which {entry.what}", line, key, entry.severity)

    def _on_call(self, value: Value | None, stream: _Stream, args: list[tuple[int, int]], line: int) -> None:
        self._check_keywords(stream.toks, args, line)
        if value is None:
            return
        name = policy.normalise(value.name)
        special = _SPECIAL.get(name)
        if special is not None:
            special(self, name, stream, args, line)
            return
        found = policy.lookup(name)
        if found is None:
            return
        entry = found[1]
        if value.imported or not entry.needs_import:
            self.report(entry.code, f"calls {name}, which {entry.what}", line, name, entry.severity)

    def _check_keywords(self, toks: list[Tok], args: list[tuple[int, int]], line: int) -> None:
        flag = pyargs.keyword(toks, args, "trust_remote_code")
        if flag and "".join(t.text for t in toks[flag[0]:flag[1]]) == "True":
            self.report(policy.CUSTOM_CODE, "loads another model with trust_remote_code=True, which runs that "
                        "model's code too", line, "trust_remote_code=True", IssueSeverity.INFO)

    def report(self, code: str, message: str, line: int, target: str,
               severity: IssueSeverity | None = None) -> None:
        key = (code, target)
        if key in self.seen:
            return
        self.seen.add(key)
        self.out.findings.append(CodeFinding(code, message, line, target, severity))

    def nested(self, text: str, line: int, via: str) -> None:
        if self.depth >= MAX_EXEC_DEPTH:
            return
        inner = analyze(text, self.deadline, self.depth + 1)
        for f in inner.findings:
            self.report(f.code, f"in the code passed to {via}: {f.message}", line, f"{via}:{f.target}",
                        f.severity)


class _Stream:
    """A token list with its bracket structure."""

    def __init__(self, toks: list[Tok], main: bool = False, starts: list[int] | None = None) -> None:
        self.toks, self.main = toks, main
        self.match, self.commas = brackets(toks)
        self._markers: dict[str, list[int]] | None = None
        self.starts = starts or [0]  # first token of each f-string field (fragment streams)

    def floor(self, i: int) -> int:
        """The first token of the field that holds token i: look-behinds stay inside one field."""
        return self.starts[bisect_right(self.starts, i) - 1]

    def markers_within(self, start: int, end: int) -> list[str]:
        """The decoder names (and `[::-1]`) among tokens start..end: one bisect per marker, however
        deeply calls nest (nested exec calls would otherwise read the same tokens once per call)."""
        if self._markers is None:
            self._markers = {}
            for i, tok in enumerate(self.toks):
                if tok.text in policy.DECODERS:
                    self._markers.setdefault(tok.text, []).append(i)
                reverses = tok.text == "[" and "".join(t.text for t in self.toks[i:i + 6]) == "[::-1]"
                if reverses or "[::-1]" in tok.text:  # the slice, or a literal holding it
                    self._markers.setdefault("[::-1]", []).append(i)
        found = []
        for marker, positions in self._markers.items():
            k = bisect_right(positions, start - 1)
            if k < len(positions) and positions[k] < end:
                found.append(marker)
        return found


# --- special calls --------------------------------------------------------------------------


def _exec_like(mod: _Module, name: str, stream: _Stream, args: pyargs.Args, line: int) -> None:
    toks, short = stream.toks, name.split(".")[-1]
    found = {m for a in args for m in stream.markers_within(*a)}
    decoders = sorted(found & policy.DECODERS) + (["[::-1]"] if "[::-1]" in found else [])
    if decoders:
        mod.report(policy.CODE_EXEC, f"calls {short}() on decoded data ({', '.join(decoders)}): an obfuscated "
                   "payload", line, f"{name}:decoded")
    else:
        found = policy.lookup(name)
        entry = found[1] if found else policy.POLICY["builtins.exec"]
        mod.report(entry.code, f"calls {short}(), which {entry.what}", line, name)
    positional = pyargs.positional(toks, args)
    code = pyargs.const_string(toks, *positional[0]) if positional else None
    if isinstance(code, str):
        mod.nested(code, line, f"{short}()")


def _importer(mod: _Module, name: str, stream: _Stream, args: pyargs.Args, line: int) -> None:
    toks = stream.toks
    positional = pyargs.positional(toks, args)
    module = pyargs.const_string(toks, *positional[0]) if positional else None
    if isinstance(module, str):
        if name == "builtins.__import__":
            mod.report(policy.RISKY, f"imports {module!r} through __import__(), a form used to hide imports", line,
                       f"__import__:{module}", IssueSeverity.INFO)
        return
    first = toks[positional[0][0]] if positional else None
    package = first.value if first is not None and first.kind == "fstr" and isinstance(first.value, str) else ""
    # f"transformers.models.{name}" stays inside a named package; a bare variable can import anything
    severity = IssueSeverity.INFO if "." in package.strip(".") else None
    mod.report(policy.RISKY, f"calls {name}() with a module name computed at run time, which hides what is "
               "imported", line, f"{name}:dynamic", severity)


def _getattr(mod: _Module, name: str, stream: _Stream, args: pyargs.Args, line: int) -> None:
    positional = pyargs.positional(stream.toks, args)
    if len(positional) < 2 or isinstance(pyargs.const_string(stream.toks, *positional[1]), str):
        return
    obj = mod.expr_value(stream, *positional[0])
    if obj is not None and policy.normalise(obj.name).split(".")[0] in policy.NAMESPACE_DANGER:
        mod.report(policy.CODE_EXEC, f"calls getattr() on {obj.name} with a computed attribute name, which "
                   "hides the function used", line, f"getattr:{obj.name}")


def _by_name(mod: _Module, name: str, stream: _Stream, args: pyargs.Args, line: int) -> None:
    """operator.methodcaller("system", …) and attrgetter("system") name the function in a string."""
    for start, end in pyargs.positional(stream.toks, args):
        attr = pyargs.const_string(stream.toks, start, end)
        if isinstance(attr, str) and attr.split(".")[-1] in policy.DANGEROUS_ATTRIBUTE_NAMES:
            mod.report(policy.CODE_EXEC, f"calls {name}({attr!r}), which reaches {attr} without naming its module",
                       line, f"{name}:{attr}")


def _open(mod: _Module, name: str, stream: _Stream, args: pyargs.Args, line: int) -> None:
    toks = stream.toks
    positional = pyargs.positional(toks, args)
    mode_arg = positional[1] if len(positional) > 1 else pyargs.keyword(toks, args, "mode")
    mode = pyargs.const_string(toks, *mode_arg) if mode_arg else "r"
    if not positional or not isinstance(mode, str) or not any(c in mode for c in "wax+"):
        return
    path = pyargs.path_text(toks, *positional[0])
    if path is None:
        return
    sensitive = next((s for s in policy.SENSITIVE_PATHS if s in path.lower()), None)
    if sensitive:
        mod.report(policy.CODE_EXEC, f"opens {path!r} for writing ({sensitive} is read by the shell, the "
                   "interpreter or the system)", line, f"write:{path}")
    else:
        mod.report(policy.RISKY, f"opens the absolute path {path!r} for writing", line, f"write:{path}")


def _torch_load(mod: _Module, name: str, stream: _Stream, args: pyargs.Args, line: int) -> None:
    flag = pyargs.keyword(stream.toks, args, "weights_only")
    text = pyargs.span_text(stream.toks, flag) if flag else None
    if text == "True":
        return
    if text is None:
        mod.report(policy.RISKY, f"calls {name}() without weights_only=True; before torch 2.6 that unpickles "
                   "arbitrary objects", line, f"{name}:default", IssueSeverity.INFO)
    else:
        mod.report(policy.RISKY, f"calls {name}() with weights_only={text}, which unpickles arbitrary objects "
                   "(code chosen by whoever wrote the file)", line, name)


def _numpy_load(mod: _Module, name: str, stream: _Stream, args: pyargs.Args, line: int) -> None:
    flag = pyargs.keyword(stream.toks, args, "allow_pickle")
    if flag and pyargs.span_text(stream.toks, flag) not in ("False", "0"):
        mod.report(policy.RISKY, f"calls {name}() with allow_pickle, which unpickles object arrays", line, name)


def _yaml_load(mod: _Module, name: str, stream: _Stream, args: pyargs.Args, line: int) -> None:
    toks = stream.toks
    positional = pyargs.positional(toks, args)
    loader = pyargs.keyword(toks, args, "Loader") or (positional[1] if len(positional) > 1 else None)
    text = pyargs.span_text(toks, loader) if loader else ""
    if not any(safe in text for safe in ("SafeLoader", "BaseLoader", "FullLoader")):
        mod.report(policy.RISKY, f"calls {name}() without a safe loader, which can construct arbitrary Python "
                   "objects", line, name)


_SPECIAL: dict[str, Callable[[_Module, str, _Stream, pyargs.Args, int], None]] = {
    "builtins.eval": _exec_like, "builtins.exec": _exec_like, "builtins.compile": _exec_like,
    "builtins.execfile": _exec_like, "builtins.__import__": _importer, "importlib.import_module": _importer,
    "importlib.__import__": _importer, "builtins.getattr": _getattr, "operator.methodcaller": _by_name,
    "operator.attrgetter": _by_name, "builtins.open": _open, "io.open": _open,
    "codecs.open": _open, "torch.load": _torch_load, "torch.serialization.load": _torch_load,
    "numpy.load": _numpy_load, "yaml.load": _yaml_load, "yaml.load_all": _yaml_load,
}


def _add_meaning(values: list[Value], value: Value) -> None:
    """Keep at most MAX_MEANINGS values, preferring those the policy cares about (padding cannot push one out)."""
    if value in values:
        return
    if len(values) < MAX_MEANINGS:
        values.append(value)
        return
    if policy.relevant(value.name):
        boring = next((k for k, v in enumerate(values) if not policy.relevant(v.name)), None)
        if boring is not None:
            values[boring] = value


def _fragment_stream(fragments: list[list[Tok]]) -> _Stream:
    """The f-string fields as one stream, each followed by FRAGMENT_END twice: brackets do not pair across
    fields, and look-aheads (a `def` header's `(` two tokens on) and walks stop at the field's end."""
    toks: list[Tok] = []
    starts: list[int] = []
    for fragment in fragments:
        starts.append(len(toks))
        toks.extend(fragment)
        toks.append(FRAGMENT_END)
        toks.append(FRAGMENT_END)
    return _Stream(toks, starts=starts)


def _gadget(stream: _Stream, i: int) -> bool:
    """`.__globals__`, `.f_globals` …; `.__subclasses__` only in the object-walking shape (().__class__.__base__…)."""
    toks = stream.toks
    name = toks[i].text
    if name == "__subclasses__":
        before = toks[max(stream.floor(i), i - 8):i]
        return any(t.text in ("__base__", "__bases__", "__mro__", "object") for t in before)
    return name in policy.GADGET_ATTRS


def _builtin_parameters(stream: _Stream, ranges: list[tuple[int, int]]) -> dict[str, tuple[list[int], list[int]]]:
    """{builtin: (starts, ends)}: the token ranges of the functions that have a parameter of that name, merged.

    A function ends at the first later statement indented no deeper than its `def`; the functions still
    open form a stack (inner ones indented deeper), so every statement is looked at once."""
    toks = stream.toks
    params = _parameter_positions(toks, stream.match)
    spans: list[tuple[int, int, frozenset[str]]] = []
    open_defs: list[tuple[int, int, int, frozenset[str]]] = []  # (first token, column, header's last line, names)
    for start, end in ranges:
        first = toks[start]
        while open_defs and first.col <= open_defs[-1][1] and first.line > open_defs[-1][2]:
            begin, _, _, names = open_defs.pop()
            spans.append((begin, start, names))
        if first.text != "def":
            continue
        names = frozenset(toks[k].text for k in range(start, end) if k in params) & policy.BUILTINS
        if names:
            open_defs.append((start, first.col, toks[end - 1].line, names))
    spans.extend((begin, len(toks), names) for begin, _, _, names in open_defs)
    merged: dict[str, tuple[list[int], list[int]]] = {}
    for begin, stop, names in sorted(spans):
        for name in names:
            starts, ends = merged.setdefault(name, ([], []))
            if ends and begin <= ends[-1]:
                ends[-1] = max(ends[-1], stop)
            else:
                starts.append(begin)
                ends.append(stop)
    return merged


def _parameter_positions(toks: list[Tok], match: dict[int, int]) -> set[int]:
    """Token indexes of parameter names in def headers and lambdas (not references)."""
    out: set[int] = set()
    for i, tok in enumerate(toks):
        if tok.kind == "name" and tok.text == "def" and i + 2 < len(toks) and toks[i + 2].text == "(":
            for k in range(i + 3, match.get(i + 2, i + 2)):
                if toks[k].text == "def":
                    break  # not Python; the inner def reads its own header (each token is read once)
                if toks[k].kind == "name" and toks[k - 1].text in ("(", ",", "*", "**") and \
                        toks[k + 1].text in (",", ")", ":", "="):
                    out.add(k)
        elif tok.kind == "name" and tok.text == "lambda":
            k = i + 1
            # parameters end at the colon, on the same logical line; an inner lambda reads its own
            while k < len(toks) and toks[k].text not in (":", "lambda") and toks[k].kind != "newline":
                if toks[k].kind == "name":
                    out.add(k)
                k += 1
    return out
