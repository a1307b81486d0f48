"""Shared helpers for the benchmarks: output directory, timing, child-process memory, tables.

Every benchmark prints ratios against a baseline measured in the same run; nothing here
asserts on wall-clock time.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
PY = sys.executable
BIN = Path(PY).parent
MODELAUDIT = str(BIN / "modelaudit")
MB = 1_000_000
MiB = 1024 * 1024


def out_dir() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    return OUT


def ensure_src_on_path() -> None:
    src = str(ROOT / "src")
    if src not in sys.path:
        sys.path.insert(0, src)


def warm(path: str | Path, chunk: int = 16 * MiB) -> float:
    """Read the whole file once (page cache warm); return seconds taken."""
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(chunk)
        view = memoryview(buf)
        while fh.readinto(view):
            pass
    return time.perf_counter() - start


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Minimum wall time of `repeat` calls (the least disturbed run)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@dataclass
class ChildStats:
    wall: float
    returncode: int
    maxrss: int  # bytes: peak RSS of the command (counts touched mmap'd file pages too)
    peak_anon: int  # bytes: peak RssAnon sampled from /proc (private heap only; 0 if unavailable)
    stdout: str = ""


GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def _proc_status(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _child_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            kids = fh.read().split()
        return int(kids[0]) if kids else None
    except (OSError, ValueError):
        return None


def run_child(cmd: Sequence[str], *, capture: bool = False, poll: float = 0.005,
              timeout: float | None = None) -> ChildStats:
    """Run `cmd`; return wall time, exit code, peak RSS and sampled peak RssAnon.

    Peak RSS comes from GNU time, which launches the command from a small process: the
    ru_maxrss that os.wait4 reports for a child of *this* interpreter starts at this
    interpreter's own RSS (Linux keeps the high-water mark across fork/vfork + exec).
    Without GNU time it falls back to the highest VmHWM seen while polling.
    """
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    out_path = out_dir() / f".child-{tag}.out"
    rss_path = out_dir() / f".child-{tag}.rss"
    full = [GNU_TIME, "-f", "%M", "-o", str(rss_path), "--", *cmd] if GNU_TIME else list(cmd)
    peak_anon = hwm = 0
    with open(out_path, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out if capture else subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = None
        while True:
            pid, status, _usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if target is None:
                target = _child_of(proc.pid) if GNU_TIME else proc.pid
            if target is not None:
                peak_anon = max(peak_anon, _proc_status(target, "RssAnon:"))
                hwm = max(hwm, _proc_status(target, "VmHWM:"))
            if timeout is not None and time.perf_counter() - start > timeout:
                proc.kill()
                pid, status, _usage = os.wait4(proc.pid, 0)
                break
            time.sleep(poll)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = out_path.read_text(errors="replace") if capture else ""
    out_path.unlink(missing_ok=True)
    maxrss = hwm
    if GNU_TIME:
        try:
            maxrss = int(rss_path.read_text().split()[-1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        rss_path.unlink(missing_ok=True)
    return ChildStats(wall, proc.returncode, maxrss, peak_anon, text)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if n and _numeric(c) else c.ljust(w) for c, w in zip(row, widths)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def _numeric(text: str) -> bool:
    return bool(text) and (text[0].isdigit() or text[0] in "-+.") and not text.startswith("--")


def mb(n: float) -> float:
    return n / MB


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def header(title: str) -> None:
    print()
    print("=" * 78)
    print(title)
    print("=" * 78, flush=True)


def remove(*paths: str | Path) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
