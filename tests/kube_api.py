"""A fake Kubernetes API server: just the pod PATCH a worker makes for its deletion cost.

An aiohttp server over HTTPS (a private CA, ``tests.tls``) on its own thread, so both
in-process tests and real worker processes can call it. It checks what the real API server
would (the bearer token, the merge-patch content type, a known pod) and keeps each pod's
annotations and every patch body.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.procs import free_port
from tests.tls import make_certificates


@dataclass
class FakeKubeApi:
    directory: Path
    token: str = "sa-token-123"
    refuse: int | None = None
    """Answer every patch with this status (e.g. 403) instead of applying it."""
    annotations: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    patches: list[dict[str, Any]] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def service_account_dir(self) -> Path:
        return self.directory / "serviceaccount"

    def start(self) -> FakeKubeApi:
        certs = make_certificates(self.directory / "certs")
        account = self.service_account_dir
        account.mkdir(parents=True, exist_ok=True)
        (account / "token").write_text(self.token)
        (account / "ca.crt").write_bytes(certs.ca.read_bytes())
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certs.cert, certs.key)
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_patch("/api/v1/namespaces/{ns}/pods/{name}", self._patch)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=context)
            self._loop.run_until_complete(site.start())
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="fake-kube-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        loop, runner = self._loop, self._runner
        if loop is None or runner is None:
            return
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def cost(self, namespace: str, name: str) -> str | None:
        return self.annotations.get((namespace, name), {}).get(
            "controller.kubernetes.io/pod-deletion-cost"
        )

    async def _patch(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        if request.content_type != "application/merge-patch+json":
            return web.json_response({"kind": "Status", "code": 415}, status=415)
        if self.refuse is not None:
            return web.json_response({"kind": "Status", "code": self.refuse}, status=self.refuse)
        body = json.loads(await request.read())
        self.patches.append(body)
        key = (request.match_info["ns"], request.match_info["name"])
        self.annotations.setdefault(key, {}).update(body["metadata"]["annotations"])
        return web.json_response({"metadata": {"annotations": self.annotations[key]}})
