"""Malformed requests for personalize's API, derived from its request models' examples and
JSON schemas the way ``tests.ingest.corpus`` derives ingest's.

Deterministic; names read ``category:target:detail`` and are unique. A target is one
route: the writes answer 422 naming the field; feedback validates each event of an array
on its own and answers 200 listing the bad ones in ``rejected`` when some are valid (as
ingest's batches do), else 422; the storefront's GET answers 422 naming the parameter.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, NamedTuple
from urllib.parse import quote

from pydantic import BaseModel

from services.personalize.experiments.schemas import ExperimentCreate
from services.personalize.feedback.router import MAX_BODY_BYTES, MAX_EVENTS
from services.personalize.feedback.schemas import FeedbackIn
from services.personalize.offers.schemas import OfferCreate, OfferUpdate, PlacementUpdate
from tests.ingest.corpus import (
    _BAD_BYTES,
    _BAD_DATES,
    _DROP,
    _GARBAGE,
    _HUGE,
    _LITERALS,
    _WRONG_TYPES,
    Path,
    _slug,
    _with,
    _with_raw,
    dumps,
)

JSON_TYPE: Final = "application/json"
E422, E413, E200, E415_422 = map(frozenset[int], ({422}, {413}, {200}, {415, 422}))


@dataclass(frozen=True, eq=False)
class Target:
    name: str
    method: str
    path: str
    model: type[BaseModel]
    example: dict[str, Any]
    reads_own_body: bool = False  # feedback: orjson, not FastAPI (no BOM, no NaN)


OFFER: dict[str, Any] = {
    "offer_id": "spring-10",
    "name": "10% off everything",
    "description": "On the whole spring collection",
    "kind": "discount",
    "discount_code": "SPRING10",
    "value": 10,
    "placements": ["home", "email"],
    "segments": ["s1", "s3"],
    "starts_at": "2026-03-01T00:00:00Z",
    "ends_at": "2026-04-01T00:00:00Z",
    "max_impressions_per_customer_per_day": 3,
}
FEEDBACK: dict[str, Any] = {
    "event_id": "fb-000123",
    "decision_id": "3f2b6c1d9a8e4f7b8c6d5e4f3a2b1c0d",
    "offer_id": "spring-10",
    "kind": "conversion",
    "value": 59.9,
    "occurred_at": "2026-03-02T10:00:00Z",
}
EXPERIMENT: dict[str, Any] = {
    "name": "bandit vs static on home",
    "placement": "home",
    "arms": [
        {"name": "control", "strategy": "static", "share": 0.5},
        {"name": "bandit", "strategy": "bandit", "share": 0.5},
    ],
    "metric": "conversion",
}
PLACEMENT: dict[str, Any] = {
    "strategy": "bandit",
    "algorithm": "linear_thompson",
    "holdout_share": 0.05,
    "exploration": 0.05,
    "default_offer_id": "spring-10",
}
TARGETS: Final = (
    Target("offers", "POST", "/v1/offers", OfferCreate, OFFER),
    Target(
        "offer",
        "PUT",
        "/v1/offers/spring-10",
        OfferUpdate,
        {k: v for k, v in OFFER.items() if k != "offer_id"},
    ),
    Target("placement", "PUT", "/v1/placements/home", PlacementUpdate, PLACEMENT),
    Target("experiments", "POST", "/v1/experiments", ExperimentCreate, EXPERIMENT),
    Target("feedback", "POST", "/v1/feedback", FeedbackIn, FEEDBACK, reads_own_body=True),
)


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes | None
    content_type: str
    expect: frozenset[int]
    field: str | None
    params: tuple[tuple[str, str], ...] = ()


def _case(
    target: Target,
    label: str,
    body: bytes,
    expect: frozenset[int] = E422,
    field: str | None = None,
    content_type: str = JSON_TYPE,
) -> Case:
    category, detail = label.split(":", 1)
    name = f"{category}:{target.name}:{detail}"
    return Case(name, target.method, target.path, body, content_type, expect, field)


class Field(NamedTuple):
    path: Path
    name: str
    shape: str  # datetime, enum, string, number, integer, boolean, object or array
    prop: dict[str, Any]
    required: bool
    sample: Any


def fields(target: Target) -> tuple[Field, ...]:
    schema = target.model.model_json_schema()
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
            name = ".".join(map(str, path))
            if key not in sample:
                raise KeyError(f"the {target.name} example lacks {name}")
            out.append(Field(path, name, shape, prop, key in obj.get("required", ()), sample[key]))
            if "$ref" in prop.get("items", {}):
                walk(resolve(prop["items"]), (*path, 0), sample[key][0])

    walk(schema, (), target.example)
    return tuple(out)


_BAD_NAMES: Final = ("Home", "-home", "home page", "h" * 65, "home\n", "hôme", "")


def _bad_values(field: Field) -> Iterator[tuple[str, Any]]:
    prop, value = field.prop, field.sample
    if field.shape == "datetime":
        yield from ((f"bad-date-{_slug(v, i)}", v) for i, v in enumerate(_BAD_DATES))
    elif field.shape == "enum":
        variants = (value.upper(), f"x{value}", value[:-1], "unknown", "")
        bad = [v for v in variants if v not in prop["enum"]]
        yield from ((f"not-in-enum-{_slug(v, i)}", v) for i, v in enumerate(bad))
    elif field.shape == "string":
        if "pattern" in prop:
            yield "nul-escaped", value[:1] + "\x00" + value[1:]
        if prop.get("minLength"):
            yield "empty", ""
        if "maxLength" in prop:
            yield f"too-long-{prop['maxLength'] + 1}", "x" * (prop["maxLength"] + 1)
        if prop.get("pattern", "").startswith("^[a-z0-9]"):
            yield from ((f"bad-name-{_slug(v, i)}", v) for i, v in enumerate(_BAD_NAMES))
        if prop.get("pattern", "").startswith("^[0-9a-f]{32}"):
            yield from (("uppercase-hex", value.upper()), ("short", value[:-1]), ("uuid", "-"))
    elif field.shape in ("number", "integer"):
        low = prop.get("minimum", prop.get("exclusiveMinimum"))
        high = prop.get("maximum", prop.get("exclusiveMaximum"))
        if low is not None:
            yield from (("below-minimum", low - 1), ("minus-1e300", -1e300))
        if "exclusiveMinimum" in prop:
            yield "at-exclusive-minimum", prop["exclusiveMinimum"]
        if high is not None:
            yield from (("above-maximum", high + 1), ("huge", 1.7e308))
    elif field.shape == "array":
        if prop.get("minItems"):
            yield "empty", []
        if "maxItems" in prop:
            yield f"too-many-{prop['maxItems'] + 1}", [value[0]] * (prop["maxItems"] + 1)
        if prop.get("items", {}).get("type") == "string":
            yield from (("item-int", [1]), ("item-null", [None]), ("item-empty", [""]))


def _broken_json(target: Target) -> Iterator[Case]:
    body, first = dumps(target.example), fields(target)[0]
    for cut in range(1, len(body), max(1, len(body) // 30)):
        yield _case(target, f"json:truncated-at-{cut}", body[:cut], field="body")
    for i, junk in enumerate(_GARBAGE):
        yield _case(target, f"json:trailing-{_slug(junk, i)}", body + junk, field="body")
    malformed = {
        "single-quotes": body.replace(b'"', b"'"), "trailing-comma": body[:-1] + b",}",
        "two-bodies": body + body, "line-comment": b"// x\n" + body, "empty": b"",
        "whitespace": b" \n\t ", "top-1e400": b"1e400", "leading-x": b"x" + body,
    }  # fmt: skip
    undecodable = {
        "deep-unclosed-10000": b"[" * 10_000,
        "deep-objects-10000": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        "key-invalid-utf8": b'{"\xff":1,' + body[1:],
    }
    if target.reads_own_body:  # the admin routes read a BOM or UTF-16 body as the same JSON
        malformed |= {"bom": b"\xef\xbb\xbf" + body, "utf16": body.decode().encode("utf-16")}
    for label, data in malformed.items():
        yield _case(target, f"json:{label}", data, field="body")
    for label, data in undecodable.items():
        yield _case(target, f"json:{label}", data, field="body")
    for i, literal in enumerate(_LITERALS):
        data = _with_raw(target.example, first.path, literal)
        # Python's JSON reads NaN and Infinity (the admin routes): then the field is wrong.
        python_reads = literal in (b"NaN", b"-Infinity") and not target.reads_own_body
        named = first.name if python_reads else "body"
        yield _case(target, f"json:literal-{_slug(literal, i)}", data, field=named)
    for label, raw in _BAD_BYTES.items():
        data = _with_raw(target.example, first.path, b'"c-' + raw + b'"')
        yield _case(target, f"json:string-{label}", data, field=None)
    for field in fields(target):
        for i, lit in enumerate(_HUGE if field.shape in ("number", "integer") else ()):
            data = _with_raw(target.example, field.path, lit)
            yield _case(target, f"json:{field.name}-{_slug(lit[:8], i)}", data, field=None)


def _shapes(target: Target) -> Iterator[Case]:
    required = [f.name for f in fields(target) if f.required]
    not_objects: dict[str, Any] = {
        "string": "offer", "zero": 0, "null": None, "true": True, "ints": [1, 2],
        "double-encoded": dumps(target.example).decode(), "nested-array": [[target.example]],
    }  # fmt: skip
    for label, payload in not_objects.items():
        field = "body" if target.reads_own_body else None
        yield _case(target, f"shape:{label}", dumps(payload), field=field)
    if required:
        yield _case(target, "shape:empty-object", dumps({}), field=required[0])
        wrapped = {"data": target.example}
        yield _case(target, "shape:wrapped", dumps(wrapped), field="data")


def _per_field(target: Target) -> Iterator[Case]:
    example = target.example
    for field in fields(target):
        if field.required:
            for label, value in (("missing", _DROP), ("null", None)):
                data = dumps(_with(example, field.path, value))
                yield _case(target, f"{label}:{field.name}", data, field=field.name)
        for label, value in _WRONG_TYPES.get(field.shape, ()):
            data = dumps(_with(example, field.path, value))
            yield _case(target, f"type:{field.name}:{label}", data, field=field.name)
        for label, value in _bad_values(field):
            data = dumps(_with(example, field.path, value))
            yield _case(target, f"range:{field.name}:{label}", data, field=field.name)


_EXTRA_FIELDS: Final = (
    "tenant_id", "id", "pk", "segment", "customer_pk", "created_at", "updated_at",
    "retired_at", "version", "propensity", "policy_version", "status", "__proto__", "$set",
    "is_admin", "applied_at", "subject_hash",
)  # fmt: skip


def _extras(target: Target) -> Iterator[Case]:
    known = {str(f.path[-1]) for f in fields(target)}
    for i, name in enumerate(n for n in _EXTRA_FIELDS if n not in known):
        data = dumps({**target.example, name: [None, 1, "x", True, {"admin": True}][i % 5]})
        yield _case(target, f"extra:{name}", data, field=name)
    first = fields(target)[0].name
    for i, name in enumerate((first.upper(), f"{first} ", first.replace("_", "-") + "-x")):
        data = dumps({**target.example, name: "x"})
        yield _case(target, f"extra:{_slug(name, i)}", data, field=name)


def _rules(target: Target) -> Iterator[Case]:
    """Rules across fields, named by the model's validators."""
    if target.model in (OfferCreate, OfferUpdate):
        flipped = {**target.example, "starts_at": OFFER["ends_at"], "ends_at": OFFER["starts_at"]}
        yield _case(target, "range:window-reversed", dumps(flipped), field="ends_at")
        same = {**target.example, "ends_at": OFFER["starts_at"]}
        yield _case(target, "range:window-empty", dumps(same), field="ends_at")
    if target.model is ExperimentCreate:
        arms = EXPERIMENT["arms"]
        twins = [arms[0], {**arms[1], "name": "control"}]
        yield _case(target, "range:arm-names-repeat", dumps({**EXPERIMENT, "arms": twins}))
        uneven = [arms[0], {**arms[1], "share": 0.4}]
        yield _case(target, "range:shares-sum-0.9", dumps({**EXPERIMENT, "arms": uneven}))


