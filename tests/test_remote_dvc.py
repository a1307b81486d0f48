"""DVC pointer files, with repositories made by the real dvc CLI (git init, dvc init, dvc add, dvc push) and
remotes in a local folder or on moto's S3 server on 127.0.0.1; the workspace copy and the cache are then
deleted so that the scan must find the data in the cache or fetch it from the remote."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import run_cli
from .servers import EVIL, HONEST, aws_env, cache_env, locations, moto_server, s3_client, scan, tool

pytest.importorskip("yaml")
DVC = Path(sys.executable).parent / "dvc"
if not DVC.exists():
    pytest.skip("the dvc CLI (dvc, dvc-s3) is not installed", allow_module_level=True)

QUIET = {"DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1", "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t",
         "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}


def sh(cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(list(args), cwd=cwd, env={**os.environ, **QUIET, "HOME": str(cwd.parent),
                                                    **(env or {})},
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"


def make_repo(root: Path, remote_url: str, env: dict[str, str] | None = None, remote_opts=()) -> Path:
    """A git + DVC repository tracking an honest model, a malicious one and a folder, pushed to the remote."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    sh(repo, "git", "init", "-q")
    sh(repo, str(DVC), "init", "-q")
    sh(repo, str(DVC), "remote", "add", "-d", "store", remote_url)
    for option in remote_opts:
        sh(repo, str(DVC), "remote", "modify", "store", *option)
    (repo / "model.pkl").write_bytes(HONEST)
    (repo / "evil.pkl").write_bytes(EVIL)
    (repo / "data" / "sub").mkdir(parents=True)
    (repo / "data" / "ok.pkl").write_bytes(HONEST)
    (repo / "data" / "sub" / "payload.pkl").write_bytes(EVIL)
    sh(repo, str(DVC), "add", "-q", "model.pkl", "evil.pkl", "data", env=env)
    sh(repo, str(DVC), "push", "-q", env=env)
    return repo


def forget_local_copies(repo: Path) -> None:
    """What a fresh clone has: pointers only, an empty cache."""
    for name in ("model.pkl", "evil.pkl"):
        (repo / name).unlink(missing_ok=True)
    shutil.rmtree(repo / "data", ignore_errors=True)
    shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)


