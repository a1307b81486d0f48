"""The malicious corpus: every regression payload registered under its test's name.

A payload builder is a zero-argument function returning the file's bytes, registered with
`@case("file.ext")`. Regression tests scan their own payload; `test_no_execution.py`
writes the whole registry to disk and scans it under audit hooks.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import findings, scan


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    build: Callable[[], bytes]


CASES: dict[str, Case] = {}


def case(filename: str, name: str | None = None) -> Callable[[Callable[[], bytes]], Callable[[], bytes]]:
    def register(fn: Callable[[], bytes]) -> Callable[[], bytes]:
        key = name or fn.__name__
        assert key not in CASES, f"duplicate corpus entry {key}"
        CASES[key] = Case(key, filename, fn)
        return fn
    return register


def add(name: str, filename: str, data: bytes | Callable[[], bytes]) -> bytes | Callable[[], bytes]:
    """Register a parametrized family member at import time (bytes, or a builder for slow fixtures)."""
    assert name not in CASES, f"duplicate corpus entry {name}"
    CASES[name] = Case(name, filename, data if callable(data) else (lambda: data))
    return data


def family(prefix: str, entries: dict[str, tuple[str, bytes]]) -> dict[str, bytes]:
    """Register {key: (filename, bytes)} as "prefix:key"; return {key: bytes} for parametrizing."""
    return {key: add(f"{prefix}:{key}", filename, data) for key, (filename, data) in entries.items()}


def load_all() -> dict[str, Case]:
    """Import every regression module so its payloads are registered."""
    import tests.regressions as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("test_"):
            importlib.import_module(f"tests.regressions.{info.name}")
    return CASES


def write(directory: Path, name: str) -> Path:
    entry = CASES[name]
    path = directory / entry.filename
    path.write_bytes(entry.build())
    return path


def scan_bytes(directory: Path, data: bytes, filename: str = "model.pkl") -> dict:
    path = directory / filename
    path.write_bytes(data)
    return scan(path)


def scan_case(directory: Path, fn: Callable[[], bytes]) -> dict:
    entry = CASES[fn.__name__]
    return scan(write(directory, entry.name))


# ------------------------------------------------------------------------------- assertions
def issues(result: dict, code: str | None = None, severity: str | None = None) -> list[dict]:
    return [i for i in result["issues"]
            if (code is None or i["rule_code"] == code) and (severity is None or i["severity"] == severity)]


def _mentions(issue: dict, target: str) -> bool:
    details = issue.get("details", {})
    dotted = f"{details.get('module', '')}.{details.get('function', '')}"
    return target in issue["message"] or dotted.endswith(target) or target == dotted


def assert_dangerous(result: dict, target: str, code: str = "MA-P001") -> dict:
    """A critical finding with `code` names `target` (e.g. "pip.main")."""
    hits = [i for i in issues(result, code, "critical") if _mentions(i, target)]
    assert hits, f"no critical {code} for {target}; got:\n{describe(result)}"
    assert result["summary"]["exit_code"] == 1
    return hits[0]


def assert_warning(result: dict, code: str, contains: str = "") -> dict:
    hits = [i for i in issues(result, code, "warning") if contains in i["message"]]
    assert hits, f"no warning {code} containing {contains!r}; got:\n{describe(result)}"
    return hits[0]


def assert_clean(result: dict) -> None:
    bad = findings(result, "warning")
    assert not bad, f"expected no warning or critical findings; got:\n{describe(result)}"
    assert result["summary"]["exit_code"] == 0


def describe(result: dict) -> str:
    return "\n".join(f"  {i['severity']} {i['rule_code']} {i['message'][:160]}" for i in result["issues"]) or "  (none)"
