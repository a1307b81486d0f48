"""Static analysis of Jinja chat templates (GGUF `tokenizer.chat_template*`).

The template is parsed by Jinja2's parser into an AST and the AST is walked; nothing is
compiled to Python or rendered. The walk looks for the shapes of server-side template
injection and sandbox escapes: dunder attributes and keys (also when a name is spelled
through string concatenation, `~`, `|join`, `|format`, `%`, slicing or `|reverse`), the
`|attr` filter and `attribute=` arguments, attribute access on Jinja's global functions
(`lipsum.__globals__`, `cycler.__init__`), format strings that traverse attributes, names of
modules and builtins that reach the operating system, and the globals of web template
contexts (`config`, `request`, `self`).
"""

from __future__ import annotations

import codecs
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import MissingDependency
from ._gguf_values import UNKNOWN, ConstEvaluator, children

CRITICAL, SUSPICIOUS, BUDGET = "MA-G004", "MA-G005", "MA-G008"
DUNDER = re.compile(r"__[A-Za-z][A-Za-z0-9_]*__")
MAX_TEMPLATE = 1024 * 1024  # real chat templates are a few KiB; Jinja parses about 0.3 MB/s

# attribute or key names no chat template needs and that lead from any object to the OS
DANGEROUS_ATTRS = frozenset({
    "popen", "subprocess", "os", "sys", "builtins", "modules", "import_module", "load_module", "exec_module",
    "check_output", "check_call", "getoutput", "getstatusoutput", "func_globals", "func_code", "f_globals",
    "f_locals", "f_builtins", "f_back", "gi_frame", "gi_code", "cr_frame", "tb_frame", "co_code", "mro",
    "getattr", "setattr", "delattr", "globals", "locals", "vars", "eval", "exec", "execfile", "compile",
    "environ", "pty", "shutil", "importlib", "socket",
})
# attribute names that are dangerous when called (as plain attributes they may be honest data keys)
DANGEROUS_CALLS = frozenset({"system", "open", "spawnl", "spawnv", "spawnve", "fork", "kill", "remove",
                             "unlink", "rmtree", "write", "read", "readlines", "communicate", "run", "call"})
# free variables that name modules or builtins reaching the OS
DANGEROUS_NAMES = frozenset({
    "os", "subprocess", "sys", "builtins", "eval", "exec", "compile", "importlib", "getattr", "setattr",
    "delattr", "globals", "locals", "vars", "popen", "pty", "shutil", "socket", "import",
})
# free variables of web-framework template contexts and Jinja helpers that chat templates never use
SUSPICIOUS_NAMES = frozenset({"config", "request", "self", "session", "g", "url_for", "get_flashed_messages",
                              "application", "cycler", "joiner", "lipsum"})
# Jinja global functions: an attribute of the function object itself is the first step of an escape
GADGETS = frozenset({"cycler", "joiner", "lipsum", "namespace", "range", "dict", "raise_exception",
                     "strftime_now", "self", "caller"})
# filters whose arguments name attributes (|attr('x'), |map(attribute='x'), |selectattr('x') …)
ATTRIBUTE_FILTERS = frozenset({"attr", "map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique",
                               "min", "max", "dictsort"})
LOADING_STATEMENTS = ("Include", "Import", "FromImport", "Extends")


@dataclass(frozen=True)
class TemplateFinding:
    code: str
    message: str
    line: int
    detail: str


class TemplateSyntax(Exception):
    """The template does not parse (or nests past the parser's limits)."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


@lru_cache(maxsize=1)
def _jinja() -> tuple[Any, Any]:
    try:
        import jinja2
        import jinja2.ext
        import jinja2.nodes
        import jinja2.parser
    except ImportError as exc:
        raise MissingDependency("jinja2", "gguf", "GGUF chat templates") from exc

    class Generation(jinja2.ext.Extension):
        """`{% generation %}…{% endgeneration %}`, the assistant-mask tag transformers adds."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.Scope(body, lineno=lineno)

    codecs.lookup("unicode-escape")  # Jinja's lexer decodes string literals with it: load it up front
    env = jinja2.Environment(extensions=[jinja2.ext.loopcontrols, jinja2.ext.do, Generation])
    return env, jinja2


def require_jinja() -> None:
    """Raise MissingDependency when jinja2 is not installed."""
    _jinja()


