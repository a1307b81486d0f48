"""models:/ targets against a real `mlflow server` on 127.0.0.1 (tests/mlflow_server.py, one per test run).

Registered model "Fraud": version 1 is an honest scikit-learn model logged by mlflow.sklearn (alias
champion), version 2 a pickle that runs `echo` when loaded, plus an MLmodel file (alias challenger, and the
newest version). "Empty" has no versions.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import run_cli
from .mlflow_server import ADMIN, client_env
from .servers import cache_env, locations, no_local_paths, scan

pytest.importorskip("mlflow")


@pytest.fixture
def env(mlflow_server, tmp_path):
    endpoint, auth, _folder = mlflow_server
    return {**client_env(endpoint, auth), **cache_env(tmp_path)}


@pytest.fixture
def cwd(tmp_path):
    """An empty working directory; the scan must leave nothing in it (no ./mlflow.db, no ./mlruns)."""
    path = tmp_path / "cwd"
    path.mkdir()
    yield path
    assert sorted(os.listdir(path)) == []


def ma(env, cwd, *args):
    return scan(env, cwd, *args, timeout=240)  # importing the MLflow client alone takes seconds


MALICIOUS_FORMS = ["models:/Fraud/2", "models:/Fraud/Latest", "models:/Fraud/latest", "models:/Fraud/LATEST",
                   "models:/Fraud@challenger"]


def test_every_form_naming_the_malicious_version_is_located_by_uri(env, cwd, tmp_path):
    # one run, many targets: each is resolved on its own (the client starts once, which keeps this fast)
    r = ma(env, cwd, "-f", "json", "-v", *MALICIOUS_FORMS)
    assert r.code == 1, r.stdout + r.stderr
    found = locations(r)
    for target in MALICIOUS_FORMS:
        assert f"{target}/model.pkl" in found, (target, found)
    assert {i["rule_code"] for i in r.json()["issues"]} >= {"MA-P001"}
    assert {a["path"] for a in r.json()["assets"]} == {f"{t}/{name}" for t in MALICIOUS_FORMS
                                                       for name in ("model.pkl", "MLmodel")}
    no_local_paths(r, tmp_path)
    assert ADMIN[1] not in r.stdout + r.stderr  # the basic-auth password never shows, even with -v


def test_honest_sklearn_version_is_clean(env, cwd):
    targets = ["models:/Fraud/1", "models:/Fraud@champion"]
    r = ma(env, cwd, "-f", "json", *targets)
    assert r.code == 0, r.stdout + r.stderr
    paths = {a["path"] for a in r.json()["assets"]}
    for target in targets:
        assert {f"{target}/model.pkl", f"{target}/MLmodel", f"{target}/requirements.txt"} <= paths
    assert r.json()["files_scanned"] >= 6


def test_registry_uri_flag_as_documented(env, cwd, tmp_path):
    # `modelaudit scan models:/MyModel/1 --registry-uri URL` with no MLFLOW_TRACKING_URI set; a stale
    # MLFLOW_REGISTRY_URI in the environment does not win over the flag
    endpoint = env["MLFLOW_TRACKING_URI"]
    r = ma({**env, "MLFLOW_TRACKING_URI": "", "MLFLOW_REGISTRY_URI": "http://127.0.0.1:9"}, cwd, "-f", "json",
           "models:/Fraud/2", "--registry-uri", endpoint)
    assert r.code == 1, r.stdout + r.stderr
    assert "models:/Fraud/2/model.pkl" in locations(r)
    no_local_paths(r, tmp_path)


def test_no_server_configured_is_a_clear_finding(env, cwd):
    r = ma({**env, "MLFLOW_TRACKING_URI": ""}, cwd, "-f", "json", "models:/Fraud/1")
    assert r.code == 2, r.stdout + r.stderr
    (issue,) = r.json()["issues"]
    assert issue["rule_code"] == "MA-S010" and issue["location"] == "models:/Fraud/1"
    assert "MLFLOW_TRACKING_URI" in issue["message"] and "--registry-uri" in issue["message"]


MISSING = {
    "models:/NoSuchModel/1": "no registered model named 'NoSuchModel'",
    "models:/NoSuchModel/latest": "no registered model named 'NoSuchModel'",
    "models:/NoSuchModel@prod": "no registered model named 'NoSuchModel'",
    "models:/Fraud/9": "registered model 'Fraud' has no version 9",
    "models:/Fraud@nobody": "registered model 'Fraud' has no alias 'nobody'",
    "models:/Empty/Latest": "registered model 'Empty' has no versions",
    "models:/Fraud": "is not a registered model URI",
}


def test_missing_model_version_or_alias(env, cwd):
    r = ma(env, cwd, "-f", "json", *MISSING)
    assert r.code == 2, r.stdout + r.stderr
    issues = r.json()["issues"]
    assert {i["rule_code"] for i in issues} == {"MA-S010"}, issues
    by_location = {i["location"]: i["message"] for i in issues}
    assert set(by_location) == set(MISSING)
    for target, expected in MISSING.items():
        assert expected in by_location[target], by_location[target]
    assert "Traceback" not in r.stderr


def test_unreachable_server(env, cwd):
    r = ma({**env, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}, cwd, "-f", "json", "models:/Fraud/1")
    assert r.code == 2, r.stdout + r.stderr
    assert "cannot reach the MLflow server at http://127.0.0.1:9" in r.json()["issues"][0]["message"]


def test_max_size_is_checked_before_download(env, cwd):
    r = ma(env, cwd, "-f", "json", "--max-size", "300", "models:/Fraud/1")
    assert r.code == 2, r.stdout + r.stderr
    too_big = {i["location"] for i in r.json()["issues"] if i["rule_code"] == "MA-S001"}
    assert "models:/Fraud/1/model.pkl" in too_big and "models:/Fraud/1/requirements.txt" not in too_big
    assert "models:/Fraud/1/requirements.txt" in {a["path"] for a in r.json()["assets"]}


def test_dry_run_lists_the_version_and_downloads_nothing(env, cwd, tmp_path):
    r = run_cli("scan", "--dry-run", "-f", "json", "models:/Fraud@challenger", cwd=cwd, env=env, timeout=240)
    assert r.code == 0, r.stdout + r.stderr
    files = {f["path"]: f for f in r.json()["files"]}
    assert set(files) == {"models:/Fraud@challenger/model.pkl", "models:/Fraud@challenger/MLmodel"}
    assert files["models:/Fraud@challenger/model.pkl"]["size"] > 0
    assert r.json()["download_files"] == 2
    blobs = tmp_path / "xdg" / "modelaudit" / "blobs"
    assert not blobs.exists() or not any(blobs.iterdir())


# --- cache: proxied artifacts are kept under a key of their URL, ETag and length ----------------------------


def blobs(cache: Path) -> dict[str, tuple[int, int]]:
    """Each cached file's inode and mtime: a new download is published as a new file (new inode)."""
    folder = cache / "blobs"
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()} if folder.exists() else {}


