"""The policy file ([tool.modelaudit] / .modelaudit.toml): lookup, precedence, contents, errors, reporting.

Models are real: hostile pickles built opcode by opcode (tests/builders.py), honest arrays written by numpy.
Every scan runs the installed `modelaudit` executable in a temporary project, as CI would.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from modelaudit.errors import ConfigError
from tests import builders as b
from tests.conftest import run_cli, scan

DOC = Path(__file__).resolve().parents[1] / "docs" / "policy.md"
SARIF_SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "sarif-schema-2.1.0.json"


def _report_schema() -> dict:
    from importlib import resources

    return json.loads(resources.files("modelaudit").joinpath("schemas/report.schema.json").read_text())


@pytest.fixture
def project(tmp_path) -> Path:
    """models/: one critical payload, one unknown global (warning), a legacy payload, an honest array."""
    models = tmp_path / "models"
    (models / "legacy").mkdir(parents=True)
    (models / "evil.pkl").write_bytes(b.payload())
    (models / "custom.pkl").write_bytes(b.reduce_pickle(b.CANARY_MODULE, "CustomNorm", 4))
    (models / "legacy" / "old.pkl").write_bytes(b.payload(protocol=2))
    np.save(models / "weights.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    return tmp_path


POLICY = """\
max-file-size = "1GB"
exclude = ["models/legacy"]

