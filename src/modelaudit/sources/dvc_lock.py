"""Outputs of DVC pipelines: `dvc.lock` records, per stage, the md5 of every output `dvc repro` made
(models a training stage writes, most often), like a `.dvc` pointer does for `dvc add`. A directory
scan resolves them as it resolves pointers (dvc_local.py), so a model that lives only in the DVC cache
or a remote is scanned or reported, never silently missed.

Output paths are relative to the stage's working directory: the folder of dvc.lock, or the `wdir` its
dvc.yaml sets for the stage.
"""

from __future__ import annotations

import os
import posixpath

from .dvc import NotPointer, Out, _out, load_yaml
from .http import SourceError

LOCK_NAME = "dvc.lock"
_MAX_STAGES = 10_000
_MAX_OUTS = 100_000


def is_lock(path: str) -> bool:
    return os.path.basename(path) == LOCK_NAME


def read_lock(path: str) -> list[Out]:
    """The cached outputs of every stage, paths relative to the folder of dvc.lock."""
    doc = load_yaml(path, "DVC lock file")
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, dict):
        raise NotPointer(f"{path} is not a DVC lock file: it has no `stages` table")
    wdirs = _wdirs(os.path.join(os.path.dirname(path), "dvc.yaml"))
    outs: dict[Out, None] = {}
    read: set[tuple[int, str]] = set()  # YAML aliases repeat one list or entry cheaply: each is read once
    for name, stage in list(stages.items())[:_MAX_STAGES]:
        items = stage.get("outs") if isinstance(stage, dict) else None
        if not isinstance(items, list):
            continue
        wdir = wdirs.get(str(name).split("@")[0], ".")  # foreach/matrix stages are `name@key`
        for item in items:
            if (id(item), wdir) in read:
                continue
            read.add((id(item), wdir))
            if len(read) > _MAX_OUTS:
                raise SourceError(f"{path} records more than {_MAX_OUTS} outputs; not followed")
            out = _out(path, item)
            outs[Out(posixpath.normpath(posixpath.join(wdir, out.path)), out.md5, out.is_dir, out.size, out.legacy,
                     out.remote, out.nfiles)] = None
    if not outs:
        raise NotPointer(f"{path} records no cached outputs")
    return list(outs)


def _wdirs(dvc_yaml: str) -> dict[str, str]:
    """Stage name -> `wdir` as dvc.yaml writes it (plain paths only; templated ones stay the default)."""
    try:
        doc = load_yaml(dvc_yaml, "DVC pipeline file")
    except (OSError, NotPointer, SourceError):
        return {}
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, dict):
        return {}
    return {str(name): stage["wdir"].replace("\\", "/") for name, stage in stages.items()
            if isinstance(stage, dict) and isinstance(stage.get("wdir"), str) and "${" not in stage["wdir"]}