def parse(source: str) -> Any:
    """The template's AST, from Jinja's parser alone (no compile, no render). This is env.parse() without its
    last step, a walk over every node that links it to the environment (a tenth of the time; compiling and
    rendering need that link, the analysis does not)."""
    env, jinja2 = _jinja()
    try:
        return jinja2.nodes.Template(jinja2.parser.Parser(env, source).subparse(), lineno=1)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntax(exc.message or str(exc), exc.lineno) from exc
    except RecursionError as exc:
        raise TemplateSyntax("expressions nest too deeply for the parser", None) from exc


def analyze(source: str) -> list[TemplateFinding]:
    """Findings for one template source; raises TemplateSyntax or MissingDependency."""
    tree = parse(source)
    return _Analysis(tree).run()


class _Analysis:
    def __init__(self, tree: Any) -> None:
        self.tree = tree
        node_type = _jinja()[1].nodes.Node
        self.nodes = _all_nodes(tree, node_type)
        self.values = ConstEvaluator(self.nodes, node_type)
        self.bound = {n.name for n in self.nodes if type(n).__name__ == "Name" and n.ctx != "load"}
        self.found: dict[tuple[str, str], TemplateFinding] = {}
        # "_on_Getattr" handles Getattr nodes: looked up once, not per node
        self.handlers = {name[4:]: getattr(self, name) for name in dir(type(self)) if name.startswith("_on_")}

    def run(self) -> list[TemplateFinding]:
        handlers, is_operation = self.handlers, self.values.is_operation
        for node in self.nodes:
            kind = type(node).__name__
            handler = handlers.get(kind)
            if handler is not None:
                handler(node)
            if kind in LOADING_STATEMENTS:
                self._add(SUSPICIOUS, node, f"{{% {kind.lower()} %}} loads another template", kind)
            if is_operation(node):
                self._check_built_string(node)
        if self.values.exhausted:
            self.found[(BUDGET, "")] = TemplateFinding(
                BUDGET, "string expressions fold to more than the budget of text kept for inspection; names built "
                "from pieces after that point were not checked", 0, "folding budget")
        return sorted(self.found.values(), key=lambda f: (f.line, f.code, f.detail))

    def _add(self, code: str, node: Any, message: str, detail: str) -> None:
        key = (code, detail)
        if key not in self.found:
            self.found[key] = TemplateFinding(code, message, getattr(node, "lineno", 0) or 0, detail)

    # --- names and attributes -------------------------------------------------------
    def _on_Name(self, node: Any) -> None:  # noqa: N802 - dispatch on Jinja node class names
        if node.ctx != "load" or node.name in self.bound:
            return
        if DUNDER.fullmatch(node.name) or node.name in DANGEROUS_NAMES:
            self._add(CRITICAL, node, f"refers to {node.name!r}, a route to Python internals or the OS", node.name)
        elif node.name in SUSPICIOUS_NAMES:
            self._add(SUSPICIOUS, node, f"refers to the global {node.name!r}, which chat templates do not use "
                      "but template-injection payloads do", node.name)

    def _on_Getattr(self, node: Any) -> None:  # noqa: N802
        self._check_key(node, node.attr, f".{node.attr}")
        self._check_gadget(node, node.node)

    def _on_NSRef(self, node: Any) -> None:  # noqa: N802
        self._check_key(node, node.attr, f".{node.attr}")

    def _on_Getitem(self, node: Any) -> None:  # noqa: N802
        if type(node.arg).__name__ == "Slice":
            return
        self._check_key_expr(node, node.arg, "[…]")
        self._check_gadget(node, node.node)

    def _on_Keyword(self, node: Any) -> None:  # noqa: N802
        if DUNDER.fullmatch(node.key):
            self._add(CRITICAL, node, f"passes the dunder name {node.key!r} as a keyword argument", node.key)

    def _on_Call(self, node: Any) -> None:  # noqa: N802
        callee = node.node
        if type(callee).__name__ == "Getattr":
            if callee.attr in DANGEROUS_CALLS and not self._plain_data(callee.node):
                self._add(CRITICAL, node, f"calls .{callee.attr}(), a file or process operation", callee.attr)
            if callee.attr in ("format", "format_map"):
                self._check_format(node, callee.node)
        self._check_arguments(node, "call")

    def _on_Filter(self, node: Any) -> None:  # noqa: N802
        self._on_filter_or_test(node, "filter")

    def _on_Test(self, node: Any) -> None:  # noqa: N802
        self._on_filter_or_test(node, "test")

    def _on_filter_or_test(self, node: Any, kind: str) -> None:
        self._check_arguments(node, f"{kind} {node.name!r}")
        if kind == "filter" and node.name == "attr":
            if node.args:
                self._check_key_expr(node, node.args[0], "|attr")
            if node.node is not None:
                self._check_gadget(node, node.node)
        if kind == "filter" and node.name in ATTRIBUTE_FILTERS:
            for kw in node.kwargs:
                if kw.key == "attribute":
                    self._check_key_expr(node, kw.value, f"|{node.name}(attribute=…)")

    # --- helpers --------------------------------------------------------------------
    def _check_key(self, node: Any, name: str, shown: str) -> None:
        if DUNDER.fullmatch(name):
            self._add(CRITICAL, node, f"accesses the dunder attribute {name!r} ({shown}), the first step of a "
                      "sandbox escape", name)
        elif name in DANGEROUS_ATTRS:
            self._add(CRITICAL, node, f"accesses {name!r} ({shown}), a route to Python internals or the OS", name)
        elif name.startswith("_"):
            self._add(SUSPICIOUS, node, f"accesses the private attribute {name!r} ({shown}), which the Jinja "
                      "sandbox blocks and chat templates never need", name)

    def _check_key_expr(self, node: Any, expr: Any, shown: str) -> None:
        possible = self.values.values(expr)
        for value in sorted(v for v in possible if isinstance(v, str)):
            self._check_key(node, value, shown)
        if UNKNOWN not in possible:
            return
        pieces = "".join(self.values.literal_pieces(expr))
        if "__" in pieces:
            self._add(CRITICAL, node, f"builds an attribute or key name containing '__' at run time ({shown})",
                      f"dynamic:{pieces[:40]}")
        elif shown == "|attr":
            self._add(SUSPICIOUS, node, "uses |attr with a name computed at run time, which hides the attribute "
                      "being read", "dynamic |attr")

    def _check_gadget(self, node: Any, base: Any) -> None:
        if type(base).__name__ == "Name" and base.ctx == "load" and base.name in GADGETS \
                and base.name not in self.bound:
            self._add(CRITICAL, node, f"reads an attribute of the Jinja global {base.name!r} itself, the way "
                      "escapes reach __globals__ and the os module", f"gadget:{base.name}")

    def _check_arguments(self, node: Any, what: str) -> None:
        args = list(node.args) + [kw.value for kw in node.kwargs]
        for arg in args:
            values = self.values.strings(arg)
            for value in sorted(values or ()):
                if DUNDER.search(value):
                    self._add(CRITICAL, node, f"passes the dunder name {value!r} to {what}", value)

    def _check_format(self, node: Any, fmt_expr: Any) -> None:
        for fmt in sorted(self.values.strings(fmt_expr) or ()):
            for field in _format_fields(fmt):
                if DUNDER.search(field):
                    self._add(CRITICAL, node, f"format string field {{{field}}} reads a dunder attribute", field)
                elif "." in field or "[" in field:
                    self._add(SUSPICIOUS, node, f"format string field {{{field}}} reads attributes of its "
                              "argument", field)

    def _check_built_string(self, node: Any) -> None:
        for value in sorted(self.values.strings(node) or ()):
            match = DUNDER.search(value)
            if match:
                self._add(CRITICAL, node, f"builds the name {match.group(0)!r} from pieces, an obfuscated "
                          "sandbox escape", match.group(0))

    @staticmethod
    def _plain_data(base: Any) -> bool:
        """`'text'.read()` and friends on a literal cannot reach a file."""
        return type(base).__name__ in ("Const", "List", "Tuple", "Dict")


def _format_fields(fmt: str) -> list[str]:
    try:
        return [field for _, field, _, _ in string.Formatter().parse(fmt) if field]
    except (ValueError, IndexError):
        return []


def _all_nodes(tree: Any, node_type: type) -> list[Any]:
    """Every node, parents first, without recursion (hostile templates nest deeply)."""
    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        out.append(node)
        found = children(node, node_type)
        found.reverse()
        stack.extend(found)
    return out


def report_template(key: str, text: str, emit: Any, credentials: bool = True) -> None:
    """Parse one chat template and emit its findings (code, message, details) through `emit`."""
    from ._metadata_checks import credential_kind

    try:
        found = analyze(text)
    except TemplateSyntax as exc:
        line = f" (line {exc.line})" if exc.line else ""
        emit("MA-G006", f"Chat template {key!r} does not parse as Jinja{line}: {exc}", {"key": key, "line": exc.line})
        return
    for item in found:
        emit(item.code, f"Chat template {key!r} line {item.line}: {item.message}",
             {"key": key, "line": item.line, "construct": item.detail})
    kind = credential_kind(text) if credentials else None
    if kind:
        emit("MA-C002", f"Chat template {key!r} contains what looks like a {kind}", {"key": key, "kind": kind})
