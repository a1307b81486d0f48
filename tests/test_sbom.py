"""CycloneDX 1.6 SBOM (--sbom): components with hashes, licences, model cards, risk scores and findings.

Fixtures are written by the real libraries (torch, safetensors, gguf, h5py, numpy, zipfile, tarfile) or
built byte by byte (the malicious pickle, whose payload would only run `echo`). Every SBOM is validated
against the CycloneDX 1.6 JSON schema that cyclonedx-python-lib ships (no network).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from .conftest import run_cli
from .hub_server import Hub

pytest.importorskip("cyclonedx")

from cyclonedx.schema import SchemaVersion  # noqa: E402
from cyclonedx.validation.json import JsonStrictValidator  # noqa: E402

EVIL = b"cos\nsystem\n(S'echo modelaudit-sbom-test'\ntR."  # protocol 0: os.system("echo …")
MIT = """MIT License

Copyright (c) 2024 Example Labs

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
documentation files (the "Software"), to deal in the Software without restriction.

The above copyright notice and this permission notice shall be included in all copies or substantial portions.
"""
CARD = """---
license: apache-2.0
datasets:
  - squad
  - imdb
pipeline_tag: text-classification
base_model: example/base-model
library_name: transformers
model-index:
- name: carded
  results:
  - task:
      type: text-classification
---
# Carded model

