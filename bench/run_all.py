"""Run every benchmark in sequence (`make bench`), then print their summary lines together.

    python bench/run_all.py [--quick] [--keep] [--only walker,torch,startup,memory,text,archive]

Each benchmark runs in its own interpreter, builds its inputs into bench/out/ (git-ignored)
and deletes the large ones when it ends (unless --keep). Results are ratios against
baselines measured in the same run; nothing here fails on wall-clock numbers.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SUITE = [
    ("startup", "startup.py"),
    ("walker", "walker_throughput.py"),
    ("torch", "torch_checkpoint.py"),
    ("memory", "memory.py"),
    ("text", "text_shapes.py"),
    ("archive", "archive_members.py"),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller inputs and fewer runs (a few minutes)")
    ap.add_argument("--keep", action="store_true", help="keep generated inputs in bench/out")
    ap.add_argument("--only", help="comma-separated subset of: " + ", ".join(name for name, _ in SUITE))
    args = ap.parse_args(argv)
    chosen = set(args.only.split(",")) if args.only else {name for name, _ in SUITE}
    unknown = chosen - {name for name, _ in SUITE}
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    free = shutil.disk_usage(BENCH).free
    need = (1 if args.quick else 3) * 1024**3
    if free < need:
        print(f"warning: {free / 1024**3:.1f} GiB free; the benchmarks need up to {need / 1024**3:.0f} GiB "
              "in bench/out", file=sys.stderr)
    summaries: list[tuple[str, str]] = []
    failed = []
    started = time.perf_counter()
    for name, script in SUITE:
        if name not in chosen:
            continue
        cmd = [sys.executable, str(BENCH / script)]
        if args.quick:
            cmd.append("--quick")
        if args.keep and name != "startup":
            cmd.append("--keep")
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith("summary: "):
                summaries.append((name, line[len("summary: "):].rstrip()))
        rc = proc.wait()
        print(f"[{name}: {time.perf_counter() - t0:.0f}s, exit {rc}]", flush=True)
        if rc:
            failed.append(name)
    print()
    print("=" * 78)
    print(f"summary ({'quick' if args.quick else 'full'} run, {time.perf_counter() - started:.0f}s)")
    print("=" * 78)
    for name, text in summaries:
        print(f"{name:8} {text}")
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}")
    out = BENCH / "out"
    if out.exists() and not args.keep:
        leftovers = [p for p in out.iterdir() if p.is_file() and p.stat().st_size > 1024 * 1024]
        for p in leftovers:
            p.unlink()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
