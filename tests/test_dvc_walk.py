"""DVC pointers met while scanning a directory (a clone of a repository whose models live in DVC), with
repositories made by the real dvc CLI: the data a pointer names is scanned from the workspace or the DVC
cache under its own path, never downloaded, and reported as not scanned when only a remote has it."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from .servers import EVIL, HONEST, aws_env
from .servers import scan as ma
from .test_remote_dvc import DVC, env, forget_local_copies, local_project, project, sh  # noqa: F401 - fixtures

pytest.importorskip("yaml")


def _issues(r) -> list[tuple[str, str]]:
    return sorted((i["rule_code"], i["location"].split(" (pos ")[0]) for i in r.json()["issues"])


def _assets(r) -> list[str]:
    return sorted(a["path"] for a in r.json()["assets"])


def _cached_objects(repo: Path) -> list[Path]:
    return sorted(p for p in (repo / ".dvc" / "cache").rglob("*") if p.is_file())


def _object(repo: Path, data: bytes) -> Path:
    digest = hashlib.md5(data).hexdigest()
    return repo / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]


MODELS = ["repo/data/ok.pkl", "repo/data/sub/payload.pkl", "repo/evil.pkl", "repo/model.pkl"]


def _models(r) -> list[str]:
    """The scanned DVC-tracked files (the repository also holds .gitignore files and .dvc/config)."""
    return [a for a in _assets(r) if a.endswith(".pkl")]


def test_workspace_data_is_scanned_once_and_checked(project, env, tmp_path):
    r = ma(env, project, "-f", "json", "repo")
    assert r.code == 1, r.stdout + r.stderr
    assert _models(r) == MODELS  # each once: the walk's file, not again through its pointer
    assert not any(a.endswith(".dvc") or "/.dvc/cache/" in a for a in _assets(r))
    assert {loc for code, loc in _issues(r) if code == "MA-P001"} == {"repo/evil.pkl", "repo/data/sub/payload.pkl"}
    assert not any(code in ("MA-S010", "MA-S017") for code, _ in _issues(r))
    assert not (tmp_path / "xdg").exists()  # nothing from the cache or a remote was needed


def test_honest_workspace_is_clean(project, env):
    repo = project / "repo"
    for name in ("evil.pkl", "evil.pkl.dvc", "data.dvc"):
        (repo / name).unlink()
    shutil.rmtree(repo / "data")
    r = ma(env, project, "-f", "json", "repo")
    assert r.code == 0, r.stdout + r.stderr
    assert _models(r) == ["repo/model.pkl"] and r.json()["issues"] == []


def test_data_only_in_the_cache_is_scanned_at_its_output_path(project, env, tmp_path):
    repo = project / "repo"
    for name in ("model.pkl", "evil.pkl"):
        (repo / name).unlink()
    shutil.rmtree(repo / "data")
    before = _cached_objects(repo)
    r = ma(env, repo, "-f", "json", ".")
    assert r.code == 1, r.stdout + r.stderr
    # named as the walk names files: ./model.pkl next to ./model.pkl.dvc
    assert _models(r) == ["./data/ok.pkl", "./data/sub/payload.pkl", "./evil.pkl", "./model.pkl"]
    assert {loc for code, loc in _issues(r)} == {"./evil.pkl", "./data/sub/payload.pkl"}
    assert "MA-P001" in {code for code, _ in _issues(r)}
    assert "/tmp/" not in r.stdout.replace(str(tmp_path), "") and "view-" not in r.stdout
    assert not (repo / "evil.pkl").exists() and not (repo / "data").exists()  # the workspace is left alone
    assert _cached_objects(repo) == before


def test_part_of_a_directory_output_in_the_workspace(project, env):
    repo = project / "repo"
    (repo / "data" / "sub" / "payload.pkl").unlink()  # the rest of data/ is checked out
    r = ma(env, project, "-f", "json", "repo")
    assert r.code == 1, r.stdout + r.stderr
    assert _models(r) == MODELS
    assert ("MA-P001", "repo/data/sub/payload.pkl") in _issues(r)


def test_data_only_in_the_remote_is_reported_not_fetched(project, env, tmp_path):
    repo = project / "repo"
    forget_local_copies(repo)
    remote_before = sorted(p.relative_to(project) for p in (project / "remote").rglob("*"))
    r = ma(env, project, "-f", "json", "repo")
    assert r.code == 2, r.stdout + r.stderr  # incomplete, never clean
    assert _issues(r) == [("MA-S010", "repo/data"), ("MA-S010", "repo/evil.pkl"), ("MA-S010", "repo/model.pkl")]
    by_location = {i["location"]: i["message"] for i in r.json()["issues"]}
    message = by_location["repo/evil.pkl"]
    assert message.startswith(f"repo/evil.pkl ({len(EVIL)} bytes) was not scanned")
    assert "can only come from DVC remote 'store'" in message and str(project / "remote") in message
    assert "scan repo/evil.pkl.dvc itself" in message and "dvc pull" in message
    assert by_location["repo/data"].startswith("repo/data (2 files, ")
    assert _models(r) == []
    assert sorted(p.relative_to(project) for p in (project / "remote").rglob("*")) == remote_before
    assert not (tmp_path / "xdg").exists()  # nothing was downloaded or cached
    assert not (repo / ".dvc" / "cache").exists()


def test_some_files_of_a_directory_only_in_the_remote(project, env):
    repo = project / "repo"
    shutil.rmtree(repo / "data")
    _object(repo, EVIL).unlink()  # evil.pkl and data/sub/payload.pkl: the same bytes, one object
    (repo / "evil.pkl").unlink()
    r = ma(env, repo, "-f", "json", ".")
    assert r.code == 2, r.stdout + r.stderr
    assert _issues(r) == [("MA-S010", "./data"), ("MA-S010", "./evil.pkl")]
    (message,) = [i["message"] for i in r.json()["issues"] if i["location"] == "./data"]
    assert message.startswith("1 of the 2 files of ./data (sub/payload.pkl) were not scanned")
    assert _models(r) == ["./data/ok.pkl", "./model.pkl"]


def test_changed_workspace_copy_is_scanned_and_reported(project, env):
    repo = project / "repo"
    (repo / "model.pkl").write_bytes(EVIL)  # edited after `dvc add`: the cache holds the recorded version
    r = ma(env, project, "-f", "json", "repo")
    assert r.code == 1, r.stdout + r.stderr
    assert ("MA-P001", "repo/model.pkl") in _issues(r)  # the workspace file is scanned as it is
    (mismatch,) = [i for i in r.json()["issues"] if i["rule_code"] == "MA-S017"]
    assert mismatch["location"] == "repo/model.pkl"
    assert hashlib.md5(HONEST).hexdigest() in mismatch["message"] and "repo/model.pkl.dvc" in mismatch["message"]
    assert "scanned as it is" in mismatch["message"]
    assert _models(r) == MODELS


def test_replaced_cache_object_is_not_scanned(project, env):
    repo = project / "repo"
    (repo / "model.pkl").unlink()
    (repo / "evil.pkl").unlink()
    shutil.rmtree(repo / "data")
    stored = _object(repo, HONEST)
    stored.chmod(0o644)
    stored.write_bytes(EVIL)  # what a tampered cache would hold under the honest model's md5
    r = ma(env, repo, "-f", "json", ".")
    assert r.code == 1, r.stdout + r.stderr
    issues = _issues(r)
    assert ("MA-S017", "./model.pkl") in issues and ("MA-P001", "./model.pkl") not in issues
    assert ("MA-S017", "./data/ok.pkl") in issues  # the same object backs data/ok.pkl
    assert "./model.pkl" not in _models(r)


def test_workspace_folder_without_its_listing(project, env):
    """Without the .dir listing in the cache, the folder is hashed as `dvc add` does: an unchanged folder
    passes (this compares with the md5 the real dvc CLI wrote), one with an added file does not."""
    repo = project / "repo"
    shutil.rmtree(repo / ".dvc" / "cache")
    r = ma(env, repo, "-f", "json", ".")
    assert r.code == 1 and "MA-S017" not in {c for c, _ in _issues(r)}, r.stdout + r.stderr
    assert _models(r) == ["./data/ok.pkl", "./data/sub/payload.pkl", "./evil.pkl", "./model.pkl"]
    (repo / "data" / "extra.pkl").write_bytes(HONEST)
    r = ma(env, repo, "-f", "json", ".")
    assert ("MA-S017", "./data") in _issues(r), r.stdout + r.stderr
    assert "./data/extra.pkl" in _models(r)


def test_cache_is_skipped_in_walks_but_scanned_when_named(project, env):
    repo = project / "repo"
    (repo / "model.pkl").unlink()
    (repo / "evil.pkl").unlink()
    shutil.rmtree(repo / "data")
    (repo / ".dvc" / "tmp").mkdir(exist_ok=True)
    (repo / ".dvc" / "tmp" / "stray.pkl").write_bytes(EVIL)
    walked = ma(env, project, "-f", "json", "repo")
    assert not any("/.dvc/cache/" in a or "/.dvc/tmp/" in a for a in _assets(walked))
    named = ma(env, project, "-f", "json", "repo/.dvc/cache", "repo/.dvc/tmp")
    assert named.code == 1, named.stdout + named.stderr
    evil_object = str(_object(repo, EVIL).relative_to(project))
    assert {loc for code, loc in _issues(named) if code == "MA-P001"} == {evil_object, "repo/.dvc/tmp/stray.pkl"}


def test_files_named_dvc_that_are_no_pointers_are_plain_files(project, env):
    repo = project / "repo"
    (repo / "notes.dvc").write_text("Not a pointer: just notes about the data version control setup.\n")
    (repo / "broken.pkl.dvc").write_text("outs:\n- md5: 0123\n  path: broken.pkl\n")
    r = ma(env, project, "-f", "json", "repo")
    assert "repo/notes.dvc" in _assets(r)
    (bad,) = [i for i in r.json()["issues"] if i["location"] == "repo/broken.pkl.dvc"]
    assert bad["rule_code"] == "MA-S010" and "invalid md5" in bad["message"]
    assert "Traceback" not in r.stderr


def test_two_pointers_to_one_output_scan_it_once(project, env):
    repo = project / "repo"
    (repo / "evil.pkl").unlink()  # in the cache only
    shutil.copy(repo / "evil.pkl.dvc", repo / "again.dvc")
    r = ma(env, project, "-f", "json", "repo")
    assert r.code == 1, r.stdout + r.stderr
    assert _models(r) == MODELS
    assert [loc for code, loc in _issues(r) if code == "MA-P001"].count("repo/evil.pkl") == 1


def test_policy_excludes_data_taken_from_the_cache(project, env):
    repo = project / "repo"
    (repo / "evil.pkl").unlink()  # in the cache only
    (project / ".modelaudit.toml").write_text('exclude = ["repo/evil.pkl"]\n')
    r = ma(env, project, "-f", "json", "repo")
    assert r.code == 1, r.stdout + r.stderr  # data/sub/payload.pkl still counts
    assert r.json()["excluded_files"] == ["repo/evil.pkl"]
    assert not any(loc == "repo/evil.pkl" for _, loc in _issues(r)) and "repo/evil.pkl" not in _models(r)


def test_missing_yaml_leaves_pointers_unread_and_the_scan_incomplete(project, env, tmp_path):
    shim = tmp_path / "shim" / "yaml"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('PyYAML is not installed in this test')\n")
    repo = project / "repo"
    (repo / "evil.pkl").unlink()
    r = ma({**env, "PYTHONPATH": str(shim.parent)}, project, "-f", "json", "repo")
    assert r.code == 1, r.stdout + r.stderr  # the workspace copy of data/sub/payload.pkl is still found
    unread = {i["location"] for i in r.json()["issues"] if i["rule_code"] == "MA-S006"}
    assert unread == {"repo/data.dvc", "repo/evil.pkl.dvc", "repo/model.pkl.dvc"}
    assert all("pip install 'modelaudit[dvc]'" in i["message"] for i in r.json()["issues"]
               if i["rule_code"] == "MA-S006")


# --- dry run ----------------------------------------------------------------------------------------------


def _rows(r) -> dict[str, dict]:
    return {row["path"]: row for row in json.loads(r.stdout)["files"]}


def test_dry_run_of_a_pointer_lists_its_data(project, env):
    repo = project / "repo"
    (repo / "evil.pkl").unlink()  # in the cache
    r = ma(env, repo, "-f", "json", "--dry-run", "model.pkl.dvc", "evil.pkl.dvc")
    assert r.code == 0, r.stdout + r.stderr
    rows = _rows(r)
    assert set(rows) == {"model.pkl", "evil.pkl"}
    assert rows["model.pkl"]["dvc"]["from"] == "workspace" and rows["evil.pkl"]["dvc"]["from"] == "cache"
    assert rows["evil.pkl"]["size"] == len(EVIL) and rows["evil.pkl"]["format"] == "pickle"
    assert rows["evil.pkl"]["dvc"]["md5"] == hashlib.md5(EVIL).hexdigest()
    shutil.rmtree(repo / ".dvc" / "cache")
    r = ma(env, repo, "--dry-run", "evil.pkl.dvc", "data.dvc")
    assert r.code == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    # a folder remote is read in place: its object's header gives the format
    assert lines[0] == f"evil.pkl  pickle  {len(EVIL)} bytes  pickle  (DVC remote 'store', evil.pkl.dvc)"
    assert lines[1].startswith("data/ok.pkl  pickle") and "(DVC workspace, data.dvc)" in lines[1]


def test_dry_run_of_a_directory_with_pointers(project, env):
    repo = project / "repo"
    (repo / "evil.pkl").unlink()
    _object(repo, EVIL).unlink()  # evil.pkl and data/sub/payload.pkl: only in the remote now
    (repo / "data" / "sub" / "payload.pkl").unlink()
    (repo / "model.pkl").unlink()  # in the cache
    r = ma(env, project, "-f", "json", "--dry-run", "repo")
    assert r.code == 0, r.stdout + r.stderr
    rows = _rows(r)
    assert not any(p.endswith(".dvc") or "/.dvc/cache/" in p for p in rows)
    assert rows["repo/model.pkl"]["dvc"]["from"] == "cache" and rows["repo/model.pkl"]["skipped"] is None
    assert rows["repo/data/ok.pkl"]["dvc"]["from"] == "workspace"
    for path in ("repo/evil.pkl", "repo/data/sub/payload.pkl"):
        assert rows[path]["dvc"]["from"] == "remote" and rows[path]["download"] is False
        assert "a directory scan does not download" in rows[path]["skipped"]
    assert list(rows).count("repo/data/ok.pkl") == 1 and len(json.loads(r.stdout)["files"]) == len(rows)


# --- an S3 remote: a directory scan sends nothing -------------------------------------------------------


@contextmanager
def _listener():
    """A TCP port on 127.0.0.1 that counts connections and closes each at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    count = [0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            count[0] += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", count
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def test_s3_remote_is_not_contacted_by_a_directory_scan(tmp_path, env):
    pytest.importorskip("boto3")
    repo = tmp_path / "repo"
    repo.mkdir()
    with _listener() as (endpoint, connections):
        aws = aws_env(tmp_path, endpoint)
        sh(repo, "git", "init", "-q")
        sh(repo, str(DVC), "init", "-q")
        sh(repo, str(DVC), "remote", "add", "-d", "store", "s3://dvc-store/proj")
        sh(repo, str(DVC), "remote", "modify", "store", "endpointurl", endpoint)
        (repo / "evil.pkl").write_bytes(EVIL)
        sh(repo, str(DVC), "add", "-q", "evil.pkl", env=aws)
        (repo / "evil.pkl").unlink()
        shutil.rmtree(repo / ".dvc" / "cache")
        assert connections[0] == 0
        r = ma({**env, **aws, "AWS_ENDPOINT_URL": ""}, repo, "-f", "json", ".")
        assert r.code == 2, r.stdout + r.stderr
        (issue,) = r.json()["issues"]
        assert issue["rule_code"] == "MA-S010" and issue["location"] == "./evil.pkl"
        assert "DVC remote 'store' (s3://dvc-store/proj)" in issue["message"]
        assert connections[0] == 0
        dry = ma({**env, **aws, "AWS_ENDPOINT_URL": ""}, repo, "-f", "json", "--dry-run", ".", "evil.pkl.dvc")
        assert connections[0] == 0 and dry.code == 0, dry.stdout + dry.stderr
        assert [(row["download"], bool(row["skipped"])) for row in json.loads(dry.stdout)["files"]
                if row["path"] in ("./evil.pkl", "evil.pkl")] == [(False, True), (True, False)]
        # the control: the pointer named itself is fetched, so this endpoint is where a download would go
        named = ma({**env, **aws, "AWS_ENDPOINT_URL": ""}, repo, "-f", "json", "--no-cache", "evil.pkl.dvc")
        assert connections[0] > 0 and named.code == 2, named.stdout + named.stderr
        assert "cannot read s3://dvc-store/proj/" in named.json()["issues"][0]["message"]
