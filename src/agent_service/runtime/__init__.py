"""The process runtime: what an API or a worker process builds once and closes at the end.

``process.open_runtime`` is the one start-up routine of both; ``configs.ConfigHolder`` swaps the
config ``snapshot.Snapshot`` (named agents, LLM client, tool sessions) on a hot reload.
"""

from agent_service.runtime.configs import ConfigHolder
from agent_service.runtime.process import Runtime, open_runtime
from agent_service.runtime.snapshot import Snapshot

__all__ = ["ConfigHolder", "Runtime", "Snapshot", "open_runtime"]
