"""The ceiling of the web stack alone: FastAPI and uvicorn with nothing behind them.

One POST route that parses the JSON body and answers ``{"ok": true}``, served by the same
uvicorn command line as the ingest API, so that the single-record benchmark can tell the
cost of the framework from the cost of the ingest work.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request

app = FastAPI(title="bare")


@app.get("/healthz")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.post("/v1/events")
async def post_event(request: Request) -> dict[str, Any]:
    orjson.loads(await request.body())
    return {"ok": True}
