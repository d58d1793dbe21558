"""Scope matrix and tenant isolation over every route of every API, generated from the
APIs' own OpenAPI documents: a route added tomorrow is in both without a line here.

Each operation says which scopes may call it (``x-required-scopes``, written from its
``require(...)`` dependency); an operation that says nothing must be one of the few
public ones, or this test fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from services.ingest.records.schemas import RECORD_MODELS, RecordKind, example_of
from shared.auth import Scope
from shared.db import session_scope
from tests.conftest import MakeKey
from tests.segment.builders import add_membership, create_customer, create_run, create_segment
from tests.shared.conftest import PlatformApi
from tests.support.http import auth, tenant_of

pytestmark = pytest.mark.e2e

APIS = ("ingest", "segment", "nlp", "personalize")
PUBLIC = {("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics")}
UNKNOWN_KEY = "sgm_0a1b2c3d4e5f_" + "u" * 43


@dataclass(frozen=True)
class Operation:
    api: str
    method: str
    path: str
    scopes: tuple[str, ...] | None
    path_params: dict[str, dict[str, Any]]
    body_types: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.api} {self.method.upper()} {self.path}"


def operations(platform_apis: dict[str, PlatformApi]) -> Iterator[Operation]:
    for api in APIS:
        document = httpx.get(f"{platform_apis[api].base}/openapi.json", timeout=30).json()
        for path, methods in document["paths"].items():
            for method, operation in methods.items():
                params = {
                    p["name"]: p["schema"]
                    for p in operation.get("parameters", [])
                    if p["in"] == "path"
                }
                body = operation.get("requestBody", {}).get("content", {})
                scopes = operation.get("x-required-scopes")
                yield Operation(
                    api, method, path, tuple(scopes) if scopes else None, params, tuple(body)
                )


def _sample(path: str, name: str, schema: dict[str, Any], values: dict[str, str]) -> str:
    """``values`` names a path parameter by its name, or by the path up to it where one
    name means different things (``/v1/anomalies/runs/{run_id}``)."""
    scoped = path[: path.index("{" + name + "}")] + "{" + name + "}"
    for key in (scoped, name):
        if key in values:
            return values[key]
    if "enum" in schema:
        return str(schema["enum"][0])
    return "1" if schema.get("type") == "integer" else "matrix-1"


def call(
    client: httpx.Client,
    base: str,
    op: Operation,
    headers: dict[str, str],
    values: dict[str, str] | None = None,
    body: Any = None,
) -> httpx.Response:
    path = op.path
    for name, schema in op.path_params.items():
        path = path.replace("{" + name + "}", _sample(op.path, name, schema, values or {}))
    kwargs: dict[str, Any] = {"headers": headers}
    if op.body_types:
        kwargs["json"] = {} if body is None else body
    return client.request(op.method.upper(), f"{base}{path}", **kwargs)


def test_every_route_is_public_by_design_or_declares_its_scopes(
    platform_apis: dict[str, PlatformApi],
) -> None:
    undeclared = [
        op.name
        for op in operations(platform_apis)
        if op.scopes is None and (op.method, op.path) not in PUBLIC
    ]
    assert undeclared == []
    known = {s.value for s in Scope}
    for op in operations(platform_apis):
        assert set(op.scopes or ()) <= known, op.name


def test_scope_matrix_over_every_route(
    platform_apis: dict[str, PlatformApi], make_key: MakeKey
) -> None:
    keys = {s.value: make_key(s.value, rate_limit_per_minute=1_000_000) for s in Scope}
    deviations: list[str] = []
    checked = 0
    with httpx.Client(timeout=60) as client:
        for op in operations(platform_apis):
            base = platform_apis[op.api].base
            if op.scopes is None:
                answer = call(client, base, op, {})
                if answer.status_code != 200:
                    deviations.append(f"{op.name} without a key: {answer.status_code}")
                continue
            for label, headers in (("no key", {}), ("unknown key", auth(UNKNOWN_KEY))):
                answer = call(client, base, op, headers)
                if answer.status_code != 401:
                    deviations.append(f"{op.name} with {label}: {answer.status_code}")
            for scope, key in keys.items():
                answer = call(client, base, op, auth(key))
                allowed = scope == Scope.ADMIN or scope in op.scopes
                status = answer.status_code
                checked += 1
                if status >= 500:
                    deviations.append(f"{op.name} as {scope}: {status} {answer.text[:200]}")
                elif allowed and status in (401, 403):
                    deviations.append(f"{op.name} as {scope}: refused ({status})")
                elif not allowed and status != 403:
                    deviations.append(f"{op.name} as {scope}: {status}, not 403")
                elif not allowed and answer.json()["detail"].find("scope") < 0:
                    deviations.append(f"{op.name} as {scope}: 403 without saying why")
    assert deviations == []
    assert checked >= 40 * len(Scope)


@dataclass(frozen=True)
class TenantA:
    secret: str  # in every name tenant A gave, and nowhere in tenant B's answers
    values: dict[str, str]  # path parameters naming tenant A's things
    admin: str
    tenant_id: int


def _seed_tenant_a(
    platform_apis: dict[str, PlatformApi], make_key: MakeKey, engine: Engine
) -> TenantA:
    tenant = f"iso-a-{uuid.uuid4().hex[:10]}"
    secret = f"A-SECRET-{uuid.uuid4().hex[:12]}"
    admin = make_key("admin", tenant=tenant, rate_limit_per_minute=1_000_000)
    tenant_id = tenant_of(engine, admin)
    customer_id, review_id = f"{secret}-cust", f"{secret}-rev"
    ingest = platform_apis["ingest"].base
    review = example_of(RECORD_MODELS[RecordKind.REVIEWS]) | {
        "review_id": review_id,
        "customer_id": customer_id,
        "text": f"{secret} great",
    }
    stored = httpx.post(f"{ingest}/v1/reviews", json=review, headers=auth(admin), timeout=30)
    assert stored.status_code == 200, stored.text
    with session_scope(engine) as session:
        customer = create_customer(session, tenant_id=tenant_id, customer_id=f"{secret}-seg")
        run = create_run(session, tenant_id=tenant_id, active=True)
        assert run.id is not None
        assert customer.id is not None
        create_segment(session, tenant_id=tenant_id, run_id=run.id, key="s1", name=secret)
        add_membership(
            session, tenant_id=tenant_id, customer_pk=customer.id, run_id=run.id, key="s1"
        )
    erased = httpx.delete(f"{ingest}/v1/customers/{secret}-gone", headers=auth(admin), timeout=30)
    assert erased.status_code in (200, 202), erased.text
    personalize = platform_apis["personalize"].base
    offer = {
        "offer_id": f"offer-{secret[-12:]}",
        "kind": "discount",
        "name": secret,
        "placements": ["home"],
        "value": 10,
    }
    made = httpx.post(f"{personalize}/v1/offers", json=offer, headers=auth(admin), timeout=30)
    assert made.status_code in (200, 201), made.text
    experiment = {
        "name": secret,
        "placement": "home",
        "arms": [
            {"name": "control", "share": 0.5, "strategy": "static"},
            {"name": "bandit", "share": 0.5, "strategy": "bandit"},
        ],
    }
    started = httpx.post(
        f"{personalize}/v1/experiments", json=experiment, headers=auth(admin), timeout=30
    )
    assert started.status_code in (200, 201), started.text
    segment = platform_apis["segment"].base
    runs = {  # pending (no worker runs here): another tenant must not cancel them
        "/v1/predictions/{prediction_id}": (segment, "/v1/predictions", {"model": "churn"}),
        "/v1/anomalies/runs/{run_id}": (segment, "/v1/anomalies/runs", {}),
        "/v1/recommenders/runs/{run_id}": (personalize, "/v1/recommenders/runs", {}),
    }
    run_ids: dict[str, str] = {}
    for scoped, (base, path, body) in runs.items():
        asked = httpx.post(f"{base}{path}", json=body, headers=auth(admin), timeout=30)
        assert asked.status_code == 202, asked.text
        run_ids[scoped] = str(asked.json()["id"])
    values = {
        **run_ids,
        "prediction_id": run_ids["/v1/predictions/{prediction_id}"],
        "customer_id": customer_id,
        "segmentation_id": str(run.id),
        "key": "s1",
        "erasure_id": str(erased.json()["erasure_id"]),
        "kind": "reviews",
        "source_id": review_id,
        "offer_id": str(offer["offer_id"]),
        "placement": "home",
        "experiment_id": str(started.json()["experiment_id"]),
    }
    return TenantA(secret, values, admin, tenant_id)


def _unechoed(answer: str, op: Operation, values: dict[str, str]) -> str:
    """An answer without the path values B sent: a route that names what it was asked
    about (``{"customer_id": ...}`` of a cold-start answer) shows B only B's own words."""
    for name in op.path_params:
        if name in values:
            answer = answer.replace(values[name], "")
    return answer


