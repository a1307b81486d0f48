"""Which globals a pickle may name: allowlist first, dangerous families, the rest unknown.

`classify(module, name)` resolves the reference the way `find_class` would (aliases,
dotted names walking attributes, dunder paths) and returns a Verdict.
"""

from __future__ import annotations

import _compat_pickle
import enum
import sys
from dataclasses import dataclass
from functools import lru_cache

from ._pickle_gadgets import GADGET_FAMILIES, NEW_FAMILY_WHY, mirror_modules, name_shape
from ._pickle_honest import HONEST_LIBRARY_NAMES


class Level(enum.IntEnum):
    SAFE = 0
    UNKNOWN = 1
    DANGEROUS = 2


@dataclass(frozen=True)
class Verdict:
    level: Level
    target: str  # the dotted path the reference resolves to
    family: str = ""
    why: str = ""
    rule_code: str = ""


# Python 2 and private aliases that find_class maps onto today's modules.
MODULE_ALIASES = {
    "__builtin__": "builtins", "__builtins__": "builtins", "copy_reg": "copyreg", "cPickle": "pickle",
    "_pickle": "pickle", "_compat_pickle": "pickle", "exceptions": "builtins", "UserDict": "collections",
    "numpy.core": "numpy._core", "_io": "io", "_operator": "operator", "_functools": "functools",
    "_collections": "collections", "_codecs": "codecs", "_socket": "socket", "_ssl": "ssl",
    "_posixshmem": "posix", "_winapi": "nt", "commands": "subprocess", "popen2": "subprocess",
}

# ---------------------------------------------------------------------------------------------
# Dangerous families: a dotted prefix matches itself and everything below it.
_EXEC = "runs operating-system commands"
_EVAL = "evaluates or compiles Python code, or imports arbitrary modules"
_FILES = "reads, writes or deletes files"
_NET = "opens network connections or downloads content"
_INSTALL = "installs packages or runs code through tooling"
_NATIVE = "loads native code or manipulates memory directly"
_LOADER = "loads another serialized object, which can itself run code"
_CALLS = "builds calls to arbitrary callables, hiding the real target"
_INTERP = "changes interpreter state (modules, import machinery, tracing)"

DANGEROUS: dict[str, tuple[str, str]] = {}


def _family(family: str, why: str, *prefixes: str) -> None:
    for prefix in prefixes:
        DANGEROUS[prefix] = (family, why)


_family("command-execution", _EXEC, "os", "posix", "nt", "subprocess", "_posixsubprocess", "pty", "asyncio",
        "multiprocessing", "concurrent", "platform.popen", "pipes", "spawn", "_subprocess", "uuid._get_command_stdout",
        "uuid._popen", "ctypes.util", "mailcap", "_osx_support", "_aix_support", "distutils.spawn", "signal",
        "pexpect", "ptyprocess", "sh", "plumbum", "torch.utils.collect_env", "torch.multiprocessing",
        "torch.distributed", "pandas.read_clipboard", "pandas.io.clipboard")
_family("code-evaluation", _EVAL, "builtins.eval", "builtins.exec", "builtins.execfile", "builtins.compile",
        "builtins.__import__", "builtins.getattr", "builtins.setattr", "builtins.delattr", "builtins.globals",
        "builtins.locals", "builtins.vars", "builtins.breakpoint", "builtins.input", "builtins.help",
        "builtins.reload", "builtins.apply", "builtins.memoryview", "importlib", "imp", "runpy", "code", "codeop",
        "marshal", "types", "pydoc", "pkgutil", "zipimport", "inspect", "sys", "gc", "weakref", "site",
        "sysconfig", "__main__.eval", "numpy.testing", "numpy.f2py", "numpy.distutils", "torch.jit",
        "torch._dynamo", "torch.compile", "torch.package", "torch.utils.cpp_extension", "torch._C._jit",
        "torch.ops", "torch._ops", "torch.classes", "jinja2", "mako", "IPython", "dill._dill._create_code",
        "dill._dill._create_function", "cloudpickle.cloudpickle._make_function", "_thread", "threading",
        # compilers, and tooling that compiles, imports or evaluates source handed to it
        "compileall", "py_compile", "modulefinder", "pyclbr", "rlcompleter", "_pyrepl", "interpreters",
        "_interpreters", "_xxsubinterpreters", "torch._inductor", "torch.fx", "torch.export", "torch._export",
        "torch.utils.bottleneck", "torch.utils.benchmark", "torch.testing", "pandas.eval", "pandas.core.computation",
        "numpy.ctypeslib",
        # libraries that evaluate expression strings with eval, or import code fetched from a model hub
        "numexpr", "sympy.sympify", "sympy.core.sympify", "sympy.parsing", "transformers.dynamic_module_utils")
