"""Start-up time of the `modelaudit` console script.

Baseline, measured in the same run: `python -c pass` with the same interpreter. Runs are
interleaved (baseline, modelaudit, baseline, …) so machine noise hits both alike; medians
and the difference are printed. Issue target: `modelaudit --version` < 0.3 s. Then
`python -X importtime -c "import modelaudit.cli"` names the modules that cost the most.

    python bench/startup.py [--quick] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MODELAUDIT, PY, header, median, out_dir, table, verdict  # noqa: E402

TARGET_S = 0.3
HEAVY = ("torch", "numpy", "tensorflow", "keras", "onnx", "h5py", "yaml", "requests", "pydantic")


def timed(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return time.perf_counter() - start, rc


def importtime(args: list[str]) -> tuple[list[tuple[str, int, int, int]], int]:
    """(module, depth, self µs, cumulative µs) per import made by `python -X importtime ARGS`; total µs."""
    proc = subprocess.run([PY, "-X", "importtime", *args], capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) != 3:
            continue
        raw = parts[2].rstrip()[1:]  # one separator space, then two spaces per nesting level
        depth = (len(raw) - len(raw.lstrip(" "))) // 2
        rows.append((raw.strip(), depth, int(parts[0]), int(parts[1])))
    total = sum(r[3] for r in rows if r[1] == 0)
    return rows, total


def report_imports(title: str, args: list[str]) -> int:
    header(title)
    rows, total = importtime(args)
    print(f"total import time (sum of top-level cumulative): {total / 1000:.1f} ms, {len(rows)} modules imported")
    top_cum = sorted(rows, key=lambda r: r[3], reverse=True)[:15]
    print("\ntop 15 importers by cumulative time (module plus what it imports; indent = nesting):")
    print(table(["module", "cumulative ms", "self ms"],
                [("  " * min(r[1], 6) + r[0], r[3] / 1000, r[2] / 1000) for r in top_cum]))
    top_self = sorted(rows, key=lambda r: r[2], reverse=True)[:10]
    print("\ntop 10 by self time:")
    print(table(["module", "self ms", "cumulative ms"], [(r[0], r[2] / 1000, r[3] / 1000) for r in top_self]))
    by_root: dict[str, int] = {}
    for name, depth, _self, cum in rows:
        if depth == 0:  # top-level entries: their cumulative covers the nested ones
            by_root[name.split(".")[0]] = by_root.get(name.split(".")[0], 0) + cum
    roots = sorted(by_root.items(), key=lambda kv: kv[1], reverse=True)[:8]
    print("\ncumulative ms by top-level package: " + ", ".join(f"{k} {v / 1000:.1f}" for k, v in roots))
    names = {r[0] for r in rows}
    heavy = sorted(n for n in names if n.split(".")[0] in HEAVY)
    print(f"heavy third-party modules imported: {', '.join(heavy) or 'none'}")
    ours = sorted((r for r in rows if r[0].startswith("modelaudit")), key=lambda r: r[2], reverse=True)
    print("modelaudit modules by self ms: " + ", ".join(f"{r[0]} {r[2] / 1000:.1f}" for r in ours[:12]))
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="8 runs per command")
    ap.add_argument("--runs", type=int, help="runs per command (default 20, quick 8)")
    args = ap.parse_args(argv)
    runs = args.runs or (8 if args.quick else 20)

    tiny = out_dir() / "startup-tiny.pkl"
    tiny.write_bytes(b"\x80\x04K\x01.")  # pickle of the int 1
    commands = [
        ("python -c pass (baseline)", [PY, "-c", "pass"]),
        ("modelaudit --version", [MODELAUDIT, "--version"]),
        ("python -c 'import modelaudit.cli'", [PY, "-c", "import modelaudit.cli"]),
        ("modelaudit scan tiny.pkl --format json", [MODELAUDIT, "scan", str(tiny), "--format", "json"]),
    ]
    header(f"startup: {runs} interleaved runs per command, median wall time")
    for _, cmd in commands:  # warm the OS caches and .pyc files
        timed(cmd)
    samples: dict[str, list[float]] = {label: [] for label, _ in commands}
    codes: dict[str, int] = {}
    for _ in range(runs):
        for label, cmd in commands:
            t, rc = timed(cmd)
            samples[label].append(t)
            codes[label] = rc
    base = median(samples[commands[0][0]])
    rows = []
    for label, _ in commands:
        m = median(samples[label])
        rows.append((label, m, min(samples[label]), m - base, f"{m / base:.2f}x", codes[label]))
    print(table(["command", "median s", "min s", "minus baseline s", "x baseline", "exit"], rows))
    version = median(samples["modelaudit --version"])
    print(f"\ntarget: modelaudit --version < {TARGET_S} s: median {version:.3f}s -> {verdict(version < TARGET_S)} "
          f"({version - base:+.3f}s over a bare interpreter)")

    total = report_imports('python -X importtime -c "import modelaudit.cli"  (the --version path)',
                           ["-c", "import modelaudit.cli"])
    scan_total = report_imports("python -X importtime -m modelaudit scan tiny.pkl --format json  (the scan path)",
                                ["-m", "modelaudit", "scan", str(tiny), "--format", "json"])
    tiny.unlink(missing_ok=True)
    scan = median(samples[commands[3][0]])
    print(f"\nsummary: modelaudit --version median {version:.3f}s vs python -c pass {base:.3f}s "
          f"({version - base:+.3f}s, {version / base:.1f}x; target < {TARGET_S}s: {verdict(version < TARGET_S)}); "
          f"tiny scan {scan:.3f}s ({scan - base:+.3f}s); imports: modelaudit.cli {total / 1000:.0f} ms, "
          f"scan path {scan_total / 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    os.environ.pop("PYTHONPROFILEIMPORTTIME", None)
    sys.exit(main())
