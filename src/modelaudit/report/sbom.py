"""CycloneDX 1.6 SBOM (`--sbom FILE`), written with cyclonedx-python-lib (the `sbom` extra).

What it holds:

* One component per scanned file, and nested inside it one per archive member the scan read
  (zip, tar and 7z entries, PyTorch and Keras archive members, decompressed payloads), each with its
  SHA-256 and size as recorded during the scan (inventory.py) and a type: `machine-learning-model`
  for model formats, `data` for arrays and configuration, `file` for everything else. A member's
  bom-ref is its location, `archive.zip:dir/member.pkl`, so findings name it the same way.
* Licences: those a component states itself (licence file text, model card, config, safetensors
  or GGUF metadata) are `declared`; a component that states none gets, as `concluded`, those of the
  nearest licence file or model card beside it or in a parent directory (for archive members: in the
  archive, then the archive's own), and the property `modelaudit:license_source` names that file.
  SPDX ids where the text maps to one, otherwise a named licence. Copyright statements likewise.
* Model classification: a `modelCard` on model components with the task, architecture and training
  datasets that the model's metadata, the model card (README.md front matter) or config.json state;
  configuration and array files carry `data` entries.
* Risk: every component has the property `modelaudit:risk_score`, computed over every finding
  located in the component or in any member nested in it:

      risk_score = 10 x critical + 4 x warning + 1 x info   (debug findings weigh 0)

  so an archive scores at least as high as its worst member, and a clean component scores 0.
* Findings: one CycloneDX vulnerability per finding, `id` the rule code, `source` modelaudit, the
  severity as a rating (critical -> critical, warning -> medium, info -> info, debug -> none),
  `description` the message, `detail` the rule's explanation, CWE ids from the catalog, and
  `affects` the component the finding is located in (the member, for a finding inside an archive).

cyclonedx-python-lib does not model `modelCard` and `data` yet; they are added to its JSON output,
and tests validate the result against the CycloneDX 1.6 JSON schema.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..engine import ScanRun
from ..errors import ModelAuditError
from ..model import Asset, FileResult, Issue, IssueSeverity
from ..provenance import merge
from ..rules import RULES

RISK_WEIGHTS = {IssueSeverity.CRITICAL: 10, IssueSeverity.WARNING: 4, IssueSeverity.INFO: 1, IssueSeverity.DEBUG: 0}
_RATING = {IssueSeverity.CRITICAL: "critical", IssueSeverity.WARNING: "medium", IssueSeverity.INFO: "info",
           IssueSeverity.DEBUG: "none"}
MODEL_FORMATS = frozenset({
    "pickle", "joblib_zfile", "pytorch_zip", "pytorch_legacy", "torchscript", "torchserve", "executorch",
    "safetensors", "gguf", "ggml", "onnx", "hdf5", "keras_zip", "pb", "pbtxt", "tflite", "msgpack", "pmml",
    "xgboost_binary", "xgboost_json", "xgboost_ubj", "lightgbm", "catboost"})
DATA_FORMATS = {"numpy": "dataset", "npz": "dataset", "json": "configuration", "yaml": "configuration",
                "xml": "configuration", "hf_config": "configuration", "chat_template": "configuration"}
# Hugging Face licence ids that are not SPDX ids, by the name of the licence they stand for
_HF_LICENCES = {
    "openrail": "OpenRAIL", "openrail++": "OpenRAIL++-M", "creativeml-openrail-m": "CreativeML OpenRAIL-M",
    "bigscience-openrail-m": "BigScience OpenRAIL-M", "bigscience-bloom-rail-1.0": "BigScience BLOOM RAIL 1.0",
    "bigcode-openrail-m": "BigCode OpenRAIL-M", "llama2": "Llama 2 Community License Agreement",
    "llama3": "Llama 3 Community License Agreement", "llama3.1": "Llama 3.1 Community License Agreement",
    "llama3.2": "Llama 3.2 Community License Agreement", "llama3.3": "Llama 3.3 Community License Agreement",
    "gemma": "Gemma Terms of Use", "apple-ascl": "Apple Sample Code License",
}
_POS_SUFFIX = re.compile(r"\s*\(pos \d+\)$")
_INSTALL = "pip install 'modelaudit[sbom]'"


class SbomError(ModelAuditError):
    """The SBOM cannot be written (missing dependency, unwritable file)."""


def require_cyclonedx() -> None:
    """Fail early, before a long scan, when the optional dependency is missing."""
    try:
        import cyclonedx.output.json  # noqa: F401
    except ImportError:
        raise SbomError("cyclonedx-python-lib is not installed, so --sbom cannot write a CycloneDX SBOM. "
                        f"Install it with: {_INSTALL}") from None


@dataclass(eq=False)
class _Node:
    """A component under construction: a scanned file or one of its archive members."""

    asset: Asset
    file: FileResult
    location: str  # what findings say: the file path, or path:member
    name: str
    directory: str  # where licence files beside it would be (inside its container for members)
    parent: _Node | None = None
    ref: str = ""
    children: list[_Node] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    accepted: list[tuple[Issue, str]] = field(default_factory=list)  # suppressed by the policy, with the reason
    members: dict[str, _Node] = field(default_factory=dict)  # of a file: its members by relative path

    @property
    def facts(self) -> dict[str, Any]:
        return self.asset.provenance

    def walk(self) -> Iterator[_Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def risk(self) -> int:
        return sum(RISK_WEIGHTS[i.severity] for node in self.walk() for i in node.issues)


def render_sbom(run: ScanRun) -> str:
    """The SBOM of a finished scan, as CycloneDX 1.6 JSON text."""
    require_cyclonedx()
    from cyclonedx.model.bom import Bom
    from cyclonedx.output.json import JsonV1Dot6

    tree = _Tree(run)
    bom = Bom(components=[tree.component(node) for node in tree.roots],
              vulnerabilities=[tree.vulnerability(n, issue, node, reason)
                               for n, (issue, node, reason) in enumerate(tree.findings())])
    _describe_tool(bom, run)
    data = json.loads(JsonV1Dot6(bom).output_as_string())
    _add_unmodelled(data.get("components", []), tree.extras)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_sbom(run: ScanRun, path: str) -> None:
    text = render_sbom(run)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise SbomError(f"cannot write the SBOM to {path}: {exc.strerror or exc}") from exc


class _Tree:
    """Files and members as nodes with unique bom-refs, findings assigned to the node they are in."""

    def __init__(self, run: ScanRun) -> None:
        self.run = run
        self.roots: list[_Node] = []
        self.extras: dict[str, dict[str, Any]] = {}  # bom-ref -> modelCard / data, added after serializing
        self._refs: set[str] = set()
        self._docs: dict[tuple[int, str], list[_Node]] = {}
        for file in run.files:
            self.roots.append(self._file_node(file))
        roots = {root.location: root for root in reversed(self.roots)}
        for accepted in getattr(run, "suppressed", ()):  # policy.Suppressed: issue, path, reason
            root = roots.get(accepted.path)
            if root is not None:
                self._locate(root, accepted.issue).accepted.append((accepted.issue, accepted.reason))
        for root in self.roots:
            for node in root.walk():
                if node.facts.get("source") in ("license-file", "model-card", "config"):
                    self._docs.setdefault((id(node.parent), node.directory), []).append(node)

    def _unique(self, ref: str) -> str:
        candidate, n = ref, 1
        while candidate in self._refs:
            n += 1
            candidate = f"{ref}#{n}"
        self._refs.add(candidate)
        return candidate

    def _file_node(self, file: FileResult) -> _Node:
        asset = file.assets[0] if file.assets else Asset(file.path, file.format)
        path = file.path.replace(os.sep, "/")
        root = _Node(asset, file, file.path, file.path, posixpath.dirname(path))
        root.ref = self._unique(file.path)
        by_rel = root.members
        for member in asset.members:  # recorded outer before inner: a parent precedes its members
            parent_rel = _longest_prefix(member.path, by_rel)
            parent = by_rel[parent_rel] if parent_rel is not None else root
            inner = member.path[len(parent_rel) + 1:] if parent_rel is not None else member.path
            node = _Node(member, file, f"{file.path}:{member.path}", inner, posixpath.dirname(inner), parent)
            node.ref = self._unique(node.location)
            parent.children.append(node)
            by_rel[member.path] = node
        for issue in file.issues:
            self._locate(root, issue).issues.append(issue)
        return root

    @staticmethod
    def _locate(root: _Node, issue: Issue) -> _Node:
        """The deepest member the issue's location names, else the file."""
        location = _POS_SUFFIX.sub("", issue.location or "")
        rel = location[len(root.location) + 1:] if location.startswith(root.location + ":") else None
        target = _longest_prefix(rel, root.members)
        return root.members[target] if target is not None else root

    def findings(self) -> Iterator[tuple[Issue, _Node, str | None]]:
        """Every finding with its component, and the policy's reason for those it accepted."""
        for root in self.roots:
            for node in root.walk():
                for issue in node.issues:
                    yield issue, node, None
                for issue, reason in node.accepted:
                    yield issue, node, reason

    # --- components ---------------------------------------------------------------------------------

    def component(self, node: _Node) -> Any:
        from cyclonedx.model import HashAlgorithm, HashType, Property
        from cyclonedx.model.component import Component, ComponentType
        from cyclonedx.model.contact import OrganizationalContact

        kind = _component_type(node.asset.type)
        licences, copyright_, sources = self._licences(node)
        props = [("modelaudit:location", node.location), ("modelaudit:format", node.asset.type),
                 ("modelaudit:risk_score", str(node.risk())),
                 ("modelaudit:findings", str(sum(len(n.issues) for n in node.walk())))]
        if node.parent is None:
            props.append(("modelaudit:scan_complete", str(node.file.complete).lower()))
        if node.asset.size is not None:
            props.append(("modelaudit:size", str(node.asset.size)))
        if sources:
            props.append(("modelaudit:license_source", ", ".join(doc.location for doc in sources)))
        if node.asset.sha256 is None:
            props.append(("modelaudit:sha256", "not computed"))
        self._classify(node, kind)
        return Component(
            name=node.name, type=ComponentType(kind), bom_ref=node.ref,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=node.asset.sha256)] if node.asset.sha256 else None,
            licenses=licences, copyright=copyright_,
            authors=[OrganizationalContact(name=a) for a in node.facts.get("authors", [])] or None,
            properties=[Property(name=k, value=v) for k, v in props],
            components=[self.component(child) for child in node.children])

    def _licences(self, node: _Node) -> tuple[list[Any], str | None, list[_Node]]:
        """(licences, copyright, the files they were concluded from when the component states none).

        Licence files and model cards in the same directory are taken together: when they disagree,
        every licence they state is listed."""
        from cyclonedx.model.license import LicenseAcknowledgement

        sources: list[_Node] = []
        facts = node.facts
        if not _has_licence(facts):
            sources = self._nearest(node, _has_licence, climb=True)
            facts = {}
            for doc in sources:
                facts = merge(facts, {k: v for k, v in doc.facts.items() if k != "copyright"})
        ack = LicenseAcknowledgement.CONCLUDED if sources else LicenseAcknowledgement.DECLARED
        statements = list(node.facts.get("copyright", []))
        for doc in sources:
            statements += [s for s in doc.facts.get("copyright", []) if s not in statements]
        return _licence_objects(facts, ack), "; ".join(statements) if statements else None, sources

    def _nearest(self, node: _Node, want: Callable[[dict[str, Any]], bool], climb: bool) -> list[_Node]:
        """The licence files / model cards / configs that `want`, in the closest directory holding any:
        beside the node, then in parent directories, then (with `climb`) around its archive."""
        current: _Node | None = node
        while current is not None:
            directory = current.directory
            while True:
                found = [doc for doc in self._docs.get((id(current.parent), directory), ())
                         if doc is not node and want(doc.facts)]
                if found:
                    return found
                up = posixpath.dirname(directory)
                if up == directory:
                    break
                directory = up
            current = current.parent if climb else None
        return []

    def _classify(self, node: _Node, kind: str) -> None:
        if kind == "data":
            self.extras[node.ref] = {"data": [{"type": DATA_FORMATS[node.asset.type], "name": node.name}]}
            return
        if kind != "machine-learning-model":
            return
        facts = dict(node.facts)
        # what a model card or config says describes the models beside it, not those inside archives
        for want in (lambda f: f.get("source") == "model-card", lambda f: f.get("source") == "config"):
            for doc in self._nearest(node, want, climb=False):
                facts = merge(facts, doc.facts)
        card = _model_card(facts)
        if card:
            self.extras[node.ref] = {"modelCard": card}

    # --- vulnerabilities ----------------------------------------------------------------------------

    def vulnerability(self, index: int, issue: Issue, node: _Node, accepted: str | None) -> Any:
        from cyclonedx.model import Property
        from cyclonedx.model.impact_analysis import ImpactAnalysisState
        from cyclonedx.model.vulnerability import (
            BomTarget,
            Vulnerability,
            VulnerabilityAnalysis,
            VulnerabilityRating,
            VulnerabilityScoreSource,
            VulnerabilitySeverity,
            VulnerabilitySource,
        )

        rule = RULES.get(issue.rule_code)
        source = VulnerabilitySource(name="modelaudit")
        cwe = rule.cwe if rule and rule.cwe else ""
        props = [("modelaudit:location", issue.location or node.location), ("modelaudit:severity", issue.severity.value)]
        if issue.scanner:
            props.append(("modelaudit:scanner", issue.scanner))
        position = issue.details.get("position")
        if isinstance(position, int):
            props.append(("modelaudit:position", str(position)))
        if getattr(issue, "baseline", None):
            props.append(("modelaudit:baseline", str(issue.baseline)))
        if rule is not None and rule.coverage:
            props.append(("modelaudit:coverage", "true"))
        return Vulnerability(
            bom_ref=self._unique(f"finding-{index + 1}"), id=issue.rule_code, source=source,
            ratings=[VulnerabilityRating(source=source, severity=VulnerabilitySeverity(_RATING[issue.severity]),
                                         method=VulnerabilityScoreSource.OTHER)],
            cwes=[int(cwe[4:])] if cwe.startswith("CWE-") and cwe[4:].isdigit() else None,
            description=issue.message, detail=issue.why or (rule.why if rule else None),
            recommendation=f"See `modelaudit rules {issue.rule_code}` ({rule.title})." if rule else None,
            affects=[BomTarget(ref=node.ref)], properties=[Property(name=k, value=v) for k, v in props],
            # a finding the policy file accepts: recorded, not counted in the risk score
            analysis=VulnerabilityAnalysis(state=ImpactAnalysisState.NOT_AFFECTED,
                                           detail=f"Accepted by the policy file: {accepted}") if accepted else None)


