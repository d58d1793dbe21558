"""Malformed requests for ``POST /v1/{kind}``, derived from the models' examples and schemas.

Deterministic (no randomness); names read ``category:kind:detail`` and are unique.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, NamedTuple
from urllib.parse import quote

from services.ingest.records.schemas import RECORD_MODELS, RecordKind
from shared.settings import LimitSettings
from shared.web.schema import NO_NUL_PATTERN

_LIMITS: Final = {name: info.default for name, info in LimitSettings.model_fields.items()}
JSON_TYPE: Final = "application/json"
BODY_LIMIT: Final[int] = _LIMITS["max_body_bytes"]  # the body reader's, before validation
RECORD_LIMIT: Final[int] = _LIMITS["max_record_bytes"]
TRANSCRIPT_LIMIT: Final[int] = _LIMITS["max_transcript_bytes"]
MAX_ITEMS: Final[int] = _LIMITS["max_batch_items"]
CATEGORIES: Final = ("json", "shape", "missing", "null", "type", "range", "extra", "mixed",
                      "size", "ctype")  # fmt: skip
KINDS: Final = tuple(kind.value for kind in RecordKind)
E422, E413, E200, E415_422 = map(frozenset[int], ({422}, {413}, {200}, {415, 422}))
# Depths from 256 to 1024 levels parse, then fail to re-serialise (see the unit test).
NESTING_DEPTHS: Final = (200, 300, 1000, 1025, 10_000)
# ``$`` in the email/phone patterns also matches before a trailing newline.
NEWLINE_TAILS: Final = {"email": "ada@example.com\n", "phone": "+46 70 123 45 67\n"}

Path = tuple[str | int, ...]
_DROP: Final = object()


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    body: bytes
    content_type: str
    expect: frozenset[int]
    field: str | None


def _case(name: str, body: bytes, expect: frozenset[int] = E422, field: str | None = None,
          content_type: str = JSON_TYPE) -> Case:  # fmt: skip
    return Case(name, name.split(":")[1], body, content_type, expect, field)


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _slug(value: Any, index: int) -> str:
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return f"{index}-" + (re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "blank")


def example(kind: str) -> dict[str, Any]:
    extra: Any = RECORD_MODELS[RecordKind(kind)].model_config.get("json_schema_extra")
    return dict(copy.deepcopy(extra["examples"][0]))


def _with(record: Any, path: Path, value: Any = _DROP) -> Any:
    out = node = copy.deepcopy(record)
    for key in path[:-1]:
        node = node[key]
    if value is not _DROP:
        node[path[-1]] = value
    elif path[-1] in node:
        del node[path[-1]]
    return out


def _with_raw(record: Any, path: Path, raw: bytes) -> bytes:
    """The record's JSON with the value at ``path`` replaced by raw, possibly invalid, bytes."""
    return dumps(_with(record, path, "@@RAW@@")).replace(b'"@@RAW@@"', raw, 1)


class Field(NamedTuple):
    path: Path
    name: str  # dotted, as the validation layer reports it: ``lines.0.quantity``
    shape: str  # datetime, enum, string, number, integer, boolean, object or array
    prop: dict[str, Any]
    required: bool
    sample: Any


@cache
def fields(kind: str) -> tuple[Field, ...]:
    """Each field of the model, nested list items included, from its JSON schema."""
    schema = RECORD_MODELS[RecordKind(kind)].model_json_schema()
    defs = schema.get("$defs", {})
    out: list[Field] = []

    def resolve(prop: dict[str, Any]) -> dict[str, Any]:
        prop = next((p for p in prop.get("anyOf", ()) if p.get("type") != "null"), prop)
        return dict(defs[prop["$ref"].rsplit("/", 1)[-1]]) if "$ref" in prop else prop

    def walk(obj: dict[str, Any], prefix: Path, sample: dict[str, Any]) -> None:
        for key, raw in obj["properties"].items():
            prop, path = resolve(raw), (*prefix, key)
            shape = "datetime" if prop.get("format") == "date-time" else str(prop.get("type"))
            shape = "enum" if "enum" in prop else shape
            value = sample.get(key, "2026-01-01T00:00:00Z" if shape == "datetime" else "x")
            name = ".".join(map(str, path))
            out.append(Field(path, name, shape, prop, key in obj.get("required", ()), value))
            if "$ref" in prop.get("items", {}):
                walk(resolve(prop["items"]), (*path, 0), value[0])

    walk(schema, (), example(kind))
    return tuple(out)


def minimal(kind: str) -> dict[str, Any]:
    record = example(kind)
    for field in reversed(fields(kind)):
        if field.shape == "array":
            record = _with(record, field.path, field.sample[:1])
        if not field.required:
            record = _with(record, field.path)
    return record


