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
SIGNATURE = b"\x89HDF\r\n\x1a\n"
_COLLECTION = b"GCOL"  # a global heap collection: variable-length strings, virtual dataset mappings
_WRAPS = 1 << 63  # a step this large moves libhdf5's pointer backwards
_MAX_RANK = 32  # dimensions libhdf5 supports (H5S_MAX_RANK)
# what h5py raises on damaged or hostile structure
H5_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, AttributeError, OverflowError)


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


def heap_problem(blob: Blob, ctx: ScanContext) -> tuple[int, str] | None:
    """(offset, what) of a global heap collection that libhdf5 cannot read safely, or None.

    libhdf5 steps through a collection's objects by their stored sizes: a free-space object of size 0
    (or one so large the pointer wraps round) never reaches the end, and that native loop cannot be
    interrupted. A virtual dataset's mapping, kept in a collection, is decoded into fixed arrays of
    32 dimensions whatever rank it declares, which overruns memory. Reading a variable-length
    attribute or opening a dataset loads a collection, so the file is checked before either happens.
    """
    with blob.buffer() as buf:
        data = buf if hasattr(buf, "find") else bytes(buf)
        width = _length_size(data)
        at = data.find(_COLLECTION)
        while at >= 0:
            ctx.check_deadline()
            if data[at + 4:at + 5] == b"\x01":
                problem = _collection_problem(data, at, width, ctx)
                if problem:
                    return at, problem
            at = data.find(_COLLECTION, at + 1)
    return None


def _length_size(data: Any) -> int:
    """The superblock's "size of lengths" (8 unless the file says otherwise)."""
    at = 0
    while at + 16 <= len(data):
        if data[at:at + 8] == SIGNATURE:
            version = data[at + 8]
            width = data[at + 14] if version < 2 else data[at + 10]
            return width if width in (2, 4, 8, 16, 32) else 8
        at = 512 if at == 0 else at * 2
    return 8


def _collection_problem(data: Any, at: int, width: int, ctx: ScanContext) -> str | None:
    record = 8 + width  # object index, reference count, reserved, size
    size = int.from_bytes(data[at + 8:at + 8 + width], "little")
    end, pos, steps = at + size, at + 8 + width, 0
    while pos + record <= end:
        steps += 1
        if steps % 65536 == 0:
            ctx.check_deadline()
        head = bytes(data[pos:pos + record]).ljust(record, b"\0")  # past the end of the file libhdf5 reads zeros
        index, length = int.from_bytes(head[:2], "little"), int.from_bytes(head[8:], "little")
        step = length if index == 0 else record + ((length + 7) % (1 << 64)) // 8 * 8
        if step == 0 or step >= _WRAPS:
            return "an object list that never ends (an object of size 0, or so large the walk wraps round)"
        if index and _vds_rank(bytes(data[pos + record:pos + record + min(length, 1 << 20)]), width) > _MAX_RANK:
            return f"a virtual dataset mapping whose selection declares more than {_MAX_RANK} dimensions"
        pos += step
    return None


def _vds_rank(block: bytes, width: int) -> int:
    """The largest selection rank in a heap object read as a virtual dataset mapping (0 when it is not one):
    version, entry count, then per entry two names and two serialized selections."""
    if len(block) < 1 + width or block[0] > 1:
        return 0
    count, pos, rank = int.from_bytes(block[1:1 + width], "little"), 1 + width, 0
    for _ in range(min(count, 4096)):
        pos += block[0]  # version 1 adds a flags byte (names shared with the entry before)
        for _name in range(2):
            pos = block.find(b"\0", pos) + 1
            if pos == 0:
                return rank
        for _selection in range(2):
            found, pos = _selection_rank(block, pos)
            rank = max(rank, found)
            if pos is None or rank > _MAX_RANK:
                return rank
    return rank


def _u(block: bytes, at: int, size: int = 4) -> int:
    return int.from_bytes(block[at:at + size], "little")