def findings(result) -> list[tuple[str, str, str]]:  # noqa: ANN001
    return sorted((i["rule_code"], i["location"], i["message"]) for i in result.json()["issues"])


def test_unchanged_version_is_served_from_the_cache_and_a_rewrite_is_downloaded(env, cwd, tmp_path,
                                                                                 mlflow_server):
    cache = tmp_path / "cache"
    args = ("-f", "json", "--cache-dir", str(cache), "models:/Fraud/2")
    first = ma(env, cwd, *args)
    assert first.code == 1, first.stdout + first.stderr
    kept = blobs(cache)
    assert len(kept) == 2 and all(name.startswith("mlflow-") for name in kept), kept

    second = ma(env, cwd, *args)
    assert second.code == 1, second.stdout + second.stderr
    assert blobs(cache) == kept  # nothing downloaded: the same files, never replaced
    dry = ma(env, cwd, "--dry-run", *args)
    assert {f["path"]: f["cached"] for f in dry.json()["files"]} == {"models:/Fraud/2/model.pkl": True,
                                                                     "models:/Fraud/2/MLmodel": True}
    assert dry.json()["download_files"] == 0
    assert findings(second) == findings(first)
    assert not (tmp_path / "xdg").exists()  # --cache-dir, not the default cache

    # the server's ETag follows the stored file's mtime: a rewrite (here: same bytes, new mtime) is fetched again
    stored = [p for p in (mlflow_server[2] / "artifacts").rglob("model.pkl") if b"modelaudit-test" in p.read_bytes()]
    assert stored
    for path in stored:
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 7_000_000_000))
    third = ma(env, cwd, *args)
    assert third.code == 1, third.stdout + third.stderr
    now = blobs(cache)
    assert len(now) == 3 and set(kept) < set(now)  # model.pkl under a new key; MLmodel still from the cache
    assert {k: now[k] for k in kept} == kept
    new = (set(now) - set(kept)).pop()
    assert b"modelaudit-test" in (cache / "blobs" / new).read_bytes()
    assert findings(third) == findings(first)


