"""Large and hostile chat templates: a payload at the end of a long template is still found, however the
template around it is built; a template the analysis could not finish marks the file incomplete."""

from __future__ import annotations

import json

import jinja2
import pytest

from modelaudit.scanners import _gguf_template as template
from modelaudit.scanners._gguf_values import children
from tests.conftest import codes, scan
from tests.scanners._gguf_templates import HONEST_TEMPLATES
from tests.scanners.test_gguf import real_gguf

PAYLOAD = "{{ messages|attr('__cla' ~ 'ss__') }}"
LIMIT = template.MAX_TEMPLATE


def _repeat(unit: str, size: int) -> str:
    return unit * (size // len(unit))


# hostile shapes around the payload: each is honest on its own (no finding) and costly to walk
SHAPES = {
    "filters": "{{ x" + "|trim|lower|upper|replace('a', 'b')" * 40 + " }}\n",
    "concatenation": "{% set s = " + " ~ ".join(f"'p{i}'" for i in range(150)) + " %}{{ s }}\n",
    "additions": "{{ " + " + ".join(["part"] * 150) + " }}\n",
    "attribute_chain": "{{ message" + "".join(f".f{i}" for i in range(80)) + "['content']" * 20 + " }}\n",
    "nesting": "{% if a %}" * 60 + "{{ ((((x)))) }}" + "{% endif %}" * 60 + "\n",
    "loops": "{% for m in messages %}{% set c = m['content'] %}{{ c ~ '\\n' ~ loop.index }}{% endfor %}\n",
}


def _config(tmp_path, text: str):
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": text}))
    return path


def test_payload_at_the_end_of_a_megabyte_template(tmp_path):
    honest = HONEST_TEMPLATES["llama3"] + HONEST_TEMPLATES["qwen_tools"]
    text = _repeat(honest, LIMIT - len(PAYLOAD) - 1) + PAYLOAD
    assert len(text) > 0.9 * LIMIT
    result = scan(_config(tmp_path, text))
    hits = [i for i in result["issues"] if i["rule_code"] == "MA-G004"]
    assert hits and hits[0]["severity"] == "critical" and "__class__" in hits[0]["message"]
    assert hits[0]["details"]["line"] == text.count("\n") + 1
    assert codes(result, "warning") == {"MA-G004"} and not result["has_errors"]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_hostile_shapes_stay_quiet_and_keep_the_payload(shape):
    text = _repeat(SHAPES[shape], 60_000)
    assert template.analyze(text) == []
    found = template.analyze(text + PAYLOAD)
    assert [(f.code, f.detail) for f in found] == [("MA-G004", "__class__")]


def test_payload_at_the_end_of_a_large_gguf_template(tmp_path):
    text = _repeat(HONEST_TEMPLATES["qwen_tools"], 400_000) + "{{ lipsum.__globals__['os'].popen('id') }}"
    path = tmp_path / "big.gguf"
    real_gguf(path, text)
    result = scan(path)
    found = {i["details"].get("construct") for i in result["issues"] if i["rule_code"] == "MA-G004"}
    assert {"__globals__", "gadget:lipsum"} <= found and not result["has_errors"]


def test_folding_budget_marks_the_config_incomplete(tmp_path, cli):
    # thousands of 4000-character folded strings pass the folding budget; the rest is not folded
    text = "{% set x = 'ab' * 2000 %}" * 1100 + "{{ x }}"
    path = _config(tmp_path, text)
    result = scan(path)
    assert codes(result, "warning") == {"MA-G008"} and result["has_errors"]
    assert cli("scan", "--format", "json", str(path)).code == 2  # incomplete, nothing worse found
    path.write_text(json.dumps({"chat_template": text + "{{ m|attr(x) }}"}))  # x unknown past the budget
    assert cli("scan", "--format", "json", str(path)).code == 1  # a warning finding outranks incomplete
    honest = _config(tmp_path, HONEST_TEMPLATES["llama3"])
    assert not scan(honest)["has_errors"]


@pytest.mark.parametrize("name", sorted(HONEST_TEMPLATES))
def test_parse_and_walk_match_jinja(name):
    env = template._jinja()[0]
    for text in (HONEST_TEMPLATES[name], HONEST_TEMPLATES[name] + SHAPES["filters"] + PAYLOAD):
        ours, theirs = template.parse(text), env.parse(text)
        assert ours == theirs
        for node in template._all_nodes(ours, jinja2.nodes.Node):
            assert children(node, jinja2.nodes.Node) == list(node.iter_child_nodes())
        assert [n.lineno for n in template._all_nodes(ours, jinja2.nodes.Node)] == \
            [n.lineno for n in template._all_nodes(theirs, jinja2.nodes.Node)]


def test_parse_errors_are_still_reported():
    with pytest.raises(template.TemplateSyntax) as err:
        template.parse(_repeat(SHAPES["loops"], 20_000) + "{% for m in messages %}{{ m ")
    assert err.value.line == 20_000 // len(SHAPES["loops"]) + 1
    with pytest.raises(template.TemplateSyntax, match="nest too deeply"):
        template.parse("{{ " + "(" * 5000 + "a" + ")" * 5000 + " }}")