def _feedback_batches(target: Target) -> Iterator[Case]:
    if target.model is not FeedbackIn:
        return
    event = target.example
    yield _case(target, "size:2501-events", dumps([event] * (MAX_EVENTS + 1)), E413, "body")
    yield _case(target, "size:5000-nulls", dumps([None] * 5_000), E413, "body")
    padded = dumps(event) + b" " * MAX_BODY_BYTES
    yield _case(target, "size:body-over-limit", padded, E413)
    yield _case(target, "shape:empty-array", dumps([]), field="body")
    bad = {"empty-object": {}, "null": None, "string": "x", "bad-kind": {**event, "kind": "buy"}}
    for label, item in bad.items():
        yield _case(target, f"mixed:valid-then-{label}", dumps([event, item]), E200)
        yield _case(target, f"mixed:{label}-then-valid", dumps([item, event]), E200)


def _content_types(target: Target) -> Iterator[Case]:
    flat = {k: v for k, v in target.example.items() if not isinstance(v, dict | list)}
    form = "&".join(f"{k}={v}" for k, v in flat.items()).encode()
    xml = "".join(f"<{k}>{v}</{k}>" for k, v in flat.items()).encode()
    bodies = {
        "application/x-www-form-urlencoded": form,
        "multipart/form-data; boundary=s": b"--s\r\n\r\nx\r\n--s--\r\n",
        "application/xml": b"<offer>" + xml + b"</offer>",
        "text/csv": (",".join(flat) + "\n" + ",".join(map(str, flat.values()))).encode(),
    }
    for i, (content_type, body) in enumerate(bodies.items()):
        yield _case(target, f"ctype:{_slug(content_type, i)}", body, E415_422, None, content_type)


