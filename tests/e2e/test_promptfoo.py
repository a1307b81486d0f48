"""`promptfoo scan-model` from the real npm package drives our `modelaudit` executable end to end.

promptfoo spawns `modelaudit scan <paths> --format json …` with its own flags, validates the JSON
(`issues`, `checks`, `has_errors`, `total_checks`, `passed_checks`, `failed_checks`) and turns the
exit code into its own: 0 clean, 1 findings, and anything above 1 an error. The reference's CI and
pre-commit recipes, which call promptfoo, run here as written.

promptfoo's telemetry, update checks and sharing are switched off with its environment variables,
and every HTTP(S) request it would still make goes to a refusing proxy on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from tests.conftest import MODELAUDIT
from tests.e2e.models import write_honest_models, write_malicious_pickle, write_warning_only_pickle
from tests.e2e.precommit_env import PRE_COMMIT, git, init_repo, isolated_env
from tests.e2e.promptfoo_install import Promptfoo, install, platform_packages

REFERENCE = Path(__file__).parent / "reference_ci"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "ci"
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]


class _RefusingProxy:
    """Answers every proxied request with 403 and remembers where it was meant to go."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.targets: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    line = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                    self.targets.append(line)
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="session")
def promptfoo(request) -> Promptfoo:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed; the promptfoo end-to-end tests need it to install promptfoo")
    if platform_packages() is None:
        pytest.skip("the Node.js 22 npm package is installed for Linux x64/arm64 only")
    cache = getattr(request.config, "cache", None)
    where = Path(cache.mkdir("promptfoo-e2e")) if cache else Path(os.environ["TMPDIR"]) / "promptfoo-e2e"
    installed = install(where)
    if installed.install_seconds is not None:
        print(f"\npromptfoo {installed.root.name} installed in {installed.install_seconds:.0f} s")
    return installed


@pytest.fixture(scope="session")
def proxy():
    sink = _RefusingProxy()
    yield sink
    sink.close()


@pytest.fixture
def pf_env(promptfoo, proxy, tmp_path) -> dict[str, str]:
    """promptfoo and its node first on PATH after our modelaudit; its state in a temporary folder."""
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    shim = shim_dir / "modelaudit"
    # records the argument lists promptfoo passes, then runs this checkout's modelaudit
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{tmp_path}/modelaudit-args.log"\n'
                    f'exec "{MODELAUDIT}" "$@"\n')
    shim.chmod(0o755)
    return {**os.environ, "PATH": os.pathsep.join([str(shim_dir), str(promptfoo.bin_dir), os.environ["PATH"]]),
            "PROMPTFOO_CONFIG_DIR": str(tmp_path / "promptfoo-home"), "PROMPTFOO_DISABLE_TELEMETRY": "1",
            "PROMPTFOO_DISABLE_UPDATE": "1", "PROMPTFOO_DISABLE_SHARING": "1", "NO_COLOR": "1",
            "FORCE_COLOR": "0", "NODE_NO_WARNINGS": "1", "HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url,
            "http_proxy": proxy.url, "https_proxy": proxy.url, "NO_PROXY": "", "no_proxy": ""}


