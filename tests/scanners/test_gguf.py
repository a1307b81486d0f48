"""GGUF / GGML: honest files from the real `gguf` writer are clean; crafted headers and
chat-template injections are findings, never crashes."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from gguf.quants import quantize

from modelaudit.scanners import _gguf_template
from tests.conftest import codes, findings, run_cli, scan
from tests.scanners._gguf_templates import HONEST_TEMPLATES

U8, I32, U32, F32, BOOL, STR, ARR, U64 = 0, 5, 4, 6, 7, 8, 9, 10


# --- byte builders -------------------------------------------------------------------
def s(text: str | bytes, wide: bool = True) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q" if wide else "<I", len(raw)) + raw


def kv(key: str, vtype: int, payload: bytes) -> bytes:
    return s(key) + struct.pack("<I", vtype) + payload


def kv_str(key: str, value: str) -> bytes:
    return kv(key, STR, s(value))


def kv_u32(key: str, value: int) -> bytes:
    return kv(key, U32, struct.pack("<I", value))


def tensor(name: str, dims: tuple[int, ...], ggml_type: int, offset: int) -> bytes:
    return (s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            + struct.pack("<IQ", ggml_type, offset))


def gguf(kvs: list[bytes] = (), tensors: list[bytes] = (), data: bytes = b"", *, version: int = 3,
         align: int = 32, n_kv: int | None = None, n_tensors: int | None = None) -> bytes:
    body = b"".join(kvs) + b"".join(tensors)
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                                  len(kvs) if n_kv is None else n_kv)
    raw = head + body
    return raw + b"\0" * ((-len(raw)) % align) + data


def write(tmp_path, raw: bytes, name: str = "model.gguf"):
    path = tmp_path / name
    path.write_bytes(raw)
    return path


def issues(result: dict, code: str) -> list[dict]:
    return [i for i in result["issues"] if i["rule_code"] == code]


def assert_finding(result: dict, code: str, needle: str = "") -> None:
    assert any(needle in i["message"] for i in issues(result, code)), result["issues"]
    assert not issues(result, "MA-S005"), result["issues"]  # a finding, never a scanner crash


# --- honest files from the real writer -------------------------------------------------
def real_gguf(path, template=None, named=None, extra=None) -> None:
    writer = GGUFWriter(str(path), arch="llama")
    writer.add_name("Tiny Llama Test")
    writer.add_author("Example Labs")
    writer.add_description("A tiny model for tests. See https://example.com/models/tiny and the paper at "
                           "https://arxiv.org/abs/2307.09288 for details; licensed under Apache-2.0.")
    writer.add_license("apache-2.0")
    writer.add_url("https://huggingface.co/example/tiny")
    writer.add_tags(["text-generation", "llama", "gguf"])
    writer.add_context_length(2048)
    writer.add_block_count(2)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(["<unk>", "<s>", "</s>", "hello", "▁world"])
    writer.add_token_scores([0.0, 0.0, 0.0, -1.5, -2.0])
    writer.add_token_types([2, 3, 3, 1, 1])
    if template is not None or named:
        writer.add_chat_template([{"name": "default", "template": template}] + [
            {"name": name, "template": text} for name, text in (named or {}).items()] if named else template)
    for key, value in (extra or {}).items():
        writer.add_string(key, value)
    rng = np.random.default_rng(0)
    writer.add_tensor("token_embd.weight", rng.random((5, 64), dtype=np.float32))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(64, dtype=np.float16))
    writer.add_tensor("blk.0.ids", np.arange(12, dtype=np.int32).reshape(3, 4))
    writer.add_tensor("blk.0.i8", np.arange(7, dtype=np.int8))
    writer.add_tensor("blk.0.f64", np.ones(3, dtype=np.float64))
    for qtype in (Q.Q8_0, Q.Q4_0, Q.Q5_0, Q.BF16, Q.TQ1_0):
        writer.add_tensor(f"blk.0.{qtype.name.lower()}", quantize(rng.random((4, 256), dtype=np.float32), qtype),
                          raw_dtype=qtype)
    writer.add_tensor("blk.0.q4_k", np.zeros((2, 144), dtype=np.uint8), raw_dtype=Q.Q4_K)
    writer.add_tensor("blk.0.q6_k", np.zeros((3, 210), dtype=np.uint8), raw_dtype=Q.Q6_K)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_real_writer_with_templates_is_clean(tmp_path):
    path = tmp_path / "tiny.gguf"
    real_gguf(path, HONEST_TEMPLATES["chatml"], named={"tool_use": HONEST_TEMPLATES["qwen_tools"],
                                                       "rag": HONEST_TEMPLATES["llama3"]})
    result = scan(path)
    assert findings(result) == [] and result["has_errors"] is False, result["issues"]
    assert result["assets"][0]["type"] == "gguf"
    names = {c["name"]: c["status"] for c in result["checks"]}
    assert names["gguf header"] == "passed" and names["gguf chat templates"] == "passed"
    assert result["bytes_scanned"] < path.stat().st_size


@pytest.mark.parametrize("name", sorted(HONEST_TEMPLATES))
def test_honest_templates_are_clean(tmp_path, name):
    path = tmp_path / f"{name}.gguf"
    real_gguf(path, HONEST_TEMPLATES[name])
    result = scan(path)
    assert findings(result, "info") == [], result["issues"]


def test_cli_exit_codes(tmp_path):
    clean, bad = tmp_path / "clean.gguf", tmp_path / "bad.gguf"
    real_gguf(clean, HONEST_TEMPLATES["mistral"])
    real_gguf(bad, "{{ cycler.__init__.__globals__.os.popen('id').read() }}")
    assert run_cli("scan", str(clean)).code == 0
    out = run_cli("scan", str(bad), "--format", "json")
    assert out.code == 1 and any(i["severity"] == "critical" for i in out.json()["issues"])


def test_huge_file_is_validated_from_the_header_only(tmp_path):
    n = 40 * 1000**3 // 34 * 32  # a 40 GB Q8_0 tensor, sparse on disk
    raw = gguf([kv_str("general.name", "big")], [tensor("w", (n,), 8, 0)])
    path = write(tmp_path, raw)
    with open(path, "r+b") as fh:
        fh.truncate(len(raw) + n // 32 * 34)
    result = scan(path)
    assert findings(result) == [] and result["bytes_scanned"] < 4096, result["issues"]


def test_custom_alignment_and_vocab_only_files_are_clean(tmp_path):
    for align, with_tensors in ((64, True), (32, False)):
        path = tmp_path / f"a{align}{with_tensors}.gguf"
        writer = GGUFWriter(str(path), arch="llama")
        writer.add_custom_alignment(align)
        writer.add_chat_template(HONEST_TEMPLATES["gemma"])
        if with_tensors:
            writer.add_tensor("a", np.ones((3, 5), dtype=np.float32))
            writer.add_tensor("b", np.ones(7, dtype=np.float16))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        assert findings(scan(path)) == []


def test_version_1_and_big_endian_files_are_read(tmp_path):
    v1 = (b"GGUF" + struct.pack("<III", 1, 1, 1) + s("general.name", False) + struct.pack("<I", STR)
          + s("old", False) + s("w", False) + struct.pack("<II", 1, 4) + struct.pack("<IQ", 0, 0))
    v1 += b"\0" * ((-len(v1)) % 32) + b"\0" * 32
    assert findings(scan(write(tmp_path, v1, "v1.gguf"))) == []
    be = (b"GGUF" + struct.pack(">IQQ", 3, 1, 1) + struct.pack(">Q", 12) + b"general.name" + struct.pack(">I", STR)
          + struct.pack(">Q", 2) + b"be" + struct.pack(">Q", 1) + b"w" + struct.pack(">IQIQ", 1, 8, 0, 0))
    be += b"\0" * ((-len(be)) % 32) + b"\0" * 32
    assert findings(scan(write(tmp_path, be, "be.gguf"))) == []


# --- hostile structure ---------------------------------------------------------------------
HOSTILE = {
    "version_0": (gguf(version=0), "MA-G001", "unsupported GGUF version 0"),
    "version_4": (gguf(version=4), "MA-G001", "unsupported GGUF version 4"),
    "truncated_header": (b"GGUF" + struct.pack("<I", 3) + b"\x01\x00", "MA-G001", "tensor count"),
    "tensor_count_past_file": (gguf(n_tensors=2**40), "MA-G001", "more than the"),
    "kv_count_past_file": (gguf(n_kv=2**63), "MA-G001", "more than the"),
    "huge_string_length": (gguf([kv("general.name", STR, struct.pack("<Q", 2**63))]), "MA-G002", "claims"),
    "huge_key_length": (gguf([struct.pack("<Q", 2**40) + b"abc"]), "MA-G002", "Key #0 claims"),
    "huge_array_count": (gguf([kv("a", ARR, struct.pack("<IQ", U8, 2**50))]), "MA-G002", "claims"),
    "array_size_overflow": (gguf([kv("a", ARR, struct.pack("<IQ", U64, 2**61 + 1))]), "MA-G002", "8-byte"),
    "string_array_count": (gguf([kv("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", STR, 2**40))]),
                           "MA-G002", "string elements"),
    "string_array_element_past_end": (gguf([kv("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", STR, 3) + s("a")
                                                  + struct.pack("<Q", 2**40) + b"bc" * 20)]),
                                      "MA-G002", "element #1 claims"),
    "string_array_element_cut_off": (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv("t", ARR, struct.pack("<IQ", STR, 2)
                                                                                  + s("a") + b"\x01" * 7),
                                     "MA-G002", "element #1 is cut off"),
    "nested_array_count": (gguf([kv("a", ARR, struct.pack("<IQ", ARR, 2**40))]), "MA-G002", "array elements"),
    "nested_too_deep": (gguf([kv("a", ARR, struct.pack("<IQ", ARR, 1) * 6 + struct.pack("<IQ", U8, 0))]),
                        "MA-G002", "nest deeper"),
    "unknown_value_type": (gguf([kv("a", 99, b"\0" * 8)]), "MA-G002", "unknown value type 99"),
    "unknown_element_type": (gguf([kv("a", ARR, struct.pack("<IQ", 77, 1))]), "MA-G002", "element type 77"),
    "string_past_end": (gguf([kv("general.name", STR, struct.pack("<Q", 50) + b"short")]), "MA-G002", "claims"),
    "duplicate_key": (gguf([kv_str("general.name", "a"), kv_str("general.name", "b")]), "MA-G002", "more than once"),
    "alignment_not_power_of_two": (gguf([kv_u32("general.alignment", 24)]), "MA-G002", "not a power of two"),
    "alignment_wrong_type": (gguf([kv("general.alignment", U64, struct.pack("<Q", 32))]), "MA-G002", "not uint32"),
    "key_not_utf8": (gguf([kv("gen\xff".encode("latin-1").decode("latin-1"), U8, b"\0")]), None, None),
    "n_dims_over_8": (gguf([], [tensor("w", (1,) * 9, 0, 0)], b"\0" * 32), "MA-G003", "9 dimensions"),
    "n_dims_huge": (gguf([], [s("w") + struct.pack("<I", 2**31)]), "MA-G003", "dimensions"),
    "unknown_ggml_type": (gguf([], [tensor("w", (4,), 200, 0)], b"\0" * 32), "MA-G003", "unknown ggml type 200"),
    "removed_ggml_type": (gguf([], [tensor("w", (32,), 4, 0)], b"\0" * 32), "MA-G003", "removed ggml type Q4_2"),
    "row_not_block_multiple": (gguf([], [tensor("w", (33,), 8, 0)], b"\0" * 64), "MA-G003", "block size 32"),
    "dims_overflow": (gguf([], [tensor("w", (2**40, 2**40), 0, 0)], b"\0" * 32), "MA-G003", "overflow"),
    "negative_dim": (gguf([], [tensor("w", (2**63 + 5,), 0, 0)], b"\0" * 32), "MA-G003", "negative as int64"),
    "offset_outside_file": (gguf([], [tensor("w", (4,), 0, 2**40)], b"\0" * 32), "MA-G003", "outside"),
    "data_past_end": (gguf([], [tensor("w", (64,), 0, 0)], b"\0" * 32), "MA-G003", "past the end"),
    "misaligned_offset": (gguf([], [tensor("a", (4,), 0, 0), tensor("b", (4,), 0, 20)], b"\0" * 64),
                          "MA-G003", "not a multiple of the alignment"),
    "overlapping": (gguf([], [tensor("a", (16,), 0, 0), tensor("b", (16,), 0, 32)], b"\0" * 96),
                    "MA-G003", "overlaps"),
    "gap": (gguf([], [tensor("a", (4,), 0, 0), tensor("b", (4,), 0, 96)], b"\0" * 128), "MA-G003", "undescribed"),
    "hidden_trailing_data": (gguf([], [tensor("a", (4,), 0, 0)], b"\0" * 32 + b"PAYLOAD" * 10), "MA-G003",
                             "hidden data"),
    "duplicate_tensor": (gguf([], [tensor("a", (8,), 0, 0), tensor("a", (8,), 0, 32)], b"\0" * 64), "MA-G003",
                         "more than once"),
    "truncated_tensor_info": (b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + tensor("w", (4,), 0, 0)[:-5], "MA-G003",
                              "offset of tensor"),
}
HOSTILE["key_not_utf8"] = (gguf([s(b"gen\xff") + struct.pack("<IB", U8, 0)]), "MA-G002", "not valid UTF-8")
HOSTILE["tensor_name_not_utf8"] = (gguf([], [s(b"w\xff") + struct.pack("<IQIQ", 1, 8, 0, 0)], b"\0" * 32), "MA-G003",
                                   "not valid UTF-8")


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_structure(tmp_path, case):
    raw, code, needle = HOSTILE[case]
    assert_finding(scan(write(tmp_path, raw)), code, needle)


def test_unreadable_header_is_incomplete(tmp_path):
    result = scan(write(tmp_path, gguf([kv("general.name", STR, struct.pack("<Q", 2**63))])))
    assert result["has_errors"] is True and any(c["status"] == "failed" for c in result["checks"])
    assert issues(result, "MA-G002")


def test_count_budgets_on_sparse_files(tmp_path):
    raw = gguf(n_tensors=2_000_000)
    path = write(tmp_path, raw)
    with open(path, "r+b") as fh:
        fh.truncate(2_000_000 * 40)
    result = scan(path)
    assert issues(result, "MA-G008") and not issues(result, "MA-G001"), result["issues"]


def test_findings_are_capped(tmp_path):
    tensors = [tensor(f"t{i}", (4,), 200, 0) for i in range(60)]
    result = scan(write(tmp_path, gguf([], tensors, b"\0" * 32)))
    found = issues(result, "MA-G003")
    assert len(found) == 26 and "35 more" in found[-1]["message"]


# --- chat templates --------------------------------------------------------------------------
ESCAPES = {
    "dunder_attribute": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "llama_cpp_python_cve": ("{% for x in ().__class__.__base__.__subclasses__() %}{% if 'warning' in x.__name__ %}"
                             "{{ x()._module.__builtins__['__import__']('os').popen('touch /tmp/x') }}"
                             "{% endif %}{% endfor %}"),
    "dunder_subscript": "{{ messages['__class__'] }}",
    "attr_filter": "{{ messages|attr('__class__') }}",
    "attr_filter_hex_escapes": "{{ messages|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "plus_concatenation": "{{ messages|attr('__cla' + 'ss__') }}",
    "tilde_concatenation": "{{ messages[('__in' ~ 'it__')] }}",
    "variables": "{% set a = '__glo' %}{% set b = a ~ 'bals__' %}{{ messages|attr(b) }}",
    "namespace_variables": "{% set ns = namespace(p='__') %}{% set ns.n = ns.p ~ 'class' ~ ns.p %}{{ m|attr(ns.n) }}",
    "loop_variable": "{% for k in ['__class__'] %}{{ messages[k] }}{% endfor %}",
    "join_filter": "{{ messages|attr(['__', 'class', '__']|join) }}",
    "join_method": "{{ messages|attr(''.join(['__', 'cla', 'ss__'])) }}",
    "format_filter": "{{ messages|attr('%sclass%s'|format('__', '__')) }}",
    "percent_chars": "{{ messages|attr('%c%cclass%c%c' % (95, 95, 95, 95)) }}",
    "str_format": "{{ messages|attr('{}class{}'.format('__', '__')) }}",
    "reverse_filter": "{{ messages|attr('__ssalc__'|reverse) }}",
    "reverse_slice": "{{ messages|attr('__ssalc__'[::-1]) }}",
    "repetition": "{{ messages|attr('_' * 2 + 'class' + '_' * 2) }}",
    "replace_filter": "{{ messages|attr('xxclassxx'|replace('x', '_')) }}",
    "dunder_built_at_run_time": "{{ messages|attr('__' ~ role ~ '__') }}",
    "dunder_keyword": "{{ dict(__class__=1)|first }}",
    "map_attribute": "{{ messages|map(attribute='__class__')|list }}",
    "map_attr_filter": "{{ messages|map('attr', '__class__')|list }}",
    "format_field_traversal": "{{ '{0.__class__}'.format(messages) }}",
    "lipsum_globals": "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "cycler_init": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "joiner_init": "{{ joiner.__init__.__globals__ }}",
    "namespace_init": "{{ namespace.__init__.__globals__ }}",
    "range_self": "{{ range|attr('__self__') }}",
    "self_init": "{{ self.__init__.__globals__.__builtins__ }}",
    "os_popen": "{{ os.popen('id').read() }}",
    "eval_name": "{{ eval('1+1') }}",
    "import_name": "{{ import('os') }}",
    "subprocess_attribute": "{{ messages.subprocess }}",
    "system_call": "{{ messages.system('id') }}",
}
SUSPICIOUS = {
    "flask_config": "{{ config.items() }}",
    "flask_request": "{{ request.args }}",
    "template_reference_context": "{{ self._TemplateReference__context }}",
    "private_attribute": "{{ messages._private }}",
    "dynamic_attr": "{{ messages|attr(name) }}",
    "include": "{% include 'other.jinja' %}",
    "import_statement": "{% import 'macros.jinja' as m %}",
    "lipsum_use": "{{ lipsum(1) }}",
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_template_escapes_are_critical(tmp_path, case):
    path = tmp_path / "evil.gguf"
    real_gguf(path, HONEST_TEMPLATES["chatml"] + ESCAPES[case])
    result = scan(path)
    found = issues(result, "MA-G004")
    assert found and all(i["severity"] == "critical" for i in found), result["issues"]
    assert "tokenizer.chat_template" in found[0]["message"]


@pytest.mark.parametrize("case", sorted(SUSPICIOUS))
def test_suspicious_template_constructs(tmp_path, case):
    path = tmp_path / "odd.gguf"
    real_gguf(path, HONEST_TEMPLATES["chatml"] + SUSPICIOUS[case])
    result = scan(path)
    assert issues(result, "MA-G005"), result["issues"]


def test_named_template_is_checked(tmp_path):
    path = tmp_path / "named.gguf"
    real_gguf(path, HONEST_TEMPLATES["chatml"], named={"tool_use": "{{ x|attr('__class__') }}"})
    found = issues(scan(path), "MA-G004")
    assert found and "tokenizer.chat_template.tool_use" in found[0]["message"]


def test_template_as_array_of_strings(tmp_path):
    raw = gguf([kv("tokenizer.chat_template", ARR, struct.pack("<IQ", STR, 2) + s(HONEST_TEMPLATES["chatml"])
                   + s("{{ lipsum.__globals__ }}"))])
    assert_finding(scan(write(tmp_path, raw)), "MA-G004", "__globals__")


def test_template_array_past_the_budget_is_incomplete(tmp_path):
    raw = gguf([kv("tokenizer.chat_template", ARR, struct.pack("<IQ", STR, 2000) + s("{{ x }}") * 2000)])
    result = scan(write(tmp_path, raw))
    assert issues(result, "MA-G008") and result["has_errors"] is True


def test_unparseable_and_deeply_nested_templates(tmp_path):
    for name, text in {"syntax": "{% for %}", "deep": "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"}.items():
        raw = gguf([kv_str("tokenizer.chat_template", text)])
        assert_finding(scan(write(tmp_path, raw, f"{name}.gguf")), "MA-G006", "does not parse")


def test_oversized_template_is_a_budget_finding(tmp_path):
    raw = gguf([kv_str("tokenizer.chat_template", "x" * (_gguf_template.MAX_TEMPLATE + 1))])
    result = scan(write(tmp_path, raw))
    assert issues(result, "MA-G008") and result["has_errors"] is True


def test_folding_budget_of_one_template(tmp_path):
    # each `y ~ y[:90]` folds to a 4 KiB string: thousands of them once held hundreds of MB
    text = "{% set y = '" + "a" * 4000 + "' %}" + "{{ y ~ y[:90] }}" * 400 + "{{ x|attr('__cla' ~ 'ss__') }}"
    result = scan(write(tmp_path, gguf([kv_str("tokenizer.chat_template", text)])))
    assert_finding(result, "MA-G008", "budget of text kept for inspection")
    assert result["has_errors"] is True and issues(result, "MA-G005")  # the hidden name is still not clean


def test_template_text_budget_per_file(tmp_path, monkeypatch):
    from modelaudit.scanners import gguf as gguf_scanner

    chatml = HONEST_TEMPLATES["chatml"]
    monkeypatch.setattr(gguf_scanner, "MAX_TEMPLATES_TOTAL", len(chatml) + 10)
    templates = [chatml, chatml, chatml + "{{ lipsum.__globals__ }}"]  # a copy is parsed once, not charged twice
    raw = gguf([kv("tokenizer.chat_template", ARR, struct.pack("<IQ", STR, 3) + b"".join(s(t) for t in templates))])
    result = scan(write(tmp_path, raw))
    (budget,) = issues(result, "MA-G008")
    assert "was not inspected" in budget["message"] and result["has_errors"] is True


def test_missing_jinja2_is_reported_and_structure_still_checked(tmp_path, monkeypatch):
    raw = gguf([kv_str("general.name", "a"), kv_str("general.name", "b"),
                kv_str("tokenizer.chat_template", HONEST_TEMPLATES["chatml"])])
    path = write(tmp_path, raw)
    monkeypatch.setitem(sys.modules, "jinja2", None)
    _gguf_template._jinja.cache_clear()
    try:
        result = scan(path)
    finally:
        _gguf_template._jinja.cache_clear()
    missing = issues(result, "MA-S006")
    assert missing and "jinja2 not installed, cannot scan GGUF chat templates" in missing[0]["message"]
    assert "pip install 'modelaudit[gguf]'" in missing[0]["message"]
    assert issues(result, "MA-G002") and result["has_errors"] is True


def test_template_parsing_never_compiles_or_renders():
    code = textwrap.dedent("""
        import sys
        from modelaudit.scanners._gguf_template import analyze
        analyze("{{ x }}")  # warm up lazy imports (codecs) before watching
        events = []
        sys.addaudithook(lambda e, a: events.append(e) if e in ("compile", "exec", "os.system") else None)
        analyze("{% macro m(a) %}{{ a.__class__ }}{% endmacro %}{{ m(1) }}{{ lipsum.__globals__.os.popen('id') }}")
        assert events == [], events
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


