"""Sources dense in f-strings: replacement fields are read without a tokenize run each (before 3.12),
repeated fields are read once and all fields are scanned as one stream; what the analysis finds stays
the same, wherever in a large file the code sits."""

from __future__ import annotations

import io
import random
import sys
import tokenize

import pytest

from modelaudit.scanners import _python_lex as lexer
from modelaudit.scanners._python_static import analyze
from tests.conftest import scan

DENSE_LINE = 'x = f"{a}{b}{c!r:>{w}}"\n'
BY_HAND = pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ tokenizes f-string fields itself")


def _field_tokens(tokens: list[lexer.Tok]) -> list[tuple]:
    return [(t.kind, t.text, t.line, t.col, t.value) for t in tokens]


def _tokenize_field(piece: str) -> list[tuple]:
    """The reference: the field lexed by tokenize, as lex() does for any field."""
    return _field_tokens(lexer._shift(lexer.lex(piece, 1), 7, lexer.Lexed([])))


@BY_HAND
@pytest.mark.parametrize("seed", range(3))
def test_fields_read_by_hand_give_the_tokens_tokenize_gives(seed):
    parts = ["a", "os", ".", "system", "(", ")", "[", "]", "{", "}", "!", "r", ":", ">", " ", "\t", "1", "0x1f", ".5",
             "1e5", "1_0", "'", '"', "'k'", '"v"', "rb'x'", "u'y'", "f'z'", "'''", "lambda", "def", "=", ",", "**",
             "$", "?", "`", "...", "if", "__import__", ";", "@", "-", "%", "|", "<", "\f", "09"]
    rng = random.Random(seed)
    read = 0
    for _ in range(4000):
        piece = "".join(rng.choice(parts) for _ in range(rng.randint(0, 8)))
        fast = lexer._plain_field(piece, 7)
        if fast is not None:
            read += 1
            assert _field_tokens(fast) == _tokenize_field(piece), piece
    assert read > 2000  # most shapes take the fast path; the rest (f'', ''') go to tokenize


@BY_HAND
@pytest.mark.parametrize("piece", ["x", " x", "c!r:>{w}", "(x", "x)", "a $", "1if", ".5", "d['k']", "", "  ",
                                   "os.system('echo hi')", "lambda q: q", "x:%Y-%m-%d"])
def test_field_shapes(piece):
    assert _field_tokens(lexer._plain_field(piece, 7)) == _tokenize_field(piece)


@BY_HAND
@pytest.mark.parametrize("piece", ["x # c", "a\\nb", "'''x'''", "f'{x}'", "ｅｘｅｃ", "a\nb"])
def test_other_fields_go_to_tokenize(piece):
    assert lexer._plain_field(piece, 1) is None


def test_field_splitting():
    assert lexer.fstring_fields("{a}{{b}}{c!r:>{w}}") == ["a", "c!r:>{w}"]
    assert lexer.fstring_fields("x{d['}']}y{'{'}z") == ["d['}']", "'{'"]
    assert lexer.fstring_fields("{f(a, (b))}{[1, {2: 3}]}") == ["f(a, (b))", "[1, {2: 3}]"]
    assert lexer.fstring_fields("{open") == ["open"]  # unclosed: the rest of the body
    assert lexer.fstring_fields("{'unclosed}") == ["'unclosed}"]


def test_dangerous_calls_in_a_dense_file_are_found_with_their_lines():
    filler = DENSE_LINE * 20_000  # ~0.5 MB of f-strings
    text = ("import os\n" + filler + 'y = f"{os.system(\'echo modelaudit-test\')}"\n' + filler
            + 'z = f"{eval(v)}{a}"\n' + 'w = f"{eval(v)}"\n')
    found = {(f.code, f.target): f.line for f in analyze(text).findings}
    assert found[("MA-H002", "os.system")] == 20_002
    assert found[("MA-H002", "builtins.eval")] == 40_003  # the first of the two lines
    assert not analyze(filler).findings


def test_fields_stay_apart_when_scanned_together():
    # brackets never pair across fields, and look-behinds stay inside one field (3.11: one fragment per field)
    separate = analyze('x = f"{object}{y.__subclasses__()}"\n').findings
    joined = analyze('x = f"{().__class__.__base__.__subclasses__()}"\n').findings
    assert [f.target for f in joined] == [".__subclasses__"]
    if sys.version_info < (3, 12):
        assert separate == []
    assert analyze('x = f"{getattr(os, \'sys\' + \'tem\')}{(}"\nimport os\n').findings
    assert [f.target for f in analyze('x = f"{(}{)}{eval}"\n').findings] == ["builtins.eval"]


def test_repeated_fields_keep_first_line_and_names():
    text = "import os\n" + 'a = f"{os.getcwd()}"\n' * 3 + 'b = f"{os.popen}"\n' + 'c = f"{os.popen}"\n'
    result = analyze(text)
    assert result.names["os.getcwd"] == 2 and result.names["os.popen"] == 5
    assert [(f.target, f.line) for f in result.findings] == [("os.popen", 5)]


def test_dense_file_through_the_scanner(tmp_path):
    path = tmp_path / "modeling_dense.py"
    path.write_text("import subprocess\n" + DENSE_LINE * 30_000 + 'r = f"{subprocess.run([\'echo\'])}"\n')
    result = scan(path)
    hits = [i for i in result["issues"] if i["rule_code"] == "MA-H002"]
    assert hits and hits[0]["details"]["line"] == 30_002 and not result["has_errors"]


def test_token_budget_still_applies(monkeypatch):
    monkeypatch.setattr(lexer, "MAX_TOKENS", 1000)
    result = analyze(DENSE_LINE * 2000)
    assert result.truncated and result.tokens == 1000
    tokens = sum(1 for t in tokenize.generate_tokens(io.StringIO(DENSE_LINE * 2000).readline))
    assert tokens > 1000
