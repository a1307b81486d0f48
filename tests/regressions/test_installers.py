"""Package installers and environment builders: pip, ensurepip, venv, setuptools, distutils."""

from __future__ import annotations

import pytest

from tests.builders import reduce_pickle
from tests.regressions.corpus import family, assert_dangerous, case, scan_bytes, scan_case

PIP_ARGS = ["install", "modelaudit-test-package", "--no-input", "-q", "--exists-action", "i", "--isolated"]


@case("CVE-2025-1716.pkl")
def cve_2025_1716_pip_main() -> bytes:
    """Sonatype: pip.main(['install', ...]) pulls and runs an attacker's package (protocol 0, as published)."""
    return reduce_pickle("pip", "main", PIP_ARGS, protocol=0)


def test_cve_2025_1716_pip_main(tmp_path):
    finding = assert_dangerous(scan_case(tmp_path, cve_2025_1716_pip_main), "pip.main")
    assert finding["details"]["family"] == "installers-and-debuggers"
    assert "modelaudit-test-package" in finding["details"]["call_args"]


@case("GHSA-xp4f-hrf8-rxw7.pkl")
def ghsa_xp4f_hrf8_rxw7_ensurepip_run_pip() -> bytes:
    return reduce_pickle("ensurepip", "_run_pip", ["install", "modelaudit-test-package"])


def test_ghsa_xp4f_hrf8_rxw7_ensurepip_run_pip(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_xp4f_hrf8_rxw7_ensurepip_run_pip), "ensurepip._run_pip")


@case("picklescan_malicious20_venv.pkl")
def picklescan_venv_create() -> bytes:
    """venv.create(..., prompt='$(...)'): the environment builder runs commands."""
    return reduce_pickle("venv", "create", "/tmp/modelaudit-test-venv", False, False, True, False, "modelaudit-test")


def test_picklescan_venv_create(tmp_path):
    assert_dangerous(scan_case(tmp_path, picklescan_venv_create), "venv.create")


@case("GHSA-m273-6v24-x4m4.pkl")
def ghsa_m273_6v24_x4m4_distutils_write_file() -> bytes:
    return reduce_pickle("distutils.file_util", "write_file", "/tmp/modelaudit-test.env", ["modelaudit-test"])


def test_ghsa_m273_6v24_x4m4_distutils_write_file(tmp_path):
    assert_dangerous(scan_case(tmp_path, ghsa_m273_6v24_x4m4_distutils_write_file), "distutils.file_util.write_file")


INSTALLERS = [("pip._internal.cli.main", "main", (PIP_ARGS,)), ("pip._internal", "main", (PIP_ARGS,)),
              ("ensurepip", "bootstrap", ()), ("venv", "EnvBuilder", ()),
              ("setuptools.sandbox", "run_setup", ("/tmp/modelaudit-test/setup.py", ["install"])),
              ("distutils.core", "run_setup", ("/tmp/modelaudit-test/setup.py",)),
              ("pkg_resources", "require", ("modelaudit-test-package",))]


INSTALLER_CASES = family("installer", {f"{m}.{n}": (f"installer_{m}_{n}.pkl", reduce_pickle(m, n, *a))
                                       for m, n, a in INSTALLERS})


@pytest.mark.parametrize("target", sorted(INSTALLER_CASES))
def test_installer_family(tmp_path, target):
    assert_dangerous(scan_bytes(tmp_path, INSTALLER_CASES[target]), target)
