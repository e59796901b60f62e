"""``GET /metrics`` on the API port (pods also serve it on the separate metrics port)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from agent_service.api.errors import ApiError
from agent_service.domain.errors import ErrorType

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus exposition; OpenMetrics (with exemplars) when the scraper asks for it.
    Behind a bearer token when ``AGENT_AUTH_METRICS_TOKEN_FILE`` is set."""
    token: str | None = request.state.metrics_token
    if token is not None:
        presented = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(presented, f"Bearer {token}".encode()):
            raise ApiError(
                401,
                ErrorType.UNAUTHORIZED,
                "/metrics needs its bearer token",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    registry = request.state.scrape_registry
    # Collecting reads Redis (queue depth) with a blocking client: keep it off the event loop.
    if "application/openmetrics-text" in request.headers.get("accept", ""):
        body = await run_in_threadpool(generate_openmetrics, registry)
        return Response(body, media_type=OPENMETRICS_TYPE)
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