def test_no_cache_keeps_nothing(env, cwd, tmp_path):
    cache = tmp_path / "cache"
    r = ma(env, cwd, "-f", "json", "--no-cache", "--cache-dir", str(cache), "models:/Fraud/2")
    assert r.code == 1, r.stdout + r.stderr
    assert "models:/Fraud/2/model.pkl" in locations(r)
    assert not cache.exists() or not any(cache.rglob("*"))  # no blob, no scan folder left behind
    assert not (tmp_path / "xdg").exists()


def test_python_api(env, monkeypatch, tmp_path):
    from modelaudit.core import scan_model_directory_or_file

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    result = scan_model_directory_or_file("models:/Fraud/2", registry_uri=env["MLFLOW_TRACKING_URI"])
    assert any(i["location"].startswith("models:/Fraud/2/model.pkl") and i["severity"] == "critical"
               for i in result["issues"]), result["issues"]
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


def test_missing_client_gives_the_install_hint(env, cwd, tmp_path):
    shim = tmp_path / "shim" / "mlflow"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('mlflow is not installed in this test')\n")
    r = ma({**env, "PYTHONPATH": str(shim.parent)}, cwd, "-f", "json", "models:/Fraud/1")
    assert r.code == 2, r.stdout + r.stderr
    (issue,) = r.json()["issues"]
    assert issue["rule_code"] == "MA-S006"
    assert "pip install 'modelaudit[mlflow]'" in issue["message"]


# --- basic auth (the server runs mlflow's basic-auth app when mlflow[auth] is installed) -----------------


@pytest.fixture
def auth_env(mlflow_server, env):
    if not mlflow_server[1]:
        pytest.skip("mlflow[auth] is not installed: the server runs without basic auth")
    return env


def test_missing_credentials_are_a_clear_401(auth_env, cwd):
    r = ma({**auth_env, "MLFLOW_TRACKING_USERNAME": "", "MLFLOW_TRACKING_PASSWORD": ""}, cwd, "-f", "json",
           "models:/Fraud/1")
    assert r.code == 2, r.stdout + r.stderr
    (issue,) = r.json()["issues"]
    assert "needs credentials (HTTP 401)" in issue["message"] and "MLFLOW_TRACKING_USERNAME" in issue["message"]


def test_wrong_password_is_a_clear_401_and_never_printed(auth_env, cwd):
    wrong = "not-the-Passw0rd-xyz"
    r = ma({**auth_env, "MLFLOW_TRACKING_PASSWORD": wrong}, cwd, "-f", "json", "-v", "models:/Fraud/1")
    assert r.code == 2, r.stdout + r.stderr
    (issue,) = r.json()["issues"]
    assert "rejected the credentials (HTTP 401)" in issue["message"]
    assert wrong not in r.stdout + r.stderr