_family("call-composition", _CALLS, "operator.attrgetter", "operator.methodcaller", "operator.call",
        "functools", "itertools.starmap", "copyreg.__reduce_ex__", "atexit", "sched", "contextlib.ExitStack")
_family("installers-and-debuggers", _INSTALL, "pip", "ensurepip", "venv", "setuptools", "distutils",
        "pkg_resources", "bdb", "pdb", "cProfile", "profile", "trace", "timeit", "doctest", "idlelib",
        "lib2to3", "unittest", "test", "tkinter", "turtle", "antigravity", "this", "code.interact",
        "virtualenv", "conda", "winreg", "_winreg")
_family("file-access", _FILES, "builtins.open", "builtins.file", "io", "shutil", "tempfile", "glob",
        "fileinput", "linecache", "tokenize", "pathlib.Path.write_text", "pathlib.Path.write_bytes",
        "pathlib.Path.unlink", "pathlib.Path.open", "pathlib.Path.read_text", "pathlib.Path.read_bytes",
        "logging.FileHandler", "logging.handlers", "logging.config", "codecs.open", "shelve", "dbm", "sqlite3",
        "tarfile", "zipfile", "gzip.open", "bz2.open", "lzma.open", "mmap", "filecmp", "netrc",
        "numpy.save", "numpy.savez", "numpy.savetxt", "numpy.fromfile", "numpy.loadtxt", "numpy.genfromtxt",
        "numpy.memmap", "numpy.tofile", "numpy.ndarray.tofile", "numpy.ndarray.dump", "pandas.read_csv", "pandas.io",
        "torch.save", "joblib.dump")
_family("network-access", _NET, "socket", "socketserver", "ssl", "http", "urllib", "urllib2", "urllib3",
        "requests", "httpx", "aiohttp", "ftplib", "smtplib", "poplib", "imaplib", "telnetlib", "xmlrpc",
        "webbrowser", "asynchat", "asyncore", "nntplib", "smtpd", "torch.hub", "huggingface_hub",
        "transformers.utils.hub", "keras.utils.get_file", "tensorflow.keras.utils.get_file",
        "sklearn.datasets", "wget", "paramiko", "boto3", "botocore")
_family("native-code", _NATIVE, "ctypes", "_ctypes", "cffi", "_cffi_backend", "torch.classes.load_library",
        "torch.ops.load_library", "resource")
_family("nested-loader", _LOADER, "pickle", "dill", "cloudpickle", "joblib.load", "joblib.numpy_pickle.load",
        "numpy.load", "torch.load", "torch.serialization.load", "torch.serialization._load", "pandas.read_pickle",
        "keras.models.load_model", "keras.saving", "tensorflow", "yaml.load", "yaml.unsafe_load",
        "jsonpickle", "shelve.open", "copyreg._extension_registry", "numpy.lib.npyio", "numpy.lib._npyio_impl",
        "numpy.lib.format", "numpy.lib._format_impl", "torch.utils.data.datapipes", "torch.utils._config_module",
        "pandas.read_hdf", "pandas.read_sql", "pandas.read_html", "pandas.read_xml", "pandas.read_excel",
        "mlflow.pyfunc.load_model", "mlflow.pyfunc.load_pyfunc", "mlflow.sklearn.load_model",
        "mlflow.pytorch.load_model")
# Published gadgets of further kinds (string evaluators, name resolvers, registry changes ...): _pickle_gadgets.
_WHY = {"command-execution": _EXEC, "code-evaluation": _EVAL, "call-composition": _CALLS, "file-access": _FILES,
        "network-access": _NET, "native-code": _NATIVE, "nested-loader": _LOADER, "interpreter-state": _INTERP,
        **NEW_FAMILY_WHY}