_WRONG_TYPES: Final[dict[str, tuple[tuple[str, Any], ...]]] = {
    "string": (("int", 12), ("float", 12.5), ("bool", True), ("false", False), ("list", ["x"])),
    "enum": (("int", 1), ("bool", True), ("list", ["x"]), ("object", {"value": "x"})),
    "datetime": (("bool", True), ("false", False), ("list", ["x"]), ("object", {"at": "x"})),
    "number": (("numeric-string", "12"), ("bool", True), ("list", [1]), ("object", {})),
    "integer": (("numeric-string", "2"), ("bool", True), ("float", 2.5), ("integral-float", 2.0),
                ("big-int-2-64", 2**64)),
    "object": (("string", "x"), ("int", 1), ("bool", True), ("list", [{"a": 1}])),
    "array": (("string", "x"), ("int", 1), ("object", {}), ("ints", [1]), ("nested", [[]]),
              ("nulls", [None])),
}  # fmt: skip
_BAD_DATES: Final = (
    "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T00:00:00", "2026-01-01 00:00:00",
    "2026-01-01", "2026-01-01T25:00:00Z", "2026-01-01T00:60:00Z", "not-a-date", "01/02/2026 10:00",
    "2026-01-01T00:00:00+25:00", "0000-01-01T00:00:00Z", "2026-01-01T00:00:00ZZ", "",
)  # fmt: skip
_BAD_BY_NAME: Final[dict[str, tuple[str, ...]]] = {
    "currency": ("eur", "EURO", "EU", "E1R", " EUR", "EUR\n", "\u20ac\u20ac\u20ac", ""),
    "language": ("EN", "english", "e", "en_US", "en-", "en-toolong", "12", "en\n", ""),
    "email": ("ada", "ada@", "@example.com", "ada@example", "ada @example.com", "ada@@example.com",
              "a" * 65 + "@example.com", "ada@example.c", "a@" + "b" * 316 + ".com", ""),
    "phone": ("abc", "1234", "+46 70 123 45 67 ext 9", "0" * 33, "++46701234567", "46#70123", ""),
}  # fmt: skip


def _bad_values(field: Field) -> Iterator[tuple[str, Any]]:
    """Well-typed values that the field must still refuse; ``nul-`` ones hold a NUL."""
    prop, value, leaf = field.prop, field.sample, str(field.path[-1])
    if field.shape in ("string", "enum", "datetime"):
        yield "nul-escaped", value[:1] + "\x00" + value[1:]
    if leaf in _BAD_BY_NAME:
        yield from ((f"bad-{_slug(v, i)}", v) for i, v in enumerate(_BAD_BY_NAME[leaf]))
        if leaf in NEWLINE_TAILS:
            yield "trailing-newline", NEWLINE_TAILS[leaf]
    elif field.shape == "datetime":
        yield from ((f"bad-date-{_slug(v, i)}", v) for i, v in enumerate(_BAD_DATES))
    elif field.shape == "enum":
        variants = (value.upper(), f" {value}", f"{value} ", value[:-1], "unknown", "")
        bad = [v for v in variants if v not in prop["enum"]]
        yield from ((f"not-in-enum-{_slug(v, i)}", v) for i, v in enumerate(bad))
    elif field.shape == "string":
        yield from [("empty", "")] if prop.get("minLength") else []
        if "maxLength" in prop:
            yield f"too-long-{prop['maxLength'] + 1}", "x" * (prop["maxLength"] + 1)
    elif field.shape in ("number", "integer") and "exclusiveMaximum" in prop:
        yield from (("below-minimum", -0.01), ("negative", -1), ("total-1e13", 1e13))
        yield from (("at-exclusive-maximum", prop["exclusiveMaximum"]), ("huge", 1.7e308))
    elif field.shape == "integer":
        yield from (("below-minimum", prop["minimum"] - 1), ("negative", -1))
        yield from (("above-maximum", prop["maximum"] + 1), ("int-2-63", 2**63))
    elif field.shape == "array":
        yield "empty", []
        yield f"too-many-{prop['maxItems'] + 1}", [value[0]] * (prop["maxItems"] + 1)
    elif isinstance(prop.get("additionalProperties"), dict):  # a string -> bool map
        yield from (("key-too-long-65", {"x" * 65: True}), ("nul-in-key", {"e\x00mail": True}))
        bools = ("yes", 1, None, "true", [True])
        yield from ((f"value-{_slug(v, i)}", {"email": v}) for i, v in enumerate(bools))
    elif field.shape == "object":
        yield from (("float-1e18", {"note": 1e18}), ("float-minus-1e19", {"note": -1e19}))
        yield "nested-float-1e20", {"nested": {"deep": [1, 1e20]}}
        yield from (("nul-in-key", {"co\x00untry": "SE"}), ("nul-in-value", {"country": "S\x00E"}))
        yield "nul-nested", {"a": [{"b": "\x00"}]}