def _longest_prefix(rel: str | None, known: dict[str, _Node]) -> str | None:
    """The longest recorded member that is `rel` or contains it (`rel` begins with it and a ':')."""
    if rel is None:
        return None
    if rel in known:
        return rel
    cut = rel.rfind(":")
    while cut > 0:
        if rel[:cut] in known:
            return rel[:cut]
        cut = rel.rfind(":", 0, cut)
    return None


def _component_type(fmt: str) -> str:
    if fmt in MODEL_FORMATS:
        return "machine-learning-model"
    return "data" if fmt in DATA_FORMATS else "file"


def _has_licence(facts: dict[str, Any]) -> bool:
    return bool(facts.get("licenses") or facts.get("license_name"))


def _licence_objects(facts: dict[str, Any], ack: Any) -> list[Any]:
    """SPDX ids or expressions where the stated licence maps to one, else named licences.

    CycloneDX allows either licences or a single expression per component, so an expression among
    several licences is kept as a named licence.
    """
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import XsUri
    from cyclonedx.model.license import DisjunctiveLicense

    factory = LicenseFactory()
    stated = list(facts.get("licenses", []))
    url = facts.get("license_url")
    out: list[Any] = []
    for value in stated:
        named = _HF_LICENCES.get(value.lower())
        made = factory.make_with_name(named, acknowledgement=ack) if named else \
            factory.make_from_string(value, license_acknowledgement=ack)
        if not isinstance(made, DisjunctiveLicense) and len(stated) > 1:
            made = factory.make_with_name(value, acknowledgement=ack)
        out.append(made)
    if facts.get("license_name") and not stated:
        out.append(factory.make_with_name(facts["license_name"], acknowledgement=ack,
                                          url=_uri(url, XsUri)))
    return out


