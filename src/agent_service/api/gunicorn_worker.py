"""The gunicorn worker class of ``agent-service api --workers N`` (imported by gunicorn only).

uvicorn-worker's ``UvicornWorker``, serving with ``api.server.DrainingServer`` and the app's
graceful timeout, so each worker process drains like a lone uvicorn does (``api.drain``).
"""

from __future__ import annotations

import math
import sys

from gunicorn.arbiter import Arbiter
from uvicorn_worker import UvicornWorker

from agent_service.api.drain import Drain
from agent_service.api.server import DrainingServer


class DrainingUvicornWorker(UvicornWorker):  # type: ignore[misc]
    async def _serve(self) -> None:
        self.config.app = self.wsgi
        drain: Drain = self.wsgi.state.drain
        self.config.timeout_graceful_shutdown = math.ceil(drain.grace)
        server = DrainingServer(self.config, drain)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
