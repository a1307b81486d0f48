"""Mutants of every file of the pickle family (honest corpus and regression corpus) are handled:
no internal error, no timeout, never an unreadable file reported clean. Seeded, so a failure
names a mutant that can be rebuilt."""

from __future__ import annotations

import random

from tests.benign.conftest import benign_corpus  # noqa: F401 - the session fixture of honest model files
from tests.fuzz.harness import mutants, problems, scan_mutant
from tests.regressions.corpus import load_all

PER_FILE = 4


def _corpus(benign_root) -> list[tuple[str, bytes]]:  # noqa: ANN001
    files = [(p.name, p.read_bytes()) for p in sorted(benign_root.rglob("*")) if p.is_file()]
    for _name, case in sorted(load_all().items()):
        files.append((case.filename, case.build()))
    return [(name, data) for name, data in files if len(data) < 2_000_000]


def test_mutants_of_the_pickle_family_are_handled(tmp_path, benign_corpus):
    corpus = _corpus(benign_corpus)
    donors = [data[:4096] for _name, data in random.Random(0).sample(corpus, min(40, len(corpus)))]
    failures = []
    for index, (name, data) in enumerate(corpus):
        for what, mutant in mutants(index, data, PER_FILE, donors):
            found = problems(scan_mutant(tmp_path, name, mutant))
            if found:
                failures.append(f"{name} (seed {index}, {what}): {found[0]}")
    assert not failures, f"{len(failures)} mutants mishandled:\n" + "\n".join(failures[:20])
