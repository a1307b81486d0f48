"""Hugging Face-style configs: honest repositories are clean, custom code is a warning naming the
module, chat templates are inspected, blacklisted names and credentials are found; vocabularies
and ordinary JSON/YAML never are."""

from __future__ import annotations

import json

import pytest

from modelaudit.detect import detect
from tests.conftest import codes, findings, scan
from tests.scanners._gguf_templates import HONEST_TEMPLATES
from tests.scanners._hf_repo import CONFIG, TOKENIZER_CONFIG, tokenizer_json, vocab, write_repo

ESCAPE = "{{ cycler.__init__.__globals__.os.popen('echo modelaudit-test').read() }}"
SUSPICIOUS = "{% for m in messages %}{{ m | attr(request.args.a) }}{% endfor %}"


def _json(path, value) -> None:
    path.write_text(json.dumps(value, indent=2))


def _config(tmp_path, value: dict, name: str = "config.json"):
    path = tmp_path / name
    _json(path, value)
    return path


def test_honest_repository_is_clean(tmp_path, cli):
    repo = write_repo(tmp_path / "repo")
    result = scan(repo)
    assert findings(result, "info") == [], findings(result, "info")
    types = {a["path"].rsplit("/", 1)[-1]: a["type"] for a in result["assets"]}
    assert types["config.json"] == types["tokenizer_config.json"] == types["adapter_config.json"] == "hf_config"
    assert types["vocab.json"] == types["tokenizer.json"] == "json" and types["merges.txt"] == "text"
    assert types["modeling_tinyllm.py"] == "python" and types["README.md"] == "text"
    assert cli("scan", "--format", "json", str(repo)).code == 0


def test_vocabularies_with_urls_and_code_like_tokens_are_clean(tmp_path):
    for name, value in {"vocab.json": vocab(60_000), "tokenizer.json": tokenizer_json(60_000),
                        "added_tokens.json": {"eval(": 60001, "https://x.example": 60002}}.items():
        _json(tmp_path / name, value)
    (tmp_path / "merges.txt").write_text("#version: 0.2\nh ttp\nev al(\nim port\nos .system\n")
    result = scan(tmp_path)
    assert findings(result, "info") == [] and result["has_errors"] is False


def test_ordinary_json_and_yaml_stay_with_the_text_scanner(tmp_path, cli):
    files = {"package.json": {"name": "app", "scripts": {"build": "tsc && node dist/index.js"}},
             "settings.json": {"python.defaultInterpreterPath": "/usr/bin/python3"},
             "config.json": {"port": 8080, "url": "https://example.com/api", "debug": False}}
    for name, value in files.items():
        _json(tmp_path / name, value)
    (tmp_path / "ci.yaml").write_text("steps:\n  - run: pip install -r requirements.txt && python -c 'import os'\n")
    run = cli("scan", "--format", "json", *(str(tmp_path / n) for n in [*files, "ci.yaml"]))
    assert run.code == 0, run.stdout
    report = run.json()
    assert report["issues"] == [] and set(report["scanner_names"]) == {"text", "hf_config"}
    assert detect(b'{"a": 1}', "settings.json").format == "json"


def test_auto_map_is_a_warning_naming_module_and_class(tmp_path):
    repo = write_repo(tmp_path / "repo", auto_map=True)
    result = scan(repo)
    custom = [i for i in findings(result) if i["rule_code"] == "MA-H001"]
    assert {i["severity"] for i in findings(result)} == {"warning"} and len(custom) == len(findings(result)) == 2
    modeling = next(i for i in custom if i["details"]["module"] == "modeling_tinyllm")
    assert "modeling_tinyllm.TinyLlmForCausalLM" in modeling["message"] and "present in this directory" in \
        modeling["message"]
    assert modeling["details"]["module_present"] is True
    assert modeling["details"]["architectures"] == ["TinyLlmForCausalLM"]
    assert modeling["details"]["auto_classes"] == ["AutoModel", "AutoModelForCausalLM"]


def test_auto_map_module_missing_or_in_another_repository(tmp_path):
    path = _config(tmp_path, dict(CONFIG, auto_map={"AutoModel": "modeling_gone.GoneModel",
                                                    "AutoModelForCausalLM": "someone/other-repo--modeling_x.XLM"}))
    custom = {i["details"]["module"]: i for i in scan(path)["issues"] if i["rule_code"] == "MA-H001"}
    assert custom["modeling_gone"]["details"]["module_present"] is False
    assert "not in this directory" in custom["modeling_gone"]["message"]
    assert custom["modeling_x"]["details"]["repository"] == "someone/other-repo"
    assert "from the repository 'someone/other-repo'" in custom["modeling_x"]["message"]


