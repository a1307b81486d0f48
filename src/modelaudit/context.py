"""ScanContext: what a scanner may use while reading one blob (budgets, nesting)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .config import ScanConfig
from .errors import ScanTimeout
from .spool import ByteBudget

if TYPE_CHECKING:
    from .blob import Blob
    from .inventory import Inventory
    from .scanners.base import ScanResult

NestedScan = Callable[["Blob", "ScanResult", "ScanContext"], None]


@dataclass
class ScanContext:
    config: ScanConfig
    deadline: float
    started: float
    nested: NestedScan | None = None
    #: what the file holds (hashes, members, stated licences), kept only when ScanConfig.inventory asks
    inventory: Inventory | None = None
    #: decompressed bytes shared by every container inside one top-level file (see spool.ByteBudget)
    inflation: ByteBudget = field(init=False)
    #: scanner classes the engine chose per format for members, so an archive of many members chooses once
    member_scanners: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.inflation = ByteBudget(self.config.limits.max_decompressed, self.check_deadline)

    @classmethod
    def standalone(cls, config: ScanConfig) -> ScanContext:
        now = time.monotonic()
        return cls(config=config, deadline=now + config.limits.timeout, started=now)

    @property
    def limits(self):  # noqa: ANN201 - Limits
        return self.config.limits

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise ScanTimeout(self.config.limits.timeout)

    def record(self, blob: Blob, fmt: str | None = None) -> None:
        """Note a member read from an archive (hash, size, format) for the inventory."""
        if self.inventory is not None:
            self.inventory.record(blob, fmt, self.check_deadline)

    def note_metadata(self, blob: Blob, metadata: object) -> None:
        """Hand the key/value metadata a format carries (safetensors, GGUF) to the inventory."""
        if self.inventory is not None:
            self.inventory.note_metadata(blob, metadata)

    def scan_member(self, blob: Blob, result: ScanResult) -> None:
        """Scan a blob found inside another (archive member, embedded stream) by its own format."""
        if self.nested is None:
            from .engine import scan_nested_blob

            scan_nested_blob(blob, result, self)
        else:
            self.nested(blob, result, self)
