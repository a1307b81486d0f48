"""Engine behaviour: budgets, plugin registration, missing dependencies, rule catalog."""

from __future__ import annotations

import pathlib
import pickle
import re
import subprocess
import sys
import textwrap

import pytest

import modelaudit
from modelaudit.config import Limits, config_from_kwargs, parse_size
from modelaudit.errors import MissingDependency
from modelaudit.rules import RULES
from modelaudit.scanners import SCANNER_REGISTRY
from modelaudit.scanners.base import BaseScanner
from tests.conftest import codes, scan


@pytest.mark.parametrize("text,expected", [
    ("123", 123), ("1KB", 1000), ("500MB", 500_000_000), ("10GB", 10_000_000_000), ("2GiB", 2 * 1024**3),
    ("1.5 GB", 1_500_000_000), ("7b", 7), (42, 42),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "ten", "5XB", "-1"])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_config_validation():
    with pytest.raises(ValueError):
        Limits(timeout=0)
    with pytest.raises(TypeError):
        config_from_kwargs(no_such_option=1)
    cfg = config_from_kwargs(max_size="1GB", severity_overrides={"MA-P002": "critical"})
    assert cfg.limits.max_file_size == 1_000_000_000


def test_every_rule_code_used_in_the_source_is_in_the_catalog():
    src = pathlib.Path(modelaudit.__file__).parent
    used = {m for p in src.rglob("*.py") for m in re.findall(r'"(MA-[A-Z]\d{3})"', p.read_text())}
    assert used - set(RULES) == set()
    for rule in RULES.values():
        assert rule.title and rule.why and re.fullmatch(r"MA-[A-Z]\d{3}", rule.code)


class _NeedsH5(BaseScanner):
    name = "needs_h5"
    formats = ("hdf5",)

    def check(self, blob, result, ctx):
        raise MissingDependency("h5py", "h5", "Keras H5 files")


def test_missing_dependency_message(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    SCANNER_REGISTRY.append(_NeedsH5)
    try:
        result = scan(path)
    finally:
        SCANNER_REGISTRY.remove(_NeedsH5)
    issue = next(i for i in result["issues"] if i["rule_code"] == "MA-S006")
    assert "h5py not installed, cannot scan Keras H5 files" in issue["message"]
    assert "pip install 'modelaudit[h5]'" in issue["message"]
    assert result["has_errors"] is True


class _Crashes(BaseScanner):
    name = "crashes"
    formats = ("pickle",)

    def check(self, blob, result, ctx):
        raise ZeroDivisionError("boom")


def test_crashing_scanner_is_a_finding_not_a_traceback(tmp_path):
    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps([1]))
    SCANNER_REGISTRY.append(_Crashes)
    try:
        result = scan(path)
    finally:
        SCANNER_REGISTRY.remove(_Crashes)
    assert "MA-S005" in codes(result) and result["has_errors"] is True


def test_entry_point_plugin_is_used_by_the_cli(tmp_path):
    pkg = tmp_path / "site"
    (pkg / "acme_scanner").mkdir(parents=True)
    (pkg / "acme_scanner" / "__init__.py").write_text(textwrap.dedent("""
        from modelaudit.scanners.base import BaseScanner, IssueSeverity

        class AcmeScanner(BaseScanner):
            name = "acme"
            description = "acme models"
            supported_extensions = [".acme"]

            def scan(self, path):
                result = self._create_result()
                result.add_issue("acme model found", severity=IssueSeverity.WARNING, location=path)
                result.finish(success=True)
                return result
    """))
    dist = pkg / "acme_scanner-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-scanner\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[modelaudit.scanners]\nacme = acme_scanner:AcmeScanner\n")
    (tmp_path / "m.acme").write_bytes(b"\x01\x02")
    env = {"PYTHONPATH": str(pkg)}
    import os

    proc = subprocess.run([sys.executable, "-m", "modelaudit", "scan", "--format", "json", str(tmp_path / "m.acme")],
                          capture_output=True, text=True, env={**os.environ, **env})
    assert proc.returncode == 1, proc.stderr
    assert '"message":"acme model found"' in proc.stdout
    listing = subprocess.run([sys.executable, "-m", "modelaudit", "--list-scanners"], capture_output=True,
                             text=True, env={**os.environ, **env})
    assert "acme" in listing.stdout
