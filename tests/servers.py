"""What the remote-source tests share: servers on 127.0.0.1 and the environment that keeps clients there.

A server process gets a free loopback port and its own process group; it is ready when its URL answers
within a deadline, and it is stopped with everything it started by signalling the group (SIGTERM, SIGKILL
after a grace period). Servers of our own (hub_server.py, artifactory_server.py) answer from a thread.
The payloads and the scan command every remote test uses are here too.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

#: clients must not send loopback requests through a proxy from the environment
LOOPBACK = {"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}


# --- payloads and results -----------------------------------------------------------------------------------


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo modelaudit-test",))  # harmless if ever loaded


EVIL = pickle.dumps(_Payload(), protocol=2)
HONEST = pickle.dumps({"w": [1.0, 2.0], "b": 0.5})
#: a bucket or repository folder: files to find, a prefix with files a folder scan skips, one with nothing to scan
MODEL_TREE = {
    "evil.pkl": EVIL,
    "ok.pkl": HONEST,
    "big.pkl": HONEST + b"\0" * 4096,  # above the --max-size the tests give
    "team/v1/model.pkl": EVIL,
    "team/v1/sub/weights.pkl": pickle.dumps([1, 2, 3]),
    "team/v1/config.json": b'{"model_type": "demo"}',
    "team/v1/README.md": b"# model card",
    "docs/notes.md": b"nothing to scan",
}


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        dest = root / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


def scan(env: dict[str, str], cwd: str | Path, *args: str, timeout: float = 120):  # noqa: ANN201 - a CliRun
    """`modelaudit scan` in this process's tree of processes (no worker isolation), as a user runs it."""
    from .conftest import run_cli

    return run_cli("scan", "--no-isolation", *args, cwd=cwd, env=env, timeout=timeout)


def locations(result) -> set[str]:  # noqa: ANN001
    """Where the findings are, without pickle positions."""
    return {i["location"].split(" (pos ")[0] for i in result.json()["issues"]}


def unavailable(result, expected: str) -> None:  # noqa: ANN001
    """A target that could not be fetched: only coverage findings (exit 2), the first saying `expected`."""
    assert result.code == 2, result.stdout + result.stderr
    issues = result.json()["issues"]
    assert issues and all(i["rule_code"] == "MA-S010" for i in issues), issues
    assert expected in issues[0]["message"], issues[0]["message"]
    assert "Traceback" not in result.stderr


def no_local_paths(result, tmp_path: Path) -> None:  # noqa: ANN001
    """Findings name remote files by their URIs, never by where they were downloaded."""
    assert str(tmp_path) not in result.stdout
    assert "/tmp/" not in result.stdout and ".cache/modelaudit" not in result.stdout


def cache_env(tmp_path: Path) -> dict[str, str]:
    """The default cache below the test's folder (MODELAUDIT_CACHE_DIR from outside is ignored)."""
    return {"XDG_CACHE_HOME": str(tmp_path / "xdg"), "MODELAUDIT_CACHE_DIR": ""}


def cached_files(tmp_path: Path) -> list[Path]:
    """What the default cache of cache_env keeps."""
    blobs = tmp_path / "xdg" / "modelaudit" / "blobs"
    return list(blobs.iterdir()) if blobs.exists() else []


def aws_env(root: Path, endpoint: str | None = None) -> dict[str, str]:
    """AWS clients that reach only `endpoint` (moto): test keys, no profile or config file of the user's,
    no instance-metadata lookups."""
    empty = root / "aws-empty"  # dvc-s3 rejects /dev/null as a config file
    empty.write_text("")
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(empty),
            "AWS_SHARED_CREDENTIALS_FILE": str(empty), "AWS_ENDPOINT_URL": endpoint or "", **LOOPBACK}


# --- server processes ---------------------------------------------------------------------------------------


def tool(name: str) -> str | None:
    """A command installed with the test dependencies: in this interpreter's bin folder, else on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_process(args: list[str], log: Path | None = None, **popen) -> subprocess.Popen:
    """Start a server in its own session (so its process group holds it and all it starts); output to `log`."""
    with open(log, "wb") if log else open(os.devnull, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, **popen)


def wait_ready(proc: subprocess.Popen, url: str, what: str, deadline: float = 30.0, interval: float = 0.1,
               log: Path | None = None) -> None:
    """Poll `url` until it answers without an HTTP error; RuntimeError (with the log's tail) when the process ends first or
    the deadline passes. The caller stops the process."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    until = time.monotonic() + deadline
    while True:
        try:
            with opener.open(url, timeout=2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > until:
                tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
                raise RuntimeError(f"{what} did not start" + (f":\n{tail}" if tail else "")) from None
            time.sleep(interval)


def stop_group(pgid: int, grace: float = 10.0) -> None:
    """SIGTERM a server's process group; SIGKILL what is left after `grace` seconds. The leader need not be
    our child (a server shared by the pytest workers)."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    until = time.monotonic() + grace
    while time.monotonic() < until:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        try:  # reap the leader when it is our child, or the group never empties
            os.waitpid(pgid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def server_process(args: list[str], ready_url: str, what: str, log: Path | None = None,
                   deadline: float = 30.0, **popen) -> Iterator[subprocess.Popen]:
    """A started, answering server process for the duration of the block; then its group is stopped."""
    proc = start_process(args, log, **popen)
    try:
        wait_ready(proc, ready_url, what, deadline, log=log)
        yield proc
    finally:
        stop_group(proc.pid)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


@contextmanager
def moto_server(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """moto's S3 server (moto[server]) on a free port; yields its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = tool("moto_server") or "moto_server"
    with server_process([moto, "-H", "127.0.0.1", "-p", str(port)], f"{endpoint}/moto-api/", "moto_server",
                        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true", **(extra_env or {})}):
        yield endpoint


def s3_client(endpoint: str):  # noqa: ANN201 - a boto3 S3 client
    """A client of the moto server with its test keys, for putting the fixtures in place."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


# --- servers of our own, in a thread -------------------------------------------------------------------------


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers with a body of known length (keep-alive works)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass

    def send_body(self, status: int, body: bytes = b"", headers: dict | None = None,
                  ctype: str = "application/json") -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def serve_in_thread(handler: type[BaseHTTPRequestHandler], port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 (port 0: a free one) answering from daemon threads; stop it with stop_server."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_server(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()
