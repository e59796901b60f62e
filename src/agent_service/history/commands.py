"""``agent-service history migrate``: the schema migration as a command (a Helm hook Job runs
it before the pods of a new release start; ``AGENT_HISTORY_MIGRATE_AT_START=false`` then)."""

from __future__ import annotations

import asyncio
import logging

from agent_service.domain.errors import DependencyUnavailableError
from agent_service.history.migrate import upgrade_schema
from agent_service.history.models import HistoryConfigError
from agent_service.settings import Settings

log = logging.getLogger(__name__)


def migrate_command(settings: Settings) -> int:
    """Migrate, log the outcome; exit status 0, 1 (Postgres unavailable) or 2 (not set up).
    The caller has configured logging."""
    try:
        result = asyncio.run(upgrade_schema(settings.history))
    except HistoryConfigError as exc:
        log.error("cannot migrate the history schema: %s", exc)
        return 2
    except DependencyUnavailableError as exc:
        log.error("cannot migrate the history schema: %s", exc.message)
        return 1
    log.info("history schema at revision %s (was %s)", result.after, result.before or "empty")
    return 0
