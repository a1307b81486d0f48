"""CVE-2025-32434: torch.load(weights_only=True) hands a TorchScript archive to torch.jit.load, whose code
may reach aten file primitives (save, from_file). Scripted models written by torch never call them."""

from __future__ import annotations

import pytest

from tests.conftest import scan
from tests.scanners.test_torchscript import _members, _rezip, _scripted

FILE_OPS = {
    "torch_save": "def forward(self, x):\n    torch.save(x, '/tmp/modelaudit-test')\n    return x\n",
    "ops_aten_save": "def forward(self, x):\n    ops.aten.save(x, '/tmp/modelaudit-test')\n    return x\n",
    "torch_from_file": "def forward(self, x):\n    y = torch.from_file('/etc/hostname', True, 8)\n    return x\n",
    "ops_aten_from_file": "def forward(self, x):\n    y = ops.aten.from_file('/etc/hostname', True, 8)\n    return x\n",
}


@pytest.mark.parametrize("key", sorted(FILE_OPS))
def test_cve_2025_32434_torchscript_file_primitives(tmp_path, key):
    path = _scripted(tmp_path / "m.pt")
    members = _members(path)
    name = next(n for n in members if "/code/__torch__/" in n and n.endswith(".py"))
    members[name] = members[name] + b"\n" + FILE_OPS[key].encode()
    result = scan(_rezip(path, members))
    hits = [i for i in result["issues"] if i["rule_code"] == "MA-H003" and i["severity"] == "critical"]
    assert len(hits) == 1 and "a file at a path the code chooses" in hits[0]["message"], result["issues"]
    assert result["summary"]["exit_code"] == 1


def test_honest_scripted_module_has_no_file_primitive_finding(tmp_path):
    result = scan(_scripted(tmp_path / "m.pt"))
    assert not [i for i in result["issues"] if i["rule_code"] == "MA-H003"], result["issues"]
