"""Outputs of DVC pipelines (recorded in dvc.lock by `dvc repro`) met while scanning a directory, with
pipelines run by the real dvc CLI: a model a stage wrote is scanned from the workspace or the DVC cache
under its own path, and reported as not scanned when only a remote has it, never silently missed."""

from __future__ import annotations

import shutil
import sys

import pytest

from .servers import EVIL, HONEST
from .servers import scan as ma
from .test_remote_dvc import DVC, env, sh  # noqa: F401 - fixtures

pytest.importorskip("yaml")

PIPELINE = """stages:
  train:
    cmd: {py} -c "import shutil; shutil.copy('{src}/evil.bin', 'model.pkl')"
    outs:
    - model.pkl
  export:
    wdir: sub
    cmd: {py} -c "import shutil, os; os.makedirs('out', exist_ok=True); shutil.copy('{src}/honest.bin', 'out/ok.pkl')"
    outs:
    - out/ok.pkl
  bundle:
    cmd: {py} -c "import shutil, os; os.makedirs('models', exist_ok=True); [shutil.copy('{src}/' + a, 'models/' + b) for a, b in (('evil.bin', 'payload.pkl'), ('honest.bin', 'ok.pkl'))]"
    outs:
    - models
"""
OUTPUTS = ["repo/model.pkl", "repo/models/ok.pkl", "repo/models/payload.pkl", "repo/sub/out/ok.pkl"]


@pytest.fixture(scope="module")
def pipeline_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("dvc-pipeline")
    src = root / "inputs"  # outside the repository: only the stages' outputs are scanned
    src.mkdir()
    (src / "evil.bin").write_bytes(EVIL)
    (src / "honest.bin").write_bytes(HONEST)
    repo = root / "repo"
    repo.mkdir()
    (repo / "sub").mkdir()
    sh(repo, "git", "init", "-q")
    sh(repo, str(DVC), "init", "-q")
    sh(repo, str(DVC), "remote", "add", "-d", "store", "../remote")
    (repo / "dvc.yaml").write_text(PIPELINE.format(py=sys.executable, src=src.as_posix()))
    sh(repo, str(DVC), "repro", "-q")
    sh(repo, str(DVC), "push", "-q")
    shutil.rmtree(src)
    return root


@pytest.fixture
def project(pipeline_project, tmp_path):
    shutil.copytree(pipeline_project, tmp_path / "p", symlinks=True)
    return tmp_path / "p"


def _outputs_removed(repo) -> None:  # noqa: ANN001
    (repo / "model.pkl").unlink()
    shutil.rmtree(repo / "models")
    shutil.rmtree(repo / "sub" / "out")


def _issues(r) -> list[tuple[str, str]]:  # noqa: ANN001
    return sorted({(i["rule_code"], i["location"].split(" ")[0]) for i in r.json()["issues"]})


def _scanned(r) -> list[str]:  # noqa: ANN001
    return sorted(a["path"] for a in r.json()["assets"] if a["path"].endswith(".pkl"))


def test_outputs_in_the_workspace_are_scanned_once(project, env):
    r = ma(env, project, "-f", "json", "repo")
    assert r.code == 1, r.stdout + r.stderr
    assert _scanned(r) == OUTPUTS
    assert {loc for code, loc in _issues(r) if code == "MA-P001"} == {"repo/model.pkl", "repo/models/payload.pkl"}
    assert not any(code in ("MA-S010", "MA-S017") for code, _ in _issues(r))


def test_outputs_only_in_the_cache_are_scanned_at_their_paths(project, env):
    repo = project / "repo"
    _outputs_removed(repo)
    r = ma(env, project, "-f", "json", "repo")
    assert r.code == 1, r.stdout + r.stderr
    assert _scanned(r) == OUTPUTS  # wdir `sub` of the export stage applied
    assert {loc for code, loc in _issues(r) if code == "MA-P001"} == {"repo/model.pkl", "repo/models/payload.pkl"}
    assert not any(code == "MA-S010" for code, _ in _issues(r))


def test_outputs_only_in_the_remote_are_reported_never_clean(project, env):
    repo = project / "repo"
    _outputs_removed(repo)
    shutil.rmtree(repo / ".dvc" / "cache")
    r = ma(env, project, "-f", "json", "repo")
    assert r.code == 2, r.stdout + r.stderr
    assert _issues(r) == [("MA-S010", "repo/model.pkl"), ("MA-S010", "repo/models"), ("MA-S010", "repo/sub/out/ok.pkl")]
    message = next(i["message"] for i in r.json()["issues"] if i["location"] == "repo/model.pkl")
    assert "can only come from DVC remote 'store'" in message and "run `dvc pull`" in message
    assert "itself" not in message  # naming dvc.lock fetches nothing


def test_changed_output_is_scanned_and_reported(project, env):
    repo = project / "repo"
    (repo / "model.pkl").write_bytes(HONEST)
    r = ma(env, project, "-f", "json", "repo")
    assert ("MA-S017", "repo/model.pkl") in _issues(r), r.stdout
    message = next(i["message"] for i in r.json()["issues"] if i["rule_code"] == "MA-S017")
    assert "dvc checkout" in message


def test_dry_run_lists_pipeline_outputs(project, env):
    repo = project / "repo"
    _outputs_removed(repo)
    r = ma(env, project, "-f", "json", "--dry-run", "repo")
    assert r.code == 0, r.stdout + r.stderr
    rows = {row["path"]: row for row in r.json()["files"]}
    assert rows["repo/model.pkl"]["dvc"]["from"] == "cache" and rows["repo/model.pkl"]["format"] == "pickle"
    assert rows["repo/sub/out/ok.pkl"]["dvc"]["pointer"].endswith("dvc.lock")


def test_lock_file_that_is_no_lock_is_a_plain_file(tmp_path, env):
    (tmp_path / "dvc.lock").write_text("just: text\n")
    r = ma(env, tmp_path, "-f", "json", ".")
    assert r.code == 0, r.stdout + r.stderr


def test_aliases_cannot_multiply_the_work(tmp_path):
    from modelaudit.sources.dvc_lock import read_lock

    entry = "&e {path: model.pkl, hash: md5, md5: 0123456789abcdef0123456789abcdef, size: 10}"
    outs = "&o [" + ", ".join([entry] + ["*e"] * 2000) + "]"
    stages = "\n".join([f"  s0: {{outs: {outs}}}"] + [f"  s{i}: {{outs: *o}}" for i in range(1, 3000)])
    lock = tmp_path / "dvc.lock"
    lock.write_text("schema: '2.0'\nstages:\n" + stages + "\n")
    assert [o.path for o in read_lock(str(lock))] == ["model.pkl"]