# The storefront's GET: (label, customer id in the path, query parameters, field named).
_QUERIES: Final[tuple[tuple[str, str, dict[str, str], str], ...]] = (
    *((f"n-{_slug(v, i)}", "c-1", {"n": v}, "n") for i, v in enumerate(
        ("0", "11", "-1", "abc", "1.5", "1e3", "", "99999999999999999999", "NaN", "true", "1 1"))),
    *((f"placement-{_slug(v, i)}", "c-1", {"placement": v}, "placement") for i, v in enumerate(
        ("Home", "", "h" * 65, "home page", "-home", "home\x00", "../etc", "hôme", "home\n"))),
    ("customer-nul", "c\x00d", {}, "customer_id"),
    ("customer-too-long", "c" * 129, {}, "customer_id"),
)  # fmt: skip


def _storefront() -> Iterator[Case]:
    for label, customer, params, field in _QUERIES:
        path = "/v1/offers/" + customer.replace("\x00", "%00")
        yield Case(
            f"query:storefront:{label}",
            "GET",
            path,
            None,
            JSON_TYPE,
            E422,
            field,
            tuple(params.items()),
        )


_BAD_OFFER_IDS: Final = ("a b", "x" * 129, "spring%", "spr\u00efng", "a\x00b", "a;b", "a,b")
_BAD_EXPERIMENT_IDS: Final = ("abc", "0", "-1", "1.5", "9" * 20, "1e3", "0x1", "true")


