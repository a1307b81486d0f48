"""The published pre-commit hook, driven by the real `pre-commit` tool in temporary git repositories.

The hook repository is a git copy of this project; pre-commit builds the hook's environment from it
(`pip install .` plus the manifest's additional dependencies, from the package registry) once.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from tests.e2e.models import write_honest_models, write_malicious_pickle, write_ordinary_files
from tests.e2e.precommit_env import PRE_COMMIT, REPO, git, hook_repo, init_repo, isolated_env, run

MANIFEST = REPO / ".pre-commit-hooks.yaml"
RECIPE = Path(__file__).parent / "reference_ci" / "pre-commit-config.yaml"

needs_pre_commit = pytest.mark.skipif(not PRE_COMMIT.exists() or shutil.which("git") is None,
                                      reason="pre-commit (test extra) and git are needed")


def _hook() -> dict:
    (hook,) = yaml.safe_load(MANIFEST.read_text())
    return hook


def test_manifest_matches_the_documented_recipe():
    hook, recipe = _hook(), yaml.safe_load(RECIPE.read_text())["repos"][0]["hooks"][0]
    assert hook["id"] == recipe["id"] == "modelaudit"
    assert hook["files"] == recipe["files"]  # the same file types as the reference's recipe
    assert hook["pass_filenames"] is True and hook["language"] == "python"
    assert hook["entry"].split()[:2] == ["modelaudit", "scan"]
    for dep in hook["additional_dependencies"]:  # each one is a requirement of the `all` extra
        assert dep in (REPO / "pyproject.toml").read_text(), dep


def test_every_file_type_the_hook_matches_scans_ordinary_files_clean(tmp_path):
    """Hooks get every matching file of a repository: config files must not fail the commit."""
    pattern = re.compile(_hook()["files"])
    written = write_ordinary_files(tmp_path)
    files = [p for p in written if pattern.search(p.name)]
    assert files == written  # every one of them is passed to the hook
    out = run_cli(*_hook()["entry"].split()[1:], *map(str, files))
    assert out.code == 0, out.stdout + out.stderr


def test_binary_data_is_not_taken_for_legacy_encoded_text(tmp_path):
    """UTF-16 and Windows-1252 configs are text, but a blob without NUL or control bytes is not."""
    blob = bytes(range(0xA0, 0x100)) * 8 + b"x = 1\n" * 10  # decodes as Windows-1252, mostly not ASCII
    (tmp_path / "weights.bin").write_bytes(blob)
    (tmp_path / "odd.json").write_bytes(b"\xff\xfe" + "{\x01}".encode("utf-16-le"))  # a control character
    out = run_cli("scan", "--format", "json", str(tmp_path / "weights.bin"), str(tmp_path / "odd.json"))
    assert out.code != 0, out.stdout  # never a clean pass
    assert [a["type"] for a in out.json()["assets"]] == ["unknown", "unknown"]
    assert {i["rule_code"] for i in out.json()["issues"]} >= {"MA-S004", "MA-S007"}


@needs_pre_commit
@pytest.mark.timeout(900)  # the hook environment is built from the package registry once
def test_hook_passes_an_honest_commit_and_blocks_a_malicious_pickle(tmp_path):
    env = isolated_env(tmp_path / "home")
    hooks, rev = hook_repo(tmp_path / "hook-repo", env)
    repo = init_repo(tmp_path / "project", env)
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hooks}\n    rev: {rev}\n    hooks:\n      - id: modelaudit\n")
    write_ordinary_files(repo)
    (repo / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "1.0"\n\n[tool.ruff]\nline-length = 100\n')
    write_honest_models(repo / "models", all_formats=True)
    assert run([str(PRE_COMMIT), "install"], repo, env).returncode == 0
    git(repo, env, "add", "-A")

    honest = run(["git", "commit", "-m", "honest models and configs"], repo, env, timeout=900)
    assert honest.returncode == 0, honest.stdout + honest.stderr
    assert re.search(r"ModelAudit\.+Passed", honest.stdout + honest.stderr)
    assert git(repo, env, "rev-list", "--count", "HEAD") == "1"
    # every matching file of the repository goes to one `modelaudit scan` (require_serial), all clean
    matching = [f for f in git(repo, env, "ls-files").splitlines() if re.search(_hook()["files"], f)]
    everything = run([str(PRE_COMMIT), "run", "--all-files", "--verbose"], repo, env)
    assert everything.returncode == 0 and f"Summary: {len(matching)} file(s)" in everything.stdout, everything.stdout

    write_malicious_pickle(repo / "models" / "nested" / "evil.pkl")
    write_honest_models(repo / "more-models")
    git(repo, env, "add", "-A")
    blocked = run(["git", "commit", "-m", "a malicious pickle among honest files"], repo, env)
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    assert re.search(r"ModelAudit\.+Failed", output) and "exit code: 1" in output
    assert "models/nested/evil.pkl" in output and "posix.system" in output and "MA-P001" in output
    assert git(repo, env, "rev-list", "--count", "HEAD") == "1"  # nothing was committed

    # An incomplete scan (exit code 2) blocks as well: here an opaque .bin that no scanner reads.
    git(repo, env, "rm", "-q", "--cached", "models/nested/evil.pkl")
    (repo / "models" / "nested" / "evil.pkl").unlink()
    (repo / "models" / "opaque.bin").write_bytes(bytes(range(256)) * 16)
    git(repo, env, "add", "-A")
    incomplete = run(["git", "commit", "-m", "an opaque weights file"], repo, env)
    output = incomplete.stdout + incomplete.stderr
    assert incomplete.returncode != 0 and "exit code: 2" in output and "opaque.bin" in output, output

