"""The published JSON Schema describes every report we emit."""

from __future__ import annotations

import json
import os
import pickle
from importlib import resources

import jsonschema
import pytest

from tests.conftest import run_cli, scan


def _schema() -> dict:
    return json.loads(resources.files("modelaudit").joinpath("schemas/report.schema.json").read_text())


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo modelaudit-test",))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("schema")
    (root / "evil.pkl").write_bytes(pickle.dumps(_Payload()))
    (root / "ok.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    (root / "broken.pkl").write_bytes(pickle.dumps(_Payload())[:-3])
    (root / "blob.weird").write_bytes(bytes(range(256)))
    (root / "config.json").write_text("{}")
    return root


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(_schema())


def test_cli_reports_validate(corpus):
    validator = jsonschema.Draft202012Validator(_schema())
    for args in ([str(corpus)], [str(corpus / "ok.pkl")], [str(corpus / "missing.pkl")],
                 ["--strict", "-v", str(corpus)]):
        out = run_cli("scan", "--format", "json", *args)
        errors = list(validator.iter_errors(out.json()))
        assert errors == [], [e.message for e in errors]


def test_api_result_validates(corpus):
    result = scan(corpus)
    jsonschema.Draft202012Validator(_schema()).validate(json.loads(json.dumps(result)))
    assert result["total_checks"] == result["passed_checks"] + result["failed_checks"] + result["skipped_checks"]
