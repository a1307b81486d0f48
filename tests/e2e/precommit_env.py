"""Temporary git repositories for driving the real `pre-commit` tool.

Everything pre-commit, pip, virtualenv and git write goes under one temporary folder; git reads
no user or system configuration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import BIN_DIR

REPO = Path(__file__).resolve().parents[2]
PRE_COMMIT = BIN_DIR / "pre-commit"
# what `pip install .` of the hook repository needs: the package and its metadata
HOOK_REPO_FILES = (".pre-commit-hooks.yaml", "pyproject.toml", "README.md")


def isolated_env(home: Path) -> dict[str, str]:
    who = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.invalid",
           "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}
    return {**os.environ, **who, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0", "PRE_COMMIT_HOME": str(home / "pre-commit"),
            "PRE_COMMIT_COLOR": "never", "PIP_CACHE_DIR": str(home / "pip-cache"),
            "VIRTUALENV_OVERRIDE_APP_DATA": str(home / "virtualenv"), "NO_COLOR": "1",
            "PATH": f"{BIN_DIR}{os.pathsep}{os.environ['PATH']}"}


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def git(cwd: Path, env: dict[str, str], *args: str) -> str:
    proc = run(["git", *args], cwd, env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def init_repo(path: Path, env: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, env, "init", "-q", "-b", "main")
    return path


def hook_repo(path: Path, env: dict[str, str]) -> tuple[Path, str]:
    """A git copy of this project's files that `pip install .` and the hook manifest need; (path, rev)."""
    init_repo(path, env)
    for name in HOOK_REPO_FILES:
        shutil.copy(REPO / name, path / name)
    shutil.copytree(REPO / "src", path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    git(path, env, "add", "-A")
    git(path, env, "commit", "-q", "-m", "modelaudit")
    return path, git(path, env, "rev-parse", "HEAD")