def _uri(value: str | None, xs_uri: Any) -> Any:
    if not value:
        return None
    try:
        return xs_uri(value)
    except Exception:  # noqa: BLE001 - a malformed link in a model card is simply left out
        return None


def _model_card(facts: dict[str, Any]) -> dict[str, Any] | None:
    params: dict[str, Any] = {}
    if facts.get("task"):
        params["task"] = facts["task"]
    if facts.get("architecture_family"):
        params["architectureFamily"] = facts["architecture_family"]
    if facts.get("architecture"):
        params["modelArchitecture"] = facts["architecture"]
    if facts.get("datasets"):
        params["datasets"] = [{"type": "dataset", "name": d} for d in facts["datasets"]]
    props = [{"name": "modelaudit:base_model", "value": b} for b in facts.get("base_models", [])]
    if facts.get("library"):
        props.append({"name": "modelaudit:library", "value": facts["library"]})
    if facts.get("name"):
        props.append({"name": "modelaudit:model_name", "value": facts["name"]})
    card: dict[str, Any] = {}
    if params:
        card["modelParameters"] = params
    if props:
        card["properties"] = props
    return card or None


def _describe_tool(bom: Any, run: ScanRun) -> None:
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType

    bom.metadata.tools.components.add(Component(type=ComponentType.APPLICATION, name="modelaudit",
                                                version=__version__))
    incomplete = sum(1 for f in run.files if not f.complete)
    for name, value in (("modelaudit:files_scanned", str(len(run.files))),
                        ("modelaudit:incomplete_files", str(incomplete))):
        bom.metadata.properties.add(Property(name=name, value=value))


def _add_unmodelled(components: list[dict[str, Any]], extras: dict[str, dict[str, Any]]) -> None:
    """Put modelCard / data into the serialized components (by bom-ref), nested ones included."""
    for component in components:
        extra = extras.get(component.get("bom-ref", ""))
        if extra:
            component.update(extra)
        _add_unmodelled(component.get("components", []), extras)
