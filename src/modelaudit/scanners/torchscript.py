"""TorchScript archives (torch.jit.save) and their code.

A TorchScript archive is a torch zip with `code/__torch__/**.py` (the scripted program, a
restricted Python subset that torch.jit.load compiles with its own compiler), `constants.pkl`,
`data.pkl`, `*.debug_pkl` and `extra/` files. Two things differ from a plain checkpoint:

- torch.load hands any zip holding a top-level `constants.pkl` to torch.jit.load, whose C++
  unpickler resolves `__torch__.*` classes from the archive's own code and the
  `torch.jit._pickle` list builders from a fixed table; it never imports a Python callable.
  Those references are therefore not reported as unknown or dangerous pickle globals here.
  Every other global is still reported as the pickle policy says.
- The code runs TorchScript operators. Operators and TorchBind classes outside the namespaces
  PyTorch and its domain libraries define come from a native library that must be loaded
  first (MA-H008); a library load in TorchScript code is critical. The code is also put
  through the general Python analysis (python_code.py), so anything resembling Python-level
  command execution is reported too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._pickle_scan import walk_pickle
from .base import IssueSeverity, ScanResult

if TYPE_CHECKING:
    from ..blob import Blob
    from ._python_static import CodeFinding
    from ..context import ScanContext

CUSTOM_OP, CODE_EXEC = "MA-H008", "MA-H002"
# namespaces registered by libtorch itself, and by the PyTorch domain libraries
KNOWN_NAMESPACES = frozenset({
    "aten", "prim", "prims", "quantized", "_quantized", "quantized_decomposed", "quantization", "profiler",
    "mkl", "mkldnn", "mkldnn_prepacked", "onednn", "xnnpack", "prepacked", "sparse", "_c10d_functional",
    "_c10d_functional_autograd", "c10d", "c10d_functional", "dist_c10d", "_dtensor", "inductor", "inductor_prims",
    "rngprims", "debugprims", "higher_order", "static_runtime", "symm_mem", "onnx", "export", "_native", "cuda",
    "_caffe2", "torchvision", "torchaudio", "torchtext", "image",
})
# torch.jit._pickle helpers the TorchScript unpickler implements natively
JIT_PICKLE_HELPERS = frozenset({"build_intlist", "build_tensorlist", "build_doublelist", "build_boollist",
                                "build_complexlist", "build_tensor_from_id", "restore_type_tag"})
_LIBRARY_LOADS = ("ops.load_library", "torch.ops.load_library", "classes.load_library",
                  "torch.classes.load_library")
# aten ops that read, write or map files at a path of the code's choosing: torch.load runs TorchScript
# archives through torch.jit.load even with weights_only=True (CVE-2025-32434), and scripted models never need them
_FILE_OPS = frozenset({f"{ns}.{op}" for ns in ("ops.aten", "torch.ops.aten", "torch") for op in ("save", "from_file")})


def is_code_member(name: str) -> bool:
    """`archive/code/__torch__/….py` (or `code/__torch__.py`) inside a TorchScript archive."""
    path = "/" + name.replace("\\", "/")
    return path.endswith(".py") and ("/code/__torch__/" in path or path.endswith("/code/__torch__.py"))


def is_archive(names: list[str]) -> bool:
    """torch.load dispatches to torch.jit.load when a top-level constants.pkl is present."""
    candidates = [n for n in names if n.endswith("constants.pkl")]  # one quick pass over many members
    return any(n == "constants.pkl" or (n.count("/") == 1 and n.endswith("/constants.pkl")) for n in candidates)


def namespace_of(name: str) -> tuple[str, str] | None:
    """('acme', 'acme::fused_gelu') for ops.acme.fused_gelu, torch.ops.acme.…, torch.classes.acme.…"""
    parts = name.split(".")
    for prefix in (("ops",), ("torch", "ops"), ("classes",), ("torch", "classes"),
                   ("__torch__", "torch", "classes")):
        n = len(prefix)
        if tuple(parts[:n]) == prefix and len(parts) > n + 1:
            return parts[n], f"{parts[n]}::{parts[n + 1]}"
    return None


def check_code_names(names: dict[str, int]) -> list[CodeFinding]:
    """Findings for the qualified names TorchScript code uses (from the static analysis)."""
    from ._python_static import CodeFinding  # the code reader is only needed for TorchScript archives

    out: list[CodeFinding] = []
    seen: set[str] = set()
    for name, line in names.items():
        if name.startswith(_LIBRARY_LOADS) or name in _LIBRARY_LOADS:
            out.append(CodeFinding(CODE_EXEC, f"loads a native library ({name}); TorchScript written by torch "
                                   "never does", line, name))
            continue
        if name in _FILE_OPS:
            out.append(CodeFinding("MA-H003", f"calls {name}, which reads, writes or maps a file at a path the code "
                                   "chooses; TorchScript written by torch never does", line, name,
                                   IssueSeverity.CRITICAL))
            continue
        found = namespace_of(name)
        if found is None or found[0] in KNOWN_NAMESPACES or found[0] in seen:
            continue
        seen.add(found[0])
        out.append(CodeFinding(CUSTOM_OP, f"uses {found[1]} from the custom namespace {found[0]!r}, which needs a "
                               "native library registering it", line, f"namespace:{found[0]}"))
    return out


def walk_archive_pickle(buf: Any, blob: Blob, result: ScanResult, ctx: ScanContext) -> None:
    """Walk a pickle of a TorchScript archive, read the way torch.jit.load reads it."""
    scratch = ScanResult(result.scanner_name)
    try:
        walk_pickle(buf, blob, scratch, ctx)
    finally:
        for issue in scratch.issues:
            custom = _custom_class(issue.details)
            if custom is not None:
                result.report(CUSTOM_OP, f"TorchBind class {custom[1]} from the custom namespace {custom[0]!r} "
                              "needs a native library registering it", issue.location, {**issue.details})
            elif not _resolved_by_torchscript(issue.rule_code, issue.details):
                result.issues.append(issue)
        scratch.issues = []
        result.merge(scratch)


def _resolved_by_torchscript(code: str, details: dict[str, Any]) -> bool:
    module, function = str(details.get("module", "")), str(details.get("function", ""))
    if code == "MA-P002" and (module == "__torch__" or module.startswith("__torch__.")):
        return True  # a class compiled from the archive's own code/ (or a registered TorchBind class)
    return code == "MA-P001" and module == "torch.jit._pickle" and function in JIT_PICKLE_HELPERS


def _custom_class(details: dict[str, Any]) -> tuple[str, str] | None:
    module = str(details.get("module", ""))
    if not module.startswith("__torch__.torch.classes."):
        return None
    found = namespace_of(f"{module}.{details.get('function', '')}")
    return found if found is not None and found[0] not in KNOWN_NAMESPACES else None
