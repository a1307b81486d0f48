"""Shared test helpers: run the real `modelaudit` executable and the Python API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN_DIR = Path(sys.executable).parent
MODELAUDIT = str(BIN_DIR / "modelaudit")


@dataclass
class CliRun:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def run_cli(*args: str, cwd: str | Path | None = None, env: dict | None = None, timeout: float = 300) -> CliRun:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run([MODELAUDIT, *args], capture_output=True, text=True, cwd=cwd, env=full_env,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    return CliRun(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli


def scan(path: str | Path, **config) -> dict:
    from modelaudit.core import scan_model_directory_or_file

    return scan_model_directory_or_file(str(path), **config)


def findings(result: dict, min_severity: str = "warning") -> list[dict]:
    order = ["debug", "info", "warning", "critical"]
    return [i for i in result["issues"] if order.index(i["severity"]) >= order.index(min_severity)]


def codes(result: dict, min_severity: str = "debug") -> set[str]:
    return {i["rule_code"] for i in findings(result, min_severity)}


# --- no temporary file survives the suite ------------------------------------------------------
# The controller gives the whole run (xdist workers and every CLI subprocess inherit TMPDIR) a
# private temporary folder; after the last test nothing named modelaudit-* may remain in it.
_PRIVATE_TMP: str | None = None


def _is_controller(config) -> bool:
    return not hasattr(config, "workerinput")


_REPO = Path(__file__).resolve().parents[1]
_OUTSIDE_BEFORE: set[str] = set()


def _outside_writes() -> set[str]:
    """Files a scan could plausibly leave outside the temporary area: untracked files in the
    repository and anything in the user's default modelaudit cache."""
    found: set[str] = set()
    proc = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=_REPO,
                          capture_output=True, text=True)
    if proc.returncode == 0:
        found |= {line[3:] for line in proc.stdout.splitlines() if line.startswith("??")}
    cache = Path.home() / ".cache" / "modelaudit"
    if cache.is_dir():
        found |= {str(p) for p in cache.rglob("*")}
    return found


def pytest_configure(config):
    global _PRIVATE_TMP
    if _is_controller(config):
        _OUTSIDE_BEFORE.update(_outside_writes())
    if _is_controller(config) and "MODELAUDIT_TEST_TMPDIR" not in os.environ:
        import tempfile

        _PRIVATE_TMP = tempfile.mkdtemp(prefix="modelaudit-suite-tmp-")
        os.environ["TMPDIR"] = os.environ["MODELAUDIT_TEST_TMPDIR"] = _PRIVATE_TMP
        tempfile.tempdir = None  # re-read TMPDIR


def pytest_sessionfinish(session, exitstatus):
    if _PRIVATE_TMP is None or not _is_controller(session.config):
        return
    import shutil

    leftovers = sorted(name for name in os.listdir(_PRIVATE_TMP) if name.startswith("modelaudit-"))
    shutil.rmtree(_PRIVATE_TMP, ignore_errors=True)
    if leftovers:
        print(f"\nTemporary files left behind by scans: {leftovers}")
        session.exitstatus = 1
    written = sorted(_outside_writes() - _OUTSIDE_BEFORE)
    if written:
        print(f"\nFiles written outside the temporary area during the tests: {written[:20]}")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """The run's real `mlflow server` (tests/mlflow_server.py), shared by the pytest workers: (endpoint, auth,
    server folder). Defined once here: a module defining its own copy would start and stop it twice."""
    from .mlflow_server import shared_server

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "mlflow-shared"
    with shared_server(root) as server:
        yield server