for _name, _prefixes in GADGET_FAMILIES.items():
    _family(_name, _WHY[_name], *_prefixes)

# Python 2 names that find_class rewrites (fix_imports): ("__builtin__", "reduce") is functools.reduce.
_PY2_MODULES: dict[str, str] = dict(_compat_pickle.IMPORT_MAPPING)
_PY2_NAMES: dict[tuple[str, str], tuple[str, str]] = dict(_compat_pickle.NAME_MAPPING)


def split_reference(text: str) -> tuple[str, str]:
    """(module, attribute path) of a callable named in a string: "module:attr.path" as pkgutil.resolve_name
    and Hydra write it, else split at the last dot. Either part may be empty."""
    module, sep, name = text.partition(":")
    if not sep:
        module, _, name = text.rpartition(".")
    return module, name


def py2_targets(module: str, name: str) -> list[str]:
    """The dotted paths a Python 2 spelling resolves to once find_class applies fix_imports."""
    out = []
    if (module, name) in _PY2_NAMES:
        out.append(".".join(_PY2_NAMES[(module, name)]))
    root, _, rest = module.partition(".")
    if root in _PY2_MODULES:
        mapped = _PY2_MODULES[root] + (f".{rest}" if rest else "")
        out.append(f"{mapped}.{name}")
    return out


def structural_danger(module: str, name: str = "") -> tuple[str, str, str] | None:
    """Families recognised by the shape of the reference rather than by name.

    A top-level module with one leading underscore is interpreter or extension internals
    (_posixsubprocess, _interpreters, _pyrepl ...): honest model files reach those only through
    their public aliases, which normalize_module has already applied. A private module-level
    helper of the standard library (uuid._get_command_stdout, ensurepip._run_pip, runpy._run_code)
    is the same kind of internal. A dunder part inside a module path (pkg.__main__) imports a
    script, running its top-level code. Allowlisted references never reach this check.
    """
    parts = module.split(".")
    first = name.split(".")[0]
    if parts[0] in sys.stdlib_module_names and first.startswith("_") and not first.startswith("__"):
        return ("private-stdlib-helper", f"{module}.{first} is a private helper of the standard library; such "
                "helpers run commands or code without the checks of the public API", "MA-P001")
    if parts[0].startswith("_") and not parts[0].startswith("__"):
        return ("private-module", f"{parts[0]} is a private interpreter or extension module that exposes "
                "internals (process spawning, sub-interpreters, import machinery) without public safeguards",
                "MA-P001")
    if any(p.startswith("__") and p.endswith("__") for p in parts[1:]):
        return ("dunder-path", "the module path names a package's __main__ (or another dunder module), so "
                "importing it runs that script", "MA-P003")
    return None

