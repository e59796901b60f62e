"""A worker's history drainer alone in a process (``python -m tests.history.drainer_proc``),
for the tests that SIGKILL one mid-archive. Settings come from ``AGENT_*`` variables, as in a
worker; it drains until SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from prometheus_client import CollectorRegistry

from agent_service.history.runtime import open_history
from agent_service.observability.logging import configure_logging
from agent_service.observability.metrics import Metrics
from agent_service.settings import Settings
from agent_service.store.client import create_redis
from agent_service.store.history_outbox import HistoryOutbox
from agent_service.store.keys import Keys
from agent_service.worker.history_drainer import HistoryDrainer


async def main() -> None:
    settings = Settings()
    configure_logging(settings.log, component="drainer")
    client = create_redis(settings.redis)
    outbox = HistoryOutbox(client, Keys(settings.redis.key_prefix), settings.tasks.ttl_seconds)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with open_history(settings.history) as history:
        assert history is not None, "AGENT_HISTORY_URL is not set"
        drainer = HistoryDrainer(history, outbox, Metrics(CollectorRegistry()), settings.history)
        await drainer.start()
        await stop.wait()
        await drainer.stop(5)
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