def test_peft_auto_mapping_outside_known_libraries(tmp_path):
    honest = {"base_model_name_or_path": "acme/tinyllm-1b", "peft_type": "LORA",
              "auto_mapping": {"base_model_class": "TinyLlmForCausalLM", "parent_library": "transformers.models.auto"}}
    assert findings(scan(_config(tmp_path, honest, "adapter_config.json"))) == []
    odd = dict(honest, auto_mapping={"base_model_class": "Net", "parent_library": "custom_models.net"})
    hits = [i for i in scan(_config(tmp_path, odd, "adapter_config.json"))["issues"] if i["rule_code"] == "MA-H001"]
    assert len(hits) == 1 and "'custom_models.net'" in hits[0]["message"]


def test_tokenizer_auto_map_pairs_nested_configs_pipelines_and_flags(tmp_path):
    tok = dict(TOKENIZER_CONFIG, auto_map={"AutoTokenizer": ["tokenization_tinyllm.TinyLlmTokenizer", None]})
    assert codes(scan(_config(tmp_path, tok, "tokenizer_config.json")), "warning") == {"MA-H001"}
    nested = dict(CONFIG, text_config={"model_type": "x", "auto_map": {"AutoModel": "modeling_text.TextModel"}},
                  custom_pipelines={"text-classification": {"impl": "pipeline_x.MyPipeline", "pt": ["AutoModel"]}},
                  vision_config={"trust_remote_code": True})
    messages = [i["message"] for i in scan(_config(tmp_path, nested))["issues"] if i["rule_code"] == "MA-H001"]
    assert len(messages) == 3
    assert any("modeling_text.TextModel" in m for m in messages) and any("pipeline_x.MyPipeline" in m for m in messages)
    assert any("vision_config.trust_remote_code" in m for m in messages)


@pytest.mark.parametrize("name", sorted(HONEST_TEMPLATES))
def test_honest_chat_templates_are_clean(tmp_path, name):
    path = _config(tmp_path, dict(TOKENIZER_CONFIG, chat_template=HONEST_TEMPLATES[name]), "tokenizer_config.json")
    assert findings(scan(path), "info") == []


@pytest.mark.parametrize("layout", ["string", "list", "chat_template.json", "jinja", "processor"])
def test_hostile_chat_templates_are_critical(tmp_path, layout):
    if layout == "string":
        path = _config(tmp_path, dict(TOKENIZER_CONFIG, chat_template=ESCAPE), "tokenizer_config.json")
    elif layout == "list":
        templates = [{"name": "default", "template": HONEST_TEMPLATES["chatml"]}, {"name": "tool_use",
                                                                                   "template": ESCAPE}]
        path = _config(tmp_path, dict(TOKENIZER_CONFIG, chat_template=templates), "tokenizer_config.json")
    elif layout == "chat_template.json":
        path = _config(tmp_path, {"chat_template": ESCAPE}, "chat_template.json")
    elif layout == "processor":
        path = _config(tmp_path, {"processor_class": "XProcessor", "chat_template": ESCAPE}, "processor_config.json")
    else:
        path = tmp_path / "chat_template.jinja"
        path.write_text(ESCAPE)
    result = scan(path)
    hits = [i for i in result["issues"] if i["rule_code"] == "MA-G004"]
    assert hits and all(i["severity"] == "critical" for i in hits)
    if layout == "list":
        assert all("tool_use" in i["message"] for i in hits)


def test_suspicious_and_unparseable_templates(tmp_path):
    path = _config(tmp_path, dict(TOKENIZER_CONFIG, chat_template=SUSPICIOUS), "tokenizer_config.json")
    assert "MA-G005" in codes(scan(path))
    path = _config(tmp_path, dict(TOKENIZER_CONFIG, chat_template="{% for m in messages %}{{ m "),
                   "tokenizer_config.json")
    assert "MA-G006" in codes(scan(path))
    honest = tmp_path / "additional.jinja"
    honest.write_text(HONEST_TEMPLATES["llama3"])
    assert findings(scan(honest), "info") == []


