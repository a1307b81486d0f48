"""No telemetry and no network access when scanning local files."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo modelaudit-test",))


def test_local_scan_opens_no_socket(tmp_path):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Payload()))
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps({"a": 1}))
    (tmp_path / "config.json").write_text("{}")
    code = (
        "import sys\n"
        "events = []\n"
        "def hook(event, args):\n"
        "    if event.startswith(('socket.', 'urllib.', 'http.')):\n"
        "        events.append(event)\n"
        "sys.addaudithook(hook)\n"
        "from modelaudit.cli import main\n"
        f"sys.argv = ['modelaudit', 'scan', '--format', 'json', {str(tmp_path)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 1, exc.code\n"
        "assert events == [], events\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
