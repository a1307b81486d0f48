"""Mutants of archives (tar, compressed streams, 7z, TorchServe, TorchScript), gradient-boosting models
(XGBoost JSON/UBJSON/legacy binary, LightGBM, CatBoost), PMML, Python source and configuration files are
handled: no internal error, no timeout, never an unreadable file reported clean. Seeds are written by the
real libraries or built byte by byte; tar headers and 7z header CRCs are repaired after mutating, so that
mutants reach past the checksums into the parsers. Seeded, so a failure names a mutant that can be rebuilt."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import random
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.builders import benign, payload, zip_bytes
from tests.fuzz.harness import mutants, problems, scan_mutant
from tests.test_archives import seven_zip

# torch.jit.save writes the TorchScript seed; it is deprecated but still what many checkpoints are
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

PER_FILE = 60
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xgboost"


def _tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tf.addfile(link)
    return buf.getvalue()


def _boosters() -> list[tuple[str, bytes]]:
    import lightgbm as lgb
    import numpy as np
    import xgboost as xgb

    from tests.scanners.test_boosters import _catboost, _legacy

    rng = np.random.default_rng(0)
    x = rng.random((40, 3))
    y = (x[:, 0] > 0.5).astype(int)
    booster = xgb.train({"max_depth": 2, "objective": "binary:logistic"}, xgb.DMatrix(x, y), 2)
    booster.set_attr(note="fuzz seed")
    out = [(f"model.{fmt}", bytes(booster.save_raw(raw_format=fmt))) for fmt in ("json", "ubj")]
    text = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 3}, lgb.Dataset(x, y), 2).model_to_string()
    out += [("model.txt", text.encode()), ("model.cbm", _catboost(info={"params": '{"depth": 2}'})),
            ("byte.model", _legacy()), ("xgb090_dart.model", (FIXTURES / "xgb090_dart.model").read_bytes()),
            ("xgb21_binary_pruned.model", (FIXTURES / "xgb21_binary_pruned.model").read_bytes())]
    return out


def _torchscript() -> bytes:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())), buf)
    return buf.getvalue()


def _code_and_configs() -> list[tuple[str, bytes]]:
    from tests.scanners._hf_repo import CONFIG, MODELING_PY, TOKENIZER_CONFIG
    from tests.scanners.test_pmml import REGRESSION
    from tests.scanners.test_python_code import HOSTILE

    hostile = "".join(source for source, _, _ in HOSTILE.values())
    return [("modeling_x.py", MODELING_PY.encode()), ("hostile.py", hostile.encode()),
            ("model.pmml", REGRESSION.encode()),
            ("doc.xml", b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "aa">]>\n<r a="file:///etc">&a;</r>\n'),
            ("config.json", json.dumps(dict(CONFIG, auto_map={"AutoModel": "modeling_x.M"})).encode()),
            ("tokenizer_config.json", json.dumps(TOKENIZER_CONFIG).encode()),
            ("params.json", b'{"lr": 0.1, "layers": [1, 2, {"a": null}]}'),
            ("train.yaml", b"model:\n  name: bert\n  layers: 12\nlr: 0.001\n")]


@pytest.fixture(scope="module")
def seeds() -> list[tuple[str, bytes]]:
    members = {"m/data.pkl": benign(2), "m/evil.pkl": payload(2), "m/run.py": b"import os\nos.system('echo x')\n"}
    tgz = _tar(members, "w:gz")
    manifest = json.dumps({"model": {"handler": "handler.py", "requirementsFile": "req.txt"}}).encode()
    archives = [("model.tar", _tar(members)), ("model.tar.gz", tgz), ("model.tar.xz", _tar(members, "w:xz")),
                ("evil.pkl.bz2", bz2.compress(payload(2))), ("evil.pkl.gz", gzip.compress(payload(2))),
                ("model.joblib", zlib.compress(payload(2))), ("plain.7z", seven_zip(members, encoded=False)),
                ("nested.7z", seven_zip({"inner.tar.gz": tgz, "w.pkl": benign(2)}, encoded=True)),
                ("model.mar", zip_bytes({"MAR-INF/MANIFEST.json": manifest, "handler.py": b"import torch\n",
                                         "model.pkl": payload(2)}, zipfile.ZIP_DEFLATED)),
                ("scripted.pt", _torchscript())]
    for module, name, make in (("lz4.frame", "evil.pkl.lz4", "compress"), ("zstandard", "evil.pkl.zst", None)):
        lib = pytest.importorskip(module)
        archives.append((name, lib.compress(payload(2)) if make else lib.ZstdCompressor().compress(payload(2))))
    return archives + _boosters() + _code_and_configs()


def _repair(name: str, data: bytes) -> bytes:
    """Fix the checksums that would stop a mutant at the door: tar header sums, 7z header CRCs."""
    buf = bytearray(data)
    if name.endswith(".tar"):
        for at in range(0, len(buf) - 511, 512):
            if buf[at + 257:at + 262] == b"ustar":
                buf[at + 148:at + 156] = b" " * 8
                buf[at + 148:at + 156] = b"%06o\0 " % sum(buf[at:at + 512])
    elif name.endswith(".7z") and len(buf) >= 32:
        offset, size = struct.unpack_from("<QQ", buf, 12)
        if 32 + offset + size <= len(buf):
            struct.pack_into("<I", buf, 28, zlib.crc32(bytes(buf[32 + offset:32 + offset + size])))
        struct.pack_into("<I", buf, 8, zlib.crc32(bytes(buf[12:32])))
    return bytes(buf)


def test_mutants_of_archives_boosters_code_and_configs_are_handled(tmp_path, seeds):
    donors = [data[:4096] for _name, data in random.Random(1).sample(seeds, min(12, len(seeds)))]
    failures = []
    for index, (name, data) in enumerate(seeds):
        for what, mutant in mutants(1000 + index, data, PER_FILE, donors):
            found = problems(scan_mutant(tmp_path, name, _repair(name, mutant)))
            if found:
                failures.append(f"{name} (seed {1000 + index}, {what}): {found[0]}")
    assert not failures, f"{len(failures)} mutants mishandled:\n" + "\n".join(failures[:20])


def test_ordinary_configuration_files_scan_clean(tmp_path):
    """Configs a repository holds next to its models: JSON, JSON with comments, YAML, text."""
    files = {
        "package.json": b'{"name": "demo", "version": "1.0.0", "scripts": {"test": "pytest -q"}}',
        ".vscode/settings.json": b'{\n  // editor\n  "editor.tabSize": 4, /* x */\n'
                                 b'  "files.exclude": {"**/.git": true,},\n}',
        "config.json": json.dumps({"model_type": "bert", "hidden_size": 768, "architectures": ["BertModel"],
                                   "_commit_hash": "0123456789abcdef0123456789abcdef01234567"}).encode(),
        "params.yaml": b"train:\n  lr: 0.001\n  epochs: 3\n  url: https://example.org/data\n",
        "notes.txt": b"Trained on public data.\n",
        "generation_config.json": b'{"max_length": 128, "do_sample": false}',
    }
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    from modelaudit.core import scan_model_directory_or_file

    result = scan_model_directory_or_file(str(tmp_path))
    assert [i for i in result["issues"] if i["severity"] != "debug"] == [], result["issues"]
    assert result["summary"]["exit_code"] == 0 and not result["has_errors"]
