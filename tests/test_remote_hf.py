"""Hugging Face and plain-HTTP targets, against a Hub-API server of our own on 127.0.0.1 (tests/hub_server.py)."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import run_cli
from .hub_server import Hub
from .servers import EVIL, cache_env, free_port, locations, no_local_paths, scan, unavailable, write_tree

GOOD = "hf_good_token"
HERE = Path(__file__).parent


def _torch_state() -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"weight": torch.zeros(3, 3), "bias": torch.ones(3)}, buf)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    honest = _torch_state()
    repos = {
        "acme/honest": ({"pytorch_model.bin": honest, "config.json": b'{"model_type": "bert"}',
                         "tokenizer.json": b'{"version": "1.0"}', "README.md": b"# honest",
                         "images/logo.png": b"\x89PNG\r\n\x1a\n" + b"0" * 64}, {}),
        "acme/evil": ({"pytorch_model.bin": EVIL, "archive.zip": _zip({"evil.pkl": EVIL}),
                       "config.json": b"{}", "README.md": b"# evil"}, {}),
        "acme/private-model": ({"model.pkl": EVIL, "config.json": b"{}"}, {"private": True}),
        "acme/gated-model": ({"model.pkl": EVIL}, {"gated": True}),
        "acme/docs-only": ({"README.md": b"# nothing", "logo.png": b"\x89PNG"}, {}),
        "bert-base-uncased": ({"pytorch_model.bin": honest, "config.json": b'{"model_type": "bert"}',
                               "vocab.txt": b"[PAD]\n[UNK]\n", "README.md": b"# bert"}, {}),
        "gpt2": ({"pytorch_model.bin": honest, "config.json": b"{}"}, {}),
    }
    for repo_id, (files, _opts) in repos.items():
        write_tree(root / repo_id, files)
    (root / "repos.json").write_text(json.dumps({r: o for r, (_f, o) in repos.items()}))
    (root / "raw").mkdir()
    (root / "raw" / "evil.pkl").write_bytes(EVIL)
    (root / "raw" / "ok.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    server = Hub(root, tokens={GOOD}).start()
    yield server
    server.stop()


@pytest.fixture
def env(hub, tmp_path):
    return {"HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1",
            "HF_HUB_OFFLINE": "", "HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "", **cache_env(tmp_path),
            "HF_HOME": str(tmp_path / "hf")}


@pytest.mark.parametrize("target", ["https://huggingface.co/acme/evil", "https://hf.co/acme/evil", "hf://acme/evil",
                                    "https://huggingface.co/acme/evil/tree/main", "hf://acme/evil@main"])
def test_repo_url_forms_are_located_by_uri(env, tmp_path, target):
    r = scan(env, tmp_path, "-f", "json", target)
    assert r.code == 1, r.stdout + r.stderr
    locs = locations(r)
    assert "hf://acme/evil/pytorch_model.bin" in locs
    assert any(loc.startswith("hf://acme/evil/archive.zip:evil.pkl") for loc in locs), locs
    assert {a["path"] for a in r.json()["assets"]} >= {"hf://acme/evil/pytorch_model.bin", "hf://acme/evil/archive.zip"}
    no_local_paths(r, tmp_path)


def test_revision_by_sha(hub, env, tmp_path):
    sha = hub.repos["acme/evil"].sha
    for target in (f"hf://acme/evil@{sha}", f"https://huggingface.co/acme/evil/tree/{sha}"):
        r = scan(env, tmp_path, "-f", "json", target)
        assert r.code == 1, r.stdout + r.stderr
        assert f"hf://acme/evil@{sha}/pytorch_model.bin" in locations(r)


@pytest.mark.parametrize("kind", ["resolve", "blob"])
def test_single_file_urls(hub, env, tmp_path, kind):
    hub.log.clear()
    r = scan(env, tmp_path, "-f", "json", f"https://huggingface.co/acme/evil/{kind}/main/pytorch_model.bin")
    assert r.code == 1, r.stdout + r.stderr
    assert locations(r) == {"hf://acme/evil/pytorch_model.bin"}
    fetched = {e["path"] for e in hub.file_downloads()}
    assert len(fetched) == 1  # only that file (through the CDN redirect)
    assert all(e["auth"] is None for e in hub.log)


@pytest.mark.parametrize("target", ["hf://gpt2", "https://huggingface.co/gpt2", "https://hf.co/bert-base-uncased",
                                    "hf://acme/honest"])
def test_honest_models_are_clean(hub, env, tmp_path, target):
    hub.log.clear()
    r = scan(env, tmp_path, "-f", "json", target)
    assert r.code == 0, r.stdout + r.stderr
    assert r.json()["files_scanned"] >= 2
    requested = " ".join(e["path"] for e in hub.log)
    assert "README.md" not in requested and "logo.png" not in requested


def test_listed_names_outside_the_repo_are_reported_not_fetched(hub, env, tmp_path):
    """A hostile server can list `../x`: it is never written outside the download folder, and never silent."""
    from .hub_server import Repo

    hub.repos["acme/traversal"] = Repo("acme/traversal", {"../escape.pkl": pickle.dumps(1),
                                                          "model.pkl": pickle.dumps({"w": 1})})
    try:
        hub.log.clear()
        r = scan(env, tmp_path, "-f", "json", "hf://acme/traversal")
    finally:
        del hub.repos["acme/traversal"]
    assert r.code == 2, r.stdout + r.stderr
    report = r.json()
    assert [i["rule_code"] for i in report["issues"] if "escape.pkl" in i["message"]] == ["MA-S010"]
    assert report["files_scanned"] >= 1
    assert "escape" not in " ".join(e["path"] for e in hub.log if e.get("bytes"))


def test_default_cli_with_workers_and_text_output(env, tmp_path):
    r = run_cli("hf://acme/evil", cwd=tmp_path, env=env, timeout=120)
    assert r.code == 1, r.stdout + r.stderr
    assert "hf://acme/evil/pytorch_model.bin" in r.stdout
    no_local_paths(r, tmp_path)


def test_private_repo_with_token_from_dotenv(hub, env, tmp_path):
    r = scan(env, tmp_path, "-f", "json", "hf://acme/private-model")
    assert r.code == 2
    assert "HF_TOKEN" in r.stdout and "Traceback" not in r.stdout + r.stderr
    (tmp_path / ".env").write_text(f"# credentials\nexport HF_TOKEN=\"{GOOD}\"\n")
    hub.log.clear()
    r = scan(env, tmp_path, "-f", "json", "-v", "hf://acme/private-model")
    assert r.code == 1, r.stdout + r.stderr
    assert "hf://acme/private-model/model.pkl" in locations(r)
    assert GOOD not in r.stdout + r.stderr
    assert any(e["auth"] == f"Bearer {GOOD}" for e in hub.log)


def test_token_from_environment_never_in_output(hub, env, tmp_path):
    out = tmp_path / "report.sarif"
    for args in (("-f", "json"), ("-v",), ("-f", "sarif", "-o", str(out))):
        r = scan({**env, "HF_TOKEN": GOOD}, tmp_path, *args, "hf://acme/private-model")
        assert r.code == 1, r.stdout + r.stderr
        assert GOOD not in r.stdout + r.stderr
    assert GOOD not in out.read_text()
    r = run_cli("scan", "--dry-run", "hf://acme/private-model", cwd=tmp_path, env={**env, "HF_TOKEN": GOOD})
    assert r.code == 0 and GOOD not in r.stdout + r.stderr


def test_wrong_token(env, tmp_path):
    r = scan({**env, "HF_TOKEN": "hf_wrong_secret"}, tmp_path, "-v", "hf://acme/evil")
    assert r.code == 2
    assert "rejected the token" in r.stdout and "HF_TOKEN" in r.stdout
    assert "hf_wrong_secret" not in r.stdout + r.stderr and "Traceback" not in r.stdout + r.stderr


@pytest.mark.parametrize("target, expected", [
    ("hf://acme/no-such-model", "not found, or private"),
    ("https://huggingface.co/acme/evil/resolve/main/nope.bin", "file nope.bin not found in acme/evil"),
    ("hf://acme/evil@v9", "revision v9 not found in acme/evil"),
    ("https://huggingface.co/acme/evil/tree/nope", "revision nope not found"),
    ("hf://acme/gated-model", "gated repository"),
    ("hf://acme/docs-only", "no scannable files"),
    ("https://huggingface.co/datasets/acme/data", "datasets are not supported"),
])
def test_unavailable_targets_are_coverage_findings(env, tmp_path, target, expected):
    unavailable(scan(env, tmp_path, "-f", "json", target), expected)


def test_missing_repo_with_token_is_404(env, tmp_path):
    r = scan({**env, "HF_TOKEN": GOOD}, tmp_path, "hf://acme/no-such-model")
    assert r.code == 2 and "repository acme/no-such-model not found" in r.stdout


def test_unreachable_endpoint(env, tmp_path):
    port = free_port()  # nothing listens there
    r = scan({**env, "HF_ENDPOINT": f"http://127.0.0.1:{port}"}, tmp_path, "hf://acme/evil")
    assert r.code == 2 and "cannot reach the Hugging Face Hub" in r.stdout, r.stdout + r.stderr


def test_dry_run_lists_sizes_and_downloads_nothing(hub, env, tmp_path):
    hub.log.clear()
    r = run_cli("scan", "--dry-run", "-f", "json", "hf://acme/honest", cwd=tmp_path, env=env)
    assert r.code == 0, r.stderr
    files = {f["path"]: f for f in r.json()["files"]}
    size = len(hub.repos["acme/honest"].files["pytorch_model.bin"])
    assert files["hf://acme/honest/pytorch_model.bin"]["size"] == size
    assert files["hf://acme/honest/pytorch_model.bin"]["download"] is True
    assert files["hf://acme/honest/README.md"]["skipped"]
    assert r.json()["download_files"] == 3
    assert hub.file_downloads() == []
    text = run_cli("scan", "--dry-run", "hf://acme/honest", cwd=tmp_path, env=env)
    assert f"hf://acme/honest/pytorch_model.bin  -  {size} bytes  download" in text.stdout
    assert "nothing was downloaded" in text.stdout


def test_cache_second_scan_downloads_nothing(hub, env, tmp_path):
    cache = tmp_path / "cache"
    hub.log.clear()
    first = scan(env, tmp_path, "--cache-dir", str(cache), "-f", "json", "hf://acme/evil")
    assert first.code == 1 and len(hub.file_downloads()) == 3
    hub.log.clear()
    second = scan(env, tmp_path, "--cache-dir", str(cache), "-f", "json", "hf://acme/evil")
    assert second.code == 1
    assert hub.file_downloads() == [], hub.log
    assert locations(first) == locations(second)
    dry = run_cli("scan", "--dry-run", "-f", "json", "--cache-dir", str(cache), "hf://acme/evil", cwd=tmp_path,
                  env=env)
    assert dry.json()["download_files"] == 0
    assert not any((cache / "tmp").iterdir())  # per-scan views are removed


def test_default_cache_dir_is_under_xdg_cache_home(env, tmp_path):
    r = scan(env, tmp_path, "hf://gpt2")
    assert r.code == 0, r.stdout
    assert any((tmp_path / "xdg" / "modelaudit" / "blobs").iterdir())


def test_no_cache_downloads_every_time_and_leaves_nothing(hub, env, tmp_path):
    cache = tmp_path / "cache"
    for _ in range(2):
        hub.log.clear()
        r = scan(env, tmp_path, "--no-cache", "--cache-dir", str(cache), "hf://acme/evil")
        assert r.code == 1
        assert len(hub.file_downloads()) == 3
    assert not cache.exists()
    assert not (tmp_path / "xdg").exists()


def test_max_size_skips_large_files_before_download(hub, env, tmp_path):
    hub.log.clear()
    r = scan(env, tmp_path, "-f", "json", "--max-size", "100", "hf://acme/honest")
    assert r.code == 2, r.stdout
    big = [i for i in r.json()["issues"] if i["rule_code"] == "MA-S001"]
    assert big and big[0]["location"] == "hf://acme/honest/pytorch_model.bin"
    assert not any("pytorch_model.bin" in e["path"] or "/cdn/" in e["path"] for e in hub.file_downloads())


def test_plain_http_single_file(hub, env, tmp_path):
    url = f"{hub.endpoint}/raw/evil.pkl"
    r = scan(env, tmp_path, "-f", "json", url)
    assert r.code == 1, r.stdout + r.stderr
    assert locations(r) == {url}
    ok = scan(env, tmp_path, "-f", "json", f"{hub.endpoint}/raw/ok.pkl")
    assert ok.code == 0, ok.stdout
    big = scan(env, tmp_path, "-f", "json", "--max-size", "10", url)
    assert big.code == 2 and big.json()["issues"][0]["rule_code"] == "MA-S001"
    missing = scan(env, tmp_path, f"{hub.endpoint}/raw/none.pkl")
    assert missing.code == 2 and "HTTP 404" in missing.stdout
    plain = scan(env, tmp_path, "http://example.invalid/model.pkl")
    assert plain.code == 2 and "refusing plain http://" in plain.stdout


def test_programmatic_example_verbatim(hub, env, tmp_path):
    (tmp_path / "path/to/models").mkdir(parents=True)
    (tmp_path / "path/to/model.pkl").write_bytes(EVIL)
    (tmp_path / "path/to/models/ok.pkl").write_bytes(pickle.dumps({"w": [1.0]}))
    hub.log.clear()
    proc = subprocess.run([sys.executable, str(HERE / "reference_examples" / "programmatic_usage.py")], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # the URL scan's issues are printed: an honest torch zip in a .bin file (info), nothing critical
    assert "Detected pytorch_zip format in .bin file" in proc.stdout and "CRITICAL" not in proc.stdout, proc.stdout
    assert any(e["path"].startswith("/api/models/bert-base-uncased/") for e in hub.log)
    assert len(hub.file_downloads()) == 3  # pytorch_model.bin, config.json, vocab.txt


def test_python_api_locations(hub, env, tmp_path, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    from modelaudit.core import scan_model_directory_or_file

    result = scan_model_directory_or_file("hf://acme/evil", max_size="1MB")
    assert {i["location"] for i in result["issues"]} >= {"hf://acme/evil/pytorch_model.bin"}
    assert all(str(tmp_path) not in json.dumps(i) for i in result["issues"])


@pytest.mark.parametrize("target, repo, rev, filename", [
    ("hf://gpt2", "gpt2", None, None),
    ("hf://org/m@v1.0", "org/m", "v1.0", None),
    ("hf://org/m/sub/w.bin", "org/m", None, "sub/w.bin"),
    ("https://huggingface.co/bert-base-uncased", "bert-base-uncased", None, None),
    ("https://hf.co/org/m/tree/refs%2Fpr%2F1", "org/m", "refs/pr/1", None),
    ("https://huggingface.co/org/m/resolve/main/a/b.pt?download=true", "org/m", "main", "a/b.pt"),
    ("https://huggingface.co/gpt2/blob/abc/model.safetensors", "gpt2", "abc", "model.safetensors"),
])
def test_parse_targets(target, repo, rev, filename):
    from modelaudit.sources.huggingface import parse

    t = parse(target)
    assert (t.repo_id, t.revision, t.filename) == (repo, rev, filename)


@pytest.mark.parametrize("target", ["hf://", "hf://a/../b", "https://huggingface.co/a/b/c",
                                    "https://huggingface.co/org/m/resolve/main"])
def test_parse_rejects_malformed(target):
    from modelaudit.sources.http import SourceError
    from modelaudit.sources.huggingface import parse

    with pytest.raises(SourceError):
        parse(target)


def test_dotenv_parsing(tmp_path):
    from modelaudit.sources import read_dotenv

    (tmp_path / ".env").write_text("# c\nexport A=1\nB='two words'\nC=x # comment\nD=\"q#z\"\nbad line\n")
    assert read_dotenv(str(tmp_path / ".env")) == {"A": "1", "B": "two words", "C": "x", "D": "q#z"}


def test_free_disk_check_downloads_nothing(hub, env, tmp_path, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    from modelaudit.core import scan_model_directory_or_file
    from modelaudit.sources.cache import Store

    monkeypatch.setattr(Store, "free_bytes", lambda self: 1000)
    hub.log.clear()
    result = scan_model_directory_or_file("hf://acme/evil")
    assert result["summary"]["exit_code"] == 2
    assert "not enough free disk space" in result["issues"][0]["message"]
    assert hub.file_downloads() == []