@pytest.mark.parametrize("name,value,pattern,field", [
    ("config.json", dict(CONFIG, model_type="qwen2", _name_or_path="Qwen/Qwen2-7B"), "qwen", "model_type"),
    ("config.json", dict(CONFIG, architectures=["DeepseekV3ForCausalLM"]), "deepseek", "architectures"),
    ("config.json", CONFIG, "acme/tinyllm-*", "_name_or_path"),
    ("adapter_config.json", {"base_model_name_or_path": "evil-org/unsafe_model-7b", "peft_type": "LORA"},
     "unsafe_model", "base_model_name_or_path"),
])
def test_blacklisted_names_in_config_metadata(tmp_path, name, value, pattern, field):
    path = _config(tmp_path, value, name)
    hits = [i for i in scan(path, blacklist_patterns=[pattern])["issues"] if i["rule_code"] == "MA-S009"]
    assert hits and hits[0]["severity"] == "critical" and hits[0]["details"]["field"].startswith(field)
    assert not [i for i in scan(path, blacklist_patterns=["mistral"])["issues"] if i["rule_code"] == "MA-S009"]


def test_blacklist_from_the_cli(tmp_path, cli):
    path = _config(tmp_path, dict(CONFIG, model_type="qwen2"))
    run = cli("scan", "--format", "json", "--blacklist", "qwen", str(path))
    assert run.code == 1 and "MA-S009" in {i["rule_code"] for i in run.json()["issues"]}


@pytest.mark.parametrize("secret,kind", [
    ("hf_" + "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwX", "Hugging Face token"),
    ("AKIAIOSFODNN7EXAMPLE", "AWS access key"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", "private key"),
])
def test_credentials_in_configs(tmp_path, secret, kind):
    path = _config(tmp_path, dict(CONFIG, hub_config={"token": secret}))
    hits = [i for i in scan(path)["issues"] if i["rule_code"] == "MA-C002"]
    assert len(hits) == 1 and hits[0]["details"] == {"field": "hub_config.token", "kind": kind}


@pytest.mark.parametrize("raw", [b"{not json", b'{"a": ' * 100_000, b"\xff\xfe{}"])
def test_malformed_configs_are_findings_not_crashes(tmp_path, raw):
    path = tmp_path / "config.json"
    path.write_bytes(raw)
    result = scan(path)
    assert "MA-H009" in codes(result) or detect(raw, "config.json").format != "hf_config"
    assert "MA-S005" not in codes(result)


def test_non_object_config_and_bad_auto_map_types(tmp_path):
    assert findings(scan(_config(tmp_path, [1, 2, 3])), "info") == []
    result = scan(_config(tmp_path, dict(CONFIG, auto_map=["modeling_x.X"])))
    assert codes(result, "warning") == {"MA-H009"}


def test_config_json_with_comments_is_read_not_rejected(tmp_path):
    """Apps and editors write config.json with comments and trailing commas; they must pass a repo-wide scan,
    and what they hold is still inspected."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "config.json").write_text(
        '{\n  // server settings\n  "model_type": "bert", /* block */ "url": "http://a/*b*/c",\n  "ports": [1, 2,],\n}\n')
    result = scan(tmp_path / "app")
    assert findings(result) == [] and not result["has_errors"]
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(
        '{\n  // custom code\n  "model_type": "x",\n  "auto_map": {"AutoModel": "evil_mod.Evil"},\n}\n')
    assert "MA-H001" in codes(scan(tmp_path / "hf"))


def test_deep_config_with_long_keys_keeps_memory_to_its_depth(tmp_path):
    # every value's path was built in full: 300 levels of 1,000-character keys over 3,000 strings held ~1 GB of
    # paths; paths are now cut at MAX_PATH characters and values are walked without being queued
    from modelaudit.scanners.hf_config import MAX_PATH

    doc: dict = {f"s{i}": "plain" for i in range(3000)}
    doc["token"] = "hf_" + "a" * 34
    for _ in range(300):
        doc = {"k" * 1000: doc}
    result = scan(_config(tmp_path, doc))
    hits = [i for i in result["issues"] if i["rule_code"] == "MA-C002"]
    assert len(hits) == 1 and len(hits[0]["details"]["field"]) <= MAX_PATH + 1, result["issues"][:3]
    assert hits[0]["details"]["field"].endswith("…") and not result["has_errors"]


@pytest.mark.parametrize("text,parsed", [
    ('{"a": "x // not a comment", /* c */ "b": [1, 2,],}', True),
    ('{"a": "escaped \\" // quote", // c\n "b": 1}', True),
    ('{"a": 1 /* never closed', False),
    ('{"a": "never closed // x}', False),
    ('{"a": 1, ' + '/*' * 200000, False),
])
def test_jsonc_edge_cases(tmp_path, text, parsed):
    result = scan(_raw(tmp_path, text))
    assert ("MA-H009" in codes(result)) is not parsed, result["issues"]


def _raw(tmp_path, text: str):
    path = tmp_path / "config.json"
    path.write_text(text)
    return path