def _selection_rank(block: bytes, pos: int) -> tuple[int, int | None]:
    """(rank, where the next selection starts) of one serialized dataspace selection; None: cannot go on."""
    if pos + 8 > len(block):
        return 0, None
    kind, version = _u(block, pos), _u(block, pos + 4)
    if kind in (0, 3):  # none, all: no rank
        return 0, pos + (16 if version == 1 else 8)
    if kind not in (1, 2) or pos + 22 > len(block):
        return 0, None
    if version == 1:  # reserved, length, rank …: points and hyperslabs alike
        return _u(block, pos + 16), pos + 16 + _u(block, pos + 12)
    if kind == 2 and version == 2:  # flags, length, rank …
        return _u(block, pos + 13), pos + 13 + _u(block, pos + 9)
    if kind == 2 and version == 3:  # flags, integer size, rank, then regular or listed blocks
        flags, size, rank = block[pos + 8], block[pos + 9], _u(block, pos + 10)
        body = pos + 14
        if flags & 1:
            return rank, body + rank * 4 * size
        return rank, body + size + _u(block, body, size) * rank * 2 * size
    if kind == 1 and version == 2:  # integer size, rank, count, coordinates
        size, rank = block[pos + 8], _u(block, pos + 9)
        return rank, pos + 13 + size + _u(block, pos + 13, size) * rank * size
    return 0, None


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


def longest_declared(data: Any, name: str) -> int:
    """The longest length a variable-length string attribute called `name` declares, read from the bytes
    of every attribute message of that name (compact, or in a dense attribute heap: encoded the same).

    libhdf5 allocates a variable-length string by its declared length before it looks at the heap
    object holding it, so a length of 4 GB costs 4 GB of memory even in a small file.
    """
    needle, longest = name.encode() + b"\0", 0
    at = data.find(needle)
    while at >= 0:
        for head, version in ((at - 8, 1), (at - 8, 2), (at - 9, 3)):
            if head < 0 or data[head] != version or int.from_bytes(data[head + 2:head + 4], "little") != len(needle):
                continue
            sizes = [len(needle), int.from_bytes(data[head + 4:head + 6], "little"),
                     int.from_bytes(data[head + 6:head + 8], "little")]
            if version == 1:  # version 1 pads the name, datatype and dataspace to 8 bytes
                sizes = [size + (-size) % 8 for size in sizes]
            datatype, value = at + sizes[0], at + sum(sizes)
            if data[datatype:datatype + 1] and data[datatype] & 0x0F == 9 and value + 4 <= len(data):
                longest = max(longest, int.from_bytes(data[value:value + 4], "little"))
        at = data.find(needle, at + 1)
    return longest


def root_text_attribute(handle: Any, name: str, max_bytes: int = MAX_ATTR_BYTES,
                        blob: Blob | None = None) -> str | None:
    """A root attribute as text (Keras writes str or UTF-8 bytes); None when absent."""
    h5py = require_h5py()
    if name not in handle.attrs:
        return None
    attr_id = h5py.h5a.open(handle.id, name.encode())
    # only a string (or a one-element array of them) is read: a damaged variable-length type that is not
    # a string crashes h5py's conversion, and an array of strings expands far past its stored size
    if not isinstance(attr_id.get_type(), h5py.h5t.TypeStringID) or attr_id.shape not in ((), (1,)):
        raise HDF5Error(f"attribute {name} is not text (HDF5 type class {attr_id.get_type().get_class()}, "
                        f"shape {attr_id.shape})")
    size = attr_id.get_storage_size()
    if size > max_bytes:
        raise HDF5Error(f"attribute {name} holds {size} bytes (limit {max_bytes})")
    if blob is not None and attr_id.get_type().is_variable_str():
        with blob.buffer() as buf:
            longest = longest_declared(buf if hasattr(buf, "find") else bytes(buf), name)
        if longest > min(blob.size, max_bytes):
            raise HDF5Error(f"attribute {name} declares a {longest} byte string in a {blob.size} byte file")
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
