"""The GitHub Action (action.yml) and the GitLab CI template run as the CI systems run them.

Their shell steps run for real against model files in a temporary workspace, with this checkout's
`modelaudit` (one test installs the action's own copy instead, as the action does on GitHub).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN_DIR, run_cli
from tests.e2e.ci_runner import ActionEmulator, gitlab_job, run_gitlab_script
from tests.e2e.models import write_honest_models, write_malicious_pickle, write_warning_only_pickle

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / "action.yml"
GITLAB = REPO / "ci" / "gitlab" / "modelaudit.gitlab-ci.yml"
SARIF_SCHEMA = REPO.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json"
CODEQUALITY_SEVERITIES = {"info", "minor", "major", "critical", "blocker"}


@pytest.fixture(scope="module")
def honest_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("honest-models")
    write_honest_models(root / "models")
    return root


def _workspace(tmp_path: Path, honest_dir: Path, *, evil: bool = False, warning: bool = False) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(honest_dir, ws)
    if evil:
        write_malicious_pickle(ws / "models" / "evil.pkl")
    if warning:
        write_warning_only_pickle(ws / "models" / "layers.pkl")
    return ws


def _action(tmp_path: Path, ws: Path, **inputs: str):
    temp = tmp_path / "runner-temp"
    temp.mkdir(exist_ok=True)
    emulator = ActionEmulator(ACTION, {"paths": "models", **inputs}, ws, temp)
    # the install step is exercised on its own below; here the checkout's modelaudit stands in for it
    return emulator.run({}, skip=("install",), fake_outputs={"install": {"bin": str(BIN_DIR)}})


def _check_sarif(path: Path) -> dict:
    sarif = json.loads(path.read_text())
    if SARIF_SCHEMA.exists():
        import jsonschema

        jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    return sarif


# --------------------------------------------------------------------------- GitHub Action
def test_action_is_a_valid_composite_action():
    spec = yaml.safe_load(ACTION.read_text())
    assert spec["runs"]["using"] == "composite"
    uses = [s["uses"].split("@")[0] for s in spec["runs"]["steps"] if "uses" in s]
    assert uses == ["actions/setup-python", "github/codeql-action/upload-sarif", "actions/upload-artifact"]
    for name, output in spec["outputs"].items():
        assert re.fullmatch(r"\$\{\{ steps\.scan\.outputs\.[\w-]+ \}\}", output["value"]), name


def test_action_fails_on_a_malicious_model_and_uploads_both_reports(tmp_path, honest_dir):
    ws = _workspace(tmp_path, honest_dir, evil=True)
    run = _action(tmp_path, ws)
    assert run.failed_step == "verdict", run.log
    scan = run.outputs["scan"]
    assert scan["exit-code"] == "1" and scan["critical"] == "1" and scan["incomplete"] == "false"
    assert "::error::ModelAudit: 1 critical" in run.log
    assert "posix.system" in run.log  # the text summary of the findings is in the job log
    report = json.loads(Path(scan["json"]).read_text())
    assert any(i["severity"] == "critical" and "evil.pkl" in i["location"] for i in report["issues"])
    actions = dict(run.uses)
    sarif = _check_sarif(Path(actions["github/codeql-action/upload-sarif@v3"]["sarif_file"]))
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"]
            for r in sarif["runs"][0]["results"] for loc in r["locations"]}
    assert uris == {"models/evil.pkl"}  # relative to the workspace, as code scanning wants
    artifact = actions["actions/upload-artifact@v4"]
    assert artifact["name"] == "modelaudit-results"
    assert {Path(p).name for p in artifact["path"].split()} == {"modelaudit-results.json", "modelaudit-results.sarif"}


def test_action_passes_honest_models(tmp_path, honest_dir):
    run = _action(tmp_path, _workspace(tmp_path, honest_dir))
    assert run.failed_step is None, run.log
    assert run.outputs["scan"]["exit-code"] == "0" and run.outputs["scan"]["critical"] == "0"
    assert "0 critical, 0 warning(s), incomplete scan: false" in run.log


@pytest.mark.parametrize(("fail_on", "fails"), [("warning", True), ("critical", False), ("never", False)])
def test_action_fail_on_threshold_with_a_warning(tmp_path, honest_dir, fail_on, fails):
    ws = _workspace(tmp_path, honest_dir, warning=True)
    run = _action(tmp_path, ws, **{"fail-on": fail_on, "upload-sarif": "false"})
    assert (run.failed_step == "verdict") is fails, run.log
    assert run.outputs["scan"]["warnings"] == "1" and run.outputs["scan"]["exit-code"] == "1"


def test_action_fail_on_critical_still_fails_an_incomplete_scan(tmp_path, honest_dir):
    # a size limit below the models' sizes leaves them unscanned: never a pass
    run = _action(tmp_path, _workspace(tmp_path, honest_dir), **{"fail-on": "critical", "args": "--max-file-size 8"})
    assert run.failed_step == "verdict", run.log
    assert run.outputs["scan"]["incomplete"] == "true" and run.outputs["scan"]["exit-code"] == "2"


def test_action_never_threshold_reports_without_failing(tmp_path, honest_dir):
    run = _action(tmp_path, _workspace(tmp_path, honest_dir, evil=True), **{"fail-on": "never", "format": "json"})
    assert run.failed_step is None, run.log
    assert run.outputs["scan"]["critical"] == "1"
    assert '"severity":"critical"' in run.log  # format json prints the JSON report in the log


def test_action_without_sarif_scans_once_and_skips_the_upload(tmp_path, honest_dir):
    run = _action(tmp_path, _workspace(tmp_path, honest_dir), **{"upload-sarif": "false"})
    assert run.failed_step is None and run.outputs["scan"]["sarif"] == ""
    assert [name for name, _ in run.uses] == ["actions/setup-python@v5", "actions/upload-artifact@v4"]


@pytest.mark.parametrize("inputs", [{"args": "--no-such-flag"}, {"fail-on": "sometimes"}, {"format": "xml"}])
def test_action_rejects_bad_inputs_with_an_error(tmp_path, honest_dir, inputs):
    run = _action(tmp_path, _workspace(tmp_path, honest_dir), **inputs)
    assert run.failed_step == "scan" and "::error::" in run.log, run.log


def test_action_installs_modelaudit_from_its_own_copy(tmp_path):
    """The install step for real: a venv in the runner's temp and `pip install <action path>`."""
    action_copy = tmp_path / "action"
    action_copy.mkdir()
    for name in ("action.yml", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, action_copy / name)
    shutil.copytree(REPO / "src", action_copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    ws = tmp_path / "ws"
    write_malicious_pickle(ws / "models" / "evil.pkl")
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    emulator = ActionEmulator(action_copy / "action.yml", {"paths": "models", "extras": ""}, ws, temp)
    run = emulator.run({"PIP_NO_CACHE_DIR": "1"})
    assert "modelaudit, version" in run.log and run.outputs["install"]["bin"].startswith(str(temp))
    assert run.failed_step == "verdict" and run.outputs["scan"]["critical"] == "1", run.log


# --------------------------------------------------------------------------- GitLab CI template
def _gitlab(tmp_path: Path, ws: Path, **overrides: str) -> subprocess.CompletedProcess:
    variables, job = gitlab_job(GITLAB, "modelaudit")
    env = {**variables, "MODELAUDIT_PATHS": "models", **overrides,
           "PATH": f"{BIN_DIR}{os.pathsep}{os.environ['PATH']}"}
    return run_gitlab_script(job["script"], env, ws)


def test_gitlab_template_is_valid_and_keeps_its_reports():
    variables, job = gitlab_job(GITLAB, "modelaudit")
    assert set(variables) >= {"MODELAUDIT_PATHS", "MODELAUDIT_ARGS", "MODELAUDIT_FAIL_ON", "MODELAUDIT_VERSION"}
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["codequality"] == "modelaudit-codequality.json"
    assert set(job["artifacts"]["paths"]) == {"modelaudit-results.json", "modelaudit-results.sarif"}
    install = job["before_script"][0]
    assert install.startswith("python -m pip install") and "modelaudit" in install


def test_gitlab_install_line_builds_the_requirement_from_its_variables():
    _, job = gitlab_job(GITLAB, "modelaudit")
    echo = job["before_script"][0].replace("python -m pip install --quiet", "printf %s")
    cases = {("all", ""): "modelaudit[all]", ("", ""): "modelaudit", ("h5,gguf", "0.2.0"): "modelaudit[h5,gguf]==0.2.0"}
    for (extras, version), expected in cases.items():
        env = {**os.environ, "MODELAUDIT_EXTRAS": extras, "MODELAUDIT_VERSION": version}
        assert subprocess.run(["bash", "-c", echo], env=env, capture_output=True, text=True).stdout == expected


def test_gitlab_job_fails_on_a_malicious_model_with_reports(tmp_path, honest_dir):
    ws = _workspace(tmp_path, honest_dir, evil=True)
    proc = _gitlab(tmp_path, ws)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ModelAudit: 1 critical, 0 warning(s), incomplete scan: false (fail-on: warning)" in proc.stdout
    report = json.loads((ws / "modelaudit-results.json").read_text())
    assert report["issues"] and report["issues"][0]["severity"] == "critical"
    _check_sarif(ws / "modelaudit-results.sarif")
    quality = json.loads((ws / "modelaudit-codequality.json").read_text())
    assert [(q["check_name"], q["severity"], q["location"]["path"]) for q in quality] == [
        ("MA-P001", "critical", "models/evil.pkl")]
    for issue in quality:
        assert issue["severity"] in CODEQUALITY_SEVERITIES and issue["fingerprint"] and issue["description"]
        assert isinstance(issue["location"]["lines"]["begin"], int)


def test_gitlab_job_passes_honest_models(tmp_path, honest_dir):
    ws = _workspace(tmp_path, honest_dir)
    proc = _gitlab(tmp_path, ws)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((ws / "modelaudit-codequality.json").read_text()) == []


@pytest.mark.parametrize(("fail_on", "code"), [("warning", 1), ("critical", 0), ("bogus", 1)])
def test_gitlab_fail_on_threshold_with_a_warning(tmp_path, honest_dir, fail_on, code):
    ws = _workspace(tmp_path, honest_dir, warning=True)
    proc = _gitlab(tmp_path, ws, MODELAUDIT_FAIL_ON=fail_on)
    assert proc.returncode == code, proc.stdout + proc.stderr
    if fail_on != "bogus":
        quality = json.loads((ws / "modelaudit-codequality.json").read_text())
        assert [(q["check_name"], q["severity"]) for q in quality] == [("MA-P002", "major")]


def test_gitlab_job_with_extra_arguments_and_an_incomplete_scan(tmp_path, honest_dir):
    ws = _workspace(tmp_path, honest_dir)
    proc = _gitlab(tmp_path, ws, MODELAUDIT_FAIL_ON="critical", MODELAUDIT_ARGS="--max-file-size 8 --timeout 60")
    assert proc.returncode == 1 and "incomplete scan: true" in proc.stdout, proc.stdout + proc.stderr


def test_gitlab_job_with_a_bad_argument_fails_without_a_report(tmp_path, honest_dir):
    ws = _workspace(tmp_path, honest_dir)
    proc = _gitlab(tmp_path, ws, MODELAUDIT_ARGS="--no-such-flag")
    assert proc.returncode == 1 and "wrote no report" in proc.stdout, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- every command line is ours
def _modelaudit_commands() -> list[str]:
    lines = []
    for line in ACTION.read_text().splitlines() + GITLAB.read_text().splitlines():
        m = re.match(r'\s*(?:- )?(?:"\$MA_BIN/modelaudit"|modelaudit) (scan .*?)(?: \|\| .*)?$', line)
        if m:
            lines.append(m.group(1))
    return lines


def test_every_modelaudit_command_line_parses():
    """Each `modelaudit scan …` line of the templates, with its variables filled in, is accepted by our CLI."""
    from modelaudit.cli import main

    commands = _modelaudit_commands()
    assert len(commands) == 4
    values = {"$MA_PATHS": "models", "$MODELAUDIT_PATHS": "models", "$MA_ARGS": "--timeout 60",
              "$MODELAUDIT_ARGS": "--timeout 60", '"$json"': "out.json", '"$sarif"': "out.sarif"}
    for command in commands:
        for name, value in values.items():
            command = command.replace(name, value)
        assert "$" not in command, command
        args = shlex.split(command)
        ctx = main.make_context("modelaudit", list(args))  # parses every option; raises on a bad one
        sub = main.get_command(ctx, args[0])
        assert sub.make_context("scan", args[1:]).params["output_format"] in ("json", "sarif")


# --------------------------------------------------------------------------- docs/ci examples
DOCS = REPO / "docs" / "ci"


def _yaml_blocks(doc: str) -> list:
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", (DOCS / doc).read_text(), re.S)]


def _parses(command: str) -> dict:
    from modelaudit.cli import main

    args = shlex.split(command)
    assert args[0] == "scan", command
    return main.get_command(main.make_context("modelaudit", list(args)), "scan").make_context("scan", args[1:]).params


def test_github_docs_workflow_uses_only_declared_inputs(tmp_path, honest_dir):
    workflow, steps = _yaml_blocks("github-actions.md")
    (step,) = [s for s in workflow["jobs"]["modelaudit"]["steps"] if s["uses"].split("@")[0].endswith("/modelaudit")]
    assert workflow["jobs"]["modelaudit"]["permissions"]["security-events"] == "write"
    # the documented inputs, run through the action against honest models and a warning-only pickle
    ws = _workspace(tmp_path, honest_dir, warning=True)
    run = _action(tmp_path, ws, **{k: str(v) for k, v in step["with"].items() if k != "paths"})
    assert run.failed_step is None and run.outputs["scan"]["warnings"] == "1", run.log  # fail-on: critical
    commands = [s["run"] for s in steps if "run" in s and "modelaudit scan" in s["run"]]
    assert commands == ["modelaudit scan models/ --format sarif --output modelaudit.sarif"]
    out = run_cli(*shlex.split(commands[0])[1:], cwd=ws)
    assert out.code == 1 and _check_sarif(ws / "modelaudit.sarif")["runs"][0]["results"]


def test_gitlab_docs_example_overrides_existing_variables(tmp_path, honest_dir):
    (example,) = _yaml_blocks("gitlab.md")
    variables, _ = gitlab_job(GITLAB, "modelaudit")
    assert set(example["variables"]) <= set(variables) and "modelaudit" in example
    _parses(f"scan models/ {example['variables']['MODELAUDIT_ARGS']}")
    ws = _workspace(tmp_path, honest_dir, warning=True)
    proc = _gitlab(tmp_path, ws, **{k: str(v) for k, v in example["variables"].items()})
    assert proc.returncode == 0 and "1 warning(s)" in proc.stdout, proc.stdout + proc.stderr


def test_pre_commit_docs_examples(tmp_path):
    from tests.e2e.models import write_ordinary_files

    config, with_args, recipe = _yaml_blocks("pre-commit.md")
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert config["repos"][0]["hooks"][0]["id"] == hook["id"]
    args = [str(a) for a in with_args[0]["args"]]
    files = [str(p) for p in write_ordinary_files(tmp_path)]
    out = run_cli(*hook["entry"].split()[1:], *args, *files)
    assert out.code == 0, out.stdout + out.stderr
    reference = REPO / "tests" / "e2e" / "reference_ci" / "pre-commit-config.yaml"
    assert recipe == yaml.safe_load(reference.read_text())
