"""Guard the surface: importing modelaudit pulls in no ML framework and no unpickler use."""

from __future__ import annotations

import subprocess
import sys

import modelaudit

HEAVY = ["torch", "tensorflow", "keras", "numpy", "sklearn", "joblib", "h5py", "onnx", "xgboost", "lightgbm", "dill"]


def test_importing_the_api_and_cli_loads_no_framework():
    code = (
        "import sys, modelaudit, modelaudit.core, modelaudit.cli, modelaudit.engine, modelaudit.scanners\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_version_import_is_light():
    code = "import sys, modelaudit.cli\nassert 'modelaudit.engine' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_api():
    assert set(modelaudit.__all__) == {
        "__version__", "scan_model_directory_or_file", "scan_files", "BaseScanner", "ScanResult",
        "IssueSeverity", "SCANNER_REGISTRY", "RULES",
    }
    for name in modelaudit.__all__:
        assert getattr(modelaudit, name) is not None
    from modelaudit.scanners.base import BaseScanner, IssueSeverity, ScanResult  # noqa: F401 - documented path
    from modelaudit.scanners import SCANNER_REGISTRY

    assert modelaudit.SCANNER_REGISTRY is SCANNER_REGISTRY


def test_python_dash_m_version():
    out = subprocess.run([sys.executable, "-m", "modelaudit", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"modelaudit, version {modelaudit.__version__}"


def test_scanner_sources_never_deserialize():
    """No scanner module calls a real deserializer."""
    import pathlib
    import re

    src = pathlib.Path(modelaudit.__file__).parent
    banned = re.compile(r"\b(pickle|cPickle|_pickle|dill|joblib|torch|numpy|np)\.(load|loads|Unpickler)\(|"
                        r"\bload_model\(|\bmarshal\.loads\(|(?<![.\w])eval\(|(?<![.\w])exec\(|literal_eval")
    hits = [f"{p}:{n}" for p in src.rglob("*.py") for n, line in enumerate(p.read_text().splitlines(), 1)
            if banned.search(line) and not line.lstrip().startswith("#")]
    assert hits == []
