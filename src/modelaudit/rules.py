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
    Rule("MA-S014", "Scan worker died", W,
         "The process scanning this file died before it reported (a crash in native parser code, the operating "
         "system's out-of-memory killer, or an abrupt exit). The file was not fully checked; hostile files "
         "crash parsers on purpose.", "CWE-400", coverage=True),
    Rule("MA-S015", "Memory limit reached", W,
         "Reading this file needed more memory than the scan may use (the worker cap set by --max-memory, or "
         "what the machine has); the rest was not checked. Files that make parsers allocate without bound are a "
         "denial-of-service vector.", "CWE-400", coverage=True),
    Rule("MA-S016", "Download integrity check failed", W,
         "The downloaded bytes do not match the checksum or size the remote server published for the file, so "
         "they are not what the repository holds: corrupted in transit, or altered by something in between. "
         "The file was not scanned.", "CWE-354", coverage=True),
    Rule("MA-S017", "Data does not match its DVC pointer", W,
         "The bytes found for a DVC-tracked file (in the workspace, the DVC cache or a remote) do not hash to the "
         "md5 recorded in its .dvc pointer, so they are not the version the repository committed: changed since "
         "`dvc add`, corrupted, or replaced in the cache or the remote. That copy was not scanned as the "
         "pointer's data.", "CWE-354"),
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
    Rule("MA-P013", "Loader fed data computed at load time", C,
         "A deserializer is called on bytes that are produced while loading rather than stored in the file, so "
         "the nested stream cannot be checked before it runs.", "CWE-502"),
    # --- archives ----------------------------------------------------------------
    Rule("MA-A001", "Archive path traversal", C,
         "An archive entry names a path outside the extraction folder (.., an absolute path or a drive letter); "
         "extracting it writes anywhere the user can.", "CWE-22"),
    Rule("MA-A002", "Suspicious compression ratio", W,
         "The entry inflates more than 100 times its compressed size: the shape of a decompression bomb.", "CWE-409"),
    Rule("MA-A003", "Malformed archive", W,
         "The archive structure is damaged or inconsistent; loaders may read it differently than this scanner.",
         "CWE-20"),
    Rule("MA-A004", "Archive entry read differently by strict and lenient readers", W,
         "A strict zip reader rejects this entry (bad CRC, encryption flag on plain data, mismatched names) but "
         "lenient loaders such as torch still read it: a way to hide content from tools.", "CWE-436"),
    Rule("MA-A005", "Archive link leaves the archive", C,
         "A symbolic or hard link entry points outside the extraction folder (an absolute path or one climbing "
         "with ..), or an entry is written through such a link: extracting it reads or overwrites files anywhere "
         "the user can. The link was not followed.", "CWE-59"),
    Rule("MA-A006", "Special file in archive", W,
         "The archive holds a device node or FIFO. Model archives never need one; extracting it as root creates "
         "a device, and reading a FIFO blocks the loader.", "CWE-73"),
    # --- tensor formats ----------------------------------------------------------
    Rule("MA-F001", "Malformed safetensors header", W,
         "The header is out of bounds, not JSON, or ambiguous (duplicate keys); readers may disagree on what "
         "the file holds, and a renamed or crafted file may be hiding behind the extension.", "CWE-20"),
    Rule("MA-F002", "Inconsistent safetensors layout", W,
         "Tensor sizes, dtypes or byte ranges do not add up: overlapping, out-of-file or undescribed bytes can "
         "smuggle data past readers that trust the header.", "CWE-20"),
    # --- gguf / ggml (MA-G0xx) -----------------------------------------------------
    Rule("MA-G001", "Malformed GGUF header", W,
         "The magic, version or tensor and key-value counts are invalid or claim more records than the file can "
         "hold. Loaders that trust the counts allocate huge tables or read past the end; a file like this is "
         "corrupt or crafted.", "CWE-20"),
    Rule("MA-G002", "Malformed GGUF metadata", W,
         "A key-value has a string length or array count beyond the end of the file (or whose product with the "
         "element size overflows it), an unknown value type, arrays nested past any reader's support, a duplicate "
         "key or an invalid general.alignment. Such lengths are how the heap-overflow and huge-allocation bugs "
         "reported against GGUF parsers are triggered, and duplicates make readers disagree.", "CWE-130"),
    Rule("MA-G003", "Inconsistent GGUF tensor layout", W,
         "Tensor infos have too many dimensions, an unknown ggml type or sizes that do not match the type's block "
         "size, or tensor data is misaligned, outside the file, overlapping, or leaves undescribed bytes. Readers "
         "that trust the header read out of bounds, and undescribed bytes can smuggle data past them.", "CWE-20"),
    Rule("MA-G004", "Chat template sandbox escape", C,
         "The Jinja chat template reaches Python internals (dunder attributes such as __class__ or __globals__, "
         "possibly spelled in pieces or through |attr), attributes of Jinja's global functions, or the os and "
         "subprocess modules. Runtimes that render the template with a Jinja environment that is not sandboxed, "
         "or with a sandbox bug, run code when the model is used (CVE-2024-34359, llama-cpp-python).", "CWE-1336"),
    Rule("MA-G005", "Suspicious chat template construct", W,
         "The chat template uses something honest chat templates never need: web-framework globals (config, "
         "request, self), private attributes, attribute names computed at run time, Jinja helper globals used by "
         "injection payloads, or statements that load other templates. It needs review before the model is "
         "served.", "CWE-1336"),
    Rule("MA-G006", "Chat template does not parse", W,
         "Jinja's parser rejects the chat template, so it could not be inspected; runtimes with other template "
         "parsers may still accept and render it.", "CWE-20"),
    Rule("MA-G007", "Malformed legacy GGML file", W,
         "The pre-GGUF header has an unknown version, implausible hyper-parameters or a vocabulary that runs past "
         "the end of the file; loaders that trust it read out of bounds.", "CWE-20"),
    Rule("MA-G008", "GGUF scan budget exceeded", W,
         "The header holds more tensors, key-values, array elements or template text than the scanner's budget; "
         "the rest was not checked.", "CWE-400", coverage=True),
    # --- onnx (MA-O0xx) ------------------------------------------------------------
    Rule("MA-O001", "Malformed ONNX protobuf", W,
         "The protobuf is truncated, declares lengths past its end, uses invalid wire types or nests deeper than "
         "parsers allow (or holds no graph). Loaders reject it or read it differently from this scanner, and a "
         "broken file is a way to hide content from checks.", "CWE-20"),
    Rule("MA-O002", "Custom ONNX operator domain", W,
         "Nodes use operators from a domain that neither ONNX nor onnxruntime defines. Running the model needs a "
         "custom operator library, native code that is not in the file and that does whatever it was built to do.",
         "CWE-829"),
    Rule("MA-O003", "Unknown operator in a standard ONNX domain", W,
         "The operator is not part of the standard domain it claims; it only runs if the loading process has "
         "registered a custom kernel under that name, which hides a custom operator behind a standard domain.",
         "CWE-829"),
    Rule("MA-O004", "Python operator in ONNX graph", C,
         "PyOp and PythonOp nodes call Python code (a module, class or function named in the model) when the "
         "graph executes: running the model runs that code on the loading machine.", "CWE-94"),
    Rule("MA-O005", "ONNX external data path traversal", C,
         "A tensor's external_data location is absolute, climbs out with '..', uses a drive letter or backslash "
         "trick, or resolves through a symbolic link outside the model's directory. Loading the model reads that "
         "file into a tensor, disclosing local files (the ONNX external-data path traversal, CVE-2022-25882 and "
         "CVE-2024-27318).", "CWE-22"),
    Rule("MA-O006", "Invalid ONNX external data reference", W,
         "External data has no location, an offset or length that is not a non-negative integer, points at "
         "something that is not a regular file, or runs past the end of the referenced file; loaders fail or "
         "read bytes the model does not describe.", "CWE-20"),
    Rule("MA-O007", "Missing ONNX external data file", W,
         "A tensor's data lives in a file that is not next to the model. Whatever sits at that path when the model "
         "is loaded becomes the tensor, and the weights that were published cannot be checked."),
    Rule("MA-O008", "Inconsistent ONNX tensor size", W,
         "The bytes or values a tensor carries do not match its dims and data type (or dims are negative or "
         "absurd, or values are stored twice). Readers that trust the header over-read or allocate huge buffers, "
         "and different readers see different weights.", "CWE-20"),
    Rule("MA-O009", "ONNX parse budget exceeded", W,
         "The protobuf holds more fields than the scanner's budget; the rest of the model was not checked.",
         "CWE-400", coverage=True),
    # --- keras (MA-K0xx) -----------------------------------------------------------
    Rule("MA-K001", "Lambda layer with serialized Python code", W,
         "The model stores a Python function as marshalled bytecode (a Lambda layer or a lambda used as an "
         "argument). Keras rebuilds and runs it when the model is loaded with safe_mode=False, and legacy H5 "
         "loading (tf.keras, Keras before 3.11) runs it whatever safe_mode says (CVE-2024-3660, CVE-2025-9905).",
         "CWE-94"),
    Rule("MA-K002", "Lambda code reaches the operating system or the interpreter", C,
         "The serialized Lambda bytecode names modules or functions that run commands, evaluate code, open "
         "files or the network (os, subprocess, eval, exec, open, __import__ …): the shape of the Keras Lambda "
         "code-injection payload (CVE-2024-3660).", "CWE-94"),
    Rule("MA-K003", "Custom object outside Keras", W,
         "A layer, function or other object names a class or module that is not part of Keras. Loading needs "
         "that code from outside the file (custom_objects or an importable module), which the model's author "
         "controls; it needs review before the model is loaded.", "CWE-829"),
    Rule("MA-K004", "Keras config imports a dangerous module", C,
         "A config object names a module and class such as os.system or builtins.eval. Keras before 3.9 imports "
         "whatever module a config names and calls it with arguments from the file, so loading runs code even "
         "in safe mode (CVE-2025-1550).", "CWE-502"),
    Rule("MA-K005", "Keras non-modelling API in config", C,
         "The config references a Keras API that loads or saves models, downloads files (keras.utils.get_file), "
         "or turns safe mode off (keras.config.enable_unsafe_deserialization), or a TensorFlow op that reads or "
         "writes files. Honest models never contain these; they are used to bypass safe_mode and write files on "
         "the loading machine (CVE-2025-8747, CVE-2025-9906).", "CWE-502"),
    Rule("MA-K006", "TorchModuleWrapper holds a pickled torch module", W,
         "The layer carries a torch.save pickle that Keras loads with torch.load and weights_only=False when safe "
         "mode is off; a pickle runs code when loaded. The embedded pickle was scanned as well.", "CWE-502"),
    Rule("MA-K007", "TFSMLayer loads an external SavedModel", W,
         "The layer loads a TensorFlow SavedModel from a path outside this file. Whatever sits at that path when "
         "the model is loaded becomes part of it, and SavedModel graphs can read and write files.", "CWE-829"),
    Rule("MA-K008", "Lookup vocabulary read from a file outside the model", W,
         "A StringLookup, IntegerLookup or TextVectorization layer names its vocabulary by path. Keras saves "
         "vocabularies inside the archive, so a path here is crafted: loading reads that host file (or fetches "
         "the URL) into the model, disclosing local files (CVE-2025-12058).", "CWE-73"),
    Rule("MA-K009", "HDF5 link to another file", W,
         "An HDF5 external link points into another file (or a user-defined link type is used). Reading through "
         "it makes HDF5 open a file the model does not contain, chosen by the model's author.", "CWE-73"),
    Rule("MA-K010", "HDF5 data stored in host files", C,
         "A dataset keeps its bytes in external files or maps them from other files (virtual dataset). Loading "
         "the weights reads those host files into the model, disclosing local files such as credentials.",
         "CWE-73"),
    Rule("MA-K011", "Content in HDF5 user block", W,
         "Bytes sit before the HDF5 superblock. HDF5 ignores them, so the file can also be something else "
         "(a pickle, an archive, a script) to other tools; the user block was scanned as its own content.",
         "CWE-434"),
    Rule("MA-K012", "Malformed Keras model file", W,
         "The HDF5 structure or the Keras config cannot be read (not JSON, not an object, unreadable objects, "
         "missing config.json, duplicate archive entries). Keras may read it differently from this scanner.",
         "CWE-20"),
    Rule("MA-K013", "Keras scan budget exceeded", W,
         "The config or the HDF5 structure holds more objects or nests deeper than the scanner's budget; the "
         "rest was not checked.", "CWE-400", coverage=True),
    Rule("MA-K014", "Unexpected file in Keras archive", W,
         "Keras archives hold config.json, metadata.json, model.weights.h5 and assets/. Other members (Python "
         "files, pickles, executables) are not needed to load the model and may be used by tools that extract "
         "the archive; each was scanned by its own format.", "CWE-434"),
    # --- repositories and code (MA-H0xx) -------------------------------------------
    Rule("MA-H001", "Model loads custom code", W,
         "Loading this model runs Python code that ships with it or is fetched for it: a transformers auto_map "
         "(needs trust_remote_code=True), a custom pipeline, a TorchServe handler, or a nested load with "
         "trust_remote_code. That code runs with the user's rights; review it before loading (findings for the "
         "Python files themselves are reported separately).", "CWE-829"),
    Rule("MA-H002", "Python code runs commands or evaluates code", C,
         "Python shipped with the model runs operating-system commands (os.system, subprocess, pty) or evaluates "
         "code (eval, exec, marshal, code objects), possibly through getattr or a computed import. Importing the "
         "file, which trust_remote_code and TorchServe handlers do, runs it.", "CWE-94"),
    Rule("MA-H003", "Python code with a risky capability", W,
         "Python shipped with the model unpickles data, opens network connections, loads native libraries, "
         "imports modules by computed names or from file paths, or writes to absolute paths. Model code rarely "
         "needs this; it needs review before the model is loaded.", "CWE-829"),
    Rule("MA-H004", "Python source cannot be analysed", W,
         "The file does not tokenize as Python (bad encoding, unterminated string, inconsistent indentation), so "
         "its code was not inspected. Python refuses to import such a file, but other tools may read it "
         "differently.", "CWE-20"),
    Rule("MA-H005", "Obfuscated Python source", W,
         "The source declares an unusual text encoding (such as UTF-7), spells names with lookalike characters "
         "that the interpreter folds to ASCII, or walks object internals (__subclasses__, __globals__, frame "
         "globals) to reach os or eval without naming them. These hide payloads from reviewers and scanners.",
         "CWE-506"),
    Rule("MA-H006", "Script among model files", W,
         "A shell or other interpreter script sits among model files (or inside a model archive). Model files "
         "never need one, and setup instructions that run it execute whatever it contains.", "CWE-506"),
    Rule("MA-H007", "Compiled Python bytecode", W,
         "A .pyc file holds compiled code that importing runs; it cannot be reviewed like source and this "
         "scanner does not decompile it.", "CWE-506"),
    Rule("MA-H008", "Custom TorchScript operator or class", W,
         "TorchScript code or data uses an operator or TorchBind class from a namespace that PyTorch and its "
         "domain libraries do not define. Running the model needs a native library that registers it, code that "
         "is not in the file and does whatever it was built to do.", "CWE-829"),
    Rule("MA-H009", "Malformed model configuration", W,
         "The configuration is not valid JSON, is not an object where one is required, or holds fields of the "
         "wrong type; libraries reject it or read it differently from this scanner.", "CWE-20"),
    Rule("MA-H010", "Archive installs Python packages", W,
         "The TorchServe archive carries a requirements file that the server installs with pip when the model "
         "is registered (install_py_dep_per_model): package installation runs arbitrary setup code.", "CWE-829"),
    Rule("MA-H011", "Code or configuration too large to analyse", W,
         "The file is larger than the analysis budget for source code or configuration; it was not inspected.",
         "CWE-400", coverage=True),
    # --- tensorflow / tflite (MA-T1xx) ----------------------------------------------
    Rule("MA-T101", "Malformed TensorFlow protobuf", W,
         "The SavedModel, GraphDef or MetaGraphDef is truncated, declares lengths past its end, is not valid text "
         "format, holds no graph, or refers to functions or assets it does not define. TensorFlow rejects it or "
         "reads it differently from this scanner, and a broken file is a way to hide content from checks.",
         "CWE-20"),
    Rule("MA-T102", "TensorFlow op runs Python or native code", C,
         "PyFunc, PyFuncStateless and EagerPyFunc call Python functions of the loading process when the graph "
         "runs (tf.py_function, tf.numpy_function), and an op named LoadLibrary stands for loading a native "
         "library. Graphs that need them run code that is not part of the model's math.", "CWE-94"),
    Rule("MA-T103", "TensorFlow op touches files or the network", W,
         "The graph reads or writes files (ReadFile, WriteFile, MatchingFiles, file readers and datasets, "
         "ImmutableConst), opens databases or talks to servers (tf.data service, RPC). Serving or calling the "
         "model performs that I/O with the rights of the process; inference graphs rarely need it.", "CWE-73"),
    Rule("MA-T104", "TensorFlow op uses a fixed path or URL outside the model", C,
         "A constant absolute path, '..' path, home path or URL is wired into an op that reads or writes files or "
         "sends data (including the checkpoint ops SaveV2/RestoreV2 and debug or print ops with file:// or grpc:// "
         "targets). Running the graph reads or overwrites that host file or sends tensors to that address.",
         "CWE-22"),
    Rule("MA-T105", "Custom TensorFlow op", W,
         "The op is not one TensorFlow registers. The graph only runs if the loading process first loads a custom "
         "op library (tf.load_op_library or a package that does so on import): native code that is not in the "
         "file and does whatever it was built to do.", "CWE-829"),
    Rule("MA-T106", "Inconsistent SavedModel directory", W,
         "The variables/ directory lacks its index or data shards, or an asset the graph names is missing. "
         "TensorFlow fails to load the model, or whatever is put in the missing place later supplies its weights "
         "or vocabulary, which cannot be checked now."),
    Rule("MA-T107", "SavedModel asset or variable outside the model", C,
         "An asset file name is absolute or climbs out with '..', or a file under assets/ or variables/ is a link "
         "to a file outside the SavedModel. Loading reads that host file into the model (path traversal).",
         "CWE-22"),
    Rule("MA-T108", "Keras Lambda layer in SavedModel metadata", C,
         "The Keras metadata of the SavedModel holds a Lambda layer: marshalled Python bytecode (or a function "
         "looked up by name) that tf.keras rebuilds and calls when it loads the SavedModel, whatever safe_mode "
         "says. Loading the model runs that code.", "CWE-94"),
    Rule("MA-T109", "TensorFlow parse budget exceeded", W,
         "The protobuf holds more fields or tokens than the scanner's budget; the rest of the model was not "
         "checked.", "CWE-400", coverage=True),
    Rule("MA-T201", "Malformed TFLite flatbuffer", W,
         "The root table, a vtable, a vector or a string lies outside the file, the identifier or schema version "
         "is wrong, or an index points at nothing. The TFLite runtime's verifier rejects such files, but tools and "
         "older runtimes that skip verification read out of bounds (the class of TFLite CVEs on crafted models).",
         "CWE-125"),
    Rule("MA-T202", "Custom TFLite operator", W,
         "The model uses a custom operator. It only runs if the loading application registers a kernel with that "
         "name: native code that is not in the file and does whatever it was built to do.", "CWE-829"),
    Rule("MA-T203", "TensorFlow (Flex) operator in TFLite model", W,
         "Flex operators run full TensorFlow kernels through the select-TF-ops delegate, with all of TensorFlow's "
         "file and system access, instead of TFLite's small built-in set.", "CWE-829"),
    Rule("MA-T204", "Flex operator's TensorFlow node is unreadable or renamed", W,
         "A Flex operator carries the TensorFlow NodeDef the delegate runs. Here it is missing, cannot be decoded, "
         "or names another op than the operator's name: tools that list operators by name see one op while the "
         "delegate runs another. (The NodeDef's op itself is checked like any TensorFlow op: MA-T102 to MA-T105.)",
         "CWE-436"),
    Rule("MA-T205", "TFLite buffer outside the file", W,
         "A buffer's offset and size (the large-model layout that keeps weights after the flatbuffer) point past "
         "the end of the file. Loaders that trust them read out of bounds or map memory the model does not own.",
         "CWE-125"),
    Rule("MA-T206", "Inconsistent TFLite tensor, operator or metadata reference", W,
         "A tensor names a buffer that does not exist or whose size disagrees with its shape and type, an operator "
         "names a missing tensor or operator code, or metadata points at a missing buffer. Runtimes that trust "
         "the indices read out of bounds.", "CWE-129"),
    Rule("MA-T207", "TFLite scan budget exceeded", W,
         "The flatbuffer holds more tables, vector elements or string bytes (offsets that point many times at one "
         "long string count each time) than the scanner's budget; the rest of the model was not checked.", "CWE-400",
         coverage=True),
    # --- ExecuTorch (MA-T3xx) ------------------------------------------------------
    Rule("MA-T301", "Malformed ExecuTorch program", W,
         "The root table, a vtable, a vector or a string lies outside the file, the file identifier or extended "
         "header is wrong, or a value, instruction or delegate has a kind the schema does not define. The runtime's "
         "verifier rejects such files; tools and builds that skip verification read out of bounds.", "CWE-125"),
    Rule("MA-T302", "Operator outside ExecuTorch's namespaces", W,
         "The program calls an operator whose namespace is not one of those ExecuTorch's exporters and kernel "
         "libraries use (aten, executorch_prim, quantized_decomposed, dim_order_ops, llama, ...). It only runs if "
         "the loading application links in a kernel registered under that name: native code that is not in the "
         "file and does whatever it was built to do.", "CWE-829"),
    Rule("MA-T303", "Delegate to a backend ExecuTorch does not ship", W,
         "Part of the program is handed to a backend id that none of ExecuTorch's backends registers. Whatever "
         "backend an application registers under that name receives the delegate's opaque blob and runs it as "
         "native code.", "CWE-829"),
    Rule("MA-T304", "ExecuTorch data outside the file", W,
         "The extended header, a segment, the constant data of a tensor or a delegate's blob points past the end "
         "of the file (or of its segment). Loaders that trust the offsets read out of bounds or map memory the "
         "model does not own.", "CWE-125"),
    Rule("MA-T305", "Inconsistent ExecuTorch reference", W,
         "An instruction names a missing operator, delegate or value, a tensor a missing constant, or a delegate "
         "or named data entry a missing segment or blob. Runtimes that trust the indices read out of bounds.",
         "CWE-129"),
    Rule("MA-T306", "ExecuTorch scan budget exceeded", W,
         "The program holds more tables, vector elements or string bytes (offsets that point many times at one long "
         "string count each time) than the scanner's budget; the rest of it was not checked.", "CWE-400",
         coverage=True),
    # --- xml, msgpack, boosters (MA-X1xx) -----------------------------------------
    Rule("MA-X101", "XML document type or entity declaration", W,
         "The XML declares a DOCTYPE or entities. Model files never need them; internal entities expand "
         "exponentially in permissive parsers (billion laughs). They were not expanded.", "CWE-776"),
    Rule("MA-X102", "XML external entity or resource reference", C,
         "The XML pulls in an external entity, XInclude or external DTD/stylesheet. Permissive parsers fetch "
         "it, reading local files or reaching the network (XXE). It was not followed.", "CWE-611"),
    Rule("MA-X103", "Script in PMML Extension", C,
         "A PMML Extension carries script text or names an executable extender. PMML is declarative; "
         "engines that honour vendor extensions may run that code when the model loads or scores.", "CWE-94"),
    Rule("MA-X104", "External reference in model XML", W,
         "An attribute points at a URL or a file path. Tools that resolve it fetch or read content that is "
         "not in the model and was not scanned.", "CWE-829"),
    Rule("MA-X105", "Malformed XML model", W,
         "The XML could not be parsed or does not have the structure its format requires; loaders may still "
         "read parts of it.", "CWE-20"),
    Rule("MA-X111", "Malformed msgpack / Flax checkpoint", W,
         "The msgpack stream is truncated, carries trailing bytes, or holds arrays whose shape, dtype and data "
         "disagree; flax.serialization would refuse it or read something else than tools report.", "CWE-20"),
    Rule("MA-X112", "msgpack structure limit exceeded", W,
         "Containers nest too deep, declare more elements than the file can hold, or strings and binaries claim "
         "more bytes than remain: a decompression-style bomb for unpackers that preallocate. The rest was not read.",
         "CWE-400"),
    Rule("MA-X113", "Unexpected msgpack extension type", W,
         "Flax checkpoints only use extension types 1-3 (ndarray, complex, numpy scalar). Other codes are decoded "
         "by custom ext hooks in the loading application, which may deserialize arbitrary objects.", "CWE-502"),
    Rule("MA-X114", "Pickle embedded in msgpack", W,
         "A binary value holds a pickle stream. Flax never writes pickles; code that unpickles it runs whatever "
         "it calls. The embedded pickle was scanned as well.", "CWE-502"),
    Rule("MA-X121", "Malformed XGBoost model", W,
         "The XGBoost model does not have the structure xgboost writes (learner, booster, trees and their "
         "arrays agree); the native loader may read out of bounds or refuse it.", "CWE-20"),
    Rule("MA-X122", "Malformed LightGBM model", W,
         "The LightGBM text model's header, tree count, tree sizes or tree arrays disagree; the native loader "
         "trusts them and may read past the data or mis-parse the model.", "CWE-20"),
    Rule("MA-X123", "Malformed CatBoost model", W,
         "The CatBoost model's magic, header size or flatbuffer core is out of bounds; the native loader may "
         "read past the file.", "CWE-20"),
    Rule("MA-X124", "XGBoost scan budget exceeded", W,
         "The model holds more tree nodes than the scanner walks; the remaining trees were only sized, their "
         "node links were not checked.", "CWE-400", coverage=True),
    Rule("MA-X125", "Out-of-range index in XGBoost model", W,
         "A tree's child links point outside its node array, back into the tree (a loop) or at a deleted node, "
         "or a split feature, output group or linear weight index exceeds what the model declares. Native "
         "predictors follow these indices unchecked: out-of-bounds reads or endless walks.", "CWE-129"),
    # --- metadata ----------------------------------------------------------------
    Rule("MA-C001", "Code in model metadata", W,
         "Metadata is meant to be descriptive text; code-like content suggests an attempt to get it evaluated by "
         "a tool that reads the metadata.", "CWE-94"),
    Rule("MA-C002", "Credential in model metadata", W,
         "A secret (cloud key, token or private key) is embedded in the model's metadata and is published with "
         "the model.", "CWE-798"),
    # --- configs that instantiate callables -------------------------------------
    Rule("MA-I001", "Config instantiates a dangerous callable", C,
         "A `_target_` key names a callable that Hydra/OmegaConf instantiation imports and calls with the "
         "sibling keys as arguments (NeMo restores .nemo archives this way, CVE-2025-23304; hub mixins and "
         "safetensors metadata configs too): this one runs commands, evaluates code or touches files or the "
         "network. Library loaders that training configs name by design (from_pretrained, load_dataset, "
         "load_from_checkpoint ...) are an info note: the model or dataset they fetch is scanned on its own.",
         "CWE-94"),
    Rule("MA-I002", "YAML tag constructs Python objects", C,
         "A !!python/object/apply, /object or /object/new tag makes yaml.load with the default or unsafe loader "
         "call a Python callable while reading the file (CVE-2017-18342, CVE-2020-1747): critical when it is "
         "dangerous, a warning when it is not known to be harmless. A /name or /module tag only imports, and is "
         "reported when what it names is dangerous (mkdocs configs name their extensions this way).", "CWE-502"),
    # --- containers of pickles ---------------------------------------------------
    Rule("MA-T001", "Malformed PyTorch checkpoint", W,
         "The checkpoint does not have the structure torch writes; loaders may still read parts of it.", "CWE-20"),
    Rule("MA-T002", "torch.export program runs code", C,
         "A .pt2 program (torch.export.save) holds a node target, symbolic expression or guard line that is not "
         "what the exporter writes. torch.export.load resolves targets by getattr on torch, operator and math, "
         "evaluates expressions with sympy.sympify and compiles guard lines with exec, so such a string runs "
         "code when the program is loaded or its module() is built.", "CWE-94"),
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
