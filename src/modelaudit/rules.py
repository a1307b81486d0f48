"""The rule catalog: every finding carries one of these codes.

A code is chosen where the finding is made; the catalog gives its title, default
severity and the explanation shown as the finding's "why".
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import IssueSeverity

C, W, I = IssueSeverity.CRITICAL, IssueSeverity.WARNING, IssueSeverity.INFO


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    severity: IssueSeverity
    why: str
    cwe: str | None = None
    #: coverage rules say "this was not (fully) scanned": exit code 2 unless something worse was found
    coverage: bool = False


_TABLE: tuple[Rule, ...] = (
    # --- scan engine -------------------------------------------------------------
    Rule("MA-S001", "File too large to scan", W,
         "The file exceeds the configured size limit and was not scanned, so nothing can be said about its safety.", coverage=True),
    Rule("MA-S002", "Total scan size exceeded", W,
         "The configured total size budget was used up before this file; it was not scanned.", coverage=True),
    Rule("MA-S003", "Scan timeout", W,
         "The time budget ran out before the file was fully read; content past that point was not checked.", coverage=True),
    Rule("MA-S004", "Unknown or unhandled format", W,
         "No scanner understands this content, so it may hide anything; loaders may still interpret it.", coverage=True),
    Rule("MA-S005", "Scanner error", W,
         "A scanner stopped on malformed or hostile content; the file was not fully checked.", "CWE-20", coverage=True),
    Rule("MA-S006", "Missing optional dependency", W,
         "The scanner for this format needs an optional package that is not installed; install the named extra.", coverage=True),
    Rule("MA-S007", "File type mismatch", W,
         "The extension promises one format but the bytes are another. Loaders dispatch on content, so a renamed "
         "pickle still executes; this is a common way to slip dangerous files past extension-based checks.", "CWE-434"),
    Rule("MA-S008", "Format detected by content", I,
         "The file's format was identified from its bytes rather than its extension."),
    Rule("MA-S009", "Blacklisted model name", C,
         "The path or model name matches a pattern the user asked to block."),
    Rule("MA-S010", "Path not readable", W,
         "The path could not be opened, so it was not scanned.", coverage=True),
    Rule("MA-S011", "Link leaves the scanned tree", W,
         "A symbolic link points outside the directory being scanned; it was not followed.", "CWE-59"),
    Rule("MA-S012", "Nesting too deep", W,
         "Containers nest deeper than the configured budget; inner content was not scanned.", "CWE-674", coverage=True),
    Rule("MA-S013", "Executable file", C,
         "A native executable (ELF, PE or Mach-O) sits among model files; model files never need one.", "CWE-506"),
    # --- pickle family -----------------------------------------------------------
    Rule("MA-P001", "Dangerous global in pickle", C,
         "Unpickling imports this callable and can call it with attacker-chosen arguments: loading the file runs "
         "code on the loading machine.", "CWE-502"),
    Rule("MA-P002", "Unknown global in pickle", W,
         "Unpickling imports this module and may call the named object. It is not on the list of callables that "
         "honest model files use, so it needs review before the file is loaded.", "CWE-502"),
    Rule("MA-P003", "Dunder attribute path in pickle global", C,
         "The global name walks through dunder attributes (such as __builtins__ or __globals__) to reach objects "
         "the module does not export: a known way to reach eval or os.system through an innocent module.", "CWE-502"),
    Rule("MA-P004", "Call of a computed callable", W,
         "The pickle calls an object that was itself produced by a call (for example getattr's result); this hides "
         "the real target from simple name checks.", "CWE-502"),
    Rule("MA-P005", "Call result discarded", W,
         "A call is made only for its side effect and its result thrown away with POP: the shape of a payload "
         "injected into an otherwise normal file.", "CWE-502"),
    Rule("MA-P006", "Malformed pickle stream", W,
         "The stream breaks where the real unpickler would stop with an error. Anything before the break has "
         "already run when a loader reads it, and a broken tail is a way to confuse scanners.", "CWE-20"),
    Rule("MA-P007", "Unresolvable global name", C,
         "STACK_GLOBAL takes its module and name from values the scanner cannot resolve to text; the target is "
         "being hidden.", "CWE-502"),
    Rule("MA-P008", "Extension registry reference", W,
         "EXT opcodes name a global through copyreg's extension registry, which is set up by the loading process; "
         "the target cannot be known from the file.", "CWE-502"),
    Rule("MA-P009", "Pickle resource limit reached", W,
         "The pickle exceeds a scanner budget (stack, memo, container or nesting size); the rest was not analysed.",
         "CWE-400", coverage=True),
    Rule("MA-P010", "BUILD sets a dunder attribute", C,
         "The state applied by BUILD replaces special methods such as __setstate__ or __reduce__, so later opcodes "
         "call attacker-chosen code.", "CWE-502"),
    Rule("MA-P011", "Global applied as object state", W,
         "BUILD is applied to a class or function rather than to an instance, which changes module-level objects "
         "in the loading process.", "CWE-502"),
    Rule("MA-P012", "Embedded pickle", I,
         "A pickle is carried inside another pickle's data and is decoded when loaded; it was scanned as well."),
    # --- archives ----------------------------------------------------------------
    Rule("MA-A001", "Archive path traversal", C,
         "An archive entry names a path outside the extraction folder (.., an absolute path or a drive letter); "
         "extracting it writes anywhere the user can.", "CWE-22"),
    Rule("MA-A002", "Suspicious compression ratio", W,
         "The entry inflates more than 100 times its compressed size: the shape of a decompression bomb.", "CWE-409"),
    Rule("MA-A003", "Malformed archive", W,
         "The archive structure is damaged or inconsistent; loaders may read it differently than this scanner.",
         "CWE-20"),
    # --- tensor formats ----------------------------------------------------------
    Rule("MA-F001", "Malformed safetensors header", W,
         "The header is out of bounds, not JSON, or ambiguous (duplicate keys); readers may disagree on what "
         "the file holds, and a renamed or crafted file may be hiding behind the extension.", "CWE-20"),
    Rule("MA-F002", "Inconsistent safetensors layout", W,
         "Tensor sizes, dtypes or byte ranges do not add up: overlapping, out-of-file or undescribed bytes can "
         "smuggle data past readers that trust the header.", "CWE-20"),
    # --- gguf / ggml (MA-G0xx) -----------------------------------------------------
    # --- onnx (MA-O0xx) ------------------------------------------------------------
    # --- metadata ----------------------------------------------------------------
    Rule("MA-C001", "Code in model metadata", W,
         "Metadata is meant to be descriptive text; code-like content suggests an attempt to get it evaluated by "
         "a tool that reads the metadata.", "CWE-94"),
    Rule("MA-C002", "Credential in model metadata", W,
         "A secret (cloud key, token or private key) is embedded in the model's metadata and is published with "
         "the model.", "CWE-798"),
    # --- containers of pickles ---------------------------------------------------
    Rule("MA-T001", "Malformed PyTorch checkpoint", W,
         "The checkpoint does not have the structure torch writes; loaders may still read parts of it.", "CWE-20"),
    Rule("MA-J001", "Decompression budget exceeded", W,
         "The compressed data inflates past the configured budget (a decompression bomb or a very large file); "
         "the rest was not scanned.", "CWE-409", coverage=True),
    Rule("MA-N001", "NumPy object array", I,
         "Object arrays are stored as pickles and need allow_pickle=True to load; their pickle was scanned."),
    Rule("MA-N002", "Malformed NumPy file", W,
         "The .npy header or size does not match the data; numpy may refuse it or read it differently.", "CWE-20"),
    # --- plugins -----------------------------------------------------------------
    Rule("MA-X001", "Finding from a custom scanner", W,
         "Reported by a scanner registered by the user or a plugin."),
)

RULES: dict[str, Rule] = {rule.code: rule for rule in _TABLE}


def get_rule(code: str) -> Rule:
    try:
        return RULES[code]
    except KeyError:
        raise KeyError(f"unknown rule code {code!r}") from None