Fine-tuned for tests.
"""
WEIGHTS = {"critical": 10, "warning": 4, "info": 1, "debug": 0}
_VALIDATOR = JsonStrictValidator(SchemaVersion.V1_6)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _torch_model(path: Path) -> None:
    import torch

    torch.save({"weight": torch.arange(12, dtype=torch.float32).reshape(3, 4), "bias": torch.ones(3)}, path)


def _safetensors(path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w": np.ones((2, 2), dtype=np.float32)}, str(path),
              metadata={"general.license": "cc-by-4.0", "copyright": "Copyright 2023 Weights Inc",
                        "author": "Weights Inc"})


def _gguf(path: Path) -> None:
    import numpy as np
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), arch="llama")
    writer.add_name("Tiny")
    writer.add_license("mit")
    writer.add_dataset_count(1)
    writer.add_dataset_name(0, "wikitext")
    writer.add_tensor("w", np.ones(32, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _keras(path: Path, tmp: Path) -> None:
    """A .keras archive as Keras 3 lays it out: config.json, metadata.json, model.weights.h5 (h5py)."""
    import h5py

    weights = tmp / "model.weights.h5"
    with h5py.File(weights, "w") as h5:
        h5.create_group("layers/dense/vars").create_dataset("0", data=[[1.0, 2.0]])
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": [
        {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "units": 2}}]}}
    path.write_bytes(_zip({"metadata.json": json.dumps({"keras_version": "3.8.0"}).encode(),
                           "config.json": json.dumps(config).encode(), "model.weights.h5": weights.read_bytes()}))
    weights.unlink()


def _tar(path: Path) -> None:
    import numpy as np

    array = io.BytesIO()
    np.save(array, np.arange(6, dtype=np.int16))
    with tarfile.open(path, "w") as tar:
        for name, data in (("arrays/x.npy", array.getvalue()), ("notes.txt", b"plain notes\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sbom_models")
    (root / "LICENSE").write_text(MIT)
    (root / "README.md").write_text(CARD)
    (root / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"],
                                                  "model_type": "bert"}))
    _torch_model(root / "model.pt")
    (root / "evil.pkl").write_bytes(EVIL)
    _safetensors(root / "weights.safetensors")
    _gguf(root / "tiny.gguf")
    _keras(root / "tiny.keras", tmp_path_factory.mktemp("keras_build"))
    (root / "bundle.zip").write_bytes(_zip({"inner/evil.pkl": EVIL, "inner/readme.txt": b"hello\n",
                                            "nested.zip": _zip({"deep.pkl": EVIL})}))
    _tar(root / "data.tar")
    return root


@pytest.fixture(scope="module")
def scanned(models, tmp_path_factory):
    """One real CLI run: the JSON report on stdout and the SBOM in a file."""
    out = tmp_path_factory.mktemp("sbom_out") / "bom.json"
    r = run_cli("scan", str(models), "--format", "json", "--sbom", str(out))
    assert r.code == 1, r.stdout + r.stderr
    return r.json(), out.read_text(), json.loads(out.read_text())


def _components(bom: dict) -> dict[str, dict]:
    """Every component by bom-ref, nested ones included."""
    out: dict[str, dict] = {}

    def walk(items: list[dict]) -> None:
        for c in items:
            out[c["bom-ref"]] = c
            walk(c.get("components", []))

    walk(bom.get("components", []))
    return out


def _prop(component: dict, name: str) -> str | None:
    return next((p["value"] for p in component.get("properties", []) if p["name"] == name), None)


def _licences(component: dict) -> dict[str, str]:
    """licence id or name -> acknowledgement."""
    out = {}
    for entry in component.get("licenses", []):
        lic = entry["license"]
        out[lic.get("id") or lic["name"]] = lic.get("acknowledgement")
    return out


def _sha(component: dict) -> str | None:
    return next((h["content"] for h in component.get("hashes", []) if h["alg"] == "SHA-256"), None)


# --- validity ------------------------------------------------------------------------------------------

def test_sbom_is_valid_cyclonedx_1_6(scanned):
    _report, text, bom = scanned
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    assert _VALIDATOR.validate_str(text) is None
    tool = bom["metadata"]["tools"]["components"][0]
    assert tool["name"] == "modelaudit"


def test_validator_rejects_a_broken_sbom(scanned):
    """The schema check has teeth: the same document with an invalid component type fails it."""
    _report, text, _bom = scanned
    broken = json.loads(text)
    broken["components"][0]["type"] = "weights"
    assert _VALIDATOR.validate_str(json.dumps(broken)) is not None


# --- components ----------------------------------------------------------------------------------------

def test_one_component_per_file_and_member(models, scanned):
    report, _text, bom = scanned
    tops = {c["name"]: c for c in bom["components"]}
    files = {str(p) for p in models.iterdir()}
    assert set(tops) == files == {a["path"] for a in report["assets"]}
    comps = _components(bom)
    bundle = str(models / "bundle.zip")
    children = {c["name"] for c in tops[bundle]["components"]}
    assert children == {"inner/evil.pkl", "inner/readme.txt", "nested.zip"}
    nested = comps[f"{bundle}:nested.zip"]
    assert [c["name"] for c in nested["components"]] == ["deep.pkl"]
    assert comps[f"{bundle}:nested.zip:deep.pkl"]["type"] == "machine-learning-model"
    tar_members = {c["name"] for c in tops[str(models / "data.tar")]["components"]}
    assert tar_members == {"arrays/x.npy", "notes.txt"}
    torch_members = {c["name"] for c in tops[str(models / "model.pt")]["components"]}
    assert "model/data.pkl" in torch_members
    keras_members = {c["name"] for c in tops[str(models / "tiny.keras")]["components"]}
    assert keras_members == {"config.json", "metadata.json", "model.weights.h5"}
    for ref, comp in comps.items():  # a member's bom-ref is its location: archive path, ':' and member
        assert _prop(comp, "modelaudit:location") == ref


def test_component_types(models, scanned):
    _report, _text, bom = scanned
    comps = _components(bom)
    expected = {
        "model.pt": "machine-learning-model", "evil.pkl": "machine-learning-model",
        "weights.safetensors": "machine-learning-model", "tiny.gguf": "machine-learning-model",
        "tiny.keras": "machine-learning-model", "config.json": "data", "README.md": "file", "LICENSE": "file",
        "bundle.zip": "file", "data.tar": "file", "data.tar:arrays/x.npy": "data", "data.tar:notes.txt": "file",
        "model.pt:model/data.pkl": "machine-learning-model", "tiny.keras:config.json": "data",
    }
    for rel, kind in expected.items():
        assert comps[f"{models}/{rel}"]["type"] == kind, rel
    assert comps[f"{models}/config.json"]["data"] == [{"type": "configuration", "name": f"{models}/config.json"}]


def test_hashes_and_sizes_match_the_bytes(models, scanned):
    report, _text, bom = scanned
    comps = _components(bom)
    for path in models.iterdir():
        data = path.read_bytes()
        comp = comps[str(path)]
        assert _sha(comp) == hashlib.sha256(data).hexdigest(), path.name
        assert _prop(comp, "modelaudit:size") == str(len(data))
    with zipfile.ZipFile(models / "bundle.zip") as zf:
        for name in zf.namelist():
            assert _sha(comps[f"{models}/bundle.zip:{name}"]) == hashlib.sha256(zf.read(name)).hexdigest()
        with zipfile.ZipFile(io.BytesIO(zf.read("nested.zip"))) as inner:
            deep = inner.read("deep.pkl")
    assert _sha(comps[f"{models}/bundle.zip:nested.zip:deep.pkl"]) == hashlib.sha256(deep).hexdigest()
    with zipfile.ZipFile(models / "model.pt") as zf:
        data_pkl = zf.read("model/data.pkl")
    assert _sha(comps[f"{models}/model.pt:model/data.pkl"]) == hashlib.sha256(data_pkl).hexdigest()
    with tarfile.open(models / "data.tar") as tar:
        npy = tar.extractfile("arrays/x.npy").read()
    assert _sha(comps[f"{models}/data.tar:arrays/x.npy"]) == hashlib.sha256(npy).hexdigest()
    # the JSON report carries the same hashes (additive keys of its assets)
    assets = {a["path"]: a for a in report["assets"]}
    assert assets[str(models / "evil.pkl")]["sha256"] == hashlib.sha256(EVIL).hexdigest()
    assert {m["path"] for m in assets[str(models / "bundle.zip")]["members"]} == {
        "inner/evil.pkl", "inner/readme.txt", "nested.zip", "nested.zip:deep.pkl"}


# --- licences and classification -----------------------------------------------------------------------

def test_licences_stated_by_files_are_declared(models, scanned):
    _report, _text, bom = scanned
    comps = _components(bom)
    licence = comps[str(models / "LICENSE")]
    assert _licences(licence) == {"MIT": "declared"}
    assert licence["copyright"] == "Copyright (c) 2024 Example Labs"
    assert _licences(comps[str(models / "README.md")]) == {"Apache-2.0": "declared"}
    weights = comps[str(models / "weights.safetensors")]
    assert _licences(weights) == {"CC-BY-4.0": "declared"}
    assert weights["copyright"] == "Copyright 2023 Weights Inc"
    assert [a["name"] for a in weights["authors"]] == ["Weights Inc"]
    assert _licences(comps[str(models / "tiny.gguf")]) == {"MIT": "declared"}


def test_licences_beside_a_model_are_concluded(models, scanned):
    _report, _text, bom = scanned
    comps = _components(bom)
    model = comps[str(models / "model.pt")]
    assert _licences(model) == {"MIT": "concluded", "Apache-2.0": "concluded"}
    assert _prop(model, "modelaudit:license_source") == f"{models}/LICENSE, {models}/README.md"
    assert "Example Labs" in model["copyright"]
    member = comps[f"{models}/bundle.zip:inner/evil.pkl"]  # no licence inside the archive: the archive's
    assert _licences(member) == {"MIT": "concluded", "Apache-2.0": "concluded"}


def test_model_card_classifies_models(models, scanned):
    _report, _text, bom = scanned
    comps = _components(bom)
    card = comps[str(models / "model.pt")]["modelCard"]
    params = card["modelParameters"]
    assert params["task"] == "text-classification"
    assert params["modelArchitecture"] == "BertForSequenceClassification"
    assert params["architectureFamily"] == "bert"
    assert params["datasets"] == [{"type": "dataset", "name": "squad"}, {"type": "dataset", "name": "imdb"}]
    assert {"name": "modelaudit:base_model", "value": "example/base-model"} in card["properties"]
    gguf_sets = [d["name"] for d in comps[str(models / "tiny.gguf")]["modelCard"]["modelParameters"]["datasets"]]
    assert gguf_sets[0] == "wikitext" and "squad" in gguf_sets  # its own metadata first, then the card's
    for name in ("README.md", "LICENSE", "config.json", "bundle.zip"):
        assert "modelCard" not in comps[str(models / name)]  # model cards only on models
    assert "modelCard" not in comps[f"{models}/bundle.zip:inner/evil.pkl"]  # not described by the card


# --- risk and findings ---------------------------------------------------------------------------------

def _expected_risk(report: dict, location: str) -> int:
    total = 0
    for issue in report["issues"]:
        where = issue["location"].split(" (pos ")[0]
        if where == location or where.startswith(location + ":"):
            total += WEIGHTS[issue["severity"]]
    return total


def test_risk_scores_count_every_finding_in_the_component_and_its_members(models, scanned):
    report, _text, bom = scanned
    comps = _components(bom)
    for ref, comp in comps.items():
        assert int(_prop(comp, "modelaudit:risk_score")) == _expected_risk(report, ref), ref
    bundle = f"{models}/bundle.zip"
    evil = int(_prop(comps[f"{bundle}:inner/evil.pkl"], "modelaudit:risk_score"))
    deep = int(_prop(comps[f"{bundle}:nested.zip:deep.pkl"], "modelaudit:risk_score"))
    assert evil >= 10 and deep >= 10
    assert int(_prop(comps[bundle], "modelaudit:risk_score")) >= evil + deep
    assert int(_prop(comps[str(models / "evil.pkl")], "modelaudit:risk_score")) >= 10
    assert _prop(comps[str(models / "model.pt")], "modelaudit:risk_score") == "0"


def test_findings_are_vulnerabilities_affecting_their_component(models, scanned):
    report, _text, bom = scanned
    vulns = bom["vulnerabilities"]
    assert len(vulns) == len(report["issues"])
    refs = set(_components(bom))
    for vuln in vulns:
        assert len(vuln["affects"]) == 1 and vuln["affects"][0]["ref"] in refs
        assert vuln["source"] == {"name": "modelaudit"}
    by_ref: dict[str, list[dict]] = {}
    for vuln in vulns:
        by_ref.setdefault(vuln["affects"][0]["ref"], []).append(vuln)
    bundle = f"{models}/bundle.zip"
    for ref in (f"{bundle}:inner/evil.pkl", f"{bundle}:nested.zip:deep.pkl", str(models / "evil.pkl")):
        critical = [v for v in by_ref[ref] if v["id"] == "MA-P001"]
        assert critical, ref
        vuln = critical[0]
        assert vuln["ratings"][0]["severity"] == "critical"
        assert 502 in vuln["cwes"]
        assert "system" in vuln["description"] and vuln["detail"]
    issues = {(i["rule_code"], i["message"]) for i in report["issues"]}
    assert {(v["id"], v["description"]) for v in vulns} == issues


# --- outputs together, the JSON schema, the dependency -------------------------------------------------

def test_sbom_with_sarif_output(models, scanned, tmp_path):
    _report, _text, json_bom = scanned
    out = tmp_path / "bom.json"
    r = run_cli("scan", str(models), "--format", "sarif", "--sbom", str(out))
    assert r.code == 1, r.stderr
    sarif = r.json()
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    text = out.read_text()
    assert _VALIDATOR.validate_str(text) is None
    assert set(_components(json.loads(text))) == set(_components(json_bom))


def test_json_report_with_inventory_follows_its_schema(scanned):
    import jsonschema
    from importlib import resources

    schema = json.loads(resources.files("modelaudit").joinpath("schemas/report.schema.json").read_text())
    report, _text, _bom = scanned
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(report)) == []
    assert any(a.get("provenance", {}).get("source") == "model-card" for a in report["assets"])


def test_plain_scans_do_not_hash(models):
    from modelaudit.core import scan_model_directory_or_file

    plain = scan_model_directory_or_file(str(models))
    assert all("sha256" not in a and "members" not in a for a in plain["assets"])
    listed = scan_model_directory_or_file(str(models / "bundle.zip"), inventory=True)
    assert listed["assets"][0]["sha256"] == hashlib.sha256((models / "bundle.zip").read_bytes()).hexdigest()


def test_sbom_without_cyclonedx_fails_with_the_install_hint(models, tmp_path):
    out = tmp_path / "bom.json"
    code = "import sys; sys.modules['cyclonedx'] = None; from modelaudit.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, "scan", str(models / "evil.pkl"), "--sbom", str(out)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'modelaudit[sbom]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == "" and not out.exists()  # it fails before scanning


def test_unwritable_sbom_path_is_an_error(models, tmp_path):
    r = run_cli("scan", str(models / "evil.pkl"), "--sbom", str(tmp_path / "missing-dir" / "bom.json"))
    assert r.code == 2
    assert "cannot write the SBOM" in r.stderr and "Traceback" not in r.stderr


# --- remote targets: components named by their URIs ----------------------------------------------------

@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("sbom_hub")
    repo = root / "acme" / "carded"
    repo.mkdir(parents=True)
    _safetensors(repo / "model.safetensors")
    files = {"pytorch_model.bin": EVIL, "archive.zip": _zip({"evil.pkl": EVIL}),
             "model.safetensors": (repo / "model.safetensors").read_bytes()}
    for name, data in files.items():
        (repo / name).write_bytes(data)
    (repo / "README.md").write_text(CARD)  # documentation: remote folder scans do not fetch it
    (root / "repos.json").write_text(json.dumps({"acme/carded": {}}))
    server = Hub(root, tokens=set()).start()
    yield server, files
    server.stop()


def test_remote_files_are_named_by_uri(hub, tmp_path):
    server, files = hub
    env = {"HF_ENDPOINT": server.endpoint, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_TOKEN": "",
           "HUGGING_FACE_HUB_TOKEN": "", "HF_HUB_OFFLINE": "", "XDG_CACHE_HOME": str(tmp_path / "xdg"),
           "HF_HOME": str(tmp_path / "hf"), "MODELAUDIT_CACHE_DIR": ""}
    out = tmp_path / "bom.json"
    r = run_cli("scan", "--no-cache", "hf://acme/carded", "--format", "json", "--sbom", str(out), cwd=tmp_path,
                env=env, timeout=120)
    assert r.code == 1, r.stdout + r.stderr
    text = out.read_text()
    assert _VALIDATOR.validate_str(text) is None
    assert str(tmp_path) not in text and "/tmp/" not in text
    bom = json.loads(text)
    base = "hf://acme/carded"
    assert {c["name"] for c in bom["components"]} == {f"{base}/{name}" for name in files}
    comps = _components(bom)
    for name, data in files.items():
        assert _sha(comps[f"{base}/{name}"]) == hashlib.sha256(data).hexdigest()
    assert _sha(comps[f"{base}/archive.zip:evil.pkl"]) == hashlib.sha256(EVIL).hexdigest()
    assert _licences(comps[f"{base}/model.safetensors"]) == {"CC-BY-4.0": "declared"}
    affected = {v["affects"][0]["ref"] for v in bom["vulnerabilities"]}
    assert {f"{base}/pytorch_model.bin", f"{base}/archive.zip:evil.pkl"} <= affected


# --- what files say about themselves (modelaudit.provenance) -------------------------------------------

def test_model_card_front_matter_subset():
    from modelaudit.provenance import front_matter, model_card_facts

    card = front_matter(CARD)
    assert card["license"] == "apache-2.0" and card["datasets"] == ["squad", "imdb"]
    assert card["model-index"] == []  # nested mappings are skipped, not mistaken for values
    inline = model_card_facts("---\nlicense: 'other'\nlicense_name: acme-research  # custom\n"
                              "license_link: https://example.com/licence\ndatasets: [\"a/b\", c]\n---\n")
    assert inline == {"source": "model-card", "license_name": "acme-research",
                      "license_url": "https://example.com/licence", "datasets": ["a/b", "c"]}
    assert model_card_facts("# no front matter\nlicense: mit\n") is None


@pytest.mark.parametrize(("text", "licence"), [
    (MIT, "MIT"),
    ("                                 Apache License\n                           Version 2.0, January 2004\n",
     "Apache-2.0"),
    ("GNU LESSER GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007\n... GNU General Public License ...", "LGPL-3.0-only"),
    ("GNU GENERAL PUBLIC LICENSE\n Version 3, 29 June 2007\n", "GPL-3.0-only"),
    ("Redistribution and use in source and binary forms, with or without modification, are permitted ...\n"
     "3. Neither the name of the copyright holder nor ...", "BSD-3-Clause"),
    ("LLAMA 2 COMMUNITY LICENSE AGREEMENT\nLlama 2 Version Release Date: July 18, 2023", 
     "Llama 2 Community License Agreement"),
    ("All rights reserved. Do not copy.", None),
])
def test_licence_texts_are_identified(text, licence):
    from modelaudit.provenance import identify_licence

    assert identify_licence(text) == licence


def test_copyright_statements_skip_templates_and_licence_stewards():
    from modelaudit.provenance import copyright_statements

    text = ("Copyright (C) 2007 Free Software Foundation, Inc. <https://fsf.org/>\n"
            "   Copyright [yyyy] [name of copyright owner]\n"
            "the copyright notice above\n"
            "Copyright 2021-2024 The Example Authors. All rights reserved.\n"
            "© 2022 Someone Else\n")
    assert copyright_statements(text) == ["Copyright 2021-2024 The Example Authors", "© 2022 Someone Else"]


def test_metadata_keys_become_facts():
    from modelaudit.provenance import from_metadata

    facts = from_metadata({"general.license": ["apache-2.0"], "general.dataset.0.name": ["wikitext"],
                           "general.dataset.1.name": ["c4"], "general.base_model.0.name": ["Base"],
                           "modelspec.author": "Studio", "format": "pt", "datasets": '["x", "y"]'})
    assert facts == {"source": "metadata", "licenses": ["apache-2.0"], "datasets": ["wikitext", "c4", "x", "y"],
                     "base_models": ["Base"], "authors": ["Studio"]}
    assert from_metadata({"format": "pt"}) is None and from_metadata("not a mapping") is None


def test_hostile_licence_and_card_files_do_not_break_the_sbom(tmp_path):
    (tmp_path / "README.md").write_bytes(b"---\n" + b"license: \xff\xfe\x00\n" + b"- x\n" * 100_000 + b"---\n")
    (tmp_path / "LICENSE").write_bytes(b"Copyright 2024 " + b"A" * 5_000_000)
    (tmp_path / "config.json").write_text("[" * 100_000)
    (tmp_path / "model.pkl").write_bytes(EVIL)
    out = tmp_path / "bom.json"
    r = run_cli("scan", str(tmp_path / "README.md"), str(tmp_path / "LICENSE"), str(tmp_path / "config.json"),
                str(tmp_path / "model.pkl"), "--sbom", str(out))
    assert r.code == 1 and "Traceback" not in r.stderr, r.stderr
    assert _VALIDATOR.validate_str(out.read_text()) is None
    licence = _components(json.loads(out.read_text()))[str(tmp_path / "LICENSE")]
    assert len(licence["copyright"]) <= 500


def test_same_file_twice_gets_distinct_refs(tmp_path):
    (tmp_path / "model.pkl").write_bytes(EVIL)
    out = tmp_path / "bom.json"
    r = run_cli("scan", str(tmp_path / "model.pkl"), str(tmp_path / "model.pkl"), "--sbom", str(out))
    assert r.code == 1, r.stderr
    bom = json.loads(out.read_text())
    assert _VALIDATOR.validate_str(out.read_text()) is None
    refs = [c["bom-ref"] for c in bom["components"]]
    assert len(refs) == 2 and len(set(refs)) == 2
    assert {v["affects"][0]["ref"] for v in bom["vulnerabilities"]} == set(refs)


def test_findings_accepted_by_the_policy_are_recorded_not_scored(tmp_path):
    (tmp_path / "bundle.zip").write_bytes(_zip({"evil.pkl": EVIL}))
    policy = tmp_path / "policy.toml"
    policy.write_text('[[suppress]]\ncode = "MA-P001"\nreason = "reviewed in SEC-1"\n')
    out = tmp_path / "bom.json"
    r = run_cli("scan", str(tmp_path / "bundle.zip"), "--config", str(policy), "--sbom", str(out), cwd=tmp_path)
    assert _VALIDATOR.validate_str(out.read_text()) is None, r.stderr
    bom = json.loads(out.read_text())
    member = f"{tmp_path}/bundle.zip:evil.pkl"
    accepted = [v for v in bom["vulnerabilities"] if v["id"] == "MA-P001"]
    assert accepted and all(v["affects"] == [{"ref": member}] for v in accepted)
    assert all(v["analysis"]["state"] == "not_affected" and "reviewed in SEC-1" in v["analysis"]["detail"]
               for v in accepted)
    assert r.code == 0  # nothing else was found
    scores = {c["bom-ref"]: _prop(c, "modelaudit:risk_score") for c in _components(bom).values()}
    assert scores == {f"{tmp_path}/bundle.zip": "0", member: "0"}
