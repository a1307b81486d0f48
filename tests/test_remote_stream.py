"""--stream (download, scan, delete one file at a time) and download progress bars, against the tests' own
Artifactory and Hub servers and moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import pickle
import pty
import select
import subprocess
import tempfile
from pathlib import Path

import pytest

from .artifactory_server import Artifactory
from .conftest import MODELAUDIT, run_cli
from .hub_server import Hub
from .servers import EVIL, aws_env, cache_env, moto_server, s3_client, tool, write_tree

TOKEN = "akey-stream-secret-42"
FOLDER = {
    "a/model.pkl": EVIL,
    "a/sub/weights.pkl": pickle.dumps([1.0, 2.0, 3.0]),
    "a/sub/deeper/extra.pkl": pickle.dumps({"k": "v"}),
    "a/config.json": b'{"model_type": "demo"}',
    "a/README.md": b"# not fetched",
}
LARGE = pickle.dumps(bytes(3_000_000))  # several download chunks, for the progress bar


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    root = tmp_path_factory.mktemp("art-stream")
    write_tree(root, {**{f"models/{k}": v for k, v in FOLDER.items()}, "models/large.pkl": LARGE})
    server = Artifactory(root, api_keys={TOKEN}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub-stream")
    write_tree(root / "acme" / "stream", FOLDER)
    (root / "repos.json").write_text(json.dumps({"acme/stream": {}}))
    server = Hub(root).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    if not (importlib.util.find_spec("boto3") and tool("moto_server")):
        pytest.skip("moto_server (moto[server]) is not installed")
    root = tmp_path_factory.mktemp("s3-stream")
    with moto_server() as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket="stream")
        for path, data in FOLDER.items():
            client.put_object(Bucket="stream", Key=path, Body=data)
        yield aws_env(root, endpoint)


def _target(kind: str, art, hub, request) -> tuple[str, dict[str, str]]:
    if kind == "jfrog":
        return art.url("models/a/"), {"JFROG_API_TOKEN": TOKEN}
    if kind == "hf":
        return "hf://acme/stream", {"HF_ENDPOINT": hub.endpoint, "HF_TOKEN": "", "HF_HUB_DISABLE_TELEMETRY": "1"}
    return "s3://stream/a/", request.getfixturevalue("s3")


SCANNABLE = {"model.pkl", "weights.pkl", "extra.pkl", "config.json"}


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", ["jfrog", "hf", "s3"])
@pytest.mark.parametrize("cache", [False, True])
def test_stream_keeps_one_file_on_disk_and_same_findings(kind, cache, art, hub, request, tmp_path, monkeypatch):
    """A hook on the engine's per-file scan looks at the download area each time a file is scanned."""
    import modelaudit.engine as engine
    from modelaudit.core import scan_model_directory_or_file

    target, extra = _target(kind, art, hub, request)
    for key, value in {**extra, **cache_env(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    area = tmp_path / ("xdg" if cache else "tmp")
    area.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)
    seen: list[tuple[str, list[str]]] = []
    original = engine.scan_task

    def watching(task, config):
        seen.append((os.path.basename(task.path), [p.name for p in _files_under(area)]))
        return original(task, config)

    monkeypatch.setattr(engine, "scan_task", watching)
    streamed = scan_model_directory_or_file(target, cache=cache, stream=True)
    assert sorted(name for name, _ in seen) == sorted(SCANNABLE)
    for name, present in seen:
        assert present == [name], seen  # only the file being scanned is on disk, nothing kept in the cache
    assert _files_under(area) == []
    seen.clear()
    plain = scan_model_directory_or_file(target, cache=cache)
    assert {name for name, _ in seen} == SCANNABLE
    assert any(len(present) > 1 for _, present in seen)  # without --stream every download is on disk at once
    key = lambda r: sorted((i["location"], i["rule_code"], i["severity"]) for i in r["issues"])  # noqa: E731
    assert key(streamed) == key(plain) and any(i["rule_code"] == "MA-P001" for i in streamed["issues"])
    assert sorted(a["path"] for a in streamed["assets"]) == sorted(a["path"] for a in plain["assets"])


def test_stream_from_the_command_line_with_workers(art, tmp_path):
    env = {"JFROG_API_TOKEN": TOKEN, **cache_env(tmp_path)}
    plain = run_cli("scan", "-f", "json", "--no-cache", art.url("models/a/"), cwd=tmp_path, env=env)
    streamed = run_cli("scan", "-f", "json", "--stream", "-j", "2", art.url("models/a/"), cwd=tmp_path, env=env)
    assert plain.code == streamed.code == 1, streamed.stdout + streamed.stderr
    key = lambda r: sorted((i["location"], i["rule_code"]) for i in r.json()["issues"])  # noqa: E731
    assert key(streamed) == key(plain)
    assert streamed.json()["files_scanned"] == 4
    blobs = tmp_path / "xdg" / "modelaudit" / "blobs"
    assert not blobs.exists() or list(blobs.iterdir()) == []
    assert TOKEN not in streamed.stdout + streamed.stderr


def test_stream_with_local_and_remote_targets(art, tmp_path):
    local = tmp_path / "local.pkl"
    local.write_bytes(EVIL)
    env = {"JFROG_API_TOKEN": TOKEN, **cache_env(tmp_path)}
    r = run_cli("scan", "-f", "json", "--stream", "--no-isolation", str(local), art.url("models/a/model.pkl"),
                cwd=tmp_path, env=env)
    assert r.code == 1, r.stdout + r.stderr
    assert {a["path"] for a in r.json()["assets"]} == {str(local), art.url("models/a/model.pkl")}
    assert local.exists()  # a local target is never deleted


def test_free_disk_check_counts_one_file_when_streaming(art, tmp_path, monkeypatch):
    """Room for the largest file only: a plain scan refuses before downloading, --stream goes ahead."""
    from modelaudit.core import scan_model_directory_or_file
    from modelaudit.sources.cache import DISK_MARGIN, Store

    for key, value in {"JFROG_API_TOKEN": TOKEN, "MODELAUDIT_CACHE_DIR": "", "XDG_CACHE_HOME": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    largest = max(len(v) for k, v in FOLDER.items() if not k.endswith(".md"))
    monkeypatch.setattr(Store, "free_bytes", lambda self: DISK_MARGIN + largest)
    art.log.clear()
    refused = scan_model_directory_or_file(art.url("models/a/"), cache=False)
    assert refused["summary"]["exit_code"] == 2
    assert "not enough free disk space" in refused["issues"][0]["message"]
    assert art.downloads() == []
    streamed = scan_model_directory_or_file(art.url("models/a/"), cache=False, stream=True)
    assert streamed["summary"]["exit_code"] == 1 and len(art.downloads()) == 4


def test_s3_prefix_fetches_only_scannable_files(s3, tmp_path):
    env = {**s3, **cache_env(tmp_path)}
    dry = run_cli("scan", "--dry-run", "-f", "json", "s3://stream/a/", cwd=tmp_path, env=env)
    files = {f["path"]: f for f in dry.json()["files"]}
    assert files["s3://stream/a/README.md"]["skipped"] == "not a scannable file; not fetched"
    assert files["s3://stream/a/README.md"]["size"] == len(FOLDER["a/README.md"])
    assert dry.json()["download_files"] == 4
    r = run_cli("scan", "-f", "json", "-v", "--no-isolation", "s3://stream/a/", cwd=tmp_path, env=env)
    assert r.code == 1, r.stdout + r.stderr
    assert {a["path"].rsplit("/", 1)[-1] for a in r.json()["assets"]} == SCANNABLE
    assert "not fetched (not a scannable file): s3://stream/a/README.md" in r.stderr
    named = run_cli("scan", "-f", "json", "--no-isolation", "s3://stream/a/README.md", cwd=tmp_path, env=env)
    assert named.json()["files_scanned"] == 1  # a key the user names is always fetched


# --- progress bars --------------------------------------------------------------------------------------------


def _env(tmp_path) -> dict[str, str]:
    env = {**os.environ, "JFROG_API_TOKEN": TOKEN, **cache_env(tmp_path), "NO_COLOR": "1"}
    env.pop("CI", None)  # the default --progress is off under CI
    return env


def _run_with_tty_stderr(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal and stdout on a pipe."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([MODELAUDIT, *args], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                            cwd=cwd, env=env)
    os.close(slave)
    out = io.BytesIO()
    seen = io.BytesIO()
    while True:
        ready, _, _ = select.select([master, proc.stdout], [], [], 60)
        if not ready:
            proc.kill()
            raise AssertionError("the scan produced no output for 60 s")
        if proc.stdout in ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            out.write(chunk)
            if not chunk and proc.poll() is not None:
                break
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                data = b""
            seen.write(data)
            if not data and proc.poll() is not None:
                break
    proc.wait(timeout=60)
    rest = proc.stdout.read()
    proc.stdout.close()
    try:
        while data := os.read(master, 65536):
            seen.write(data)
    except OSError:
        pass
    os.close(master)
    return proc.returncode, (out.getvalue() + rest).decode(), seen.getvalue().decode(errors="replace")


def test_progress_bar_on_a_terminal(art, tmp_path):
    code, stdout, terminal = _run_with_tty_stderr(["scan", "-f", "json", "--no-isolation",
                                                   art.url("models/large.pkl")], tmp_path, _env(tmp_path))
    assert code == 0, stdout + terminal
    assert "Downloading" in terminal and "large.pkl" in terminal and "100%" in terminal, terminal
    assert "3.0 MB" in terminal
    assert json.loads(stdout)["files_scanned"] == 1  # stdout stays clean JSON
    assert "Downloading" not in stdout and TOKEN not in terminal
    assert "/view-" not in terminal  # file progress names the download by its URL, not a temporary path


def test_progress_bar_off_with_quiet_even_on_a_terminal(art, tmp_path):
    code, stdout, terminal = _run_with_tty_stderr(["scan", "-q", "--no-isolation", art.url("models/large.pkl")],
                                                  tmp_path, _env(tmp_path))
    assert code == 0, stdout + terminal
    assert "Downloading" not in terminal


@pytest.mark.parametrize("flags", [[], ["--progress"]])
def test_no_progress_bar_when_stderr_is_not_a_terminal(art, tmp_path, flags):
    proc = subprocess.run([MODELAUDIT, "scan", "-f", "json", "--no-isolation", *flags, art.url("models/large.pkl")],
                          capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Downloading" not in proc.stderr and "%" not in proc.stderr
    assert json.loads(proc.stdout)["files_scanned"] == 1


def test_bar_rendering():
    from modelaudit.sources.progress import NO_BARS, Bars

    stream = io.StringIO()
    with Bars(stream).bar("s3://bucket/" + "x" * 60 + "/model.pkl", 2_000_000) as bar:
        bar.advance(1_000_000)
        bar.advance(1_000_000)
    text = stream.getvalue()
    assert text.startswith("\rDownloading …") and "model.pkl" in text
    assert "  0%" in text and "100%" in text and "2.0 MB/2.0 MB" in text
    assert text.endswith("\r")  # the line is cleared for what follows
    with NO_BARS.bar("x", 10) as bar:  # silent bars accept the same calls
        bar.advance(10)
