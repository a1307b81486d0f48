"""Configs that loaders turn into calls: Hydra/OmegaConf `_target_` keys (NeMo .nemo archives,
hub-mixin config.json, JSON in safetensors metadata) and PyYAML python tags; plus zip
symlinks that extraction tools create."""

from __future__ import annotations

import io
import json
import stat
import struct
import tarfile
import zipfile

import pytest

from tests.builders import HARMLESS_CMD, benign, torch_zip
from tests.regressions.corpus import assert_clean, assert_dangerous, case, issues, scan_bytes, scan_case

NEMO_CONFIG = f"""\
target: nemo.collections.asr.models.EncDecCTCModel
encoder:
  _target_: os.system
  command: {HARMLESS_CMD}
""".encode()


def _tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _safetensors(metadata: dict[str, str]) -> bytes:
    header = json.dumps({"__metadata__": metadata, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})
    raw = header.encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0\0\0\0"


def _critical(result: dict, code: str, needle: str) -> dict:
    hits = [i for i in issues(result, code, "critical") if needle in i["message"]]
    assert hits, result["issues"]
    assert result["summary"]["exit_code"] == 1 and hits[0]["why"]
    return hits[0]


@case("CVE-2025-23304.nemo")
def cve_2025_23304_nemo_hydra_target() -> bytes:
    """NeMo restores a .nemo (a tar) by instantiating model_config.yaml: `_target_` is imported and called."""
    return _tar({"./model_config.yaml": NEMO_CONFIG, "./model_weights.ckpt": torch_zip(benign(2))})


def test_cve_2025_23304_nemo_hydra_target(tmp_path):
    finding = _critical(scan_case(tmp_path, cve_2025_23304_nemo_hydra_target), "MA-I001", "instantiates os.system")
    assert finding["details"]["key"] == "encoder._target_" and finding["details"]["family"] == "command-execution"
    assert "model_config.yaml" in finding["location"]


HIDDEN_TARGETS = {
    "anchor_alias": b"cmd: &c posix.system\nencoder:\n  _target_: *c\n",
    "interpolation": b"cmd: builtins.exec\nencoder:\n  _target_: ${cmd}\n  _args_: ['print(1)']\n",
    "quoted_key_flow_style": b'encoder: {"_target_": "subprocess.run", args: [echo]}\n',
    "colon_spelling": b"encoder:\n  _target_: 'os:system'\n",
    "in_a_list": b"callbacks:\n  - _target_: torch.load\n    f: /tmp/modelaudit-test.pt\n",
    # escapes in a double-quoted key: the text never spells _target_, the parsed key is exactly that
    "escaped_key_yaml": b'encoder:\n  "\\x5ftarget_": os.system\n',
    "escaped_key_json": b'{"encoder": {"\\u005ftarget_": "os.system", "command": "echo"}}\n',
    "escaped_key_folded": b'encoder:\n  ? "_tar\\\n    get_"\n  : os.system\n',
}


@pytest.mark.parametrize("key", sorted(HIDDEN_TARGETS))
def test_hydra_targets_hidden_by_yaml_features(tmp_path, key):
    result = scan_bytes(tmp_path, HIDDEN_TARGETS[key], "model_config.yaml")
    _critical(result, "MA-I001", "instantiates")


@case("hydra_target_config.json")
def hydra_target_in_hub_config_json() -> bytes:
    """A hub-mixin config.json handed to hydra.utils.instantiate."""
    return json.dumps({"module": {"_target_": "builtins.eval", "_args_": ["1 + 1"]}}).encode()


def test_hydra_target_in_hub_config_json(tmp_path):
    result = scan_bytes(tmp_path, hydra_target_in_hub_config_json(), "config.json")
    _critical(result, "MA-I001", "instantiates builtins.eval")


@case("hydra_target_metadata.safetensors")
def hydra_target_in_safetensors_metadata() -> bytes:
    """A model config kept as JSON in safetensors metadata, instantiated by the loading library."""
    return _safetensors({"config": json.dumps({"_target_": "posix.system", "_args_": [HARMLESS_CMD]})})


def test_hydra_target_in_safetensors_metadata(tmp_path):
    result = scan_case(tmp_path, hydra_target_in_safetensors_metadata)
    _critical(result, "MA-I001", "instantiates posix.system")


@case("yaml_python_tag.yaml")
def yaml_python_object_apply_tag() -> bytes:
    """CVE-2017-18342 / CVE-2020-1747: yaml.load with the default or full loader calls the tagged callable."""
    return f"model: !!python/object/apply:os.system ['{HARMLESS_CMD}']\n".encode()


def test_yaml_python_object_apply_tag(tmp_path):
    _critical(scan_case(tmp_path, yaml_python_object_apply_tag), "MA-I002", "python/object/apply:os.system")


