"""The Redis key schema, in one place (the chart's alerts and KEDA read the queue keys too)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "agent:"

    def task(self, task_id: str) -> str:
        return f"{self.prefix}task:{task_id}"

    def events(self, task_id: str) -> str:
        return f"{self.prefix}task:{task_id}:events"

    def session(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"
