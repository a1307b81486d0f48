"""SARIF 2.1.0 output validates against the published schema and locates findings precisely."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import run_cli

SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "sarif-schema-2.1.0.json"


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo modelaudit-test",))


@pytest.fixture
def project(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "evil.pkl").write_bytes(pickle.dumps(_Payload()))
    (tmp_path / "models" / "ok.pkl").write_bytes(pickle.dumps([1, 2]))
    with zipfile.ZipFile(tmp_path / "models" / "bundle.zip", "w") as zf:
        zf.writestr("inner/evil.pkl", pickle.dumps(_Payload()))
    (tmp_path / "models" / "broken.pkl").write_bytes(b"\x80\x04\x95")
    return tmp_path


def _sarif(project, *extra) -> dict:
    out = run_cli("scan", "--format", "sarif", "models", *extra, cwd=project)
    assert out.code in (1, 2), out.stderr
    return json.loads(out.stdout)


@pytest.mark.skipif(not SCHEMA.exists(), reason="published SARIF schema not beside the repository")
def test_validates_against_the_sarif_schema(project):
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(_sarif(project), schema)


def test_results_are_located_by_relative_uri_member_and_offset(project):
    run = _sarif(project)["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert "MA-P001" in rules and all(r["help"]["text"] for r in run["tool"]["driver"]["rules"])
    critical = [r for r in run["results"] if r["ruleId"] == "MA-P001"]
    by_uri = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r for r in critical}
    assert set(by_uri) == {"models/evil.pkl", "models/bundle.zip"}
    plain = by_uri["models/evil.pkl"]
    assert plain["level"] == "error" and plain["locations"][0]["physicalLocation"]["region"]["byteOffset"] > 0
    member = by_uri["models/bundle.zip"]
    assert member["locations"][0]["logicalLocations"][0]["name"] == "inner/evil.pkl"
    assert "region" not in member["locations"][0]["physicalLocation"]
    assert "(pos" not in member["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert rules[member["ruleIndex"]] == "MA-P001"


def _evil_result(project) -> dict:
    results = _sarif(project)["runs"][0]["results"]
    return next(r for r in results if r["ruleId"] == "MA-P001"
                and r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/evil.pkl")


def test_fingerprints_survive_unrelated_edits(project):
    before = _evil_result(project)
    # prepend an honest pickle to the stream: the payload moves, its fingerprint must not
    evil = project / "models" / "evil.pkl"
    evil.write_bytes(pickle.dumps({"padding": list(range(50))}) + pickle.dumps(_Payload()))
    after = _evil_result(project)
    assert after["locations"][0]["physicalLocation"]["region"] != before["locations"][0]["physicalLocation"]["region"]
    assert after["partialFingerprints"] == before["partialFingerprints"]


def test_incomplete_scans_are_tool_notifications(project):
    run = _sarif(project, "--max-file-size", "10")["runs"][0]
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert run["invocations"][0]["executionSuccessful"] is False
    assert any("File too large to scan" in n["message"]["text"] for n in notes)
