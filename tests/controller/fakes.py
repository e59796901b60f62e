"""Fakes for the controller's unit tests: a ``Cluster`` (config resources, Secrets, ConfigMaps
and Events in dicts, status patches merged as the API server merges them) and a
``SecretStore`` (``agent-service ensure-secret``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from agent_service.controller.generated_secrets import StoredSecret
from agent_service.controller.ports import ConfigMapState, EventType, ObjectRef, Resource


@dataclass
class FakeCluster:
    secrets: dict[str, set[str]] = field(default_factory=dict)
    configmaps: dict[str, ConfigMapState] = field(default_factory=dict)
    resources: dict[tuple[str, str], Resource] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    event_objects: list[tuple[str, str]] = field(default_factory=list)
    patches: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    writes: int = 0

    # --- the resources, as a user applies them ------------------------------------------------

    def apply(
        self,
        kind: str,
        name: str,
        spec: Mapping[str, Any],
        *,
        labels: Mapping[str, str] | None = None,
        uid: str | None = None,
        generation: int | None = None,
    ) -> Resource:
        """Create or update a resource: a new spec bumps its generation (unless given), the
        status stays."""
        old = self.resources.get((kind, name))
        if generation is None:
            generation = 1 if old is None else old.generation + (dict(old.spec) != dict(spec))
        resource = Resource(
            kind=kind,
            name=name,
            namespace="agents",
            generation=generation,
            spec=dict(spec),
            status=dict(old.status) if old is not None else {},
            uid=uid or (old.uid if old is not None else f"uid-{kind}-{name}"),
            labels=dict(labels if labels is not None else (old.labels if old else {})),
        )
        self.resources[(kind, name)] = resource
        return resource

    def delete(self, kind: str, name: str) -> None:
        del self.resources[(kind, name)]

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return dict(self.resources[(kind, name)].status)

    def condition(self, kind: str, name: str, type_: str) -> dict[str, Any]:
        conditions = self.status(kind, name)["conditions"]
        found: dict[str, Any] = next(c for c in conditions if c["type"] == type_)
        return found

    # --- the Cluster port ------------------------------------------------------------------

    def secret_keys(self, name: str) -> set[str] | None:
        return self.secrets.get(name)

    def read_configmap(self, name: str) -> ConfigMapState | None:
        return self.configmaps.get(name)

    def write_configmap(self, name: str, data: dict[str, str], annotations: dict[str, str]) -> None:
        self.writes += 1
        old = self.configmaps.get(name)
        merged = {**(old.annotations if old else {}), **annotations}
        self.configmaps[name] = ConfigMapState(dict(data), merged)

    def event(self, obj: ObjectRef, type_: EventType, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))
        self.event_objects.append((obj.kind, obj.name))

    def read_resource(self, kind: str, name: str) -> Resource | None:
        return self.resources.get((kind, name))

    def list_resources(self, kind: str, label: tuple[str, str]) -> list[Resource]:
        key, value = label
        return [
            r
            for (k, _), r in sorted(self.resources.items())
            if k == kind and r.labels.get(key) == value
        ]

    def patch_status(self, obj: ObjectRef, status: dict[str, Any]) -> None:
        self.patches.append((obj.kind, obj.name, dict(status)))
        current = self.resources.get((obj.kind, obj.name))
        if current is None:
            return
        merged = {**current.status, **status}
        merged = {k: v for k, v in merged.items() if v is not None}
        self.resources[(obj.kind, obj.name)] = replace(current, status=merged)


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
