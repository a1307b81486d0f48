"""Build a small demo set of model files with the real libraries.

    python samples/build_samples.py OUTDIR

OUTDIR is recreated on every run and gets two folders:

  honest/     files exactly as torch, scikit-learn/joblib and numpy write them (scan clean)
  malicious/  files whose pickles carry a payload (flagged)

The payloads are harmless if ever run: they only echo a marker. This script never runs
them: pickling an object whose __reduce__ names os.system only *records* that call in the
file; the call would happen when someone unpickles the file, which nothing here does.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
import warnings
from pathlib import Path

MARKER = "modelaudit-demo"


class EchoPayload:
    """Unpickling this runs `echo modelaudit-demo`: the classic __reduce__ trick, defanged."""

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"echo {MARKER}",))


def _torch_model():  # noqa: ANN202
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def _sklearn_model():  # noqa: ANN202
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    x = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.7], [0.9, 0.1], [0.2, 0.8], [0.8, 0.3]]
    y = [0, 1, 0, 1, 0, 1]
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(x, y)


def build_honest(out: Path) -> list[Path]:
    import joblib
    import numpy as np
    import torch

    out.mkdir(parents=True)
    files = {
        "model.pt": lambda p: torch.save(_torch_model().state_dict(), p),
        "classifier.joblib": lambda p: joblib.dump(_sklearn_model(), p),
        "embeddings.npy": lambda p: np.save(p, np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)),
        "config.json": lambda p: p.write_text(json.dumps({"architectures": ["TinyNet"], "hidden_size": 8}, indent=2)),
    }
    for name, write in files.items():
        write(out / name)
    return [out / name for name in files]


def build_malicious(out: Path) -> list[Path]:
    import joblib
    import torch

    out.mkdir(parents=True)
    # 1. a plain pickle whose only content is the payload
    (out / "reduce_payload.pkl").write_bytes(pickle.dumps(EchoPayload(), protocol=4))
    # 2. a real torch zip checkpoint: weights plus a payload riding along in data.pkl
    torch.save({"state_dict": _torch_model().state_dict(), "extra": EchoPayload()}, out / "checkpoint.pt")
    # 3. a pickle dressed up as safetensors (loaders that sniff content still unpickle it)
    (out / "model.safetensors").write_bytes(pickle.dumps({"weights": [0.1, 0.2], "hook": EchoPayload()}))
    # 4. a zlib-compressed joblib file: an honest pipeline with a payload next to it
    joblib.dump({"model": _sklearn_model(), "hook": EchoPayload()}, out / "pipeline_compressed.joblib", compress=3)
    return sorted(out.iterdir())


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    root = Path(argv[1])
    if root.exists():
        shutil.rmtree(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        honest = build_honest(root / "honest")
        malicious = build_malicious(root / "malicious")
    for label, paths in (("honest", honest), ("malicious", malicious)):
        for path in paths:
            print(f"{label:9} {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
