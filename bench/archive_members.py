"""Scanning archives of many small members: what the engine costs per member.

Inputs, built into bench/out/: a tar and a zip (deflated) of N small members cycling through four
kinds, each written by the library that makes it: a line of text (.txt), a JSON object (.json), a
benign pickle of a small dict (.pkl, pickle.dumps) and 64 bytes of raw float32 tensor data (.bin).

Baseline, measured in the same run and process: Python's tarfile iterating the archive and reading
every regular member, and zipfile reading every member (what any scanner must at least do). Compared
with scan_model_directory_or_file + json.dumps in process. Printed: both times, their ratio, and the
engine's own cost per member (scan minus baseline, divided by N).

    python bench/archive_members.py [--quick] [--members 100000] [--repeat 2] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import struct
import sys
import tarfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MiB, best_of, ensure_src_on_path, header, out_dir, remove, table, warm  # noqa: E402

ensure_src_on_path()

KINDS = (".txt", ".json", ".pkl", ".bin")


def member(i: int) -> tuple[str, bytes]:
    ext = KINDS[i % len(KINDS)]
    if ext == ".txt":
        data = f"member {i}: plain notes\n".encode()
    elif ext == ".json":
        data = json.dumps({"index": i, "labels": ["a", "b"]}).encode()
    elif ext == ".pkl":
        data = pickle.dumps({"index": i, "weights": [0.5, 1.5]}, protocol=4)
    else:
        data = struct.pack("<16f", *([0.0] * 15 + [float(i)]))
    return f"part{i // 1000:03d}/m{i:06d}{ext}", data


def build_tar(path: Path, count: int) -> None:
    with tarfile.open(path, "w") as tf:
        for i in range(count):
            name, data = member(i)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def build_zip(path: Path, count: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(count):
            zf.writestr(*member(i))


def read_tar(path: Path) -> int:
    total = 0
    with tarfile.open(path) as tf:
        for info in tf:
            if info.isfile():
                stream = tf.extractfile(info)
                if stream is not None:
                    total += len(stream.read())
    return total


def read_zip(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return sum(len(zf.read(info)) for info in zf.infolist())


def scan(path: Path) -> dict:
    from modelaudit.core import scan_model_directory_or_file

    report = scan_model_directory_or_file(str(path))
    json.dumps(report)
    return report


def measure(label: str, path: Path, count: int, baseline, repeat: int) -> dict:  # noqa: ANN001
    warm(path)
    report = scan(path)  # the first scan also imports the scanners
    t_base = best_of(lambda: baseline(path), repeat)
    t_scan = best_of(lambda: scan(path), repeat)
    return {"label": label, "members": count, "size": path.stat().st_size, "base": t_base, "scan": t_scan,
            "exit": report["summary"]["exit_code"], "checks": report["total_checks"],
            "codes": sorted({i["rule_code"] for i in report["issues"]})}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20,000 members")
    ap.add_argument("--members", type=int, help="members per archive (default 100,000; quick 20,000)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per measurement (best is kept)")
    ap.add_argument("--keep", action="store_true", help="keep the generated archives in bench/out")
    args = ap.parse_args(argv)
    count = args.members or (20_000 if args.quick else 100_000)

    header(f"archive_members: scanning archives of {count:,} small members vs tarfile/zipfile reading them")
    results = []
    for label, suffix, build, baseline in (("tar", ".tar", build_tar, read_tar), ("zip", ".zip", build_zip, read_zip)):
        path = out_dir() / f"members-{count}{suffix}"
        started = time.perf_counter()
        build(path, count)
        print(f"  built {path.name}: {path.stat().st_size / MiB:.1f} MiB in {time.perf_counter() - started:.1f}s",
              flush=True)
        results.append(measure(label, path, count, baseline, args.repeat))
        if not args.keep:
            remove(path)

    print("\nin process (best of runs; scan_model_directory_or_file + json.dumps vs the stdlib reader):")
    print(table(["archive", "members", "baseline s", "scan s", "ratio", "engine us/member", "checks", "exit",
                 "rule codes"],
                [(r["label"], f"{r['members']:,}", r["base"], r["scan"], f"{r['scan'] / r['base']:.2f}x",
                  (r["scan"] - r["base"]) / r["members"] * 1e6, r["checks"], r["exit"], r["codes"] or "none")
                 for r in results]))
    print("\nsummary: " + "; ".join(
        f"{r['label']} of {r['members']:,} members: scan {r['scan']:.2f}s vs {r['base']:.2f}s reading them = "
        f"{r['scan'] / r['base']:.2f}x ({(r['scan'] - r['base']) / r['members'] * 1e6:.0f} us per member)"
        for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