# ---------------------------------------------------------------------------------------------
# Allowlist: exact references honest model files use.
SAFE_EXACT: frozenset[str] = frozenset({
    # builtins used by plain containers and numbers
    *(f"builtins.{n}" for n in ("set", "frozenset", "list", "dict", "tuple", "bytearray", "bytes", "int", "float",
                                "complex", "str", "bool", "slice", "range", "object", "NoneType", "Ellipsis",
                                "NotImplemented", "True", "False", "None", "unicode", "long", "basestring")),
    "collections.OrderedDict", "collections.defaultdict", "collections.Counter", "collections.deque",
    "collections.namedtuple",
    "copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__",
    "codecs.encode",  # protocol 2 writes bytes as codecs.encode(text, "latin1")
    "datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta", "datetime.timezone",
    "decimal.Decimal", "fractions.Fraction", "uuid.UUID", "enum.Enum",
    "re._compile", "argparse.Namespace", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath", "pathlib.Path",
    # numpy
    "numpy.ndarray", "numpy.dtype", "numpy.matrix", "numpy._core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar", "numpy._core.numeric._frombuffer", "numpy.core.numeric._frombuffer",
    "numpy.random._pickle.__randomstate_ctor", "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__generator_ctor", "numpy.random.__RandomState_ctor", "numpy.ma.core._mareconstruct",
    "numpy.random.mtrand.RandomState", "numpy.random._generator.Generator", "numpy._globals._NoValue",
    "numpy.random.bit_generator.SeedSequence", "numpy._core.multiarray.flagsobj",
    # bit generators: RandomState/Generator pickles name the class; state is restored by __setstate__
    "numpy.random._mt19937.MT19937", "numpy.random._pcg64.PCG64", "numpy.random._pcg64.PCG64DXSM",
    "numpy.random._philox.Philox", "numpy.random._sfc64.SFC64",
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",  # Cython's checksum-checked setstate
    # scalar types (dtype= hyperparameters, np.intc/np.double aliases pickle as these names)
    *(f"numpy.{n}" for n in (
        "bool", "bool_", "bytes_", "str_", "object_", "void", "half", "single", "double", "longdouble",
        "float16", "float32", "float64", "complex64", "complex128", "clongdouble", "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64", "intc", "uintc", "intp", "uintp", "int_", "uint", "longlong",
        "ulonglong", "short", "ushort", "byte", "ubyte", "datetime64", "timedelta64", "generic", "number",
        "integer", "signedinteger", "unsignedinteger", "inexact", "floating", "complexfloating", "flexible",
        "character")),
    "numpy.ma.MaskedArray", "numpy.ma.core.MaskedArray", "numpy.ma.core.MaskedConstant", "numpy.recarray",
    "numpy.rec.recarray", "numpy.record", "numpy.rec.record",
    "numpy.mean",  # FeatureAgglomeration's default pooling_func: a pure reduction
    # torch tensors and modules
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_sparse_csr",
    "torch._utils._rebuild_device_tensor_from_numpy", "torch._utils._rebuild_meta_tensor_no_storage",
    "torch._utils._rebuild_wrapper_subclass", "torch._utils._rebuild_nested_tensor",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor", "torch._tensor._rebuild_from_type_v2",
    "torch._tensor._rebuild_from_type", "torch.nn.parameter.Parameter", "torch.nn.parameter.Buffer",
    "torch.nn.parameter.UninitializedParameter", "torch.Size", "torch.device", "torch.dtype",
    "torch.Tensor", "torch._C._nn.gelu", "torch._C._nn.softplus",
    # activation functions modules keep as attributes (TransformerEncoderLayer(activation=F.relu)): pure math
    *(f"torch.nn.functional.{n}" for n in ("relu", "gelu", "silu", "elu", "celu", "selu", "leaky_relu", "relu6",
                                           "sigmoid", "tanh", "softmax", "log_softmax", "mish", "hardswish",
                                           "hardsigmoid", "glu")),
    "torch.torch_version.TorchVersion", "torch.memory_format",
    "torch.layout", "torch.storage.TypedStorage", "torch.storage.UntypedStorage", "torch.storage._load_from_bytes",
    "torch.serialization._get_layout", "torch.nn.modules.module._IncompatibleKeys", "torch.per_tensor_affine",
    "torch.contiguous_format", "torch.channels_last", "torch.preserve_format", "torch.strided",
    "torch.sparse_coo", "torch.float32", "torch.float16", "torch.bfloat16", "torch.float64", "torch.int64",
    "torch.int32", "torch.int16", "torch.int8", "torch.uint8", "torch.bool", "torch.complex64",
    "torch.complex128", "torch.float8_e4m3fn", "torch.float8_e5m2", "torch.qint8", "torch.quint8",
    # the rest of torch's dtype, qscheme, layout and memory-format constants: values, not callables
    *(f"torch.{n}" for n in (
        "bit", "bits16", "bits1x8", "bits2x4", "bits4x2", "bits8", "cdouble", "cfloat", "chalf", "complex32",
        "double", "float", "float4_e2m1fn_x2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "half",
        "int", "long", "short", "qint32", "quint2x4", "quint4x2", "uint16", "uint32", "uint64",
        *(f"int{i}" for i in range(1, 8)), *(f"uint{i}" for i in range(1, 8)),
        "per_channel_affine", "per_channel_affine_float_qparams", "per_channel_symmetric", "per_tensor_symmetric",
        "channels_last_3d", "legacy_contiguous_format", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc",
        "jagged")),
    # scikit-learn / joblib / xgboost / lightgbm helpers that are functions rather than classes
    "joblib.numpy_pickle.NumpyArrayWrapper", "joblib.numpy_pickle_compat.NDArrayWrapper",
    "joblib.numpy_pickle.ZNDArrayWrapper", "sklearn.utils._bunch.Bunch",
    "sklearn.metrics._scorer._passthrough_scorer", "sklearn.metrics._scorer._PassthroughScorer",
    # Cython pickling helper of the KD/ball trees and distance metrics: cls.__new__(cls), like __newobj__
    "sklearn.metrics._dist_metrics.newObj", "sklearn.neighbors._kd_tree.newObj", "sklearn.neighbors._ball_tree.newObj",
    # pure numeric functions that estimators store as default hyperparameters (score_func=f_classif, ...)
    *(f"sklearn.feature_selection._univariate_selection.{n}" for n in ("f_classif", "f_regression", "chi2",
                                                                      "r_regression", "f_oneway")),
    *(f"sklearn.cluster._kmeans._kmeans_single_{n}" for n in ("lloyd", "elkan")),
    "scipy.interpolate._bsplines.BSpline", "scipy._lib.array_api_compat.numpy._aliases.asarray",
    "scipy.sparse._csr.csr_matrix", "scipy.sparse._csc.csc_matrix", "scipy.sparse.csr.csr_matrix",
    "scipy.sparse.csc.csc_matrix", "scipy.sparse._coo.coo_matrix",
    "_codecs.encode", "pandas._libs.internals._unpickle_block", "pandas.core.internals.managers.BlockManager",
    "pandas.core.frame.DataFrame", "pandas.core.series.Series", "pandas.core.indexes.base._new_Index",
    "pandas.core.indexes.base.Index", "pandas.core.indexes.range.RangeIndex",
})
SAFE_EXACT |= HONEST_LIBRARY_NAMES  # numpy math, sklearn metrics, torch hooks, pandas: _pickle_honest

