"""More dangerous families for pickle_policy: published gadgets beyond the obvious modules.

Each entry is a dotted prefix, as in pickle_policy.DANGEROUS. They come in kinds rather than
single names: evaluators of strings (typing's annotation evaluation, ImageMath, agent
interpreters), resolvers that turn a string into any callable (hydra, gym registries), writers
and readers of files and URLs outside the obvious modules, and calls that change how later
loads behave (the copyreg extension registry, torch's weights_only allowlist).

Two shapes are recognised without listing names: vendored or private mirrors of a module
(joblib.externals.cloudpickle is cloudpickle, keras.src.saving is keras.saving, tf_keras is
keras), and callables whose own name says what they do (from_pretrained, loads, eval, system).
"""

from __future__ import annotations

GADGET_FAMILIES: dict[str, tuple[str, ...]] = {
    "command-execution": (
        "loky", "joblib.externals.loky", "jupyter_client.launcher", "mlflow.utils.process", "mlflow.projects",
        "PIL.ImageShow", "PIL.EpsImagePlugin.Ghostscript"),
    "code-evaluation": (
        # string annotations are evaluated with eval(): type("X", (), {"__annotations__": {...}}) + get_type_hints
        "typing.get_type_hints", "typing.evaluate_forward_ref", "typing.ForwardRef._evaluate",
        "typing.ForwardRef.evaluate", "annotationlib",
        "PIL.ImageMath", "Cython", "pyximport", "langchain_experimental", "langchain_community.utilities.python",
        "langchain.python", "transformers.agents", "transformers.tools", "smolagents", "sklearn.utils._testing",
        "torch._jit_internal", "torch._C._import_ir_module", "torch._C._import_ir_module_from_package",
        "pandas.DataFrame.eval", "pandas.DataFrame.query", "pandas.core.frame.DataFrame.eval",
        "pandas.core.frame.DataFrame.query",
        # "module:attr" or dotted strings turned into objects and called (Hydra _target_, gym entry points)
        "hydra", "gym.make", "gymnasium.make", "gym.envs.registration", "gymnasium.envs.registration"),
    "call-composition": ("builtins.map", "builtins.filter", "codecs.register"),
    "interpreter-state": (
        # a file that registers extension codes or reducers, or widens torch's weights_only allowlist,
        # changes what later opcodes and later loads resolve to
        "copyreg.add_extension", "copyreg.remove_extension", "copyreg.clear_extension_cache", "copyreg.pickle",
        "copyreg.constructor", "copyreg.dispatch_table", "copyreg._inverted_registry", "copyreg._extension_cache",
        "torch.serialization.add_safe_globals", "torch.serialization.safe_globals",
        "torch.serialization.clear_safe_globals", "torch.serialization.register_package",
        "torch._weights_only_unpickler"),
    "file-access": (
        # the public path classes themselves are allowlisted; any method reached through them touches files
        "pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath",
        "zipapp", "pstats", "logging.basicConfig", "gzip.GzipFile", "bz2.BZ2File", "lzma.LZMAFile", "mailbox",
        "wave.open", "aifc.open", "sunau.open", "numpy.fromregex", "numpy.rec.fromfile",
        "numpy._core.records.fromfile", "scipy.io", "scipy.sparse.load_npz", "scipy.sparse.save_npz",
        "xml.etree.ElementTree.parse", "xml.etree.ElementTree.iterparse", "xml.etree.ElementTree.ElementTree",
        "xml.etree.ElementInclude", "xml.dom.minidom.parse", "xml.dom.pulldom", "xml.dom.expatbuilder",
        # every pandas reader takes a path or URL (read_csv, read_pickle ... are listed with their families)
        *(f"pandas.read_{kind}" for kind in ("json", "parquet", "feather", "table", "fwf", "stata", "sas", "spss",
                                              "orc", "gbq", "sql_query", "sql_table"))),
    "network-access": (
        "xml.sax", "numpy.DataSource", "numpy.lib._datasource", "numpy.lib.npyio.DataSource",
        "torch.utils.model_zoo", "wsgiref", "datasets.load", "datasets.load_dataset", "datasets.load_from_disk",
        "transformers.pipeline", "transformers.pipelines.pipeline",
        # distributed training: a tracker binds a listening socket, a communicator joins a cluster
        "xgboost.tracker", "xgboost.collective", "xgboost.federated"),
    "nested-loader": ("yaml", "ruamel.yaml", "tf_keras.models.load_model", "tf_keras.saving"),
    "device-control": ("fcntl", "termios"),
}
NEW_FAMILY_WHY = {
    "device-control": "controls terminals and devices (an ioctl such as TIOCSTI types commands into the "
                      "user's shell)",
}