def _paths() -> Iterator[Case]:
    """Malformed path and query parameters of the admin routes."""
    placement, offer = dumps(PLACEMENT), dumps({k: v for k, v in OFFER.items() if k != "offer_id"})
    for i, name in enumerate(n for n in _BAD_NAMES if n):
        at = "/v1/placements/" + quote(name, safe="")
        yield Case(f"path:placement:{_slug(name, i)}", "PUT", at, placement, JSON_TYPE, E422,
                   "placement")  # fmt: skip
        yield Case(f"path:placement-read:{_slug(name, i)}", "GET", at, None, JSON_TYPE, E422,
                   "placement")  # fmt: skip
        yield Case(f"path:evaluation:{_slug(name, i)}", "GET", at + "/evaluation", None,
                   JSON_TYPE, E422, "placement")  # fmt: skip
    for i, offer_id in enumerate(_BAD_OFFER_IDS):
        at = "/v1/offers/" + quote(offer_id, safe="")
        yield Case(f"path:offer:{_slug(offer_id, i)}", "PUT", at, offer, JSON_TYPE, E422,
                   "offer_id")  # fmt: skip
        yield Case(f"path:offer-retire:{_slug(offer_id, i)}", "DELETE", at, None, JSON_TYPE,
                   E422, "offer_id")  # fmt: skip
    for i, value in enumerate(_BAD_EXPERIMENT_IDS):
        at = "/v1/experiments/" + quote(value, safe="")
        yield Case(f"path:experiment:{_slug(value, i)}", "GET", at, None, JSON_TYPE, E422,
                   "experiment_id")  # fmt: skip
        yield Case(f"path:experiment-stop:{_slug(value, i)}", "POST", at + "/stop", None,
                   JSON_TYPE, E422, "experiment_id")  # fmt: skip
    for i, value in enumerate(("maybe", "2", "", "yes please", "[]")):
        yield Case(f"query:offers:include-retired-{_slug(value, i)}", "GET", "/v1/offers", None,
                   JSON_TYPE, E422, "include_retired", (("include_retired", value),))  # fmt: skip
    for i, value in enumerate(_BAD_DATES):
        if value:
            yield Case(f"query:evaluation:since-{_slug(value, i)}", "GET",
                       "/v1/placements/home/evaluation", None, JSON_TYPE, E422, "since",
                       (("since", value),))  # fmt: skip
    yield Case("query:evaluation:target-too-long", "GET", "/v1/placements/home/evaluation",
               None, JSON_TYPE, E422, "target", (("target", "x" * 141),))  # fmt: skip


@cache
def _build() -> tuple[Case, ...]:
    parts = (
        _broken_json,
        _shapes,
        _per_field,
        _extras,
        _rules,
        _feedback_batches,
        _content_types,
    )
    cases = (
        *(c for t in TARGETS for part in parts for c in part(t)),
        *_storefront(),
        *_paths(),
    )
    if len({case.name for case in cases}) != len(cases):
        raise ValueError("duplicate case names")
    return cases


def build_corpus() -> list[Case]:
    return [copy.copy(case) for case in _build()]