# Helpers that are harmless or dangerous depending on their arguments (dill writes complex numbers,
# defaultdict(list) and numpy arrays through them). Naming one is quiet; every call of one is judged
# by _pickle_relaxations.check, which reports anything it cannot prove harmless as MA-P001 naming the
# helper. Exact dotted paths only: every other dill name stays in the nested-loader family.
# functools.partial wraps a function without calling it (HistGradientBoosting keeps partial(check_array)):
# allowed only around an allowlisted function, every other functools name stays call composition.
# torch.ScriptObject restores a TorchBind object (dynamic-quantized LSTM/Linear packed weights): allowed
# only for the classes PyTorch itself defines. builtins.getattr is how methods and timezones pickle:
# allowed only on an allowlisted class or its instance, and the method it names is judged in turn.
ARGUMENT_CHECKED: frozenset[str] = frozenset({"dill._dill._load_type", "dill._dill._create_array",
                                              "functools.partial", "torch.ScriptObject", "builtins.getattr"})
ARGUMENT_CHECKED_FAMILY = "argument-checked"

# Packages whose *classes* (capitalised final name) are data containers restored with
# __setstate__, never by running code chosen by the file.
SAFE_CLASS_PACKAGES: tuple[str, ...] = (
    "torch.nn.modules", "torch.nn.utils.parametrize", "torch.optim", "torch.ao.nn", "torch.nn.intrinsic",
    "sklearn", "xgboost", "lightgbm", "catboost", "numpy.dtypes", "numpy._core", "numpy.core",
    "scipy.sparse", "joblib.numpy_pickle", "collections", "tokenizers", "transformers.models",
    "transformers.configuration_utils", "transformers.tokenization_utils_base",
)
# Modules of those packages that still must never be trusted by class name alone.
# xgboost's tracker and communicator classes open listening sockets or join a cluster when constructed.
_CLASS_EXCEPTIONS = ("sklearn.datasets", "sklearn.utils._testing", "sklearn.externals", "torch.optim.lr_scheduler.LambdaLR",
                     "xgboost.tracker", "xgboost.collective", "xgboost.federated", "xgboost.testing")

_PRIVATE_CLASS_PACKAGES = ("sklearn.",)