_GARBAGE: Final = (b"x", b"}", b",", b"{}", b"\x00", b";")
_LITERALS: Final = (b"NaN", b"-Infinity", b"undefined", b"None", b"True", b"'s'", b"0x1F", b"01")
_HUGE: Final = (b"NaN", b"Infinity", b"1e400", b"-1" + b"0" * 400)
_BAD_BYTES: Final = {  # inside a string: invalid UTF-8, bad escapes, raw control characters
    "ff": b"\xff", "continuation": b"\x80", "overlong": b"\xc0\xaf", "cut": b"\xe2\x82",
    "utf8-surrogate": b"\xed\xa0\x80", "above-10ffff": b"\xf4\x90\x80\x80", "hex-x": rb"\x41",
    "lone-high-surrogate": rb"\ud800", "lone-low-surrogate": rb"\udc00", "short-u": rb"\u12",
    "high-then-ascii": rb"\ud800\u0041", "raw-nul": b"\x00", "raw-newline": b"\n",
}  # fmt: skip


def _broken_json(kind: str) -> Iterator[Case]:
    record, first = example(kind), fields(kind)[0]
    body, at = dumps(record), f"json:{kind}"
    for cut in range(1, len(body), max(1, len(body) // 8)):
        yield _case(f"{at}:truncated-at-{cut}", body[:cut], field="body")
    wide = dumps(_with(record, first.path, "\u00e9\u00e9"))
    for i, junk in enumerate(_GARBAGE):
        yield _case(f"{at}:trailing-{_slug(junk, i)}", body + junk, field="body")
    malformed = {
        "single-quotes": body.replace(b'"', b"'"), "trailing-comma-object": body[:-1] + b",}",
        "unquoted-keys": re.sub(rb'"(\w+)":', rb"\1:", body), "two-records": body + body,
        "trailing-comma-array": b"[" + body + b",]", "missing-comma": body.replace(b",", b" ", 1),
        "missing-colon": body.replace(b":", b" ", 1), "line-comment": b"// record\n" + body,
        "block-comment": b"/* record */" + body, "hash-comment": b"# record\n" + body,
        "inner-comment": b"{/* c */" + body[1:], "double-open-brace": b"{" + body,
        "double-braces": b"{" + body + b"}", "double-open-bracket": b"[[" + body + b"]",
        "unbalanced-close": b"[" + body + b"]]", "empty": b"", "space": b" ",
        "whitespace": b" \n\t\r ", "bom": b"\xef\xbb\xbf" + body, "top-1e400": b"1e400",
        "utf16": body.decode().encode("utf-16"), "utf32": body.decode().encode("utf-32"),
        "top-10-pow-400": b"1" + b"0" * 400, "deep-unclosed-10000": b"[" * 10_000,
        "deep-objects-10000": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        "key-invalid-utf8": b'{"\xff":1,' + body[1:], "array-unclosed": b"[" + body,
        "array-truncated": b"[" + body[:1], "truncated-mid-utf8": wide[: wide.index(b"\xc3") + 1],
        "leading-x": b"x" + body, "leading-comma": b"," + body, "leading-bracket": b"]" + body,
    }  # fmt: skip
    for label, data in malformed.items():
        yield _case(f"{at}:{label}", data, field="body")
    for i, literal in enumerate(_LITERALS):
        data = _with_raw(record, first.path, literal)
        yield _case(f"{at}:literal-{_slug(literal, i)}", data, field="body")
    for label, raw in _BAD_BYTES.items():
        data = _with_raw(record, first.path, b'"c-' + raw + b'"')
        yield _case(f"{at}:string-{label}", data, field="body")
    for field in fields(kind):
        for i, lit in enumerate(_HUGE if field.shape in ("number", "integer") else ()):
            data = _with_raw(record, field.path, lit)
            yield _case(f"{at}:{field.name}-{_slug(lit[:8], i)}", data, field="body")
    for depth in NESTING_DEPTHS:
        nest, named = b"[" * depth + b"]" * depth, "body" if depth > 1024 else None
        yield _case(f"{at}:nested-arrays-{depth}", nest, field=named)
        data = _with_raw(record, first.path, nest)
        yield _case(f"{at}:nested-in-{first.name}-{depth}", data, field=named)


def _shapes(kind: str) -> Iterator[Case]:
    record, first = example(kind), next(f.name for f in fields(kind) if f.required)
    not_objects: dict[str, Any] = {
        "string": "customer", "empty-string": "", "zero": 0, "float": -1.5, "null": None,
        "true": True, "ints": [1, 2, 3], "strings": ["a", "b"], "nulls": [None, None],
        "arrays": [[record]], "empty-arrays": [[], []], "double-encoded": dumps(record).decode(),
        "double-encoded-items": [dumps(record).decode()]}  # fmt: skip
    shapes = {label: (payload, "record") for label, payload in not_objects.items()} | {
        "empty-object": ({}, first), "empty-objects": ([{}, {}], first),
        "empty-array": ([], "body"), "wrapped-records": ({"records": [record]}, "records"),
        "wrapped-data": ({"data": record}, "data"), "keyed-by-kind": ({kind: [record]}, kind),
    }  # fmt: skip
    for label, (payload, field) in shapes.items():
        yield _case(f"shape:{kind}:{label}", dumps(payload), field=field)


def _per_field(kind: str) -> Iterator[Case]:
    record, required = example(kind), [f for f in fields(kind) if f.required]
    for field in required:
        for label, value in (("missing", _DROP), ("null", None)):
            data = dumps(_with(record, field.path, value))
            yield _case(f"{label}:{kind}:{field.name}", data, field=field.name)
    optional = {k: v for k, v in record.items() if k not in {f.name for f in required}}
    yield _case(f"missing:{kind}:all-required", dumps(optional), field=required[0].name)
    for field in fields(kind):
        for label, value in _WRONG_TYPES.get(field.shape, ()):
            data = dumps(_with(record, field.path, value))
            yield _case(f"type:{kind}:{field.name}:{label}", data, field=field.name)
        for label, value in _bad_values(field):  # NUL inside a string counts as broken JSON
            name = f"{'json' if 'nul' in label else 'range'}:{kind}:{field.name}:{label}"
            yield _case(name, dumps(_with(record, field.path, value)), field=field.name)


_EXTRA_FIELDS: Final = (  # server-owned or derived fields a caller must not set
    "tenant_id", "id", "pk", "segment", "segment_id", "customer_pk", "created_by", "updated_at",
    "created_at", "deleted_at", "__proto__", "constructor", "clv", "churn_score", "sentiment",
    "is_admin", "_id", "$set", "suppressed")  # fmt: skip


def _extras(kind: str) -> Iterator[Case]:
    record, first = example(kind), fields(kind)[0].name
    known = {str(f.path[-1]) for f in fields(kind)}
    for i, name in enumerate(n for n in _EXTRA_FIELDS if n not in known):
        data = dumps({**record, name: [None, 1, "x", True, {"admin": True}][i % 5]})
        yield _case(f"extra:{kind}:{name}", data, field=name)
    for i, name in enumerate((first.upper(), first.title(), f"{first} ", first.replace("_", "-"))):
        yield _case(f"extra:{kind}:{_slug(name, i)}", dumps({**record, name: "x"}), field=name)
    yield _case(f"extra:{kind}:empty-key", dumps({**record, "": 1}))
    for name, value in (("tenant_id", 2), ("id", 1), ("__proto__", {}), ("sentiment", 0.9)):
        for field in (f for f in fields(kind) if f.shape == "array"):
            where = f"{field.name}.0.{name}"
            data = dumps(_with(record, (*field.path, 0, name), value))
            yield _case(f"extra:{kind}:{where}", data, field=where)


def _mixed(kind: str) -> Iterator[Case]:
    record, first = example(kind), next(f for f in fields(kind) if f.required)
    bad: dict[str, Any] = {
        "empty-object": {}, "null": None, "string": "x", "number": 1, "array": [],
        "tenant_id": {**record, "tenant_id": 1}, f"int-{first.name}": _with(record, first.path, 12),
        f"missing-{first.name}": _with(record, first.path),
    }  # fmt: skip
    for label, item in bad.items():
        yield _case(f"mixed:{kind}:valid-then-{label}", dumps([record, item]), E200)
        yield _case(f"mixed:{kind}:{label}-then-valid", dumps([item, record]), E200)
    alternating = [record if i % 2 else _with(record, first.path, None) for i in range(50)]
    yield _case(f"mixed:{kind}:alternating-50", dumps(alternating), E200)
    yield _case(f"mixed:{kind}:one-bad-in-100", dumps([record] * 99 + [{}]), E200)


def padded(kind: str, size: int) -> dict[str, Any]:
    """A record whose compact JSON is exactly ``size`` bytes, grown in a free-text spot."""
    record = example(kind)
    free = [(*f.path, "notes") for f in fields(kind) if f.prop.get("additionalProperties") is True]
    texts = [
        f
        for f in fields(kind)
        if f.shape == "string" and f.prop.get("pattern", NO_NUL_PATTERN) == NO_NUL_PATTERN
    ]
    path = free[0] if free else max(texts, key=lambda f: int(f.prop.get("maxLength", 0))).path
    base = len(dumps(_with(record, path, "")))
    return dict(_with(record, path, "x" * (size - base)))


def _sizes(kind: str) -> Iterator[Case]:
    limit = TRANSCRIPT_LIMIT if kind == RecordKind.TRANSCRIPTS else RECORD_LIMIT
    record, small, first = example(kind), minimal(kind), fields(kind)[0].path
    for label, size in (("limit-plus-1", limit + 1), ("33KiB", 33 << 10), ("257KiB", 257 << 10)):
        if size > limit:
            yield _case(f"size:{kind}:record-{label}", dumps(padded(kind, size)), E413)
        if limit < size < 2 * limit:
            data = dumps([record, padded(kind, size)])
            yield _case(f"size:{kind}:second-item-{label}", data, E413)
    batches: dict[str, list[Any]] = {
        "batch-2501-minimal": [_with(small, first, f"{i:06d}") for i in range(MAX_ITEMS + 1)],
        "batch-2501-empty-objects": [{}] * (MAX_ITEMS + 1), "batch-5000-zeros": [0] * 5_000,
        "batch-2501-nulls": [None] * (MAX_ITEMS + 1)}  # fmt: skip
    for label, items in batches.items():
        yield _case(f"size:{kind}:{label}", dumps(items), E413)
    count = BODY_LIMIT // (RECORD_LIMIT - 1024) + 1
    over = dumps([padded(kind, RECORD_LIMIT - 1024)] * count)
    yield _case(f"size:{kind}:body-over-{BODY_LIMIT}", over, E413)
    yield _case(f"size:{kind}:body-whitespace-padded", dumps(record) + b" " * BODY_LIMIT, E413)


def _content_types(kind: str) -> Iterator[Case]:
    record = example(kind)
    flat = {k: v for k, v in record.items() if not isinstance(v, dict | list)}
    form = "&".join(f"{k}={quote(str(v))}" for k, v in flat.items()).encode()
    disposition = "--s\r\nContent-Disposition: form-data; name="
    parts = "".join(f'{disposition}"{k}"\r\n\r\n{v}\r\n' for k, v in flat.items())
    xml = "".join(f"<{k}>{v}</{k}>" for k, v in flat.items())
    xml = f"<{kind[:-1]}>{xml}</{kind[:-1]}>"
    bodies = {
        "text/plain": form, "application/x-www-form-urlencoded": form,
        "multipart/form-data; boundary=s": (parts + "--s--\r\n").encode(),
        "application/xml": xml.encode(),
        "text/csv": (",".join(flat) + "\n" + ",".join(map(str, flat.values()))).encode(),
        "application/json; charset=utf-16": dumps(record).decode().encode("utf-16"),
    }  # fmt: skip
    for i, (content_type, body) in enumerate(bodies.items()):
        yield _case(f"ctype:{kind}:{_slug(content_type, i)}", body, E415_422, None, content_type)


@cache
def _build() -> tuple[Case, ...]:
    parts = (_broken_json, _shapes, _per_field, _extras, _mixed, _sizes, _content_types)
    cases = tuple(case for kind in KINDS for part in parts for case in part(kind))
    if len({case.name for case in cases}) != len(cases):
        raise ValueError("duplicate case names")
    return cases


def build_corpus() -> list[Case]:
    return list(_build())


def _paths(node: Any) -> Iterator[str]:
    """Every ``field`` in an error body: ``errors[].field``, ``rejected[].errors[].field``."""
    if isinstance(node, dict) and isinstance(node.get("field"), str):
        yield node["field"]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _paths(child)


def assert_field_named(response_json: object, field: str) -> None:
    """The error body names ``field``: as (part of) an error's path, or else as a whole word."""
    want, paths = field.split("."), list(_paths(response_json))
    for parts in (path.split(".") for path in paths):
        if any(parts[i : i + len(want)] == want for i in range(len(parts) - len(want) + 1)):
            return
    text = json.dumps(response_json, ensure_ascii=False)
    assert not paths, f"no error field names {field!r}: {text[:2000]}"
    assert re.search(rf"(?<![\w.]){re.escape(field)}(?![\w])", text), f"{field!r} not in {text}"
