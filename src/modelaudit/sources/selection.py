"""Which files of a remote folder are worth downloading: weights, configs, tokenizers, code and archives.

Every source that lists many files (Hugging Face repos, S3/GCS prefixes, Artifactory folders) asks
`is_scannable`; a file the user names directly is always fetched, whatever its name.
"""

from __future__ import annotations

import posixpath

#: file name endings fetched from a folder (weights, configs, tokenizers, code, archives)
SCANNABLE_SUFFIXES = (
    # weights and serialized models
    ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".dill", ".sav", ".npy", ".npz",
    ".safetensors", ".h5", ".hdf5", ".keras", ".pb", ".onnx", ".tflite", ".gguf", ".ggml", ".ggmf", ".ggjt",
    ".msgpack", ".flax", ".ot", ".pdparams", ".pdmodel", ".mar", ".nemo", ".mlmodel", ".pmml", ".xgb", ".ubj",
    ".model", ".params", ".engine", ".plan", ".llamafile",
    # configs and tokenizers
    ".json", ".yaml", ".yml", ".jinja", ".tiktoken", ".txt", ".xml", ".cfg", ".toml",
    # code
    ".py", ".sh",
    # archives
    ".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".zst", ".lz4",
)
#: files fetched whatever their ending
SCANNABLE_NAMES = frozenset({"MLmodel", "saved_model.pb", "keras_metadata.pb"})
#: names never fetched although their ending is allowed (documentation)
_SKIPPED_NAMES = frozenset({"readme.txt", "license.txt", "notice.txt"})

SKIPPED_REASON = "not a scannable file; not fetched"


def is_scannable(path: str) -> bool:
    name = posixpath.basename(path)
    if name.lower() in _SKIPPED_NAMES or name.startswith("."):
        return False
    return name in SCANNABLE_NAMES or name.lower().endswith(SCANNABLE_SUFFIXES)


def split_scannable(items: list, path_of) -> tuple[list, list]:  # noqa: ANN001
    """(scannable, skipped) in the listing's order; `path_of(item)` gives the item's path or key."""
    keep, skip = [], []
    for item in items:
        (keep if is_scannable(path_of(item)) else skip).append(item)
    return keep, skip


def log_skipped(uris: list[str]) -> None:
    """Verbose output names what a folder scan left out (the dry run lists it as well)."""
    import logging

    log = logging.getLogger("modelaudit.sources")
    for uri in uris:
        log.info("not fetched (%s): %s", "not a scannable file", uri)
