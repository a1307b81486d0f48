"""Peak memory of `modelaudit scan FILE --format json --no-isolation` as a function of file size
(in-process, so the child measured is the one that scans).

Each scan runs in its own child process. Baseline, measured in the same run: the same
command on a tiny pickle (interpreter + imports). Printed per input: peak RSS (GNU time's
maximum resident set size, which also counts pages of the mmap'd input that were touched:
page cache the kernel can drop, not heap), peak anonymous RSS (private heap, sampled from
/proc), both minus the baseline, and per kind the least-squares slope in MB of memory per
MB of file: ~0 means flat, ~1 means the scan holds the file.

Inputs (see _gen.py): `ndarray` pickles (a state dict of 4 MiB float32 arrays: few
opcodes, large byte payloads), `mixed` opcode-dense pickles, torch zip checkpoints.

    python bench/memory.py [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MB, MODELAUDIT, MiB, header, out_dir, run_child, table, warm  # noqa: E402
from _gen import build, cleanup  # noqa: E402

# mixed also at 40 MB: from ~70 MB on, the default pickle memo budget (5M entries) stops the scan
FULL = {"ndarray": [10, 100, 400], "mixed": [10, 40, 100, 400], "torch_zip": [100, 1024]}
QUICK = {"ndarray": [5, 20, 50], "mixed": [2, 10, 20], "torch_zip": [50, 200]}


def slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else float("nan")


def scan(path: Path) -> dict:
    stats = run_child([MODELAUDIT, "scan", str(path), "--format", "json", "--no-isolation"], capture=True, poll=0.01)
    try:
        report = json.loads(stats.stdout)
    except ValueError:
        report = {}
    codes = sorted({i.get("rule_code", "?") for i in report.get("issues", [])})
    return {"wall": stats.wall, "rc": stats.returncode, "rss": stats.maxrss, "anon": stats.peak_anon,
            "codes": codes, "bytes_scanned": report.get("bytes_scanned")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller inputs (pickles <= 50 MB, torch <= 200 MB)")
    ap.add_argument("--keep", action="store_true", help="keep the generated inputs in bench/out")
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL

    header("memory: peak RSS of `modelaudit scan --format json` per input size (one child process each)")
    tiny = out_dir() / "memory-tiny.pkl"
    tiny.write_bytes(b"\x80\x04K\x01.")
    base = min((scan(tiny) for _ in range(3)), key=lambda r: r["rss"])
    tiny.unlink(missing_ok=True)
    print(f"baseline (tiny pickle): peak RSS {base['rss'] / MiB:.1f} MiB, peak anon {base['anon'] / MiB:.1f} MiB, "
          f"{base['wall']:.2f}s", flush=True)

    rows, slopes, notes = [], [], []
    for kind, sizes in plan.items():
        xs, rss, anon, done = [], [], [], []
        for size_mb in sizes:
            nbytes = size_mb * (MiB if kind == "torch_zip" else MB)
            path = out_dir() / f"memory-{kind}-{size_mb}.{'pt' if kind == 'torch_zip' else 'pkl'}"
            build(kind, nbytes, path, tensors=16)
            size = path.stat().st_size
            warm(path)
            r = scan(path)
            if not args.keep:
                cleanup(path)
            xs.append(size / MB)
            rss.append(r["rss"] / MB)
            anon.append(r["anon"] / MB)
            scanned = r["bytes_scanned"] or 0
            done.append(r["rc"] in (0, 1))
            complete = "yes" if done[-1] else f"no (exit {r['rc']})"
            rows.append((kind, size / MB, r["rss"] / MiB, (r["rss"] - base["rss"]) / MiB, r["anon"] / MiB,
                         (r["anon"] - base["anon"]) / MiB, r["wall"], f"{100 * scanned / size:.0f}%", complete,
                         ",".join(r["codes"]) or "-"))
            print(f"  {kind} {size / MB:.0f} MB: peak RSS {r['rss'] / MiB:.0f} MiB, anon {r['anon'] / MiB:.0f} MiB, "
                  f"{r['wall']:.1f}s, exit {r['rc']}, codes {r['codes'] or '-'}", flush=True)
        cx = [x for x, ok in zip(xs, done) if ok]
        if len(cx) >= 2:  # fit only complete scans: a scan cut short by a budget says nothing about slope
            s_rss = slope(cx, [y for y, ok in zip(rss, done) if ok])
            s_anon = slope(cx, [y for y, ok in zip(anon, done) if ok])
            span = f"{cx[0]:.0f}-{cx[-1]:.0f}"
        elif cx:  # one complete point: cost per MB above the baseline
            i = done.index(True)
            s_rss, s_anon = (rss[i] - base["rss"] / MB) / xs[i], (anon[i] - base["anon"] / MB) / xs[i]
            span = f"{cx[0]:.0f} (one point)"
        else:
            s_rss = s_anon = float("nan")
            span = "no complete scan"
        slopes.append((kind, s_rss, s_anon, span))
        if not all(done):
            cut = [f"{x:.0f} MB" for x, ok in zip(xs, done) if not ok]
            notes.append(f"{kind}: the scans of {', '.join(cut)} stopped at a budget (exit 2, see rule codes); "
                         "they are left out of the slope and their memory is bounded by the budget, not the file")

    print()
    print(table(["kind", "file MB", "peak RSS MiB", "minus baseline", "peak anon MiB", "anon minus baseline",
                 "wall s", "bytes_scanned", "complete", "rule codes"], rows))
    print("\nslope of peak memory against file size over complete scans (MB per MB; 0 = flat, 1 = proportional):")
    print(table(["kind", "RSS slope", "anon slope", "complete scans, file MB"], slopes))
    for note in notes:
        print("note: " + note)
    print("peak RSS includes the pages of the mmap'd input that were mapped (reclaimable page cache; the "
          "kernel may map\nwhole page-cache folios around each touched opcode); the anon column is the private "
          "heap, the memory a scan\nreally costs.")
    summary = "; ".join(f"{k} RSS {s1:.2f} / anon {s2:.2f} MB per MB" for k, s1, s2, _ in slopes)
    print(f"\nsummary: memory slopes: {summary}; baseline {base['rss'] / MiB:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
