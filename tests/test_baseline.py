"""Baselines: --write-baseline records findings by fingerprint, --baseline fails only on new ones.

Hostile pickles are built opcode by opcode (tests/builders.py); honest arrays are written by numpy.
Every scan runs the installed `modelaudit` executable in a temporary project.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from modelaudit.errors import ConfigError
from tests import builders as b
from tests.conftest import run_cli, scan

SARIF_SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "sarif-schema-2.1.0.json"
BASELINE = ".modelaudit-baseline.json"


@pytest.fixture
def project(tmp_path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    (models / "evil.pkl").write_bytes(b.payload())
    (models / "unknown.pkl").write_bytes(b.reduce_pickle(b.CANARY_MODULE, "Layer", 1))
    (models / "bundle.zip").write_bytes(b.zip_bytes({"inner/evil.pkl": b.payload(protocol=2)}))
    np.save(models / "weights.npy", np.ones((2, 2), dtype=np.float64))
    return tmp_path


def _write(project: Path, *extra: str) -> None:
    out = run_cli("scan", "--write-baseline", BASELINE, *extra, "models", cwd=project)
    assert out.code == 0, out.stdout + out.stderr
    assert f"Baseline written: {BASELINE}" in out.stderr


def _json(project: Path, *args: str, cwd: Path | None = None):
    out = run_cli("scan", "--format", "json", *args, cwd=cwd or project)
    assert out.stdout, out.stderr
    return out, out.json()


def _sarif(project: Path, *args: str) -> dict:
    out = run_cli("scan", "--format", "sarif", *args, cwd=project)
    assert out.stdout, out.stderr
    sarif = json.loads(out.stdout)
    if SARIF_SCHEMA.exists():
        jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    return sarif


def test_round_trip_accepts_known_findings(project):
    _write(project)
    recorded = json.loads((project / BASELINE).read_text())
    paths = {(f["path"], f["member"], f["rule_code"]) for f in recorded["findings"]}
    assert {("models/evil.pkl", None, "MA-P001"), ("models/bundle.zip", "inner/evil.pkl", "MA-P001"),
            ("models/unknown.pkl", None, "MA-P002")} <= paths
    assert all(not f["path"].startswith("/") for f in recorded["findings"])  # nothing machine-specific
    out, report = _json(project, "--baseline", BASELINE, "models")
    assert out.code == 0
    assert report["issues"] and {i["baseline"] for i in report["issues"]} == {"unchanged"}
    assert report["baseline"]["new"] == 0 and report["baseline"]["unchanged"] == len(report["issues"])
    assert report["summary"]["exit_code"] == 0
    text = run_cli("scan", "--baseline", BASELINE, "models", cwd=project)
    assert text.code == 0 and "posix.system" not in text.stdout
    assert f"Baseline: {project / BASELINE}" in text.stdout and "no new findings" in text.stdout


def test_only_new_findings_fail(project):
    _write(project)
    (project / "models" / "added.pkl").write_bytes(b.reduce_pickle("builtins", "exec", b.HARMLESS_CODE))
    out, report = _json(project, "--baseline", BASELINE, "models")
    assert out.code == 1
    new = [i for i in report["issues"] if i["baseline"] == "new"]
    assert new and {i["location"].split(" ")[0] for i in new} == {"models/added.pkl"}
    assert report["baseline"]["new"] == len(new)
    text = run_cli("scan", "--baseline", BASELINE, "models", cwd=project).stdout
    assert "models/added.pkl" in text and "builtins.exec" in text
    assert "posix.system" not in text  # the known payloads are counted, not listed
    assert "baselined" in text and f"{len(new)} new" in text


def test_a_second_copy_of_a_known_finding_is_new(tmp_path):
    # the scanners report one finding per global and file, so the counting is checked on result values
    from modelaudit.baseline import apply_baseline, load_baseline, write_baseline
    from modelaudit.config import ScanConfig
    from modelaudit.engine import ScanRun
    from modelaudit.model import FileResult, Issue, IssueSeverity

    def run_with(*positions: int) -> ScanRun:
        path = str(tmp_path / "two.pkl")
        issues = tuple(Issue("Suspicious module reference found: posix.system", IssueSeverity.CRITICAL, "MA-P001",
                             f"{path} (pos {p})", {"position": p}) for p in positions)
        return ScanRun(ScanConfig(), [FileResult(path, "pickle", ("pickle",), issues, (), 10, True)])

    write_baseline(run_with(19), str(tmp_path / "b.json"), tmp_path)
    later = run_with(19, 64)
    comparison = apply_baseline(later, load_baseline(str(tmp_path / "b.json")), tmp_path)
    assert [i.baseline for i in later.files[0].issues] == ["unchanged", "new"]
    assert (comparison.new, comparison.unchanged) == (1, 1)


def test_fingerprints_survive_unrelated_edits_and_severity_overrides(project):
    _write(project)
    evil = project / "models" / "evil.pkl"
    evil.write_bytes(b.benign() + b.payload())  # the payload moves further into the file
    out, report = _json(project, "--baseline", BASELINE, "-S", "MA-P002=critical", "models")
    assert out.code == 0, [i for i in report["issues"] if i["baseline"] == "new"]
    moved = [i for i in report["issues"] if i["location"].startswith("models/evil.pkl")]
    assert moved and moved[0]["details"]["position"] > 19


def test_fingerprints_match_after_moving_the_project(project, tmp_path_factory):
    _write(project)
    moved = tmp_path_factory.mktemp("checkout") / "elsewhere"
    shutil.copytree(project, moved)
    shutil.rmtree(project)
    out, report = _json(moved, "--baseline", BASELINE, "models")
    assert out.code == 0 and report["baseline"]["new"] == 0 and report["baseline"]["absent"] == []
    # absolute targets inside the working directory have the same relative paths
    out, report = _json(moved, "--baseline", str(moved / BASELINE), str(moved / "models"))
    assert out.code == 0 and report["baseline"]["new"] == 0


def test_rewriting_an_unchanged_baseline_gives_the_same_bytes(project):
    _write(project)
    first = (project / BASELINE).read_bytes()
    _write(project)
    assert (project / BASELINE).read_bytes() == first


def test_sarif_carries_baseline_state_and_shared_fingerprints(project):
    _write(project)
    (project / "models" / "evil.pkl").unlink()  # fixed
    (project / "models" / "added.pkl").write_bytes(b.reduce_pickle("builtins", "eval", "1+1"))
    run = _sarif(project, "--baseline", BASELINE, "models")["runs"][0]
    assert run["properties"]["baselineFile"] == str(project / BASELINE)
    states = {(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], r["baselineState"])
              for r in run["results"] if r["ruleId"] in ("MA-P001", "MA-P002")}
    assert ("models/added.pkl", "new") in states
    assert ("models/bundle.zip", "unchanged") in states and ("models/unknown.pkl", "unchanged") in states
    assert not [r for r in run["results"] if r["baselineState"] == "absent"]  # never uploaded as alerts
    [gone] = run["properties"]["absentFindings"]
    assert gone["ruleId"] == "MA-P001" and gone["baselineState"] == "absent" and gone["uri"] == "models/evil.pkl"
    recorded = {f["fingerprint"] for f in json.loads((project / BASELINE).read_text())["findings"]}
    unchanged = {r["partialFingerprints"]["modelaudit/v1"] for r in run["results"]
                 if r["baselineState"] == "unchanged"} | {gone["partialFingerprints"]["modelaudit/v1"]}
    assert unchanged and unchanged <= recorded  # one fingerprint function for SARIF and baselines
    _, report = _json(project, "--baseline", BASELINE, "models")
    assert [(a["path"], a["rule_code"]) for a in report["baseline"]["absent"]] == [("models/evil.pkl", "MA-P001")]


def test_sarif_without_a_baseline_has_no_baseline_state(project):
    results = _sarif(project, "models")["runs"][0]["results"]
    assert results and all("baselineState" not in r for r in results)


@pytest.mark.parametrize(("content", "message"), [
    (None, "baseline file not found"),
    ("{not json", "invalid JSON"),
    ('{"findings": []}', "not a modelaudit baseline"),
    ('{"modelaudit_baseline": 99, "findings": []}', "format 99 is not supported"),
    ('{"modelaudit_baseline": 1, "findings": {}}', "must be a list"),
    ('{"modelaudit_baseline": 1, "findings": [{"path": "x"}]}', "finding #1 needs fingerprint"),
])
def test_missing_or_invalid_baselines_stop_the_scan(project, content, message):
    if content is not None:
        (project / BASELINE).write_text(content)
    out = run_cli("scan", "--baseline", BASELINE, "models", cwd=project)
    assert out.code == 2 and out.stdout == "" and message in out.stderr, out.stderr
    with pytest.raises(ConfigError, match=message):
        scan(project / "models", baseline=project / BASELINE)


def test_baseline_named_in_the_policy(project):
    (project / "ci").mkdir()
    (project / ".modelaudit.toml").write_text('baseline = "ci/known.json"\n')
    out = run_cli("scan", "models", cwd=project)
    assert out.code == 2 and "ci/known.json" in out.stderr  # named but missing: an error, not a silent pass
    out = run_cli("scan", "--write-baseline", "ci/known.json", "models", cwd=project)  # bootstrapping works
    assert out.code == 0 and (project / "ci" / "known.json").is_file()
    out, report = _json(project, "models")
    assert out.code == 0 and report["baseline"]["file"] == str(project / "ci" / "known.json")
    (project / "models" / "added.pkl").write_bytes(b.payload())
    out, report = _json(project, "models")
    assert out.code == 1 and report["baseline"]["new"] == 1
    assert run_cli("scan", "--no-config", "models", cwd=project).code == 1


def test_conflicting_baseline_flags(project):
    _write(project)
    out = run_cli("scan", "--baseline", BASELINE, "--write-baseline", "other.json", "models", cwd=project)
    assert out.code == 2 and "different files" in out.stderr
    assert not (project / "other.json").exists()


def test_incomplete_scans_are_not_baselined(project):
    out = run_cli("scan", "--write-baseline", BASELINE, "--max-file-size", "100", "models", cwd=project)
    assert out.code == 2  # a file too large to read (weights.npy) is never accepted as known
    out = run_cli("scan", "--baseline", BASELINE, "--max-file-size", "100", "models", cwd=project)
    assert out.code == 2 and "not fully scanned" in out.stdout


def test_the_baseline_file_scanned_as_a_target_is_clean(project):
    _write(project)
    out, report = _json(project, "--strict", BASELINE)
    assert out.code == 0 and report["issues"] == []


def test_the_api_compares_and_writes_baselines(project, monkeypatch):
    monkeypatch.chdir(project)
    written = scan("models", write_baseline=BASELINE)
    assert {i["baseline"] for i in written["issues"]} == {"unchanged"}
    (project / "models" / "added.pkl").write_bytes(b.payload())
    compared = scan("models", baseline=BASELINE)
    assert compared["baseline"]["new"] == 1 and compared["summary"]["exit_code"] == 1
    assert [i["location"] for i in compared["issues"] if i["baseline"] == "new"] == ["models/added.pkl (pos 19)"]