_DUNDER_OK = frozenset({"__newobj__", "__newobj_ex__", "__randomstate_ctor", "__bit_generator_ctor",
                        "__generator_ctor", "__RandomState_ctor"})


def normalize_module(module: str) -> str:
    if module in MODULE_ALIASES:
        return MODULE_ALIASES[module]
    root, _, rest = module.partition(".")
    if root in MODULE_ALIASES:
        return f"{MODULE_ALIASES[root]}.{rest}" if rest else MODULE_ALIASES[root]
    if module.startswith("numpy.core."):
        return "numpy._core." + module[len("numpy.core."):]
    return module


def _dangerous_prefix(path: str) -> tuple[str, tuple[str, str]] | None:
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in DANGEROUS:
            return key, DANGEROUS[key]
    return None


@lru_cache(maxsize=4096)
def classify(module: str, name: str) -> Verdict:
    raw_module = module.strip()
    module = normalize_module(raw_module)
    name = name.strip()
    target = f"{module}.{name}" if module else name
    name_parts = name.split(".")

    if not module or not name or not all(p.isidentifier() for p in (module + "." + name).split(".")):
        return Verdict(Level.DANGEROUS, target, "malformed-name", "the global name is not a valid Python "
                       "identifier path, so the import machinery is being abused", "MA-P007")
    if target in ARGUMENT_CHECKED:
        return Verdict(Level.SAFE, target, ARGUMENT_CHECKED_FAMILY, "this helper loads another serialized "
                       "object or wraps a callable; it is allowed only for the arguments listed in "
                       "_pickle_relaxations", "MA-P001")
    # Every way the reference could land in a dangerous family: the module itself, or an
    # attribute path through a module object re-exported by an innocent one (pathlib + "os.system").
    candidates = [target] + [normalize_module(".".join(name_parts[i:])) for i in range(len(name_parts) - 1)]
    candidates += py2_targets(raw_module, name)
    candidates += [f"{mirror}.{name}" for mirror in mirror_modules(module)]  # joblib.externals.cloudpickle ...
    if target not in SAFE_EXACT:
        for candidate in candidates:
            hit = _dangerous_prefix(candidate)
            if hit:
                family, why = hit[1]
                return Verdict(Level.DANGEROUS, target, family, f"{hit[0]} {why}", "MA-P001")
        shape = structural_danger(module, name)
        if shape:
            return Verdict(Level.DANGEROUS, target, shape[0], shape[1], shape[2])
        verb = name_shape(name)
        if verb:
            return Verdict(Level.DANGEROUS, target, verb[0], verb[1], "MA-P001")
    # After the families, so builtins.__import__ reports as code evaluation rather than as a walk.
    if any(p.startswith("__") and p.endswith("__") and p not in _DUNDER_OK for p in name_parts):
        return Verdict(Level.DANGEROUS, target, "dunder-path", "the name walks through special attributes "
                       "to reach objects the module does not export", "MA-P003")
    if target in SAFE_EXACT:
        return Verdict(Level.SAFE, target)
    if any(t in SAFE_EXACT for t in py2_targets(raw_module, name)):  # protocol 2 writes range as __builtin__.xrange
        return Verdict(Level.SAFE, target)
    if _safe_class(module, name_parts):
        return Verdict(Level.SAFE, target)
    if module == "torch" and len(name_parts) == 1 and name.endswith("Storage"):
        return Verdict(Level.SAFE, target)  # torch.FloatStorage and friends name tensor storage types
    return Verdict(Level.UNKNOWN, target, "unknown", "", "MA-P002")


def _safe_class(module: str, name_parts: list[str]) -> bool:
    first = name_parts[0]
    # scikit-learn also pickles private classes (_BinMapper, _CFNode, _CalibratedClassifier ...)
    private_ok = first[:1] == "_" and first[1:2].isupper() and (module + ".").startswith(_PRIVATE_CLASS_PACKAGES)
    if len(name_parts) != 1 or not (first[:1].isupper() or private_ok):
        return False
    full = f"{module}.{name_parts[0]}"
    if any(full == e or module == e or module.startswith(e + ".") for e in _CLASS_EXCEPTIONS):
        return False
    return any(module == p or module.startswith(p + ".") for p in SAFE_CLASS_PACKAGES)