def test_no_route_shows_or_changes_another_tenants_things(
    platform_apis: dict[str, PlatformApi], make_key: MakeKey, engine: Engine
) -> None:
    a = _seed_tenant_a(platform_apis, make_key, engine)
    other = make_key("admin", rate_limit_per_minute=1_000_000)  # holds every scope
    leaks: list[str] = []
    with httpx.Client(timeout=60) as client:
        before = {
            op.name: call(client, platform_apis[op.api].base, op, auth(a.admin), a.values)
            for op in operations(platform_apis)
            if op.method == "get" and op.scopes is not None
        }
        for op in operations(platform_apis):
            if op.scopes is None:
                continue
            answer = call(client, platform_apis[op.api].base, op, auth(other), a.values)
            if answer.status_code >= 500:
                leaks.append(f"{op.name}: {answer.status_code}")
            elif answer.is_success and a.secret in _unechoed(answer.text, op, a.values):
                leaks.append(f"{op.name} showed tenant A's data to tenant B")
        # Tenant A still finds its own things, and B's writes named none of them.
        for op in operations(platform_apis):
            if op.name in before:
                answer = call(client, platform_apis[op.api].base, op, auth(a.admin), a.values)
                if answer.status_code != before[op.name].status_code:
                    leaks.append(f"{op.name} answers tenant A differently after B's calls")
    # B's cancels reached none of A's runs.
    for table in ("segmentation_run", "prediction_run", "anomaly_run", "recommender_run"):
        with engine.connect() as connection:
            statuses = connection.execute(
                text(f"SELECT DISTINCT status FROM {table} WHERE tenant_id = :t"),
                {"t": a.tenant_id},
            ).scalars()
            if set(statuses) & {"cancelling", "cancelled"}:
                leaks.append(f"tenant B cancelled tenant A's {table}")
    assert leaks == []
    # What A reads does show A's secret, so the check above could have caught a leak.
    shown = [name for name, answer in before.items() if a.secret in answer.text]
    assert len(shown) >= 5, shown