# A segment after which a package keeps a private copy of another library.
_VENDOR_SEGMENTS = frozenset({"externals", "_externals", "_vendor", "vendor", "_vendored", "vendored"})
# Roots whose implementation lives under root.src (or root._src) and is re-exported as root.*.
_SRC_ROOTS = frozenset({"keras", "tf_keras", "jax"})
_ROOT_MIRRORS = {"tf_keras": "keras"}


def mirror_modules(module: str) -> list[str]:
    """Other spellings of `module` that behave like it: vendored copies and private implementations."""
    parts = module.split(".")
    out: list[str] = []
    for i, part in enumerate(parts[:-1]):
        if part in _VENDOR_SEGMENTS:
            out.append(".".join(parts[i + 1:]))
    if len(parts) > 1 and parts[0] in _SRC_ROOTS and parts[1] in ("src", "_src"):
        parts = [parts[0], *parts[2:]]
        out.append(".".join(parts))
    if parts[0] in _ROOT_MIRRORS:
        out.append(".".join([_ROOT_MIRRORS[parts[0]], *parts[1:]]))
    return out


# The callable's own (last) name says what calling it does, whatever module holds it.
_NAME_SHAPES: dict[str, tuple[str, frozenset[str]]] = {
    "nested-loader": ("loads another serialized model or object (often from a hub), which can itself run code",
                      frozenset({"loads", "from_pretrained", "load_learner", "load_model", "load_from_checkpoint",
                                 "restore_from", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all",
                                 "load_all", "read_pickle", "load_pickle", "pickle_loads"})),
    "code-evaluation": ("evaluates or executes code handed to it as a string or file",
                        frozenset({"eval", "exec", "unsafe_eval", "lambda_eval", "exec_module", "execfile",
                                   "run_code", "runcode", "runsource", "run_path", "run_module",
                                   "evaluate_python_code", "exec_mod_from_location"})),
    "command-execution": ("runs operating-system commands",
                          frozenset({"system", "popen", "Popen", "spawn", "spawnv", "spawnl", "spawnvp", "spawnlp",
                                     "check_output", "check_call", "getoutput", "getstatusoutput", "exec_command",
                                     "run_command", "launch_kernel", "_exec_cmd"})),
    # methods of allowlisted classes named directly (`numpy matrix.dump`, `UntypedStorage.from_file`)
    "file-access": ("reads or writes a file at a path the pickle chooses",
                    frozenset({"tofile", "fromfile", "from_file", "to_file", "dump", "save", "savez",
                               "savez_compressed", "savetxt", "save_model", "save_pretrained", "save_weights",
                               "write_text", "write_bytes", "touch", "unlink", "rmtree", "symlink_to",
                               "hardlink_to", "chmod", "chown", "mkfifo"})),
}


def name_shape(name: str) -> tuple[str, str] | None:
    """(family, why) when the last part of a global's name is a well-known dangerous verb."""
    last = name.rsplit(".", 1)[-1]
    for family, (why, names) in _NAME_SHAPES.items():
        if last in names:
            return family, f"a callable named {last} {why}"
    return None
