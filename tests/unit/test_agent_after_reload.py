"""A queued task whose agent the worker does not know yet waits for the worker's reload."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from agent_service.worker.execution import Execution, _agent_after_reload


class _Snapshot:
    def __init__(self, agents: dict[str, object]) -> None:
        self._agents = agents

    def agent_for(self, name: str, tenant: str) -> object | None:
        del tenant
        return self._agents.get(name)


def _deps(grace: float) -> Any:
    configs = SimpleNamespace(current=_Snapshot({}))
    return SimpleNamespace(configs=configs, reload_grace_seconds=grace)


RECORD: Any = SimpleNamespace(agent="newcomer", tenant="default")


async def test_the_agent_a_reload_brings_in_is_used() -> None:
    deps = _deps(grace=5.0)
    agent = object()

    async def reload_soon() -> None:
        await asyncio.sleep(0.2)
        deps.configs.current = _Snapshot({"newcomer": agent})

    reloading = asyncio.create_task(reload_soon())
    found = await _agent_after_reload(cast(Execution, deps), RECORD)
    await reloading
    assert found is agent


async def test_an_agent_no_reload_brings_in_is_gone_after_the_grace() -> None:
    assert await _agent_after_reload(cast(Execution, _deps(grace=0.3)), RECORD) is None


async def test_without_reloads_there_is_no_wait() -> None:
    assert await _agent_after_reload(cast(Execution, _deps(grace=0.0)), RECORD) is None
