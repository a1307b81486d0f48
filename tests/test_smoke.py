import os
import pickle

from tests.conftest import codes, findings, run_cli, scan


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo modelaudit-test",))


def test_dangerous_pickle_is_critical(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Payload()))
    result = scan(path)
    assert "MA-P001" in codes(result)
    assert any(i["severity"] == "critical" and "system" in i["message"] for i in result["issues"])


def test_plain_data_pickle_is_clean(tmp_path):
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0], "name": "x"}))
    assert findings(scan(path)) == []


def test_cli_exit_codes(tmp_path):
    good = tmp_path / "ok.pkl"
    good.write_bytes(pickle.dumps([1, 2, 3]))
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps(_Payload()))
    assert run_cli("scan", str(good)).code == 0
    assert run_cli(str(bad)).code == 1
    assert run_cli("scan", str(tmp_path / "missing.pkl")).code == 2
