"""The documented command line: flags, exit codes, messages and output channels."""

from __future__ import annotations

import json
import os
import pickle
import re
import struct

import pytest

from tests.conftest import run_cli


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo modelaudit-test",))


@pytest.fixture
def models(tmp_path):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Payload()))
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps({"w": [0.5] * 10}))
    return tmp_path


def test_version_matches_wrapper_regex():
    out = run_cli("--version")
    assert out.code == 0
    assert re.fullmatch(r"modelaudit,?\s+version\s+\d+\.\d+\.\d+\s*", out.stdout, re.I)


def test_default_command_is_scan(models):
    assert run_cli(str(models / "evil.pkl")).code == 1
    assert run_cli(str(models / "ok.pkl")).code == 0


def test_many_paths_and_directories(models, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    (other / "b.pkl").write_bytes(pickle.dumps([1, 2]))
    out = run_cli("scan", "--format", "json", str(models), str(other / "b.pkl"))
    assert out.code == 1
    assert out.json()["files_scanned"] == 3


def test_every_wrapper_flag_is_accepted(models, tmp_path):
    """The command line the promptfoo scan-model wrapper builds, with every optional flag it may pass."""
    report = tmp_path / "report.json"
    out = run_cli("scan", str(models / "ok.pkl"), "--blacklist", "nothing-matches", "--format", "json",
                  "--output", str(report), "--verbose", "--strict", "--progress", "--timeout", "300",
                  "--max-size", "1GB", "--no-cache", "--stream", "--include-scanner", "pickle",
                  "--exclude-scanner", "zip", "--profile", "default", "--scanners", "pickle,pytorch",
                  "--max-file-size", "1073741824", "--max-total-size", "5368709120")
    assert out.code == 0, out.stderr
    assert json.loads(report.read_text())["files_scanned"] == 1
    assert run_cli("scan", str(models), "--quiet", "--dry-run", "--format", "json").code == 0


def test_json_on_stdout_stays_valid_with_logs_and_progress(models):
    out = run_cli("scan", "--format", "json", "--verbose", "--progress", str(models))
    data = out.json()
    assert data["files_scanned"] == 2 and out.code == 1
    for key in ("scanner_names", "start_time", "bytes_scanned", "issues", "has_errors", "files_scanned",
                "duration", "assets", "checks", "total_checks", "passed_checks", "failed_checks"):
        assert key in data


def test_ci_recipe_grep_finds_critical(models, tmp_path):
    out = run_cli("scan", str(models), "--format", "json", "--output", str(tmp_path / "scan-results.json"))
    assert out.code == 1
    assert '"severity":"critical"' in (tmp_path / "scan-results.json").read_text()
    assert out.stdout == ""  # the report went to the file


def test_file_too_large(models):
    out = run_cli("scan", "--max-file-size", "10", str(models / "ok.pkl"))
    assert out.code == 2
    size = (models / "ok.pkl").stat().st_size
    assert f"File too large to scan: {size} bytes (max: 10)" in out.stdout


def test_max_size_units(models):
    out = run_cli("scan", "--max-size", "1KB", "--format", "json", str(models / "ok.pkl"))
    assert out.code == 0
    big = models / "big.pkl"
    big.write_bytes(pickle.dumps(b"x" * 5000))
    out = run_cli("scan", "--max-size", "1KB", str(big))
    assert out.code == 2 and "(max: 1000)" in out.stdout


def test_total_size_budget(models):
    out = run_cli("scan", "--max-total-size", "50", "--format", "json", str(models))
    data = out.json()
    assert any(i["rule_code"] == "MA-S002" for i in data["issues"])


def test_timeout_is_incomplete_with_message(tmp_path):
    path = tmp_path / "slow.pkl"
    path.write_bytes(pickle.dumps([f"s{i}" for i in range(300_000)], protocol=4))
    out = run_cli("scan", "--timeout", "0.000001", str(path))
    assert out.code == 2
    assert "Scan timeout after 1e-06 seconds" in out.stdout


def test_unknown_format(tmp_path):
    path = tmp_path / "blob.weird"
    path.write_bytes(bytes(range(256)) * 4)
    out = run_cli("scan", str(path))
    assert out.code == 2 and "Unknown or unhandled format" in out.stdout


def test_safetensors_in_bin_is_detected(tmp_path):
    header = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 8)
    out = run_cli("scan", "--format", "json", str(path))
    assert any(i["message"] == "Detected safetensors format in .bin file" and i["severity"] == "info"
               for i in out.json()["issues"])


def test_renamed_pickle_mismatch_message(models, tmp_path):
    fake = tmp_path / "model.safetensors"
    fake.write_bytes((models / "evil.pkl").read_bytes())
    out = run_cli("scan", "--format", "json", str(fake))
    messages = [i["message"] for i in out.json()["issues"]]
    assert any(m.startswith("File type validation failed: extension indicates safetensors but magic bytes "
                            "indicate pickle") for m in messages)
    assert "Suspicious module reference found: posix.system" in messages


def test_config_files_pass_clean(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert", "hidden_size": 768}')
    (tmp_path / "pipeline.yaml").write_text("steps:\n  - name: train\n")
    (tmp_path / "notes.yml").write_text("")
    (tmp_path / "vocab.json").write_text('{"http://example.com": 1, "[PAD]": 0}')
    out = run_cli("scan", str(tmp_path / "config.json"), str(tmp_path / "pipeline.yaml"), str(tmp_path / "notes.yml"),
                  str(tmp_path / "vocab.json"))
    assert out.code == 0, out.stdout


def test_suppress_and_severity_override(models):
    evil = str(models / "evil.pkl")
    assert run_cli("scan", "-s", "MA-P001", evil).code == 0
    out = run_cli("scan", "--format", "json", "-S", "MA-P001=info", evil)
    assert out.code == 0 and out.json()["issues"][0]["severity"] == "info"
    bad = run_cli("scan", "-s", "NOPE-1", evil)
    assert bad.code == 2 and "unknown rule code" in bad.stderr


def test_scanner_selection(models):
    assert run_cli("scan", "--exclude-scanner", "pickle", str(models / "evil.pkl")).code == 2
    assert run_cli("scan", "--scanners", "nope", str(models / "evil.pkl")).code == 2


def test_list_scanners(models):
    out = run_cli("--list-scanners")
    assert out.code == 0 and "pickle" in out.stdout
    rows = run_cli("scan", "--format", "json", "--list-scanners").json()
    assert {"pickle", "pytorch", "numpy"} <= {r["name"] for r in rows}


def test_dry_run_reads_nothing(models):
    out = run_cli("scan", "--dry-run", "--format", "json", str(models))
    data = out.json()
    assert out.code == 0 and data["dry_run"] is True
    assert {f["format"] for f in data["files"]} == {"pickle"}


def test_rules_command():
    listing = run_cli("rules")
    assert listing.code == 0 and "MA-P001" in listing.stdout
    one = run_cli("rules", "MA-P001")
    assert one.code == 0 and "default severity: critical" in one.stdout
    assert run_cli("rules", "MA-Z999").code == 2


def test_text_report_groups_by_file_with_why_and_verdict(models):
    out = run_cli("scan", str(models))
    assert "evil.pkl" in out.stdout and "why:" in out.stdout
    assert "Security issues found" in out.stdout.splitlines()[-1]
    clean = run_cli("scan", str(models / "ok.pkl"))
    assert clean.stdout.splitlines()[-1] == "✓ No security issues found"
