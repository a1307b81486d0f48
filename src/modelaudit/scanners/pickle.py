"""Raw pickle files, protocols 0-5, any number of pickles stacked in one file."""

from __future__ import annotations

from ._pickle_scan import record_check, walk_pickle
from .base import BaseScanner


class PickleScanner(BaseScanner):
    name = "pickle"
    description = "Pickle protocols 0-5 (also dill, cloudpickle and uncompressed joblib), walked symbolically"
    supported_extensions = [".pkl", ".pickle", ".dill", ".dat", ".sav", ".joblib", ".p"]
    formats = ("pickle",)

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001 - documented in BaseScanner
        before = len(result.issues)
        with blob.buffer() as buf:
            walk_pickle(buf, blob, result, ctx)
        record_check(result, "pickle opcode analysis", before, blob.location)