[[suppress]]
code = "MA-P002"
reason = "CustomNorm is our own layer, reviewed"
paths = ["models/custom.pkl"]
"""


def _json(project: Path, *args: str, cwd: Path | None = None):
    out = run_cli("scan", "--format", "json", *args, cwd=cwd or project)
    assert out.stdout, out.stderr
    return out, out.json()


def _by_code(report: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for issue in report["issues"]:
        found.setdefault(issue["rule_code"], []).append(issue["location"])
    return found


def test_without_a_policy_every_finding_counts(project):
    out, report = _json(project, "models")
    assert out.code == 1
    assert report["config_file"] is None and report["excluded_files"] == [] and report["suppressed_issues"] == []
    assert {"MA-P001", "MA-P002"} <= set(_by_code(report))
    assert len(_by_code(report)["MA-P001"]) == 2  # evil.pkl and legacy/old.pkl


@pytest.mark.parametrize("layout", ["dotfile", "pyproject"])
def test_policy_applies_from_either_file(project, layout):
    if layout == "dotfile":
        policy = project / ".modelaudit.toml"
        policy.write_text(POLICY)
    else:
        policy = project / "pyproject.toml"
        table = POLICY.replace("[[suppress]]", "[[tool.modelaudit.suppress]]")
        policy.write_text('[project]\nname = "demo"\n\n[tool.modelaudit]\n' + table)
    out, report = _json(project, "models")
    assert out.code == 1  # evil.pkl is neither excluded nor suppressed
    assert report["config_file"] == str(policy)
    assert _by_code(report) == {"MA-P001": ["models/evil.pkl (pos 19)"]}
    assert report["excluded_files"] == ["models/legacy/old.pkl"]
    [accepted] = report["suppressed_issues"]
    assert accepted["rule_code"] == "MA-P002" and "CustomNorm" in accepted["message"]
    assert accepted["suppression"] == {"reason": "CustomNorm is our own layer, reviewed"}
    assert list(jsonschema.Draft202012Validator(_report_schema()).iter_errors(report)) == []


def test_suppressions_and_excludes_alone_make_a_scan_pass(project):
    (project / "models" / "evil.pkl").unlink()
    (project / ".modelaudit.toml").write_text(POLICY)
    out = run_cli("scan", "models", cwd=project)
    assert out.code == 0, out.stdout
    assert out.stdout.splitlines()[0] == f"Policy: {project / '.modelaudit.toml'}"
    assert "1 suppressed by policy" in out.stdout and "1 excluded by policy" in out.stdout
    assert "CustomNorm" not in out.stdout  # listed only with -v, with its reason
    verbose = run_cli("scan", "-v", "models", cwd=project).stdout
    assert "CustomNorm is our own layer, reviewed" in verbose


def test_excluded_files_are_skipped_even_when_named(project):
    (project / ".modelaudit.toml").write_text('exclude = ["legacy"]\n')  # a bare name matches at any depth
    out, report = _json(project, "models/legacy/old.pkl", "models/weights.npy")
    assert out.code == 0
    assert report["files_scanned"] == 1 and report["excluded_files"] == ["models/legacy/old.pkl"]


def test_dotfile_wins_over_pyproject_in_the_same_directory(project):
    (project / "pyproject.toml").write_text('[tool.modelaudit]\nexclude = ["evil.pkl"]\n')
    (project / ".modelaudit.toml").write_text('exclude = ["custom.pkl"]\n')
    _, report = _json(project, "models")
    assert report["config_file"] == str(project / ".modelaudit.toml")
    assert report["excluded_files"] == ["models/custom.pkl"]


def test_pyproject_without_our_table_does_not_stop_the_search(project):
    (project / ".modelaudit.toml").write_text('exclude = ["custom.pkl"]\n')
    (project / "models" / "pyproject.toml").write_text('[project]\nname = "weights"\n[tool.black]\nline-length = 100\n')
    _, report = _json(project, str(project / "models"), cwd=project.parent)
    assert report["config_file"] == str(project / ".modelaudit.toml")


@pytest.mark.parametrize("table", ['[tool."model\\u0061udit"]\nexclude = ["custom.pkl"]\n',
                                   '[tool]\n"model\\u0061udit" = { exclude = ["custom.pkl"] }\n',
                                   '[tool.modelaudit]\nexclude = ["custom.pkl"]\n'])
def test_pyproject_table_found_however_the_key_is_spelled(project, table):
    # pyproject files that cannot name the table are not parsed; escapes in quoted keys still count
    (project / "pyproject.toml").write_text('[project]\nname = "weights"\n' + table)
    _, report = _json(project, str(project / "models"), cwd=project.parent)
    assert report["config_file"] == str(project / "pyproject.toml")
    assert [p.rsplit("/", 1)[-1] for p in report["excluded_files"]] == ["custom.pkl"]


def test_the_targets_policy_wins_over_the_working_directory(project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("cwd")
    (elsewhere / ".modelaudit.toml").write_text('exclude = ["evil.pkl"]\n[severity]\n"MA-P002" = "info"\n')
    (project / ".modelaudit.toml").write_text('exclude = ["custom.pkl"]\n')
    _, report = _json(project, str(project / "models"), cwd=elsewhere)
    assert report["config_file"] == str(project / ".modelaudit.toml")
    assert report["excluded_files"] == [str(project / "models" / "custom.pkl")]
    # a target with no policy above it: the working directory's applies, but its path patterns,
    # like a .gitignore's, cover only its own tree
    (project / ".modelaudit.toml").unlink()
    _, report = _json(project, str(project / "models"), cwd=elsewhere)
    assert report["config_file"] == str(elsewhere / ".modelaudit.toml")
    assert report["excluded_files"] == []
    assert {i["severity"] for i in report["issues"] if i["rule_code"] == "MA-P002"} == {"info"}


def test_targets_under_different_policies_need_a_choice(project, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    (other / ".modelaudit.toml").write_text("timeout = 30\n")
    np.save(other / "w.npy", np.zeros(3))
    (project / ".modelaudit.toml").write_text("timeout = 60\n")
    out = run_cli("scan", "models", str(other / "w.npy"), cwd=project)
    assert out.code == 2 and out.stdout == ""
    assert "different policy files" in out.stderr and "--config" in out.stderr
    chosen = run_cli("scan", "--format", "json", "--config", str(other / ".modelaudit.toml"), "models",
                     str(other / "w.npy"), cwd=project)
    assert chosen.json()["config_file"] == str(other / ".modelaudit.toml")


def test_config_flag_and_no_config(project):
    (project / ".modelaudit.toml").write_text(POLICY)
    ci = project / "ci"
    ci.mkdir()
    (ci / "strict.toml").write_text('[severity]\n"MA-P002" = "critical"\n')
    _, report = _json(project, "--config", "ci/strict.toml", "models")
    assert report["config_file"] == str(ci / "strict.toml") and report["suppressed_issues"] == []
    assert {i["severity"] for i in report["issues"] if i["rule_code"] == "MA-P002"} == {"critical"}
    _, report = _json(project, "--no-config", "models")
    assert report["config_file"] is None and len(_by_code(report)["MA-P001"]) == 2
    out = run_cli("scan", "--config", "ci/strict.toml", "--no-config", "models", cwd=project)
    assert out.code == 2 and "exclude each other" in out.stderr


def test_policy_limits_apply_and_flags_override_them(project):
    (project / ".modelaudit.toml").write_text('max-file-size = "40B"\ntimeout = 0.5\n')
    out, report = _json(project, "models/weights.npy")
    assert out.code == 2 and _by_code(report) == {"MA-S001": ["models/weights.npy"]}
    out, report = _json(project, "--max-file-size", "1MB", "models/weights.npy")
    assert out.code == 0 and report["issues"] == []
    # the timeout reached the engine: 0.5s from the file, the flag's value when given
    from modelaudit.policy import load_policy, merge_options

    policy = load_policy(str(project / ".modelaudit.toml"))
    assert merge_options(policy, {"timeout": None})["timeout"] == 0.5
    assert merge_options(policy, {"timeout": 300.0})["timeout"] == 300.0


def test_flags_combine_with_the_policy(project):
    (project / ".modelaudit.toml").write_text(
        'blacklist = ["custom"]\n[severity]\n"MA-P002" = "critical"\n"MA-S009" = "warning"\n')
    _, report = _json(project, "-S", "MA-P002=info", "--blacklist", "weights", "-s", "MA-P001", "models")
    codes = _by_code(report)
    assert "MA-P001" not in codes  # -s drops outright
    assert {i["severity"] for i in report["issues"] if i["rule_code"] == "MA-P002"} == {"info"}  # flag wins
    assert sorted(Path(loc).name for loc in codes["MA-S009"]) == ["custom.pkl", "weights.npy"]  # lists add up
    assert {i["severity"] for i in report["issues"] if i["rule_code"] == "MA-S009"} == {"warning"}  # file's other override stays


INVALID = [
    ("max-file-size = \n", "invalid TOML"),
    ('max-filesize = "1GB"\n', "unknown key 'max-filesize' (did you mean 'max-file-size'?)"),
    ('max-file-size = "12XB"\n', "max-file-size: invalid size"),
    ("max-file-size = true\n", "max-file-size: expected a size"),
    ("timeout = 0\n", "timeout: expected a positive number"),
    ('strict = "yes"\n', "strict: expected true or false"),
    ('[[suppress]]\ncode = "MA-P004"\n', "a suppression needs a reason"),
    ('[[suppress]]\ncode = "MA-P004"\nreason = "  "\n', "a suppression needs a reason"),
    ('[[suppress]]\ncode = "MA-Q999"\nreason = "x"\n', "unknown rule code(s) MA-Q999"),
    ('[[suppress]]\nreason = "x"\n', "needs a rule code"),
    ('[[suppress]]\ncode = "MA-P004"\nreason = "x"\npath = ["a"]\n', "unknown key 'path'"),
    ('suppress = ["MA-P004"]\n', "expected [[suppress]] tables"),
    ('[severity]\n"MA-P001" = "fatal"\n', "unknown severity 'fatal'"),
    ('[severity]\n"MA-Z998" = "info"\n', "unknown rule code(s) MA-Z998"),
    ("exclude = [1]\n", "expected a list of non-empty strings"),
    ("baseline = 3\n", "baseline: expected the path"),
]


@pytest.mark.parametrize(("body", "message"), INVALID)
def test_invalid_policies_stop_the_scan(project, body, message):
    (project / ".modelaudit.toml").write_text(body)
    out = run_cli("scan", "--format", "json", "models", cwd=project)
    assert out.code == 2 and out.stdout == ""
    assert str(project / ".modelaudit.toml") in out.stderr and message in out.stderr, out.stderr
    with pytest.raises(ConfigError, match=re.escape(message)):
        scan(project / "models", policy=True)


def test_a_broken_pyproject_counts_only_when_it_carries_our_table(project):
    (project / "pyproject.toml").write_text("[project\nname = 'x'\n")  # not ours: ignored
    out = run_cli("scan", "models/weights.npy", cwd=project)
    assert out.code == 0, out.stderr
    (project / "pyproject.toml").write_text("[tool.modelaudit]\ntimeout = \n")
    out = run_cli("scan", "models/weights.npy", cwd=project)
    assert out.code == 2 and "invalid TOML" in out.stderr
    out = run_cli("scan", "--config", str(project / "models" / "missing.toml"), "models", cwd=project)
    assert out.code == 2 and "policy file not found" in out.stderr
    (project / "other.toml").write_text("[tool.black]\nline-length = 1\n")
    (project / "pyproject.toml").write_text("[tool.black]\nline-length = 1\n")
    out = run_cli("scan", "--config", "pyproject.toml", "models", cwd=project)
    assert out.code == 2 and "no [tool.modelaudit] table" in out.stderr


def test_reported_config_file_in_text_json_and_sarif(project):
    (project / ".modelaudit.toml").write_text(POLICY)
    policy = str(project / ".modelaudit.toml")
    assert run_cli("scan", "models", cwd=project).stdout.startswith(f"Policy: {policy}\n")
    _, report = _json(project, "models")
    assert report["config_file"] == policy
    sarif = json.loads(run_cli("scan", "--format", "sarif", "models", cwd=project).stdout)
    run = sarif["runs"][0]
    assert run["properties"]["configFile"] == policy
    assert run["properties"]["excludedFiles"] == ["models/legacy/old.pkl"]
    [accepted] = [r for r in run["results"] if r.get("suppressions")]
    assert accepted["ruleId"] == "MA-P002"
    assert accepted["suppressions"] == [{"kind": "external", "status": "accepted",
                                         "justification": "CustomNorm is our own layer, reviewed"}]
    if SARIF_SCHEMA.exists():
        jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))


def test_policy_files_scanned_as_targets_are_clean(project):
    (project / ".modelaudit.toml").write_text(POLICY)
    (project / "pyproject.toml").write_text('[tool.modelaudit]\nblacklist = ["os.system", "posix"]\n'
                                            '[[tool.modelaudit.suppress]]\ncode = "MA-P001"\n'
                                            'reason = "pickle payloads like posix.system in fixtures"\n')
    out, report = _json(project, "--no-config", "--strict", ".modelaudit.toml", "pyproject.toml")
    assert out.code == 0 and report["issues"] == [] and report["files_scanned"] == 2


def test_the_api_reads_a_policy_only_when_asked(project):
    (project / ".modelaudit.toml").write_text(POLICY)
    plain = scan(project / "models")
    assert plain["config_file"] is None and "MA-P002" in {i["rule_code"] for i in plain["issues"]}
    found = scan(project / "models", policy=True)
    assert found["config_file"] == str(project / ".modelaudit.toml")
    assert {i["rule_code"] for i in found["suppressed_issues"]} == {"MA-P002"}
    assert [Path(p).name for p in found["excluded_files"]] == ["old.pkl"]
    named = scan(project / "models", policy=project / ".modelaudit.toml", max_file_size="40B")
    assert "MA-S001" in {i["rule_code"] for i in named["issues"]}  # a keyword wins over the file
    assert scan(project / "models", exclude_paths=[str(project / "models" / "legacy")])["excluded_files"]


# --- the documentation's examples work as written ------------------------------------------------------------


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_documented_policies_are_valid_and_do_what_they_say(project):
    from modelaudit.policy import load_policy

    dotfile, pyproject = _blocks("toml")
    (project / ".modelaudit.toml").write_text(dotfile)
    (project / "pyproject.toml").write_text(pyproject)
    for name in (".modelaudit.toml", "pyproject.toml"):
        load_policy(str(project / name))
    # the full example: legacy excluded, custom/ suppressed with its reason, renamed files critical
    (project / "models" / "custom").mkdir()
    shutil.move(project / "models" / "custom.pkl", project / "models" / "custom" / "norm.pkl")
    (project / "models" / "renamed.safetensors").write_bytes(b.payload())
    out = run_cli("scan", "--write-baseline", ".modelaudit-baseline.json", "models", cwd=project)
    assert out.code == 0, out.stderr
    out, report = _json(project, "models")
    assert out.code == 0 and report["config_file"] == str(project / ".modelaudit.toml")
    assert report["excluded_files"] == ["models/legacy/old.pkl"]
    assert {i["rule_code"] for i in report["suppressed_issues"]} == {"MA-P002"}
    assert {i["severity"] for i in report["issues"] if i["rule_code"] == "MA-S007"} == {"critical"}
    assert {i["baseline"] for i in report["issues"]} == {"unchanged"}


def test_documented_python_examples_run(project, monkeypatch):
    (project / ".modelaudit.toml").write_text(POLICY)
    (project / "ci").mkdir()
    (project / "ci" / ".modelaudit.toml").write_text('timeout = 60\n')
    [example] = _blocks("python")
    monkeypatch.chdir(project)
    namespace: dict = {}
    exec(compile(example, str(DOC), "exec"), namespace)  # the documentation's own code, not scanned content
    assert namespace["results"]["config_file"] == str(project / ".modelaudit.toml")


def test_strict_from_the_policy(project):
    (project / "models" / "blob.weird").write_bytes(bytes(range(256)) * 4)
    _, report = _json(project, "models/legacy", "models")
    assert "MA-S004" not in _by_code(report)
    (project / ".modelaudit.toml").write_text("strict = true\n")
    out, report = _json(project, "models")
    assert _by_code(report)["MA-S004"] == ["models/blob.weird"] and out.code == 1
