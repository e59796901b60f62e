"""A fake ``Cluster`` for the controller's unit tests: Secrets, ConfigMaps and Events in dicts."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent_service.controller.reconcile import ConfigMapState, EventType, ObjectRef


@dataclass
class FakeCluster:
    secrets: dict[str, set[str]] = field(default_factory=dict)
    configmaps: dict[str, ConfigMapState] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    writes: int = 0

    def secret_keys(self, name: str) -> set[str] | None:
        return self.secrets.get(name)

    def read_configmap(self, name: str) -> ConfigMapState | None:
        return self.configmaps.get(name)

    def write_configmap(self, name: str, data: dict[str, str], annotations: dict[str, str]) -> None:
        self.writes += 1
        self.configmaps[name] = ConfigMapState(dict(data), dict(annotations))

    def event(self, obj: ObjectRef, type_: EventType, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))
