"""What Python code shipped with a model may call: the table the static analysis consults.

Names are fully qualified after imports and aliases are resolved (`sp.run` with `import
subprocess as sp` is `subprocess.run`). An entry matches its name and everything below it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import IssueSeverity

CODE_EXEC, RISKY, CUSTOM_CODE, HIDDEN = "MA-H002", "MA-H003", "MA-H001", "MA-H005"


@dataclass(frozen=True)
class Entry:
    code: str
    what: str  # completes "calls <name>, which …"
    #: also report a bare reference (`f = os.system`, `map(eval, …)`), not only calls
    on_reference: bool = False
    #: only when the root module is imported in the file (a local variable may share the name)
    needs_import: bool = True
    severity: IssueSeverity | None = None


_RUNS = "runs an operating-system command"
_EVALS = "evaluates or executes Python code"
_LOADS = "loads code from a file path"
_UNPICKLES = "unpickles data, which runs code chosen by whoever wrote the data"
_NET = "opens a network connection or downloads content"
_NATIVE = "loads or compiles native code"

POLICY: dict[str, Entry] = {}


def _add(entry: Entry, *names: str) -> None:
    for name in names:
        POLICY[name] = entry


_add(Entry(CODE_EXEC, _RUNS, on_reference=True, needs_import=False),
     "os.system", "os.popen", "os.popen2", "os.popen3", "os.popen4", "os.startfile", "os.execl", "os.execle",
     "os.execlp", "os.execlpe", "os.execv", "os.execve", "os.execvp", "os.execvpe", "os.spawnl", "os.spawnle",
     "os.spawnlp", "os.spawnlpe", "os.spawnv", "os.spawnve", "os.spawnvp", "os.spawnvpe", "os.posix_spawn",
     "os.posix_spawnp", "subprocess.Popen", "subprocess.run", "subprocess.call", "subprocess.check_call",
     "subprocess.check_output", "subprocess.getoutput", "subprocess.getstatusoutput", "pty.spawn",
     "platform.popen")
_add(Entry(CODE_EXEC, _RUNS, needs_import=False), "subprocess")
_add(Entry(CODE_EXEC, _RUNS), "pexpect.spawn", "pexpect.run", "asyncio.create_subprocess_exec",
     "asyncio.create_subprocess_shell")
_add(Entry(CODE_EXEC, _EVALS, on_reference=True, needs_import=False), "builtins.eval", "builtins.exec",
     "builtins.execfile")
_add(Entry(CODE_EXEC, "turns bytes into code objects", needs_import=False), "marshal.loads", "marshal.load")
_add(Entry(CODE_EXEC, "builds code or function objects from raw parts"), "types.CodeType", "types.FunctionType")
_add(Entry(CODE_EXEC, "runs another Python file or module"), "runpy.run_path", "runpy.run_module")
_add(Entry(RISKY, "compiles source text into code", needs_import=False), "builtins.compile")
_add(Entry(RISKY, _LOADS), "importlib.util.spec_from_file_location", "importlib.machinery.SourceFileLoader",
     "importlib.machinery.SourcelessFileLoader", "importlib.machinery.ExtensionFileLoader", "imp.load_source",
     "imp.load_compiled", "imp.load_dynamic", "imp.load_module", "zipimport.zipimporter")
_add(Entry(RISKY, _UNPICKLES), "pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load", "dill.loads",
     "cloudpickle.load", "cloudpickle.loads", "joblib.load", "pandas.read_pickle", "shelve.open",
     "jsonpickle.decode", "yaml.unsafe_load", "yaml.unsafe_load_all")
_add(Entry(RISKY, _NET), "requests.get", "requests.post", "requests.put", "requests.patch", "requests.delete",
     "requests.head", "requests.request", "requests.Session", "requests.session", "httpx.get", "httpx.post",
     "httpx.put", "httpx.request", "httpx.stream", "httpx.Client", "httpx.AsyncClient", "urllib.request.urlopen",
     "urllib.request.urlretrieve", "urllib.request.build_opener", "urllib2.urlopen", "urllib.urlopen",
     "urllib.urlretrieve", "urllib3.PoolManager", "urllib3.request", "urllib3.HTTPConnectionPool",
     "http.client.HTTPConnection", "http.client.HTTPSConnection", "socket.socket", "socket.create_connection",
     "socket.create_server", "socket.fromfd", "ftplib.FTP", "ftplib.FTP_TLS", "smtplib.SMTP", "smtplib.SMTP_SSL",
     "telnetlib.Telnet", "paramiko.SSHClient", "paramiko.Transport", "aiohttp.ClientSession", "aiohttp.request",
     "webbrowser.open", "webbrowser.open_new", "webbrowser.open_new_tab", "pycurl.Curl", "torch.hub.load",
     "torch.hub.download_url_to_file")
_add(Entry(RISKY, "loads native libraries or reads and writes raw memory"), "ctypes", "cffi.FFI")
_add(Entry(RISKY, _NATIVE), "torch.ops.load_library", "torch.classes.load_library",
     "torch.utils.cpp_extension.load", "torch.utils.cpp_extension.load_inline")

# root names that mean the same module (find_class-style aliases and Python 2 names)
ROOT_ALIASES = {"posix": "os", "nt": "os", "__builtin__": "builtins", "__builtins__": "builtins",
                "commands": "subprocess", "popen2": "subprocess", "_subprocess": "subprocess",
                "_posixsubprocess": "subprocess", "cPickle": "pickle", "_pickle": "pickle"}
# builtins the analysis tracks by their bare names
BUILTINS = frozenset({"eval", "exec", "execfile", "compile", "__import__", "open", "getattr", "vars", "globals",
                      "__builtins__"})
# modules whose attributes are never looked up by computed names in honest code
NAMESPACE_DANGER = frozenset({"os", "subprocess", "builtins", "importlib", "pty", "marshal", "ctypes", "socket",
                              "pickle", "posix", "nt"})
# attribute names that only os/subprocess/builtins functions have, when named in a string
DANGEROUS_ATTRIBUTE_NAMES = frozenset({"system", "popen", "popen2", "popen3", "popen4", "execl", "execle", "execlp",
                                       "execv", "execve", "execvp", "execvpe", "spawnl", "spawnv", "spawnve",
                                       "startfile", "check_output", "getoutput", "getstatusoutput", "Popen", "eval",
                                       "exec", "__import__", "import_module", "load_library"})
IMPORTERS = frozenset({"builtins.__import__", "importlib.import_module", "importlib.__import__"})
OPENERS = frozenset({"builtins.open", "io.open", "codecs.open"})
# attribute names that lead from any object to interpreter internals
GADGET_ATTRS = frozenset({"__subclasses__", "__globals__", "__builtins__", "f_globals", "f_builtins",
                          "gi_frame", "tb_frame"})
# names inside exec/eval arguments that show the code is decoded first (an obfuscated payload)
DECODERS = frozenset({"b64decode", "b32decode", "b16decode", "b85decode", "a85decode", "decodebytes",
                      "decodestring", "standard_b64decode", "urlsafe_b64decode", "decompress", "fromhex",
                      "unhexlify", "a2b_base64", "a2b_hex", "loads", "decode", "rot13", "rot_13"})
SENSITIVE_PATHS = ("/etc/", "~/.ssh", "/.ssh/", "authorized_keys", ".bashrc", ".bash_profile", ".profile",
                   ".zshrc", "crontab", "/cron", "sitecustomize", "usercustomize", "site-packages", ".pth",
                   "/usr/bin", "/usr/local/bin", "/bin/", "/root/", "launchagents", "startup")


def normalise(name: str) -> str:
    root, _, rest = name.partition(".")
    root = ROOT_ALIASES.get(root, root)
    return f"{root}.{rest}" if rest else root


def relevant(name: str) -> bool:
    """Whether a name leads into anything the policy or the special calls look at."""
    return normalise(name).split(".")[0] in _RELEVANT_ROOTS


def lookup(name: str) -> tuple[str, Entry] | None:
    """The most specific entry for `name` (itself, then its parents)."""
    parts = normalise(name).split(".")
    for end in range(len(parts), 0, -1):
        key = ".".join(parts[:end])
        entry = POLICY.get(key)
        if entry is not None:
            return key, entry
    return None


_RELEVANT_ROOTS = frozenset({key.split(".")[0] for key in POLICY} | {"builtins", "importlib", "sys", "<globals>",
                                                                       "torch", "numpy", "yaml", "io", "codecs"})
