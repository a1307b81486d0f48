"""Instantiation configs (Hydra `_target_`, PyYAML python tags) and torch.export programs under mutation,
plus the inputs mutation found mishandled: each is rebuilt here byte by byte and must give a finding,
never a hang, an internal error or a misattributed error."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from tests.fuzz.harness import mutants, problems, scan_mutant

CONFIGS = {
    "hydra.yaml": b"model:\n  cls: os.system\n  _target_: ${model.cls}\n  command: echo hi\n"
                  b"base: &b\n  _target_: torch.nn.Linear\n  in_features: 2\nother: *b\n",
    "tags.yaml": b"a: !!python/object/apply:os.system ['echo hi']\nb: !!python/name:math.sqrt\n",
    "tagdir.yaml": b"%TAG !p! tag:yaml.org,2002:python/\n---\na: !p!object/apply:os.system ['echo hi']\n",
    "escaped.yaml": b"a: !!%70ython/object/apply:os.system ['echo hi']\n\"\\x5ftarget_\": builtins.eval\n",
    "cfg.json": b'{"model": {"_target_": "transformers.AutoModel.from_pretrained", '
                b'"x": {"\\u005ftarget_": "os.system", "command": "echo hi"}}}',
}


def _codes(result: dict) -> set[str]:
    return {issue.get("rule_code") for issue in result["issues"]}


def _pt2(program: bytes) -> bytes:
    """A .pt2 archive holding `program` as its serialized model (the layout torch.export.save writes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/archive_format", "pt2")
        zf.writestr("archive/archive_version", "0")
        zf.writestr("archive/models/model.json", program)
    return buf.getvalue()


def test_mutants_of_configs_are_handled(tmp_path):
    donors = list(CONFIGS.values())
    failures = []
    for index, (name, data) in enumerate(sorted(CONFIGS.items())):
        for what, mutant in mutants(1000 + index, data, 60, donors):
            found = problems(scan_mutant(tmp_path, name, mutant))
            if found:
                failures.append(f"{name} (seed {1000 + index}, {what}): {found[0]}")
    assert not failures, "\n".join(failures[:20])


def test_mutants_of_an_exported_program_are_handled(tmp_path):
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.export.save(torch.export.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),)), buf)
    failures = [f"{what}: {found[0]}" for what, mutant in mutants(2000, buf.getvalue(), 150)
                if (found := problems(scan_mutant(tmp_path, "model.pt2", mutant)))]
    assert not failures, "\n".join(failures[:20])


def test_a_long_run_of_tag_marks_is_scanned_in_linear_time(tmp_path):
    # `!\S*%XX` rescanned the run from every `!`: minutes for a few hundred kilobytes
    result = scan_mutant(tmp_path, "bangs.yaml", b"a: " + b"!" * 400_000 + b"\nb: !!%70ython/object/apply:os.system []\n")
    assert not problems(result) and "MA-I002" in _codes(result)


def test_a_huge_yaml_config_is_searched_raw_and_the_gap_reported(tmp_path):
    data = b"_target_: os.system\nitems: [" + b"1, " * 800_000 + b"]\n"
    result = scan_mutant(tmp_path, "big.yaml", data)
    assert {"MA-H011", "MA-I001"} <= _codes(result)
    assert result["summary"]["exit_code"] == 1


def test_a_program_nested_past_the_json_decoder_limit_is_a_program_finding(tmp_path):
    result = scan_mutant(tmp_path, "deep.pt2", _pt2(b"[" * 100_000 + b"]" * 100_000))
    assert "MA-T001" in _codes(result) and "MA-A003" not in _codes(result)
    assert not problems(result)


def test_a_target_hidden_below_the_walk_depth_is_reported(tmp_path):
    program = b'{"a": ' * 300 + json.dumps({"target": "torch.ops.evil.run"}).encode() + b"}" * 300
    result = scan_mutant(tmp_path, "hidden.pt2", _pt2(program))
    assert any(i.get("rule_code") == "MA-T001" and "levels deep" in i["message"] for i in result["issues"])


def test_a_long_number_string_in_an_expression_is_checked_quickly(tmp_path):
    # `\d+\.?\d*` backtracked quadratically on a long digit run: minutes for 200k digits
    program = json.dumps({"sym": {"expr_str": "Symbol('" + "1" * 200_000 + "x')"}}).encode()
    result = scan_mutant(tmp_path, "digits.pt2", _pt2(program))
    assert "MA-T002" in _codes(result) and not problems(result)


def _pax_tar(headers: dict[str, str], first: bool) -> bytes:
    """A pax tar whose zip member carries `headers`, after an honest member unless `first`."""
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if not first:
            info = tarfile.TarInfo("readme.txt")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"hi\n"))
        info = tarfile.TarInfo("model.zip")
        info.size, info.pax_headers = 3, dict(headers)
        tar.addfile(info, io.BytesIO(b"abc"))
    return buf.getvalue()


@pytest.mark.parametrize("first", [True, False])
def test_a_pax_number_tarfile_cannot_read_is_a_malformed_tar(tmp_path, first):
    result = scan_mutant(tmp_path, "bad.tar", _pax_tar({"GNU.sparse.size": "-1,-1"}, first))
    assert not problems(result) and "MA-A003" in _codes(result)


def test_a_negative_pax_size_is_a_malformed_tar(tmp_path):
    data = _pax_tar({"size": "SIZEX"}, first=False).replace(b"size=SIZEX", b"size=-5   ")
    result = scan_mutant(tmp_path, "negative.tar", data)
    assert not problems(result) and "MA-A003" in _codes(result)