# --- metadata text -----------------------------------------------------------------------------
def test_general_metadata_code_and_credentials(tmp_path):
    path = tmp_path / "meta.gguf"
    real_gguf(path, extra={"general.notes": "__import__('os').system('echo hi')",
                           "general.source.token": "hf_" + "a1B2c3D4" * 5})
    result = scan(path)
    assert {"MA-C001", "MA-C002"} <= codes(result)


# --- legacy GGML ---------------------------------------------------------------------------------
def ggjt(version: int = 3, hparams: tuple[int, ...] = (3, 64, 256, 4, 2, 16, 1), vocab: list[bytes] | None = None,
         magic: bytes = b"tjgg") -> bytes:
    tokens = vocab if vocab is not None else [b"a", b"bc", b"def"]
    out = magic + struct.pack("<I", version) + struct.pack("<7i", *hparams)
    for token in tokens:
        out += struct.pack("<I", len(token)) + token + struct.pack("<f", 0.0)
    return out + b"\0" * 64


def test_legacy_ggjt_and_ggmf_are_clean(tmp_path):
    assert findings(scan(write(tmp_path, ggjt(), "model.bin"))) == []
    assert findings(scan(write(tmp_path, ggjt(version=1, magic=b"fmgg"), "old.bin"))) == []
    lora = b"algg" + struct.pack("<III", 1, 8, 16) + b"\0" * 64
    assert findings(scan(write(tmp_path, lora, "adapter.bin"))) == []
    unversioned = b"lmgg" + struct.pack("<6i", 50257, 1024, 768, 12, 12, 1) + b"\0" * 64
    assert findings(scan(write(tmp_path, unversioned, "gpt2.bin"))) == []


@pytest.mark.parametrize("raw,needle", [
    (ggjt(version=9), "version 9"),
    (ggjt(hparams=(3, -64, 256, 4, 2, 16, 1)), "n_embd"),
    (ggjt(hparams=(2**30, 64, 256, 4, 2, 16, 1)), "n_vocab"),
    (ggjt(hparams=(1000, 64, 256, 4, 2, 16, 1)), "cannot fit"),
    (ggjt(vocab=[b"a"])[:45] + struct.pack("<I", 2**31) + b"\0" * 40, "claims"),
    (b"tjgg" + struct.pack("<I", 3) + b"\x01\x00", "hyper-parameter"),
    (b"algg" + struct.pack("<III", 1, 0, 16) + b"\0" * 8, "rank 0"),
    (b"lmgg" + struct.pack("<6i", 50257, -1, 768, 12, 12, 1), "negative"),
])
def test_legacy_ggml_hostile(tmp_path, raw, needle):
    assert_finding(scan(write(tmp_path, raw, "model.ggml")), "MA-G007", needle)
