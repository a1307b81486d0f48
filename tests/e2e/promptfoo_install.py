"""Install the real promptfoo npm package (and the Node.js 22 it needs) for the end-to-end tests.

promptfoo needs Node.js >= 22.22; the npm package node-linux-<arch> carries that binary, so the
system's node is never touched. The install lives in pytest's cache folder (ignored by git), keyed
by the pinned versions and shared by the xdist workers through a file lock, so a second run reuses
it; a clean clone installs once (about a minute). Optional dependencies (cloud SDKs, browsers) and
install scripts are skipped: `scan-model` needs neither, only the SQLite binding named below.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROMPTFOO_VERSION = "0.123.1"
NODE_VERSION = "22.23.3"
LIBSQL_VERSION = "0.5.29"  # libsql's platform binding, an optional dependency promptfoo's database needs
INSTALL_TIMEOUT = 900


@dataclass(frozen=True)
class Promptfoo:
    root: Path
    install_seconds: float | None  # None when an earlier run's install was reused

    @property
    def bin_dir(self) -> Path:
        return self.root / "node_modules" / ".bin"  # `promptfoo` and the `node` it runs with


def platform_packages() -> tuple[str, str] | None:
    arch = {"x86_64": "x64", "aarch64": "arm64"}.get(platform.machine())
    if not sys.platform.startswith("linux") or arch is None:
        return None
    return f"node-linux-{arch}", f"@libsql/linux-{arch}-gnu"


def install(cache: Path) -> Promptfoo:
    packages = platform_packages()
    assert packages is not None
    node_pkg, libsql_pkg = packages
    root = cache / f"promptfoo-{PROMPTFOO_VERSION}-node-{NODE_VERSION}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one xdist worker installs, the other waits and reuses
        if (root / ".complete").exists():
            return Promptfoo(root, None)
        partial = cache / f"{root.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        (partial / "package.json").write_text(json.dumps({"private": True, "dependencies": {
            "promptfoo": PROMPTFOO_VERSION, node_pkg: NODE_VERSION, libsql_pkg: LIBSQL_VERSION}}))
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="npm-cache-") as npm_cache:
            _npm_install(partial, npm_cache)
        seconds = time.monotonic() - started
        (partial / ".complete").write_text(f"{seconds:.1f}\n")
        shutil.rmtree(root, ignore_errors=True)
        partial.rename(root)
        return Promptfoo(root, seconds)


def _npm_install(where: Path, npm_cache: str) -> None:
    env = {**os.environ, "npm_config_cache": npm_cache, "npm_config_update_notifier": "false",
           "npm_config_fund": "false", "npm_config_audit": "false", "npm_config_loglevel": "error"}
    cmd = ["npm", "install", "--omit=optional", "--ignore-scripts", "--no-package-lock", "--engine-strict=false"]
    proc = subprocess.Popen(cmd, cwd=where, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, stdin=subprocess.DEVNULL)
    try:
        out, _ = proc.communicate(timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"npm install did not finish within {INSTALL_TIMEOUT} s") from None
    assert proc.returncode == 0, f"npm install failed:\n{out[-4000:]}"
