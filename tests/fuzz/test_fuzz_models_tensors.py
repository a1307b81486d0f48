"""Mutants of Keras (H5 and .keras), safetensors, GGUF/GGML and NumPy files are handled: no internal
error, no timeout, never an unreadable file reported clean. Seeds are written by the real libraries
(h5py, safetensors, gguf, numpy) or byte by byte; mutants are seeded, so a failure names one that can
be rebuilt. Mutations also land inside a .keras member or a chat template with the container intact."""

from __future__ import annotations

import base64
import io
import json
import marshal
import random
import struct
import zipfile
from pathlib import Path

import pytest

from tests.fuzz.harness import mutants, mutate, problems, scan_mutant

h5py = pytest.importorskip("h5py")
np = pytest.importorskip("numpy")
pytest.importorskip("gguf")
pytest.importorskip("safetensors")

# mutants per seed file, per family (about 15 seconds in all)
PER_SEED = {"keras": 350, "safetensors": 500, "gguf": 300, "numpy": 200}
IN_MEMBERS = 300  # mutants whose change lands inside a .keras member or a chat template


def _keras_seeds(root: Path) -> dict[str, bytes]:
    from tests.scanners.test_keras import _K2_LAYERS, _k2_lambda, _k3, _keras2_h5

    out = {}
    _keras2_h5(root / "k2.h5", layers=_K2_LAYERS + [_k2_lambda("lam", lambda x: x * 2)])
    out["k2.h5"] = (root / "k2.h5").read_bytes()
    with h5py.File(root / "k3.h5", "w") as f:  # variable-length strings (global heap), links, external data
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": [
            _k3("Dense", "d", units=2), _k3("Custom", "c", module="my_pkg.layers")]}})
        f.attrs["keras_version"] = "3.15.1"
        f.create_dataset("vars/w", data=np.arange(12, dtype="f4").reshape(3, 4))
        f["vars/soft"] = h5py.SoftLink("/vars/w")
        f["vars/outside"] = h5py.ExternalLink("other.h5", "/x")
        f.create_dataset("vars/ext", shape=(4,), dtype="u1", external=[("side.bin", 0, 4)])
    out["k3.h5"] = (root / "k3.h5").read_bytes()
    with h5py.File(root / "w.h5", "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.ones((4, 2), "f4"))
    config = {"module": "keras", "class_name": "Sequential", "registered_name": None, "config": {
        "name": "seq", "layers": [_k3("Dense", "d", units=2),
                                  _k3("Lambda", "l", function={"class_name": "__lambda__", "config": {
                                      "code": base64.b64encode(marshal.dumps((lambda x: x * 2).__code__)).decode()}})]}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1", "date_saved": "2025-01-01"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", (root / "w.h5").read_bytes())
    out["model.keras"] = buf.getvalue()
    return out


def _safetensors_seeds(root: Path) -> dict[str, bytes]:
    from safetensors.numpy import save_file

    save_file({"w": np.ones((3, 4), "f4"), "b": np.arange(5, dtype="i8"), "h": np.zeros(2, "f2")},
              str(root / "a.safetensors"), metadata={"format": "np", "note": "tiny"})
    raw = json.dumps({"__metadata__": {"x": "eval(1)"}, "t": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]},
                      "u": {"dtype": "BF16", "shape": [1], "data_offsets": [2, 4]}}).encode()
    return {"a.safetensors": (root / "a.safetensors").read_bytes(),
            "b.safetensors": struct.pack("<Q", len(raw)) + raw + b"\0" * 4}


def _gguf_seeds(root: Path) -> dict[str, bytes]:
    from tests.scanners._gguf_templates import HONEST_TEMPLATES
    from tests.scanners.test_gguf import ggjt, real_gguf

    real_gguf(root / "m.gguf", HONEST_TEMPLATES["chatml"])
    return {"m.gguf": (root / "m.gguf").read_bytes(), "old.ggml": ggjt()}


def _numpy_seeds(root: Path) -> dict[str, bytes]:
    arrays = {"f.npy": np.arange(12, dtype="f4").reshape(3, 4),
              "s.npy": np.zeros(2, dtype=[("a", "i4"), ("b", "f8", (2,)), ("c", "S3")]),
              "o.npy": np.array([{"k": [1, 2]}, None], dtype=object), "u.npy": np.array(["γάμμα"])}
    out = {}
    for name, array in arrays.items():
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=True)
        out[name] = buf.getvalue()
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.ones(8), b=np.arange(3))
    out["z.npz"] = buf.getvalue()
    return out


SEEDS = {"keras": _keras_seeds, "safetensors": _safetensors_seeds, "gguf": _gguf_seeds, "numpy": _numpy_seeds}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    return {family: build(tmp_path_factory.mktemp(family)) for family, build in SEEDS.items()}


def _in_members(seeds: dict[str, dict[str, bytes]]) -> list[tuple[str, str, bytes]]:
    """Mutants of config.json, metadata.json and the weights inside an intact .keras, and of a chat
    template inside an intact GGUF."""
    from tests.scanners._gguf_templates import HONEST_TEMPLATES
    from tests.scanners.test_gguf import gguf, kv_str

    rng = random.Random(7)
    with zipfile.ZipFile(io.BytesIO(seeds["keras"]["model.keras"])) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    out = []
    for index in range(IN_MEMBERS):
        target = sorted(members)[index % len(members)]
        what, data = mutate(rng, members[target], list(members.values()))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for name, content in members.items():
                zf.writestr(name, data if name == target else content)
        out.append((f"model.keras ({target} {what})", "model.keras", buf.getvalue()))
    templates = [t.encode() for t in HONEST_TEMPLATES.values()]
    for index in range(IN_MEMBERS):
        what, data = mutate(rng, templates[index % len(templates)], templates)
        raw = gguf([kv_str("tokenizer.chat_template", data.decode("utf-8", "replace"))])
        out.append((f"template {index % len(templates)} ({what})", "t.gguf", raw))
    return out


@pytest.mark.parametrize("family", sorted(SEEDS))
def test_mutants_of_models_and_tensors_are_handled(tmp_path, seeds, family):
    files = sorted(seeds[family].items())
    donors = [data[:4096] for _name, data in files]
    failures = []
    for index, (name, data) in enumerate(files):
        seed = sum(map(ord, family)) * 100 + index
        for what, mutant in mutants(seed, data, PER_SEED[family], donors):
            found = problems(scan_mutant(tmp_path, name, mutant))
            if found:
                failures.append(f"{name} (seed {seed}, {what}): {found[0]}")
    assert not failures, f"{len(failures)} mutants mishandled:\n" + "\n".join(failures[:20])


def test_mutants_inside_archive_members_and_templates_are_handled(tmp_path, seeds):
    failures = []
    for label, name, data in _in_members(seeds):
        found = problems(scan_mutant(tmp_path, name, data))
        if found:
            failures.append(f"{label}: {found[0]}")
    assert not failures, f"{len(failures)} mutants mishandled:\n" + "\n".join(failures[:20])