@pytest.mark.parametrize("text,severity,names", [
    ("a: !!python/name:material.extensions.emoji.twemoji\nb: !!python/object/apply:subprocess.check_output "
     "[[id]]\n", "critical", "subprocess.check_output"),  # a harmless tag first does not hide a later one
    ("a: !!python/name:os.system\n", "critical", "os.system"),
    ("a: !!python/module:subprocess\n", "critical", "subprocess"),
    ("a: !<tag:yaml.org,2002:python/object/new:posix.system> [id]\n", "critical", "posix.system"),
    ("a: !!python/object:mypkg.Thing {x: 1}\n", "warning", "mypkg.Thing"),
    # the tag prefix declared once by a directive: the text never spells python/object/apply:os.system
    ("%TAG !p! tag:yaml.org,2002:python/\n---\na: !p!object/apply:os.system [id]\n", "critical", "os.system"),
    # %XX escapes PyYAML decodes in a tag or a directive's prefix: the text never spells python/
    ("a: !!%70ython/object/apply:os.system [id]\n", "critical", "os.system"),
    ("a: !!python%2Fobject/apply:os.system [id]\n", "critical", "os.system"),
    ("a: !<tag:yaml.org,2002:%70ython/object/new:posix.system> [id]\n", "critical", "posix.system"),
    ("%TAG !p! tag:yaml.org,2002:%70ython/\n---\na: !p!object/apply:os.system [id]\n", "critical", "os.system"),
])
def test_every_yaml_python_tag_is_judged(tmp_path, text, severity, names):
    result = scan_bytes(tmp_path, text.encode(), "config.yaml")
    hits = [i for i in issues(result, "MA-I002", severity) if names in i["message"]]
    assert hits, result["issues"]


def test_mkdocs_config_naming_its_extensions_is_clean(tmp_path):
    """mkdocs-material's documented config: !!python/name only imports the named extension functions."""
    config = (b"site_name: Demo\ntheme:\n  name: material\nmarkdown_extensions:\n  - pymdownx.emoji:\n"
              b"      emoji_index: !!python/name:material.extensions.emoji.twemoji\n"
              b"      emoji_generator: !!python/name:material.extensions.emoji.to_svg\n"
              b"  - pymdownx.superfences:\n      custom_fences:\n        - name: mermaid\n"
              b"          format: !!python/name:pymdownx.superfences.fence_code_format\n")
    assert_clean(scan_bytes(tmp_path, config, "mkdocs.yml"))


def test_training_config_naming_library_loaders_passes(tmp_path):
    """lightning-hydra style configs instantiate hub loaders by design: info notes, exit 0; a raw
    deserializer in the same place stays critical."""
    config = (b"model:\n  _target_: transformers.AutoModelForCausalLM.from_pretrained\n"
              b"  pretrained_model_name_or_path: gpt2\ndata:\n  _target_: datasets.load_dataset\n  path: imdb\n"
              b"opt:\n  _target_: torch.optim.AdamW\n  lr: 0.001\n")
    result = scan_bytes(tmp_path, config, "train.yaml")
    assert result["summary"]["exit_code"] == 0, result["issues"]
    assert {i["details"]["target"] for i in issues(result, "MA-I001", "info")} == {
        "transformers.AutoModelForCausalLM.from_pretrained", "datasets.load_dataset"}
    raw = scan_bytes(tmp_path, b"ckpt:\n  _target_: torch.load\n  f: model.pt\n", "restore.yaml")
    _critical(raw, "MA-I001", "torch.load")


def test_honest_hydra_configs_are_clean(tmp_path):
    honest = (b"model:\n  _target_: nemo.collections.asr.models.EncDecCTCModel\n  optim:\n"
              b"    _target_: torch.optim.AdamW\n    lr: 0.001\n  sched: ${model.optim}\n")
    assert_clean(scan_bytes(tmp_path, honest, "model_config.yaml"))
    assert_clean(scan_bytes(tmp_path, _tar({"./model_config.yaml": honest}), "honest.nemo"))
    assert_clean(scan_bytes(tmp_path, json.dumps({"_target_": "torch.nn.Linear", "in_features": 4}).encode(),
                            "config.json"))
    assert_clean(scan_bytes(tmp_path, _safetensors({"format": "pt"}), "model.safetensors"))
    # documentation that merely mentions the key or the tag is not a config
    assert_clean(scan_bytes(tmp_path, b"Set `_target_` to your model class. Never use !!python tags.\n", "README.md"))


# ----------------------------------------------------------------------------- zip symlinks
def _zip_with_link(link: str, target: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(link)
        info.create_system, info.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
        zf.writestr("archive/data.pkl", benign(2))
    return buf.getvalue()


@case("zip_symlink_out_of_archive.pt")
def zip_symlink_out_of_the_archive() -> bytes:
    """unzip, 7z and bsdtar create a Unix symlink entry as a link: later reads follow it anywhere."""
    return _zip_with_link("archive/data/0", "../../../../../etc/passwd")


@pytest.mark.parametrize("target", ["../../../../../etc/passwd", "/etc/passwd"])
def test_zip_symlink_leaving_the_archive(tmp_path, target):
    for name in ("model.pt", "model.zip"):
        result = scan_bytes(tmp_path, _zip_with_link("archive/data/0", target), name)
        _critical(result, "MA-A005", "is a symbolic link to")
    assert_dangerous(scan_case(tmp_path, zip_symlink_out_of_the_archive), "", code="MA-A005")


def test_zip_symlink_inside_the_archive_is_not_a_finding(tmp_path):
    result = scan_bytes(tmp_path, _zip_with_link("archive/link", "data.pkl"), "model.zip")
    assert not issues(result, "MA-A005")