def _scan_model(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["promptfoo", "scan-model", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


def _passed_args(tmp_path: Path) -> list[str]:
    return (tmp_path / "modelaudit-args.log").read_text().splitlines()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pf-models")
    write_honest_models(root / "honest")
    write_malicious_pickle(root / "evil" / "evil.pkl")
    write_warning_only_pickle(root / "warning" / "layers.pkl")
    return root


def test_malicious_pickle_is_reported_with_exit_code_1(pf_env, models, tmp_path, proxy):
    proc = _scan_model(pf_env, tmp_path, str(models / "evil" / "evil.pkl"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Found 1 issues" in out and "CRITICAL (1)" in out and "posix.system" in out and "evil.pkl" in out
    assert "Results saved to database" in out
    assert "scan " + str(models / "evil" / "evil.pkl") + " --format json --timeout 300" in _passed_args(tmp_path)
    assert not any("pypi.org" in t or "api.promptfoo.dev" in t for t in proxy.targets)  # no update checks


def test_honest_models_are_clean_with_exit_code_0(pf_env, models, tmp_path):
    proc = _scan_model(pf_env, tmp_path, str(models / "honest"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"No issues found\. [1-9]\d* checks passed", out) and "Scanned 2 files" in out


def test_warning_only_model_counts_as_findings(pf_env, models, tmp_path):
    proc = _scan_model(pf_env, tmp_path, str(models / "warning"))
    assert proc.returncode == 1 and "WARNING (1)" in proc.stdout and "acme_models.layers.Dense" in proc.stdout


def test_every_flag_promptfoo_passes_is_accepted(pf_env, models, tmp_path):
    # (promptfoo keeps -v/--verbose for its own debug log; --sbom is covered by the SBOM tests)
    proc = _scan_model(pf_env, tmp_path, str(models / "evil"), str(models / "honest"), "--blacklist", "evil",
                       "--timeout", "120", "--max-size", "1GB", "--strict", "--no-cache",
                       "--progress", "--quiet", "--stream", "--scanners", "pickle", "--scanners", "pytorch,numpy",
                       "--exclude-scanner", "zip", "--name", "flags")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    (args,) = _passed_args(tmp_path)[-1:]
    for flag in ("--blacklist evil", "--strict", "--progress", "--timeout 120", "--max-size 1GB",
                 "--no-cache", "--quiet", "--stream", "--scanners pickle --scanners pytorch,numpy",
                 "--exclude-scanner zip"):
        assert flag in args, (flag, args)
    assert "posix.system" in out and "evil" in out


def test_incomplete_scan_is_an_error_never_a_pass(pf_env, models, tmp_path):
    # a 1KB size limit leaves the torch checkpoint unscanned: modelaudit exits 2, promptfoo errors
    proc = _scan_model(pf_env, tmp_path, str(models / "honest" / "classifier.pt"), "--max-size", "1KB")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "exited with code 2" in out, out
    assert "No issues found" not in out


def test_no_write_passes_our_own_report_through(pf_env, models, tmp_path):
    out_file = tmp_path / "results.json"
    proc = _scan_model(pf_env, tmp_path, str(models / "evil"), "--no-write", "--format", "json",
                       "--output", str(out_file))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert '"severity":"critical"' in out_file.read_text()  # our compact JSON, as CI greps expect
    assert json.loads(out_file.read_text())["failed_checks"] >= 1


def test_list_scanners_and_dry_run(pf_env, models, tmp_path):
    listing = _scan_model(pf_env, tmp_path, "--list-scanners")
    assert listing.returncode == 0 and "safetensors" in listing.stdout, listing.stdout + listing.stderr
    dry = _scan_model(pf_env, tmp_path, str(models / "evil"), "--dry-run")
    assert dry.returncode == 0 and "Scanned 0 files" in dry.stdout, dry.stdout + dry.stderr
    assert "--dry-run" in _passed_args(tmp_path)[-1]


# --------------------------------------------------------------------------- the reference's recipes
def _job(workdir: Path, env: dict[str, str], commands: list[str]) -> tuple[int, str]:
    """Run CI commands in order as a runner does: the first failing one fails the job."""
    log = ""
    for command in commands:
        proc = subprocess.run([*BASH, command], cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
        log += proc.stdout + proc.stderr
        if proc.returncode != 0:
            return proc.returncode, log
    return 0, log


def _github_commands() -> list[str]:
    steps = yaml.safe_load((REFERENCE / "github-actions.yml").read_text())["jobs"]["scan"]["steps"]
    named = {s.get("name"): s.get("run") for s in steps}
    return [named["Scan models"], named["Check for critical issues"]]


def _gitlab_commands() -> list[str]:
    script = yaml.safe_load((REFERENCE / "gitlab-ci.yml").read_text())["model_security_scan"]["script"]
    return [line for line in script if "install" not in line]  # pip/npm installs: done by the fixtures


@pytest.mark.parametrize("recipe", [_github_commands, _gitlab_commands], ids=["github", "gitlab"])
@pytest.mark.parametrize(("model", "fails"), [("evil", True), ("honest", False)])
def test_reference_ci_recipes_as_written(pf_env, models, tmp_path, recipe, model, fails):
    shutil.copytree(models / model, tmp_path / "models")
    code, log = _job(tmp_path, pf_env, recipe())
    assert (code != 0) is fails, log
    results = json.loads((tmp_path / "scan-results.json").read_text())  # promptfoo rewrites it indented
    assert bool(results["issues"]) is fails and results["has_errors"] is False
    # the pattern docs/ci/github-actions.md gives for promptfoo's file finds its critical findings
    (pattern,) = re.findall(r"grep -Eq '([^']+)'", (DOCS / "github-actions.md").read_text())
    grep = subprocess.run(["grep", "-Eq", pattern, "scan-results.json"], cwd=tmp_path)
    assert (grep.returncode == 0) is (model == "evil")


def test_reference_grep_step_on_modelaudit_json(models, tmp_path):
    """The recipe's grep for '"severity":"critical"' matches our JSON exactly when a finding is critical."""
    grep = _github_commands()[1]
    for model, critical in (("evil", True), ("warning", False), ("honest", False)):
        subprocess.run([MODELAUDIT, "scan", str(models / model), "--format", "json", "--output",
                        str(tmp_path / "scan-results.json")], capture_output=True)
        proc = subprocess.run([*BASH, grep], cwd=tmp_path, capture_output=True, text=True)
        assert (proc.returncode == 1) is critical and ("Critical security issues" in proc.stdout) is critical


@pytest.mark.skipif(not PRE_COMMIT.exists(), reason="pre-commit (test extra) is needed")
def test_reference_pre_commit_recipe_as_written(pf_env, models, tmp_path):
    """`entry: promptfoo scan-model` with `language: system`: honest commits pass, a malicious pickle blocks."""
    env = {**isolated_env(tmp_path / "home"), "PATH": pf_env["PATH"],
           **{k: v for k, v in pf_env.items() if k.startswith(("PROMPTFOO_", "HTTP", "http", "NO_PROXY", "no_"))}}
    repo = init_repo(tmp_path / "project", env)
    shutil.copy(REFERENCE / "pre-commit-config.yaml", repo / ".pre-commit-config.yaml")
    shutil.copytree(models / "honest", repo / "models")
    (repo / "config.yaml").write_text("model: bert\nepochs: 3\n")
    assert subprocess.run([str(PRE_COMMIT), "install"], cwd=repo, env=env, capture_output=True).returncode == 0
    git(repo, env, "add", "-A")
    honest = subprocess.run(["git", "commit", "-m", "models"], cwd=repo, env=env, capture_output=True, text=True)
    assert honest.returncode == 0, honest.stdout + honest.stderr
    write_malicious_pickle(repo / "models" / "evil.pkl")
    git(repo, env, "add", "-A")
    blocked = subprocess.run(["git", "commit", "-m", "evil"], cwd=repo, env=env, capture_output=True, text=True)
    out = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0 and "posix.system" in out and "models/evil.pkl" in out, out
    assert git(repo, env, "rev-list", "--count", "HEAD") == "1"
