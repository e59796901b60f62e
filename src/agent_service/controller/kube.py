"""``KubeCluster``: the controller's ``Cluster`` port on the official Kubernetes client, and
``KubeSecrets``: the ``SecretStore`` of ``agent-service ensure-secret``.

The only module that talks to the Kubernetes API. Calls are synchronous (kopf runs sync
handlers in its thread pool); API errors other than "not found" become
``ApiUnavailableError`` so the handler retries.
"""

from __future__ import annotations

import base64
import datetime
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from agent_service.agentconfig.crd import API_VERSION, BY_KIND, GROUP, VERSION
from agent_service.agentconfig.spec import SecretKeyRef
from agent_service.controller.generated_secrets import SecretStoreError, StoredSecret
from agent_service.controller.ports import (
    ApiUnavailableError,
    ConfigMapState,
    EventType,
    ObjectRef,
    Resource,
)

MANAGED_BY = "agent-service-controller"

log = logging.getLogger(__name__)


def connect() -> client.ApiClient:
    """An API client from the pod's service account, else from the local kubeconfig."""
    try:
        kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        kube_config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


class KubeCluster:
    """The namespace's config resources, Secrets, the pods' ConfigMap and Events."""

    def __init__(self, namespace: str, api: client.ApiClient) -> None:
        self._namespace = namespace
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)

    def read_resource(self, kind: str, name: str) -> Resource | None:
        try:
            body: dict[str, Any] = self._custom.get_namespaced_custom_object(  # type: ignore[assignment]
                GROUP, VERSION, self._namespace, BY_KIND[kind].plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ApiUnavailableError(f"reading {kind} {name}: {exc.status} {exc.reason}") from exc
        return Resource.from_body(kind, body)

    def list_resources(self, kind: str, label: tuple[str, str]) -> list[Resource]:
        plural = BY_KIND[kind].plural
        try:
            found: dict[str, Any] = self._custom.list_namespaced_custom_object(  # type: ignore[assignment]
                GROUP, VERSION, self._namespace, plural, label_selector=f"{label[0]}={label[1]}"
            )
        except ApiException as exc:
            if exc.status == 404:  # the CRD is not installed: there are none
                log.debug("%s: not served by the API server", plural)
                return []
            raise ApiUnavailableError(f"listing {plural}: {exc.status} {exc.reason}") from exc
        return [Resource.from_body(kind, item) for item in found.get("items") or []]

    def patch_status(self, obj: ObjectRef, status: dict[str, Any]) -> None:
        plural = BY_KIND[obj.kind].plural
        try:
            self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, self._namespace, plural, obj.name, {"status": status}
            )
        except ApiException as exc:
            if exc.status == 404:  # deleted meanwhile: nothing to report on
                return
            raise ApiUnavailableError(
                f"patching the status of {obj.kind} {obj.name}: {exc.status} {exc.reason}"
            ) from exc

    def secret_value(self, ref: SecretKeyRef) -> str | None:
        """The value of a Secret key (for the MCP probe's headers), or None if it is absent."""
        try:
            secret = self._core.read_namespaced_secret(ref.name, self._namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ApiUnavailableError(
                f"reading Secret {ref.name}: {exc.status} {exc.reason}"
            ) from exc
        encoded = (secret.data or {}).get(ref.key)
        return base64.b64decode(encoded).decode("utf-8", "replace").strip() if encoded else None

    def secret_keys(self, name: str) -> set[str] | None:
        try:
            secret = self._core.read_namespaced_secret(name, self._namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ApiUnavailableError(f"reading Secret {name}: {exc.status} {exc.reason}") from exc
        return set(secret.data or {}) | set(secret.string_data or {})

    def read_configmap(self, name: str) -> ConfigMapState | None:
        try:
            found = self._core.read_namespaced_config_map(name, self._namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ApiUnavailableError(
                f"reading ConfigMap {name}: {exc.status} {exc.reason}"
            ) from exc
        annotations = found.metadata.annotations if found.metadata is not None else None
        return ConfigMapState(data=dict(found.data or {}), annotations=dict(annotations or {}))

    def write_configmap(self, name: str, data: dict[str, str], annotations: dict[str, str]) -> None:
        body = client.V1ConfigMap(
            api_version="v1",
            kind="ConfigMap",
            metadata=client.V1ObjectMeta(
                name=name,
                namespace=self._namespace,
                labels={
                    "app.kubernetes.io/managed-by": MANAGED_BY,
                    "app.kubernetes.io/part-of": "agent-service",
                },
                annotations=annotations,
            ),
            data=data,
        )
        try:
            try:
                self._core.patch_namespaced_config_map(name, self._namespace, body)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self._core.create_namespaced_config_map(self._namespace, body)
        except ApiException as exc:
            raise ApiUnavailableError(
                f"writing ConfigMap {name}: {exc.status} {exc.reason}"
            ) from exc

    def event(self, obj: ObjectRef, type_: EventType, reason: str, message: str) -> None:
        now = datetime.datetime.now(datetime.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{obj.name}.", namespace=obj.namespace),
            involved_object=client.V1ObjectReference(
                api_version=API_VERSION,
                kind=obj.kind,
                name=obj.name,
                namespace=obj.namespace,
                uid=obj.uid or None,
            ),
            type=type_,
            reason=reason,
            message=message[:1024],
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component=MANAGED_BY),
            reporting_component=MANAGED_BY,
        )
        try:
            self._core.create_namespaced_event(obj.namespace, event)
        except ApiException as exc:  # best effort: the status says it all
            log.warning("cannot post an event for %s: %s %s", obj.name, exc.status, exc.reason)


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def pod_namespace(configured: str | None) -> str:
    """``configured``, else the pod's own namespace, else ``default`` (outside a cluster)."""
    if configured:
        return configured
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


class KubeSecrets:
    """``generated_secrets.SecretStore`` on the Kubernetes API: read, create, add keys.

    Additions are a merge patch carrying the resourceVersion that was read, so the API server
    refuses one (409) when the Secret changed in between: a value written by someone else is
    never overwritten.
    """

    def __init__(self, namespace: str, api: client.ApiClient) -> None:
        self._namespace = namespace
        self._core = client.CoreV1Api(api)

    def _failed(self, action: str, name: str, exc: ApiException) -> SecretStoreError:
        return SecretStoreError(
            f"{action} Secret {self._namespace}/{name}: {exc.status} {exc.reason}"
        )

    def read(self, name: str) -> StoredSecret | None:
        try:
            found = self._core.read_namespaced_secret(name, self._namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._failed("reading", name, exc) from exc
        meta = found.metadata or client.V1ObjectMeta()
        return StoredSecret(
            data={k: base64.b64decode(v) for k, v in (found.data or {}).items()},
            labels=dict(meta.labels or {}),
            annotations=dict(meta.annotations or {}),
            version=meta.resource_version or "",
        )

    def create(self, name: str, data: Mapping[str, str], labels: Mapping[str, str]) -> bool:
        body = client.V1Secret(
            api_version="v1",
            kind="Secret",
            type="Opaque",
            metadata=client.V1ObjectMeta(name=name, namespace=self._namespace, labels=dict(labels)),
            data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        )
        try:
            self._core.create_namespaced_secret(self._namespace, body)
        except ApiException as exc:
            if exc.status == 409:  # created by someone else since we looked
                return False
            raise self._failed("creating", name, exc) from exc
        return True

    def add(
        self, name: str, version: str, data: Mapping[str, str], annotations: Mapping[str, str]
    ) -> bool:
        metadata: dict[str, object] = {"resourceVersion": version}
        if annotations:
            metadata["annotations"] = dict(annotations)
        body: dict[str, object] = {"metadata": metadata}
        if data:
            body["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        try:
            self._core.patch_namespaced_secret(name, self._namespace, body)
        except ApiException as exc:
            if exc.status == 409:  # changed since we read it
                return False
            raise self._failed("patching", name, exc) from exc
        return True


def secret_store(namespace: str | None) -> KubeSecrets:
    """The ``KubeSecrets`` of ``namespace`` (default: the pod's), through the pod's service
    account or the local kubeconfig."""
    try:
        api = connect()
    except kube_config.ConfigException as exc:
        raise SecretStoreError(f"no Kubernetes credentials: {exc}") from exc
    return KubeSecrets(pod_namespace(namespace), api)
