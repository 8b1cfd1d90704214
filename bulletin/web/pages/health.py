"""`GET /healthz`: answers "ok" without touching the database.

For load balancers and process supervisors, and the baseline `bench/web.py`
measures the other pages against: the cost of the app, its middleware and
uvicorn alone.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import PlainTextResponse

router = APIRouter()


@router.get("/healthz")
def healthz() -> PlainTextResponse:
    return PlainTextResponse("ok\n")
