"""PMML and other XML: parsed with defusedxml, which refuses DTDs, entities and external references.

The raw bytes are searched first for DOCTYPE, ENTITY (internal: billion laughs; SYSTEM/PUBLIC: XXE),
XInclude and stylesheet references, so a document is reported even when the parser refuses it. The
tree is then walked for PMML <Extension> elements that carry script text or name an executable
extender, and for attributes that point at URLs or file paths. Nothing is ever expanded or fetched.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import MissingDependency
from ._metadata_checks import code_snippet, credential_kind
from .base import BaseScanner

MAX_XML = 512 * 1024 * 1024
MAX_ELEMENTS = 5_000_000  # ~1.3 GB of parsed tree; a forest of 500 trees of 2,500 nodes has ~5 million
MAX_TEXT = 64 * 1024

_DOCTYPE = re.compile(rb"<!DOCTYPE\b", re.IGNORECASE)
_DOCTYPE_BLOCK = re.compile(rb"<!DOCTYPE\b[^\[>]*(?:\[.*?\]\s*)?>", re.IGNORECASE | re.DOTALL)
_ENTITY = re.compile(rb"<!ENTITY\s+(%\s+)?([^\s>]+)\s*(SYSTEM|PUBLIC)?", re.IGNORECASE)
_EXTERNAL_DTD = re.compile(rb"<!DOCTYPE\s+[^\s\[>]+\s+(SYSTEM|PUBLIC)\b", re.IGNORECASE)
_XINCLUDE = re.compile(rb"http://www\.w3\.org/200[13]/XInclude|<\w+:include\b", re.IGNORECASE)
_STYLESHEET = re.compile(rb"<\?xml-stylesheet\b", re.IGNORECASE)

_SCRIPT_LANG = re.compile(r"\b(python|jython|javascript|ecmascript|js|groovy|j?ruby|nashorn|rhino|lua|perl|"
                          r"shell|bash|sh|powershell|cmd|vbscript|script|exec|eval|command)\b", re.IGNORECASE)
_EXECUTABLE = re.compile(r"(^|[/\\])[\w.-]+\.(exe|sh|bat|cmd|ps1|py|pyc|jar|dll|so|dylib|js)$|^(/|[A-Za-z]:\\|\\\\)",
                         re.IGNORECASE)
_CODE = re.compile(r"(^|\n)\s*(import\s+\w|from\s+[\w.]+\s+import\b|def\s+\w+\s*\(|class\s+\w+\s*[:(]|"
                   r"function\s*\w*\s*\()|\bRuntime\.getRuntime\b|\bjava\.lang\.|\bProcessBuilder\b|"
                   r"\brequire\s*\(\s*['\"]child_process|\bos\.(system|popen|exec)|\bsubprocess\b|\b__import__\b|"
                   r"\beval\s*\(|\bexec\s*\(|<script\b")
_URL = re.compile(r"^\s*(https?|ftp|file|jar|s3|gs|hdfs|smb|sftp|ldap|jndi):", re.IGNORECASE)
_PATH = re.compile(r"^\s*(/(etc|usr|bin|sbin|tmp|home|var|root|dev|proc|opt|mnt|srv)/|~/|[A-Za-z]:[\\/]|\\\\\w|"
                   r"\.\./)", re.IGNORECASE)
_SCHEMA_HOSTS = ("http://www.dmg.org/", "https://www.dmg.org/", "http://dmg.org/")
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"


class _TooManyElements(Exception):
    """The document has more than MAX_ELEMENTS elements."""


def _fromstring(data: bytes, tick) -> Any:  # noqa: ANN001 - the scan deadline
    """defusedxml's fromstring (no DTD, entity or external reference), counting elements as they are built:
    an element costs ~150 bytes in memory and as little as 3 (`<a>`) in the file."""
    from xml.etree.ElementTree import TreeBuilder

    from defusedxml.ElementTree import DefusedXMLParser

    class Counting(TreeBuilder):
        count = 0

        def start(self, tag, attrs):  # noqa: ANN001, ANN202
            self.count += 1
            if self.count > MAX_ELEMENTS:
                raise _TooManyElements
            if self.count % 65536 == 0:
                tick()
            return super().start(tag, attrs)

    parser = DefusedXMLParser(target=Counting(), forbid_dtd=True, forbid_entities=True, forbid_external=True)
    parser.feed(data)
    return parser.close()


def _extension_text(elem: Any) -> str:
    """The first MAX_TEXT characters of an Extension's content, in document order. Nested Extensions are
    left out (each is checked on its own): the text below every one of 100,000 nested ones is quadratic."""
    pieces, size = [elem.text or ""], len(elem.text or "")
    stack: list[Any] = [iter(elem)]  # iterators over children, and tails waiting for their element's end
    while stack and size < MAX_TEXT:
        top = stack[-1]
        if isinstance(top, str):
            stack.pop()
            pieces.append(top)
            size += len(top)
            continue
        child = next(top, None)
        if child is None:
            stack.pop()
            continue
        if child.tail:
            stack.append(child.tail)
        if _local(child.tag) != "Extension":
            pieces.append(child.text or "")
            size += len(child.text or "")
            stack.append(iter(child))
    return "".join(pieces)[:MAX_TEXT]


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


class PmmlScanner(BaseScanner):
    name = "pmml"
    description = "PMML and XML models: DTDs/entities/XXE, script-bearing Extensions, external references"
    supported_extensions = [".pmml", ".xml"]
    formats = ("xml", "pmml")
    dependency = ("defusedxml", "pmml")

    def check(self, blob, result, ctx) -> None:  # noqa: ANN001
        where = blob.location
        if blob.size > MAX_XML:
            result.report("MA-X105", f"XML document of {blob.size} bytes exceeds the {MAX_XML}-byte parse limit; "
                          "it was not parsed", where, {"size": blob.size})
            result.mark_incomplete()
            return
        with blob.buffer() as buf:
            data = bytes(buf)
        result.bytes_scanned += len(data)
        declared = self._check_declarations(data, where, result)
        try:
            from defusedxml import DefusedXmlException
            from defusedxml.ElementTree import ParseError
        except ImportError as exc:
            raise MissingDependency("defusedxml", "pmml", "PMML/XML files") from exc
        try:
            root = _fromstring(data, ctx.check_deadline)
        except DefusedXmlException as exc:
            if not declared:
                result.report("MA-X101", f"XML parser refused the document: {exc}", where, {"error": str(exc)})
            root = self._parse_without_doctype(data, ctx.check_deadline)
            if root is None:
                result.mark_incomplete()
                return
        except (ParseError, ValueError, LookupError) as exc:  # LookupError: the declaration names an unknown encoding
            result.report("MA-X105", f"XML is not well-formed: {exc}", where, {"error": str(exc)})
            result.mark_incomplete()
            return
        except _TooManyElements:
            result.report("MA-X105", f"XML holds more than {MAX_ELEMENTS} elements; it was not checked", where,
                          {"limit": MAX_ELEMENTS})
            result.mark_incomplete()
            return
        before = len(result.issues)
        self._walk(root, where, result, ctx)
        ok = not any(i.severity.rank >= 2 for i in result.issues[before:]) and not declared
        result.add_check("xml structure", ok, f"<{_local(root.tag)}> document checked without expansion", where)

    @staticmethod
    def _parse_without_doctype(data: bytes, tick) -> Any:  # noqa: ANN001
        """Blank the DTD (never expanded) so that the body is still checked; None when that fails."""
        from defusedxml import DefusedXmlException
        from defusedxml.ElementTree import ParseError

        first = _DOCTYPE.search(data)  # the block is matched there only: a search would retry at every
        match = _DOCTYPE_BLOCK.match(data, first.start()) if first else None  # later DOCTYPE, each to the end
        if match is None:
            return None
        stripped = data[:match.start()] + b" " * (match.end() - match.start()) + data[match.end():]
        try:
            return _fromstring(stripped, tick)
        except (ParseError, DefusedXmlException, ValueError, LookupError, _TooManyElements):  # entities left behind
            return None

    @staticmethod
    def _check_declarations(data: bytes, where: str, result) -> bool:  # noqa: ANN001
        found = False
        external_dtd = _EXTERNAL_DTD.search(data)
        if external_dtd:
            result.report("MA-X102", "XML DOCTYPE references an external DTD "
                          f"({external_dtd.group(1).decode()}); it was not fetched", where, {"kind": "external_dtd"})
            found = True
        elif _DOCTYPE.search(data):
            result.report("MA-X101", "XML declares a DOCTYPE (internal DTD); it was not processed", where,
                          {"kind": "doctype"})
            found = True
        entities = list(_ENTITY.finditer(data))
        external = [m for m in entities if m.group(3)]
        if external:
            names = sorted({m.group(2).decode("utf-8", "replace") for m in external})[:10]
            result.report("MA-X102", f"XML declares external entities {names} (XXE); they were not resolved", where,
                          {"kind": "external_entity", "entities": names})
        if len(entities) > len(external):
            names = sorted({m.group(2).decode("utf-8", "replace") for m in entities if not m.group(3)})[:10]
            result.report("MA-X101", f"XML declares {len(entities) - len(external)} entities {names} "
                          "(entity expansion bomb risk); they were not expanded", where,
                          {"kind": "entity", "entities": names, "count": len(entities) - len(external)})
        for pattern, kind in ((_XINCLUDE, "XInclude"), (_STYLESHEET, "xml-stylesheet")):
            if pattern.search(data):
                result.report("MA-X102", f"XML uses {kind} to pull in an external resource; it was not followed",
                              where, {"kind": kind})
                found = True
        return found or bool(entities)

    def _walk(self, root: Any, where: str, result, ctx) -> None:  # noqa: ANN001
        is_pmml = _local(root.tag) == "PMML"
        if is_pmml and not root.get("version"):
            result.report("MA-X105", "PMML root element has no version attribute", where)
        for count, elem in enumerate(root.iter()):  # the parser stopped at MAX_ELEMENTS
            if count % 65536 == 0:
                ctx.check_deadline()
            tag = _local(elem.tag)
            path = f"{where}:<{tag}>"
            self._check_attributes(elem, tag, path, result)
            if tag == "Extension":
                self._check_extension(elem, path, result)
            elif tag in ("Annotation", "Header") and elem.text:
                self._check_text(elem.text[:MAX_TEXT], tag, path, result)

    @staticmethod
    def _check_attributes(elem: Any, tag: str, path: str, result) -> None:  # noqa: ANN001
        for key, value in elem.attrib.items():
            name = _local(key)
            if key == _XSI + "schemaLocation" or key == _XSI + "noNamespaceSchemaLocation":
                refs = value.split()[1::2] if key.endswith("}schemaLocation") else value.split()
                if all(ref.startswith(_SCHEMA_HOSTS) for ref in refs):
                    continue
            if _URL.match(value) or _PATH.match(value):
                result.report("MA-X104", f"<{tag}> attribute {name!r} points at {value[:200]!r}", path,
                              {"attribute": name, "value": value[:500]})
            kind = credential_kind(value[:MAX_TEXT])  # as for text: a megabyte value is read no further
            if kind:
                result.report("MA-C002", f"<{tag}> attribute {name!r} contains what looks like a {kind}", path,
                              {"attribute": name, "kind": kind})

    @staticmethod
    def _check_extension(elem: Any, path: str, result) -> None:  # noqa: ANN001
        attrs = {_local(k): v for k, v in elem.attrib.items()}
        text = _extension_text(elem).strip()
        body = " ".join(filter(None, [attrs.get("value", ""), text]))
        extender = attrs.get("extender", "")
        reasons = []
        if extender and _EXECUTABLE.search(extender.strip()):
            reasons.append(f"extender {extender[:120]!r} names an executable")
        labels = " ".join(attrs.get(k, "") for k in ("extender", "name", "type", "language"))
        lang = _SCRIPT_LANG.search(labels)
        if lang and body:
            reasons.append(f"declares {lang.group(0)!r} and carries {len(body)} characters of content")
        snippet = _CODE.search(body)
        if snippet:
            reasons.append(f"content looks like code ({snippet.group(0).strip()[:60]!r})")
        elif body and code_snippet(body):
            reasons.append(f"content looks like code ({code_snippet(body)!r})")
        if reasons:
            result.report("MA-X103", f"PMML Extension {attrs.get('name', '')!r}: " + "; ".join(reasons), path,
                          {"extender": extender, "name": attrs.get("name"), "excerpt": body[:200]})
        kind = credential_kind(body)
        if kind:
            result.report("MA-C002", f"PMML Extension contains what looks like a {kind}", path, {"kind": kind})

    @staticmethod
    def _check_text(text: str, tag: str, path: str, result) -> None:  # noqa: ANN001
        snippet = code_snippet(text)
        if snippet:
            result.report("MA-C001", f"<{tag}> text contains code-like content ({snippet!r})", path,
                          {"match": snippet})
        kind = credential_kind(text)
        if kind:
            result.report("MA-C002", f"<{tag}> text contains what looks like a {kind}", path, {"kind": kind})
