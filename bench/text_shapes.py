"""Throughput of three text-heavy analyses on large, dense or hostile shapes, in process.

Each is timed against the library step it cannot avoid, measured in the same run over the same input:

- Python source (_python_static.analyze) against tokenize.generate_tokens: f-string-dense code (every
  replacement field is lexed too), varied f-strings and plain code.
- Chat templates (_gguf_template.report_template, what the gguf and hf_config scanners run) against
  jinja2's own Environment.parse: honest templates made of repeated Llama-3 / Qwen blocks and hostile
  ones (long filter chains, long concatenations, attribute chains, nesting), each ending in a payload
  that must be found.
- msgpack (the msgpack scanner's walk over a buffer) against msgpack.unpackb of the same bytes: float
  and int arrays, short strings, nested dicts of arrays and small mixed arrays.

Times are process CPU seconds (best of a few runs), so other work on the machine disturbs them less.

    python bench/text_shapes.py [--quick]

A payload sits at the end of every Python source and template; the run fails if one is not found.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import tokenize
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MB, ensure_src_on_path, header, table  # noqa: E402

ensure_src_on_path()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the honest templates


def cpu(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def python_shapes(size: int) -> dict[str, str]:
    dense = 'x = f"{a}{b}{c!r:>{w}}"\n'
    varied = "".join(f'    m{i} = f"step {{step{i}}}: loss={{loss.item():.4f}} lr={{opt.param_groups[0][\'lr\']}} '
                     f'{{name!r}} {{self.x{i % 97}}}"\n' for i in range(size // 100))
    plain = "def f(a, b):\n    y = os.path.join(a, b) + str(a.c[1])\n    return torch.load(y, weights_only=True)\n"
    tail = "import os\nz = f\"{os.system('echo modelaudit-bench')}\"\n"
    return {"f-string dense": dense * (size // len(dense)) + tail,
            "f-string varied": "def log(self):\n" + varied[:size - 100].rsplit("\n", 1)[0] + "\n" + tail,
            "plain code": plain * (size // len(plain)) + tail}


def bench_python(size: int, repeat: int) -> list[list[object]]:
    from modelaudit.scanners._python_static import analyze

    rows = []
    for name, text in python_shapes(size).items():
        base = cpu(lambda: list(tokenize.generate_tokens(io.StringIO(text).readline)), repeat)
        found = []
        took = cpu(lambda: found.extend(analyze(text).findings), repeat)
        ok = any(f.target == "os.system" for f in found)
        rows.append([name, len(text) / MB, base, took, len(text) / MB / took, took / base, "yes" if ok else "NO"])
    return rows


def template_shapes(size: int) -> dict[str, str]:
    from tests.scanners._gguf_templates import HONEST_TEMPLATES

    units = {
        "honest llama3+qwen": HONEST_TEMPLATES["llama3"] + HONEST_TEMPLATES["qwen_tools"],
        "filter chains": "{{ x" + "|trim|lower|upper|replace('a', 'b')" * 50 + " }}\n",
        "concatenation": "{% set s = " + " ~ ".join(f"'p{i}'" for i in range(200)) + " %}\n",
        "additions": "{% set s = " + " + ".join(f"'p{i}'" for i in range(200)) + " %}\n",
        "attribute chains": "{{ a" + "".join(f".b{i}" for i in range(100)) + "['k']" * 20 + " }}\n",
        "nesting": "{% if a %}" * 60 + "{{ (((((x))))) }}" + "{% endif %}" * 60,
    }
    payload = "{{ messages|attr('__cla' ~ 'ss__') }}"
    return {name: unit * (size // len(unit)) + payload for name, unit in units.items()}


def bench_templates(size: int, repeat: int) -> list[list[object]]:
    from modelaudit.scanners import _gguf_template as template

    env = template._jinja()[0]
    rows = []
    for name, text in template_shapes(size).items():
        base = cpu(lambda: env.parse(text), repeat)
        codes: list[str] = []
        took = cpu(lambda: (codes.clear(), template.report_template("t", text, lambda code, *_: codes.append(code))),
                   repeat)
        rows.append([name, len(text) / MB, base, took, len(text) / MB / took, took / base,
                     "yes" if "MA-G004" in codes else "NO"])
    return rows


def msgpack_shapes(values: int) -> dict[str, bytes]:
    import msgpack

    return {
        "float64 array": msgpack.packb([i * 0.37 for i in range(values)]),
        "small ints": msgpack.packb([i % 300 - 40 for i in range(values)]),
        "short strings": msgpack.packb([f"token{i}" for i in range(values)]),
        "dicts of arrays": msgpack.packb({f"layer{i}": {"w": [0.5] * 90, "b": 1.0, "name": "x"}
                                          for i in range(values // 100)}),
        "mixed small arrays": msgpack.packb([[i, i * 0.5, None, True, "ab", -i, 70000 + i, [1, 2]]
                                             for i in range(values // 8)]),
    }


def bench_msgpack(values: int, repeat: int) -> list[list[object]]:
    import msgpack

    from modelaudit.scanners.msgpack import MAX_ELEMENTS, Walker

    def walk(data: bytes) -> int:
        walker = Walker(data, max_elements=MAX_ELEMENTS)
        for _ in walker.walk():
            pass
        return walker.elements

    rows = []
    for name, data in msgpack_shapes(values).items():
        base = cpu(lambda: msgpack.unpackb(data, strict_map_key=False), repeat)
        took = cpu(lambda: walk(data), repeat)
        count = walk(data)
        rows.append([name, len(data) / MB, count, base, took, count / took / 1e6, took / base])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller inputs, one run each")
    ap.add_argument("--keep", action="store_true", help="accepted for run_all.py; inputs live in memory only")
    args = ap.parse_args(argv)
    size, values, repeat = (250_000, 250_000, 1) if args.quick else (1_000_000, 1_000_000, 3)

    header(f"Python source analysis vs tokenize.generate_tokens ({size / MB:.2f} MB each)")
    py = bench_python(size, repeat)
    print(table(["shape", "MB", "tokenize s", "analyze s", "MB/s", "x tokenize", "payload found"], py))

    header(f"Chat template analysis vs jinja2 Environment.parse ({size / MB:.2f} MB each)")
    jt = bench_templates(size, repeat)
    print(table(["shape", "MB", "parse s", "scan s", "MB/s", "x parse", "payload found"], jt))

    header(f"msgpack walk vs msgpack.unpackb (~{values:,} values each)")
    mp = bench_msgpack(values, repeat)
    print(table(["shape", "MB", "values", "unpackb s", "walk s", "Mvalues/s", "x unpackb"], mp))

    missed = [r[0] for r in py + jt if r[-1] != "yes"]
    print(f"\nsummary: python {min(r[4] for r in py):.2f}-{max(r[4] for r in py):.2f} MB/s "
          f"(<= {max(r[5] for r in py):.1f}x tokenize); templates <= {max(r[5] for r in jt):.2f}x jinja parse; "
          f"msgpack {min(r[5] for r in mp):.1f}-{max(r[5] for r in mp):.1f} M values/s"
          + (f"; PAYLOAD MISSED in {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
