"""Reading HDF5 structure with h5py without following anything out of the file.

The walk lists links by name and resolves only hard links: soft, external and user-defined
links are recorded, never traversed, so no other file is opened. Datasets are asked where
their data lives (contiguous external storage, virtual dataset sources) without reading
any data. Root attributes are read only after their stored size is checked.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependency

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

MAX_OBJECTS = 200_000
MAX_ATTR_BYTES = 256 * 1024 * 1024
# what h5py raises on damaged or hostile structure
H5_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, AttributeError)


class HDF5Error(Exception):
    """The file cannot be read as HDF5 (or one object of it cannot)."""


@dataclass(frozen=True)
class Link:
    path: str
    kind: str  # "soft", "external" or "user-defined"
    target: str
    file: str | None = None


@dataclass(frozen=True)
class OutsideData:
    dataset: str
    kind: str  # "external storage" or "virtual dataset"
    files: tuple[str, ...]


@dataclass
class Structure:
    links: list[Link] = field(default_factory=list)
    outside: list[OutsideData] = field(default_factory=list)
    broken: list[tuple[str, str]] = field(default_factory=list)  # (path, error)
    objects: int = 0
    truncated: bool = False


def require_h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:
        raise MissingDependency("h5py", "h5", "Keras H5 files") from exc
    return h5py


@contextmanager
def open_hdf5(blob: Blob) -> Iterator[Any]:
    """An h5py File over the blob (by path, or over its bytes for archive members)."""
    h5py = require_h5py()
    try:
        if blob.path is not None and blob.data is None:
            handle = h5py.File(blob.path, "r", locking=False)
        else:
            handle = h5py.File(io.BytesIO(bytes(blob.data or b"")), "r")
    except H5_ERRORS as exc:
        raise HDF5Error(str(exc) or type(exc).__name__) from exc
    with handle:
        yield handle


def walk(handle: Any, ctx: ScanContext, max_objects: int = MAX_OBJECTS) -> Structure:
    """Every group and dataset reachable through hard links, each once."""
    h5py = require_h5py()
    found = Structure()
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("", handle)]
    while stack:
        ctx.check_deadline()
        prefix, group = stack.pop()
        try:
            names = list(group)
        except H5_ERRORS as exc:
            found.broken.append((prefix or "/", str(exc)))
            continue
        for name in names:
            found.objects += 1
            if found.objects > max_objects:
                found.truncated = True
                return found
            path = f"{prefix}/{name}"
            child = _visit(h5py, group, name, path, found, seen)
            if child is not None:
                stack.append((path, child))
    return found


def _visit(h5py: Any, group: Any, name: str, path: str, found: Structure, seen: set[int]) -> Any:
    """Record what `name` is; return it when it is a group still to walk."""
    try:
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.SoftLink):
            found.links.append(Link(path, "soft", str(link.path)))
            return None
        if isinstance(link, h5py.ExternalLink):
            found.links.append(Link(path, "external", str(link.path), str(link.filename)))
            return None
        if not isinstance(link, h5py.HardLink):
            found.links.append(Link(path, "user-defined", type(link).__name__))
            return None
        obj = group.get(name)
        address = h5py.h5o.get_info(obj.id).addr
        if address in seen:
            return None
        seen.add(address)
        if isinstance(obj, h5py.Dataset):
            _dataset_storage(obj, path, found)
            return None
        return obj if isinstance(obj, h5py.Group) else None
    except H5_ERRORS as exc:
        found.broken.append((path, str(exc) or type(exc).__name__))
        return None


def _dataset_storage(dataset: Any, path: str, found: Structure) -> None:
    external = dataset.external
    if external:
        files = tuple(_text(entry[0]) for entry in external)
        found.outside.append(OutsideData(path, "external storage", files))
    if dataset.is_virtual:
        files = tuple(sorted({_text(src.file_name) for src in dataset.virtual_sources()} - {"."}))
        if files:
            found.outside.append(OutsideData(path, "virtual dataset", files))


def root_text_attribute(handle: Any, name: str, max_bytes: int = MAX_ATTR_BYTES) -> str | None:
    """A root attribute as text (Keras writes str or UTF-8 bytes); None when absent."""
    h5py = require_h5py()
    if name not in handle.attrs:
        return None
    attr_id = h5py.h5a.open(handle.id, name.encode())
    size = attr_id.get_storage_size()
    if size > max_bytes:
        raise HDF5Error(f"attribute {name} holds {size} bytes (limit {max_bytes})")
    value = handle.attrs[name]
    if not isinstance(value, (bytes, str)) and getattr(value, "shape", None) == (1,):
        value = value[0]  # a one-element array of strings
    if isinstance(value, (bytes, str)):  # numpy's bytes_ and str_ included
        return _text(value)
    raise HDF5Error(f"attribute {name} is not text ({type(value).__name__})")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