def objects(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def local_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("dvc-local")
    make_repo(root, "../remote")  # relative, as dvc keeps it (../../remote from .dvc/): copies stay private
    return root


@pytest.fixture
def project(local_project, tmp_path):
    """A private copy of the repository and its folder remote (the remote URL is relative: ../../remote)."""
    shutil.copytree(local_project, tmp_path / "p", symlinks=True)
    return tmp_path / "p"


@pytest.fixture
def env(tmp_path):
    return {**cache_env(tmp_path), "DVC_NO_ANALYTICS": "1", "AWS_EC2_METADATA_DISABLED": "true"}


def _codes(result) -> set[str]:
    return {i["rule_code"] for i in result.json()["issues"]}


def _no_temp_paths(result, tmp_path):
    assert "/tmp/" not in result.stdout.replace(str(tmp_path), "") and ".cache/modelaudit" not in result.stdout
    assert "view-" not in result.stdout


@pytest.mark.parametrize("stage", ["workspace", "cache", "remote"])
def test_pointer_resolves_to_its_data_wherever_it_is(project, env, tmp_path, stage):
    repo = project / "repo"
    if stage != "workspace":
        (repo / "evil.pkl").unlink()
        (repo / "model.pkl").unlink()
    if stage == "remote":
        shutil.rmtree(repo / ".dvc" / "cache")
    r = scan(env, repo, "-f", "json", "evil.pkl.dvc", "model.pkl.dvc")
    assert r.code == 1, r.stdout + r.stderr
    assert locations(r) == {"evil.pkl"}
    assert "MA-P001" in _codes(r)
    assert {a["path"] for a in r.json()["assets"]} == {"evil.pkl", "model.pkl"}
    _no_temp_paths(r, tmp_path)
    assert not (repo / "evil.pkl").exists() or stage == "workspace"  # the scan never writes the workspace


def test_located_relative_to_the_pointer_path_given(project, env):
    forget_local_copies(project / "repo")
    r = scan(env, project, "-f", "json", "repo/evil.pkl.dvc")
    assert r.code == 1, r.stdout + r.stderr
    assert locations(r) == {"repo/evil.pkl"}


def test_honest_pointer_is_clean(project, env):
    forget_local_copies(project / "repo")
    r = scan(env, project / "repo", "-f", "json", "model.pkl.dvc")
    assert r.code == 0, r.stdout + r.stderr
    assert [a["path"] for a in r.json()["assets"]] == ["model.pkl"]


def test_directory_output_scans_every_file(project, env, tmp_path):
    repo = project / "repo"
    forget_local_copies(repo)
    # the default command line: every file in a worker process, reading the links the source made
    r = run_cli("scan", "-f", "json", "data.dvc", cwd=repo, env=env, timeout=120)
    assert r.code == 1, r.stdout + r.stderr
    assert {a["path"] for a in r.json()["assets"]} == {"data/ok.pkl", "data/sub/payload.pkl"}
    assert locations(r) == {"data/sub/payload.pkl"}
    _no_temp_paths(r, tmp_path)


def test_tampered_remote_object_is_a_finding_and_not_scanned(project, env):
    repo = project / "repo"
    forget_local_copies(repo)
    digest = hashlib.md5(HONEST).hexdigest()
    stored = project / "remote" / "files" / "md5" / digest[:2] / digest[2:]
    stored.chmod(0o644)
    stored.write_bytes(EVIL)  # same name, other bytes: what a compromised remote would serve
    r = scan(env, repo, "-f", "json", "model.pkl.dvc")
    assert r.code == 1, r.stdout + r.stderr
    codes = _codes(r)
    assert "MA-S017" in codes and "MA-P001" not in codes
    (mismatch,) = [i for i in r.json()["issues"] if i["rule_code"] == "MA-S017"]
    assert mismatch["location"] == "model.pkl" and digest in mismatch["message"]


def test_changed_workspace_copy_is_reported_and_the_recorded_version_scanned(project, env):
    repo = project / "repo"
    (repo / "model.pkl").write_bytes(EVIL)  # edited after `dvc add`
    r = scan(env, repo, "-f", "json", "model.pkl.dvc")
    assert r.code == 1, r.stdout + r.stderr
    issues = r.json()["issues"]
    assert [i["rule_code"] for i in issues] == ["MA-S017"], issues
    assert "workspace copy" in issues[0]["message"]


def test_data_found_nowhere_is_a_coverage_finding(project, env):
    repo = project / "repo"
    forget_local_copies(repo)
    shutil.rmtree(project / "remote")
    r = scan(env, repo, "-f", "json", "evil.pkl.dvc")
    assert r.code == 2, r.stdout + r.stderr
    (issue,) = r.json()["issues"]
    assert issue["rule_code"] == "MA-S010" and issue["location"] == "evil.pkl"
    assert "is not in the workspace or the DVC cache or remote 'store'" in issue["message"]


@pytest.mark.parametrize("content, expected", [
    ("outs:\n- md5: 0123\n  path: x.pkl\n", "invalid md5"),
    ("outs:\n- md5: 0123456789abcdef0123456789abcdef\n  path: ../../../etc/passwd\n", "points outside"),
    ("just: [a, b\n", "not a valid DVC pointer"),
    ("stages: {}\n", "has no `outs` list"),
])
def test_malformed_pointers_are_findings(project, env, content, expected):
    repo = project / "repo"
    (repo / "bad.pkl.dvc").write_text(content)
    r = scan(env, repo, "-f", "json", "bad.pkl.dvc")
    assert r.code == 2, r.stdout + r.stderr
    (issue,) = r.json()["issues"]
    assert issue["rule_code"] == "MA-S010" and expected in issue["message"], issue
    assert "Traceback" not in r.stderr


def test_missing_yaml_gives_the_install_hint(project, env, tmp_path):
    shim = tmp_path / "shim" / "yaml"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('PyYAML is not installed in this test')\n")
    r = scan({**env, "PYTHONPATH": str(shim.parent)}, project / "repo", "-f", "json", "evil.pkl.dvc")
    assert r.code == 2, r.stdout + r.stderr
    (issue,) = r.json()["issues"]
    assert issue["rule_code"] == "MA-S006" and "pip install 'modelaudit[dvc]'" in issue["message"]


def test_legacy_layout_and_text_hashing(tmp_path, env):
    """DVC 2 pointers (no `hash:` key) keep objects at <cache>/ab/cdef… and hashed text with LF line ends;
    built byte by byte, since the current dvc CLI writes only the DVC 3 layout."""
    repo = tmp_path / "old"
    (repo / ".dvc").mkdir(parents=True)
    (repo / ".dvc" / "config").write_text("[core]\n    remote = old\n['remote \"old\"']\n    url = ../store\n")
    vocab = b"[PAD]\r\n[UNK]\r\n"
    for name, data, digest in (("evil.pkl", EVIL, hashlib.md5(EVIL).hexdigest()),
                               ("vocab.txt", vocab, hashlib.md5(vocab.replace(b"\r\n", b"\n")).hexdigest())):
        where = repo / "store" / digest[:2] / digest[2:]
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_bytes(data)
        (repo / f"{name}.dvc").write_text(f"outs:\n- md5: {digest}\n  size: {len(data)}\n  path: {name}\n")
    r = scan(env, repo, "-f", "json", "evil.pkl.dvc", "vocab.txt.dvc")
    assert r.code == 1, r.stdout + r.stderr
    assert locations(r) == {"evil.pkl"}
    assert {a["path"] for a in r.json()["assets"]} == {"evil.pkl", "vocab.txt"}


# --- an S3 remote on moto -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_project(tmp_path_factory):
    pytest.importorskip("boto3")
    if not tool("moto_server"):
        pytest.skip("moto_server (moto[server]) is not installed")
    root = tmp_path_factory.mktemp("dvc-s3")
    with moto_server() as endpoint:
        s3_client(endpoint).create_bucket(Bucket="dvc-store")
        aws = aws_env(root, endpoint)
        # the endpoint is in the repository's config; AWS_ENDPOINT_URL is left unset for the push too
        make_repo(root, "s3://dvc-store/proj", env={**aws, "AWS_ENDPOINT_URL": ""},
                  remote_opts=[("endpointurl", endpoint)])
        yield root, endpoint, aws


@pytest.fixture
def s3_repo(s3_project, tmp_path):
    root, endpoint, aws = s3_project
    shutil.copytree(root / "repo", tmp_path / "repo", symlinks=True)
    forget_local_copies(tmp_path / "repo")
    return tmp_path / "repo", endpoint, aws


def test_s3_remote_with_endpointurl_in_config(s3_repo, env, tmp_path):
    repo, _endpoint, aws = s3_repo
    r = scan({**env, **aws, "AWS_ENDPOINT_URL": ""}, repo, "-f", "json", "evil.pkl.dvc", "data.dvc")
    assert r.code == 1, r.stdout + r.stderr
    assert locations(r) == {"evil.pkl", "data/sub/payload.pkl"}
    assert {a["path"] for a in r.json()["assets"]} == {"evil.pkl", "data/ok.pkl", "data/sub/payload.pkl"}
    _no_temp_paths(r, tmp_path)
    assert not (repo / "evil.pkl").exists() and not (repo / ".dvc" / "cache").exists()


def test_s3_remote_with_aws_endpoint_url_and_cache_reuse(s3_repo, env, tmp_path):
    repo, endpoint, aws = s3_repo
    config = repo / ".dvc" / "config"
    config.write_text("\n".join(line for line in config.read_text().splitlines() if "endpointurl" not in line))
    cache = tmp_path / "cache"
    first = scan({**env, **aws}, repo, "-f", "json", "--cache-dir", str(cache), "evil.pkl.dvc")
    assert first.code == 1 and locations(first) == {"evil.pkl"}, first.stdout + first.stderr
    assert [p.name[:7] for p in objects(cache / "blobs")] == ["dvcmd5-"]
    # the remote is gone (a wrong endpoint): the verified copy in the cache is used without asking it
    again = scan({**env, **aws, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, repo, "-f", "json", "--cache-dir",
               str(cache), "evil.pkl.dvc")
    assert again.code == 1 and locations(again) == {"evil.pkl"}, again.stdout + again.stderr


def test_s3_tampered_object_is_a_finding(s3_repo, env, tmp_path):
    repo, endpoint, aws = s3_repo
    digest = hashlib.md5(HONEST).hexdigest()
    s3 = s3_client(endpoint)
    original = s3.get_object(Bucket="dvc-store", Key=f"proj/files/md5/{digest[:2]}/{digest[2:]}")["Body"].read()
    try:
        s3.put_object(Bucket="dvc-store", Key=f"proj/files/md5/{digest[:2]}/{digest[2:]}", Body=EVIL)
        r = scan({**env, **aws, "AWS_ENDPOINT_URL": ""}, repo, "-f", "json", "--no-cache", "model.pkl.dvc")
    finally:
        s3.put_object(Bucket="dvc-store", Key=f"proj/files/md5/{digest[:2]}/{digest[2:]}", Body=original)
    assert r.code == 1, r.stdout + r.stderr
    assert _codes(r) == {"MA-S017"}
    assert "s3://dvc-store/proj/files/md5/" in r.json()["issues"][0]["message"]
