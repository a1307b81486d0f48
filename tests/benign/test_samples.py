"""`make demo`'s sample set: honest samples scan clean, every malicious sample is flagged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import findings, run_cli, scan

SCRIPT = Path(__file__).resolve().parents[2] / "samples" / "build_samples.py"


def test_demo_samples(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.pkl").write_bytes(b"left over from an earlier run")
    proc = subprocess.run([sys.executable, str(SCRIPT), str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not (out / "stale.pkl").exists()  # OUTDIR is recreated
    honest = scan(out / "honest")
    assert honest["files_scanned"] == 4 and not honest["issues"] and honest["has_errors"] is False
    for path in sorted((out / "malicious").iterdir()):
        assert {i["rule_code"] for i in findings(scan(path), "critical")} == {"MA-P001"}, path.name
    assert run_cli("scan", str(out)).code == 1
