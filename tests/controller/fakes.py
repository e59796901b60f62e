"""Fakes for the controller's unit tests: a ``Cluster`` (Secrets, ConfigMaps and Events in
dicts) and a ``SecretStore`` (``agent-service ensure-secret``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from agent_service.controller.generated_secrets import StoredSecret
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


@dataclass
class FakeSecretStore:
    """``generated_secrets.SecretStore`` over a dict; ``race`` creates a Secret (as another
    writer would) right before the next create or add, to exercise the retry."""

    secrets: dict[str, StoredSecret] = field(default_factory=dict)
    race: StoredSecret | None = None
    writes: list[str] = field(default_factory=list)
    _versions: int = 0

    def _bump(self) -> str:
        self._versions += 1
        return str(self._versions)

    def put(self, name: str, data: dict[str, bytes], **meta: dict[str, str]) -> None:
        self.secrets[name] = StoredSecret(data, version=self._bump(), **meta)

    def _interfere(self, name: str) -> None:
        if self.race is not None:
            self.secrets[name], self.race = replace(self.race, version=self._bump()), None

    def read(self, name: str) -> StoredSecret | None:
        return self.secrets.get(name)

    def create(self, name: str, data: Mapping[str, str], labels: Mapping[str, str]) -> bool:
        self._interfere(name)
        if name in self.secrets:
            return False
        self.writes.append(f"create {name}")
        encoded = {k: v.encode() for k, v in data.items()}
        self.secrets[name] = StoredSecret(encoded, dict(labels), {}, self._bump())
        return True

    def add(
        self, name: str, version: str, data: Mapping[str, str], annotations: Mapping[str, str]
    ) -> bool:
        self._interfere(name)
        current = self.secrets[name]
        if current.version != version:
            return False
        self.writes.append(f"add {name}")
        self.secrets[name] = StoredSecret(
            {**current.data, **{k: v.encode() for k, v in data.items()}},
            current.labels,
            {**current.annotations, **annotations},
            self._bump(),
        )
        return True
