"""Malformed requests for any API, derived from its OpenAPI document (deterministic).

For every operation: bodies broken byte by byte, bodies of the wrong shape, each property
given values of the wrong type or out of its documented range, extra properties, deep
nesting, wrong content types; and path and query parameters that are out of range, not
numbers, too long, NUL or invalid UTF-8. The oracle is the document itself (JSON Schema,
via ``jsonschema``): what the schema refuses must get a 4xx, and nothing may get a 5xx.
Validators may be stricter than the schema (no NUL, years), so schema-valid input may be
refused as well.

``tests/ingest/corpus.py`` is ingest's hand-shaped corpus; this one needs no code per API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

JSON_TYPE: Final = "application/json"
# Byte edits applied at every position of a valid body.
EDITS: Final = (
    b"", b"\xff", b'"', b"\x00", b"{", b",", b"]", b"9" * 30, b"\\", b"}", b"[", b"\xc3",
    b"null", b"-", rb"\ud800",
)  # fmt: skip
NESTING_DEPTHS: Final = (100, 1_000, 10_000)


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str  # with its parameters filled in, percent-encoded
    body: bytes | None
    content_type: str | None
    invalid: bool  # the document itself refuses it: a 4xx is due
    query: str = ""


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


_BASE: Final = "urn:openapi"


def _absolute_refs(node: Any) -> Any:
    """``node`` with its document-local ``$ref``s pointing into the registered document."""
    if isinstance(node, dict):
        return {
            key: _BASE + value if key == "$ref" and value.startswith("#") else _absolute_refs(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_absolute_refs(item) for item in node]
    return node


class Document:
    """An OpenAPI document and JSON Schema validation against its components."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(_BASE, resource)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.document["components"]["schemas"][name]
        return schema

    def valid(self, schema: dict[str, Any], value: Any) -> bool:
        validator = Draft202012Validator(_absolute_refs(schema), registry=self.registry)
        return bool(validator.is_valid(value))


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return options[0] if len(options) == 1 else schema


