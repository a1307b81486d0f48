"""Download progress bars on stderr, drawn only for a person watching a terminal.

The command line turns them on when stderr is a TTY and --quiet is off; the Python API and every
redirected or machine-read run (JSON/SARIF on stdout, CI logs) get the silent `NO_BARS`. Plain text
with carriage returns keeps the core install free of a terminal library.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 24  # characters of the bar itself
_LABEL = 40  # characters of the file name shown (the end of it: names differ at the end)
_EVERY = 0.1  # seconds between redraws; the first and the last state are always drawn


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover - the loop returns


class Bar:
    """One file's download; `advance` per chunk, `close` when it is done or failed."""

    def __init__(self, stream: TextIO | None, label: str, total: int | None) -> None:
        self.stream, self.total, self.done = stream, total, 0
        self.label = label if len(label) <= _LABEL else "…" + label[-(_LABEL - 1):]
        self._drawn = 0.0
        self._width = 0
        self._draw(force=True)

    def advance(self, n: int) -> None:
        self.done += n
        self._draw()

    def close(self) -> None:
        if self.stream is None:
            return
        self._draw(force=True)
        self.stream.write("\r" + " " * self._width + "\r")
        self.stream.flush()
        self.stream = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _draw(self, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if not force and now - self._drawn < _EVERY:
            return
        self._drawn = now
        if self.total:
            frac = min(1.0, self.done / self.total)
            filled = int(frac * _WIDTH)
            text = (f"{self.label}  {frac * 100:3.0f}% [{'#' * filled}{'.' * (_WIDTH - filled)}] "
                    f"{_human(self.done)}/{_human(self.total)}")
        else:
            text = f"{self.label}  {_human(self.done)}"
        line = "\rDownloading " + text
        self._width = max(self._width, len(line) - 1)
        self.stream.write(line.ljust(self._width + 1))
        self.stream.flush()


class Bars:
    """Makes a Bar per download; silent when `stream` is None."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream

    def bar(self, label: str, total: int | None) -> Bar:
        return Bar(self.stream, label, total)


NO_BARS = Bars(None)


def terminal_bars(enabled: bool) -> Bars:
    """Bars on stderr when asked for and stderr is a terminal, else the silent ones."""
    return Bars(sys.stderr) if enabled and sys.stderr.isatty() else NO_BARS
