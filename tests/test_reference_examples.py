"""Every Python example of the reference documentation runs verbatim."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "reference_examples"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "advanced-usage.md"


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo modelaudit-test",))


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{cwd}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, script], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.skipif(not REFERENCE.exists(), reason="reference documentation not beside the repository")
@pytest.mark.parametrize("name", sorted(p.name for p in HERE.glob("*.py")))
def test_examples_are_verbatim_copies(name):
    assert (HERE / name).read_text() in REFERENCE.read_text()


def test_programmatic_usage_example(tmp_path):
    (tmp_path / "path/to/models").mkdir(parents=True)
    (tmp_path / "path/to/model.pkl").write_bytes(pickle.dumps(_Payload()))
    (tmp_path / "path/to/models/ok.pkl").write_bytes(pickle.dumps({"w": [1.0]}))
    (tmp_path / "path/to/models/malicious_net.pkl").write_bytes(pickle.dumps([1]))
    proc = _run(str(HERE / "programmatic_usage.py"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    # The example prints the issues of its last scan before the directory scan: the URL scan.
    assert "huggingface.co/bert-base-uncased" in proc.stdout


def test_programmatic_usage_results(tmp_path):
    from modelaudit.core import scan_model_directory_or_file

    (tmp_path / "model.pkl").write_bytes(pickle.dumps(_Payload()))
    results = scan_model_directory_or_file(str(tmp_path / "model.pkl"))
    assert [f"{i['severity'].upper()}: {i['message']}" for i in results["issues"]] == [
        "CRITICAL: Suspicious module reference found: posix.system"]
    config = {"blacklist_patterns": ["unsafe_model", "malicious_net"], "max_file_size": 1073741824, "timeout": 600}
    (tmp_path / "malicious_net_v2.pt").write_bytes(pickle.dumps({"a": 1}))
    results = scan_model_directory_or_file(str(tmp_path), **config)
    assert any(i["rule_code"] == "MA-S009" and "malicious_net" in i["message"] for i in results["issues"])


def test_custom_scanner_example(tmp_path):
    for name in ("my_custom_scanner.py", "register_custom_scanner.py"):
        (tmp_path / name).write_text((HERE / name).read_text())
    (tmp_path / "path/to").mkdir(parents=True)
    (tmp_path / "path/to/custom_model.mymodel").write_bytes(b"header malicious_pattern trailer")
    driver = tmp_path / "driver.py"
    driver.write_text(
        "exec(open('register_custom_scanner.py').read())\n"
        "msgs = [(i['severity'], i['message'], i['rule_code']) for i in results['issues']]\n"
        "print(msgs)\n"
        "assert ('warning', 'Suspicious pattern found', 'MA-X001') in msgs, msgs\n"
        "assert 'custom_format' in results['scanner_names']\n"
        "from modelaudit.scanners.base import BaseScanner\n"
        "r = CustomModelScanner().scan('path/to/custom_model.mymodel')\n"
        "assert r.issues[0].details == {'pattern': 'malicious_pattern'} and r.success\n"
    )
    proc = _run(str(driver), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_custom_scanner_is_used_by_cli(tmp_path):
    (tmp_path / "my_custom_scanner.py").write_text((HERE / "my_custom_scanner.py").read_text())
    (tmp_path / "m.mymodel").write_bytes(b"malicious_pattern")
    script = tmp_path / "cli_driver.py"
    script.write_text(
        "import sys\n"
        "from modelaudit.scanners import SCANNER_REGISTRY\n"
        "from my_custom_scanner import CustomModelScanner\n"
        "SCANNER_REGISTRY.append(CustomModelScanner)\n"
        "from modelaudit.cli import main\n"
        "sys.argv = ['modelaudit', 'scan', '--format', 'json', 'm.mymodel']\n"
        "main()\n"
    )
    proc = _run(str(script), tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert '"message":"Suspicious pattern found"' in proc.stdout