def _bad_values(schema: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Values of the wrong type or outside what ``schema`` documents."""
    yield from (("str", "x"), ("true", True), ("list", []), ("obj", {}), ("float", 1.5))
    yield from (("int", 7), ("huge", 2**64), ("neg", -(2**63) - 1), ("null", None))
    kind = schema.get("type")
    if kind == "string":
        if "maxLength" in schema:
            yield "too-long", "a" * (schema["maxLength"] + 1)
        if schema.get("minLength", 0) > 0:
            yield "empty", ""
        yield from (("nul", "a\x00b"), ("only-nul", "\x00"), ("not-enum", "not-a-choice"))
        yield from (("lone-surrogate", "\ud800"), ("long", "b" * 100_000))
    if kind in ("integer", "number"):
        if "minimum" in schema:
            yield "below-min", schema["minimum"] - 1
        if "maximum" in schema:
            yield "above-max", schema["maximum"] + 1
        yield from (("numeric-text", "1"), ("bool-false", False), ("tiny", 1e-300))
    if kind == "array":
        if "maxItems" in schema:
            yield "too-many", ["x"] * (schema["maxItems"] + 1)
        yield from (("items-int", [1, 2]), ("items-null", [None]), ("items-nested", [[[]]]))
        yield "items-nul", ["\x00"]


def _body_cases(doc: Document, method: str, path: str, schema: dict[str, Any]) -> Iterator[Case]:
    resolved = doc.resolve(schema)
    examples = resolved.get("examples") or [{}]
    base = examples[0]
    name = f"{method} {path}"

    def case(label: str, body: bytes, content_type: str | None = JSON_TYPE) -> Case:
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            invalid = True
        else:
            invalid = content_type != JSON_TYPE or not doc.valid(schema, value)
        return Case(f"{name}:{label}", method, path, body, content_type, invalid)

    for index, example in enumerate(examples):
        body = dumps(example)
        for at in range(len(body) + 1):
            for code, edit in enumerate(EDITS):
                yield case(f"edit{index}-{at}-{code}", body[:at] + edit + body[at + 1 :])
    for label, raw in (
        ("empty", b""), ("null", b"null"), ("list", b"[]"), ("number", b"1"),
        ("string", b'"s"'), ("bom", b"\xef\xbb\xbf" + dumps(base)),
        ("latin1", '{"\u00e9":1}'.encode("latin-1")),
        ("nan", b'{"x": NaN}'), ("trailing", dumps(base) + b" x"), ("two", dumps(base) * 2),
    ):  # fmt: skip
        yield case(f"shape-{label}", raw)
    for depth in NESTING_DEPTHS:
        yield case(f"deep-{depth}", b'{"x":' + b"[" * depth + b"]" * depth + b"}")
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        yield case(f"ctype-{content_type}", dumps(base), content_type)
    yield case("ctype-none", dumps(base), None)
    properties = resolved.get("properties", {})
    for field in properties:
        for label, value in _bad_values(doc.resolve(_non_null(properties[field]))):
            yield case(f"field-{field}-{label}", dumps({**base, field: value}))
        yield case(f"field-{field}-raw-inf", dumps(base)[:-1] + f',"{field}":1e999}}'.encode())
    for extra in ("id", "tenant_id", "status", "segment", "score", "__proto__", ""):
        yield case(f"extra-{extra or 'blank'}", dumps({**base, extra: 1}))


def _param_values(schema: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(label, raw text for the URL, the value JSON Schema sees or None if not a number)."""
    kind = schema.get("type")
    texts = [
        ("alpha", "abc"), ("float", "1.5"), ("sci", "1e3"), ("huge", "9" * 40),
        ("neg", "-1"), ("zero", "0"), ("space", "%20"), ("nul", "%00"), ("bad-utf8", "%FF%FE"),
        ("dots", "..%2F..%2Fetc"), ("script", quote("<script>x</script>", safe="")),
        ("long", "a" * 5_000), ("unicode", quote("ünïcødé", safe="")), ("pct", "%"),
    ]  # fmt: skip
    for label, raw in texts:
        value: Any = raw
        if kind == "integer":
            value = int(raw) if re.fullmatch(r"-?\d+", raw) else None
        yield label, raw, value
    if "maximum" in schema:
        yield "above-max", str(schema["maximum"] + 1), schema["maximum"] + 1
    if "minimum" in schema:
        yield "below-min", str(schema["minimum"] - 1), schema["minimum"] - 1


def _fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


def _sample(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return str(schema["enum"][0])
    return "1" if schema.get("type") == "integer" else "corpus-1"


def _param_cases(
    doc: Document, method: str, path: str, operation: dict[str, Any]
) -> Iterator[Case]:
    params = operation.get("parameters", [])
    defaults = {p["name"]: _sample(p["schema"]) for p in params if p["in"] == "path"}
    body = operation.get("requestBody", {}).get("content", {})
    payload = (
        dumps(doc.resolve(body[JSON_TYPE]["schema"]).get("examples", [{}])[0])
        if JSON_TYPE in body
        else None
    )
    content_type = JSON_TYPE if payload is not None else None
    for param in params:
        schema = _non_null(param["schema"])
        for label, raw, value in _param_values(schema):
            invalid = value is None or not doc.valid(schema, value)
            name = f"{method} {path}:{param['in']}-{param['name']}-{label}"
            if param["in"] == "path":
                filled = _fill(path, {**defaults, param["name"]: raw})
                yield Case(name, method, filled, payload, content_type, invalid)
            elif param["in"] == "query":
                filled = _fill(path, defaults)
                query = f"{param['name']}={raw}"
                yield Case(name, method, filled, payload, content_type, invalid, query)


def build_corpus(document: dict[str, Any], *, skip: frozenset[str] = frozenset()) -> list[Case]:
    """Every case for every operation of ``document`` that needs a key (the public probes
    take no input) and is not in ``skip`` (``"METHOD /path"``)."""
    doc = Document(document)
    cases: list[Case] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "x-required-scopes" not in operation or f"{method.upper()} {path}" in skip:
                continue
            body = operation.get("requestBody", {}).get("content", {})
            if JSON_TYPE in body:
                cases.extend(_body_cases(doc, method, path, body[JSON_TYPE]["schema"]))
            cases.extend(_param_cases(doc, method, path, operation))
    if len({case.name for case in cases}) != len(cases):
        raise AssertionError("corpus case names are not unique")
    return cases
