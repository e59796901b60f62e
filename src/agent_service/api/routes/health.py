"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from agent_service.api.deps import RedisDep, SnapshotDep
from agent_service.api.errors import RETRY_AFTER_SECONDS
from agent_service.api.schemas import Health, Readiness
from agent_service.store.client import ping

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process answers. Checks nothing else: a Redis outage must not restart pods."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(redis: RedisDep, snapshot: SnapshotDep) -> JSONResponse:
    """Readiness: Redis answers and a config is loaded (its generation and hash are reported)."""
    redis_ok = await ping(redis)
    version = snapshot.version
    body = Readiness(
        status="ready" if redis_ok else "not_ready",
        redis="ok" if redis_ok else "unreachable",
        config={
            "generation": version.generation,
            "hash": version.hash,
            "default_model": version.config.default_model,
        },
    )
    headers = {} if redis_ok else {"Retry-After": RETRY_AFTER_SECONDS}
    return JSONResponse(body.model_dump(), status_code=200 if redis_ok else 503, headers=headers)
