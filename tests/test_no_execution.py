"""Scanning the whole malicious corpus never unpickles, imports, compiles or runs anything.

The scan runs in a subprocess (audit hooks cannot be removed) with a hook that records
`pickle.find_class`, process creation, native loading, sockets, and any import of a module
the corpus names that was not already loaded once modelaudit had scanned a benign file of
every container kind. A canary module is importable from the subprocess's sys.path:
importing it writes a marker file. `exec`, `compile` and `marshal.loads` (which imports
also raise) are watched from the second pass over the corpus on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.builders import (CANARY_MODULE, JOBLIB_METHODS, benign, call, callee, compress, global_, joblib_zfile,
                            legacy_torch, npy_object, npz, pickle, proto, push, reduce, reduce_pickle, stop,
                            torch_tar, torch_zip, tuple1, zip_bytes)
from tests.regressions.corpus import load_all

CHILD = textwrap.dedent('''
    import json, os, sys
    corpus, marker, sentinels, honest = sys.argv[1], sys.argv[2], set(json.loads(sys.argv[3])), sys.argv[4]
    import modelaudit.core  # modelaudit may import its own modules and the stdlib freely
    from modelaudit.core import scan_model_directory_or_file

    scan_model_directory_or_file(honest)  # every scanner once, so its lazy imports are done
    already = set(sys.modules)
    events, strict = [], [False]
    WATCH = ("pickle.find_class", "os.system", "subprocess.Popen", "os.fork", "os.forkpty",
             "os.startfile", "ctypes.dlopen", "ctypes.dlsym", "socket.connect", "socket.getaddrinfo",
             "webbrowser.open", "urllib.Request", "code.__new__", "function.__new__", "cpython.run_command")

    def hook(event, args):
        if event in WATCH or event.startswith(("os.exec", "os.spawn", "os.posix_spawn")):
            events.append([event, repr(args)[:200]])
        elif event == "import":
            name = str(args[0])
            if name.split(".")[0] in sentinels and name not in already:
                events.append([event, name])
        elif strict[0] and event in ("exec", "compile", "marshal.loads"):  # imports do these: after warm-up
            events.append([event, repr(args)[:200]])

    sys.addaudithook(hook)
    first = scan_model_directory_or_file(corpus)   # warm-up for exec/compile: paths only hostile files take
    strict[0] = True
    second = scan_model_directory_or_file(corpus)
    print(json.dumps({"events": events, "marker": os.path.exists(marker),
                      "first": first["summary"], "second": second, "files": first["files_scanned"]}))
''')


def _canary_cases() -> dict[str, bytes]:
    """Every way the corpus can name the canary module: if anything imports it, the marker appears."""
    direct = reduce_pickle(CANARY_MODULE, "boom", "x", protocol=2)
    return {
        "canary_global.pkl": direct,
        "canary_stack_global.pkl": reduce_pickle(CANARY_MODULE, "boom", "x", protocol=4),
        "canary_in_torch.pt": torch_zip(direct),
        "canary_in_npy.npy": npy_object(direct),
        "canary_zlib.joblib": compress(direct, "zlib"),
        "canary_import_module.pkl": pickle(proto(4), call("importlib", "import_module", CANARY_MODULE), stop()),
        "canary_nested.pkl": pickle(proto(4), callee("pickle", "loads"), push(direct), tuple1(), reduce(), stop()),
        "canary_dotted.pkl": pickle(proto(2), global_("pathlib", f"{CANARY_MODULE}.boom"), push(("x",), 2), reduce(),
                                    stop()),
    }


def _honest_cases() -> dict[str, bytes]:
    """Benign files of every container kind, scanned before the hook to warm modelaudit's imports."""
    body = benign(2)
    files = {f"honest_{m}.joblib": compress(body, m) for m in JOBLIB_METHODS}
    files.update({"honest.pkl": body, "honest.pt": torch_zip(body), "honest_legacy.pt": legacy_torch(body),
                  "honest_tar.pt": torch_tar(body), "honest.npy": npy_object(body),
                  "honest.npz": npz({"a": npy_object(body)}), "honest_zfile.joblib": joblib_zfile(body),
                  "honest.zip": zip_bytes({"a/data.pkl": body}), "honest.txt": b"notes\n"})
    return files


def _module_names(corpus: dict[str, bytes]) -> set[str]:
    """Top-level modules the corpus names in GLOBAL lines and short strings (over-approximated)."""
    import re

    names = {CANARY_MODULE}
    for data in corpus.values():
        for match in re.finditer(rb"(?:^|[c\x8c\x00-\x20(])([A-Za-z_][A-Za-z0-9_]{1,40})(?:\.|\n)", data):
            names.add(match.group(1).decode())
    return names


def test_scanning_the_malicious_corpus_runs_nothing(tmp_path):
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    files: dict[str, bytes] = {}
    for entry in load_all().values():
        files[f"{entry.name}__{entry.filename}".replace(":", "_").replace("/", "_")] = entry.build()
    files.update(_canary_cases())
    for name, data in files.items():
        (corpus_dir / name).write_bytes(data)
    assert len(files) > 300, "the regression corpus did not load"

    canary_dir = tmp_path / "importable"
    canary_dir.mkdir()
    marker = tmp_path / "canary-imported"
    (canary_dir / f"{CANARY_MODULE}.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\ndef boom(*a):\n    open({str(marker)!r}, 'w').write('ran')\n")

    honest_dir = tmp_path / "honest"
    honest_dir.mkdir()
    for name, data in _honest_cases().items():
        (honest_dir / name).write_bytes(data)

    sentinels = sorted(_module_names(files))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(canary_dir), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(corpus_dir), str(marker), json.dumps(sentinels),
                           str(honest_dir)],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    assert report["events"] == [], f"scanning triggered execution-related audit events: {report['events'][:5]}"
    assert not report["marker"] and not marker.exists(), "the canary module was imported"
    assert report["files"] == len(files)

    # and every file in the corpus was flagged: nothing hostile reads as clean
    serious = [i["location"] for i in report["second"]["issues"] if i["severity"] in ("warning", "critical")]
    unflagged = sorted(name for name in files
                       if not any(loc.startswith(str(corpus_dir / name)) for loc in serious))
    assert unflagged == [], f"corpus files without a warning or critical finding: {unflagged}"
