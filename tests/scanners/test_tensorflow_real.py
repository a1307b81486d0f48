"""tensorflow / tflite: files written by TensorFlow 2.21 itself, committed under tests/fixtures/tensorflow/.

TensorFlow cannot share the test environment (tensorflow-cpu pins an older h5py than Keras needs
there), so tests/fixtures/tensorflow/generate.py writes these files once, in a throwaway
environment, and documents the exact versions and command. Honest files must scan with no
warning; the hostile ones, made with the same API, must give exactly the expected findings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import codes, findings, run_cli, scan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tensorflow"


def _issues(result: dict, code: str) -> list[dict]:
    return [i for i in result["issues"] if i["rule_code"] == code]


@pytest.mark.parametrize(("name", "kind"), [
    ("honest_saved_model", "pb"),  # tf.Module: a variable, a tf.function and the checkpoint saver functions
    ("keras_export", "pb"),  # keras Model.export(format="tf_saved_model")
    ("frozen_graph.pb", "pb"),
    ("linear.tflite", "tflite"),
])
def test_honest_files_from_tensorflow_are_clean(name, kind):
    result = scan(FIXTURES / name)
    assert findings(result) == [], [i["message"] for i in result["issues"]]
    assert not result["has_errors"]
    assert kind in {a["type"] for a in result["assets"]}


def test_honest_saved_model_has_the_saver_ops_and_they_are_quiet():
    data = (FIXTURES / "honest_saved_model" / "saved_model.pb").read_bytes()
    for op in (b"SaveV2", b"RestoreV2", b"MergeV2Checkpoints", b"StringJoin", b"ShardedFilename"):
        assert op in data, op  # the file really exercises the allowlist
    result = scan(FIXTURES / "honest_saved_model")
    assert findings(result, "info") == [] and "tensorflow" in result["scanner_names"]
    assert run_cli("scan", str(FIXTURES / "honest_saved_model")).code == 0


@pytest.mark.parametrize("name", ["file_ops_saved_model", "file_ops_frozen.pb"])
def test_file_and_python_ops_from_tensorflow(name):
    result = scan(FIXTURES / name)
    assert codes(result, "warning") == {"MA-T102", "MA-T103", "MA-T104"}
    assert any("EagerPyFunc" in i["message"] for i in _issues(result, "MA-T102"))
    fixed = " ".join(i["message"] for i in _issues(result, "MA-T104"))
    assert "WriteFile" in fixed and "/tmp/modelaudit-fixture-never-written" in fixed and "ReadFile" in fixed
    assert any("ReadFile" in i["message"] for i in _issues(result, "MA-T103"))  # path fed by the caller
    assert {i["severity"] for i in _issues(result, "MA-T102")} == {"critical"}
    assert run_cli("scan", str(FIXTURES / name)).code == 1


def test_flex_operator_alone_is_only_the_flex_finding():
    result = scan(FIXTURES / "flex_string_length.tflite")
    assert codes(result, "warning") == {"MA-T203"} and "StringLength" in _issues(result, "MA-T203")[0]["message"]


def test_flex_read_file_from_the_converter():
    result = scan(FIXTURES / "flex_read_file.tflite")
    assert codes(result, "warning") == {"MA-T203", "MA-T103"}
    flex = _issues(result, "MA-T203")[0]["message"]
    assert "ReadFile" in flex and "StringLength" in flex
    assert "FlexReadFile" in _issues(result, "MA-T103")[0]["message"]
