"""HTTP tools declared in the agent config, called through an SSRF-guarded aiohttp session.

The process runtime (``runtime``) creates the session with ``egress.create_guarded_session``
inside its event loop, passes it to ``build_http_tools`` and closes it when the config snapshot
is retired; the agent loop only sees the resulting ``Tool`` objects.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from agent_service.agent.ports import Tool
from agent_service.agentconfig.model import HttpToolSpec
from agent_service.domain.errors import ToolError
from agent_service.domain.messages import ToolSpec
from agent_service.egress.guard import AddressNotAllowedError, check_url
from agent_service.egress.session import is_guarded

MAX_OUTPUT_CHARS = 8000
MAX_BODY_BYTES = 1024 * 1024
ERROR_EXCERPT_CHARS = 200
BACKOFF_SECONDS = 0.2
_TRUNCATED = " …[truncated]"
IDEMPOTENCY_HEADER = "Idempotency-Key"
"""Carries ``<task_id>:<step>`` on every call of a queued run (docs/durability.md)."""


class _RetryableError(Exception):
    """An attempt failed in a way another attempt may fix (connection, timeout, 5xx)."""


def build_http_tools(
    specs: Sequence[HttpToolSpec], *, allow_private_networks: bool, session: aiohttp.ClientSession
) -> list[Tool]:
    """One ``HttpTool`` per spec, sharing ``session`` (from ``create_guarded_session``).

    ``ValueError`` when the session was not made by ``create_guarded_session`` with the same
    ``allow_private_networks``: host names would then bypass the SSRF policy.
    """
    if not is_guarded(session, allow_private_networks):
        raise ValueError(
            "session must come from egress.create_guarded_session(allow_private_networks="
            f"{allow_private_networks})"
        )
    return [
        HttpTool(spec, session=session, allow_private_networks=allow_private_networks)
        for spec in specs
    ]


class HttpTool:
    """A tool served by an HTTP endpoint (implements ``agent.ports.Tool``).

    POST sends the arguments as a JSON body, GET as query parameters. Each attempt is bounded by
    the spec's timeout; connection errors, timeouts and 5xx are retried ``retries`` times with
    exponential backoff; 3xx (redirects are not followed) and 4xx fail at once.
    """

    def __init__(
        self,
        spec: HttpToolSpec,
        *,
        session: aiohttp.ClientSession,
        allow_private_networks: bool,
        backoff_seconds: float = BACKOFF_SECONDS,
    ) -> None:
        self._http = spec
        self._session = session
        self._allow_private = allow_private_networks
        self._backoff = backoff_seconds
        self._spec = ToolSpec(
            name=spec.name, description=spec.description, parameters=spec.parameters
        )

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def invoke(self, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> str:
        """Call the endpoint; with ``idempotency_key`` every attempt (retries included) sends
        it as ``Idempotency-Key``, so the service can tell a repeated call from a new one."""
        # Literal IP hosts never reach the resolver, so they are checked here.
        check_url(self._http.url, self._allow_private)
        headers = self._http.headers
        if idempotency_key is not None:
            headers = {**headers, IDEMPOTENCY_HEADER: idempotency_key}
        for attempt in range(self._http.retries):
            try:
                return await self._attempt(arguments, headers)
            except _RetryableError:
                await asyncio.sleep(self._backoff * 2**attempt)
        try:
            return await self._attempt(arguments, headers)
        except _RetryableError as exc:
            attempts = self._http.retries + 1
            suffix = f" (after {attempts} attempts)" if attempts > 1 else ""
            raise ToolError(f"{exc}{suffix}") from None

    async def _attempt(self, arguments: dict[str, Any], headers: Mapping[str, str]) -> str:
        timeout = self._http.timeout_seconds
        body: dict[str, Any] = (
            {"params": query_params(arguments)}
            if self._http.method == "GET"
            else {"json": arguments}
        )
        try:
            async with self._session.request(
                self._http.method,
                self._http.url,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
                **body,
            ) as response:
                text, complete = await _read_text(response)
                status, content_type = response.status, response.content_type
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressNotAllowedError):
                raise ToolError(str(exc.os_error)) from None
            # Host and port only: the configured URL may carry a key in its query string.
            raise _RetryableError(f"cannot connect to {exc.host}:{exc.port}") from None
        except TimeoutError:
            raise _RetryableError(f"no answer within {timeout:g} s") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise _RetryableError(f"connection error: {type(exc).__name__}") from None
        except aiohttp.ClientError as exc:
            raise ToolError(f"request failed: {type(exc).__name__}: {exc}") from None
        return _result(status, content_type, text, complete)


def query_params(arguments: Mapping[str, Any]) -> list[tuple[str, str]]:
    """GET arguments as query parameters: scalars as text, lists and objects as JSON."""
    params: list[tuple[str, str]] = []
    for key, value in arguments.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params.append((key, "true" if value else "false"))
        elif isinstance(value, str | int | float):
            params.append((key, str(value)))
        else:
            params.append((key, json.dumps(value, ensure_ascii=False)))
    return params


async def _read_text(response: aiohttp.ClientResponse) -> tuple[str, bool]:
    """The body as text, at most ``MAX_BODY_BYTES`` of it, and whether it was read whole."""
    chunks: list[bytes] = []
    size = 0
    complete = True
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            complete = False
            break
    raw = b"".join(chunks)[:MAX_BODY_BYTES]
    try:
        return raw.decode(response.charset or "utf-8", errors="replace"), complete
    except LookupError:
        return raw.decode("utf-8", errors="replace"), complete


def _result(status: int, content_type: str, text: str, complete: bool) -> str:
    if 200 <= status < 300:
        return _truncate(_compact_json(text) if complete and "json" in content_type else text)
    excerpt = _truncate(" ".join(text.split()), ERROR_EXCERPT_CHARS)
    detail = f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}"
    if status >= 500:
        raise _RetryableError(detail)
    if 300 <= status < 400:
        raise ToolError(f"HTTP {status}: redirects are not followed")
    raise ToolError(detail)


def _compact_json(text: str) -> str:
    """JSON on one line with readable separators; the text as it was if it is not JSON."""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except (ValueError, RecursionError):
        return text


def _truncate(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(_TRUNCATED)] + _TRUNCATED
