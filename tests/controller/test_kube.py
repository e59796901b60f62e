"""``KubeCluster`` on the real Kubernetes client, talking HTTP to a small fake API server.

What the controller asks of the API for the config resources: the AgentConfig by name, the
Agents and MCPServers by label selector (none when the CRD is not installed), status merge
patches on the status subresource, a Secret's value for an MCP probe, Events on the right kind.
The fake answers like the API server does for those paths (no cluster can run here).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client

from agent_service.agentconfig.crd import CONFIG_LABEL
from agent_service.agentconfig.spec import SecretKeyRef
from agent_service.controller.kube import KubeCluster
from agent_service.controller.ports import ApiUnavailableError, ObjectRef

GROUP_PATH = "/apis/agent-service.dev/v1alpha1/namespaces/agents"


def _agent(name: str, label: str) -> dict[str, Any]:
    return {
        "apiVersion": "agent-service.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {
            "name": name,
            "namespace": "agents",
            "uid": f"uid-{name}",
            "generation": 3,
            "labels": {CONFIG_LABEL: label},
        },
        "spec": {"description": name},
        "status": {"observedGeneration": 2},
    }


class FakeApi(BaseHTTPRequestHandler):
    """Answers the few paths KubeCluster uses; records every request."""

    requests: ClassVar[list[tuple[str, str, str, Any]]] = []
    broken = False

    def log_message(self, *args: Any) -> None:
        return

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self) -> None:
        self._answer(404, {"kind": "Status", "code": 404, "reason": "NotFound"})

    def _record(self) -> tuple[str, dict[str, list[str]], Any]:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        FakeApi.requests.append((self.command, url.path, self.headers.get("Content-Type"), body))
        return url.path, parse_qs(url.query), body

    def do_GET(self) -> None:
        path, query, _ = self._record()
        if FakeApi.broken:
            self._answer(500, {"kind": "Status", "code": 500, "reason": "InternalError"})
        elif path == f"{GROUP_PATH}/agentconfigs/demo":
            self._answer(200, {"metadata": {"name": "demo", "generation": 4}, "spec": {"x": 1}})
        elif path == f"{GROUP_PATH}/agents":
            wanted = query["labelSelector"][0].partition("=")[2]
            items = [_agent(n, label) for n, label in (("a", "demo"), ("b", "other"))]
            chosen = [i for i in items if i["metadata"]["labels"][CONFIG_LABEL] == wanted]
            self._answer(200, {"kind": "AgentList", "items": chosen})
        elif path == "/api/v1/namespaces/agents/secrets/orders-mcp":
            token = base64.b64encode(b"t0ken\n").decode()
            self._answer(200, {"kind": "Secret", "metadata": {"name": "orders-mcp"},
                               "data": {"token": token}})  # fmt: skip
        else:
            self._not_found()

    def do_PATCH(self) -> None:
        path, _, body = self._record()
        if path == f"{GROUP_PATH}/agents/a/status":
            self._answer(200, _agent("a", "demo") | {"status": body["status"]})
        else:
            self._not_found()

    def do_POST(self) -> None:
        _, _, body = self._record()
        self._answer(201, body)  # the created object


@pytest.fixture
def kube() -> Iterator[KubeCluster]:
    FakeApi.requests, FakeApi.broken = [], False
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = client.Configuration()
    config.host = f"http://127.0.0.1:{server.server_address[1]}"
    api = client.ApiClient(config)
    try:
        yield KubeCluster("agents", api)
    finally:
        api.close()
        server.shutdown()
        server.server_close()


def test_resources_are_read_and_listed_by_label(kube: KubeCluster) -> None:
    agentconfig = kube.read_resource("AgentConfig", "demo")
    assert agentconfig is not None
    assert (agentconfig.name, agentconfig.generation, dict(agentconfig.spec)) == (
        "demo",
        4,
        {"x": 1},
    )
    assert kube.read_resource("AgentConfig", "missing") is None
    (agent,) = kube.list_resources("Agent", (CONFIG_LABEL, "demo"))
    assert (agent.kind, agent.name, agent.uid, agent.generation) == ("Agent", "a", "uid-a", 3)
    assert dict(agent.status) == {"observedGeneration": 2}
    assert dict(agent.labels) == {CONFIG_LABEL: "demo"}
    assert kube.list_resources("MCPServer", (CONFIG_LABEL, "demo")) == [], "no CRD: none"


def test_status_is_merge_patched_on_the_status_subresource(kube: KubeCluster) -> None:
    kube.patch_status(ObjectRef("a", "agents", 3, "uid-a", "Agent"), {"model": None, "x": 1})
    method, path, content_type, body = FakeApi.requests[-1]
    assert (method, path) == ("PATCH", f"{GROUP_PATH}/agents/a/status")
    assert content_type == "application/merge-patch+json", "a None removes the field"
    assert body == {"status": {"model": None, "x": 1}}
    kube.patch_status(ObjectRef("gone", "agents", 1, "", "Agent"), {"x": 1})  # deleted: ignored


def test_secret_values_for_mcp_probes(kube: KubeCluster) -> None:
    assert kube.secret_value(SecretKeyRef(name="orders-mcp", key="token")) == "t0ken"
    assert kube.secret_value(SecretKeyRef(name="orders-mcp", key="other")) is None
    assert kube.secret_value(SecretKeyRef(name="nope", key="token")) is None


def test_events_name_the_resources_kind(kube: KubeCluster) -> None:
    kube.event(ObjectRef("a", "agents", 3, "uid-a", "MCPServer"), "Warning", "MCPUnreachable", "m")
    method, path, _, body = FakeApi.requests[-1]
    assert (method, path) == ("POST", "/api/v1/namespaces/agents/events")
    involved = body["involvedObject"]
    assert (involved["kind"], involved["apiVersion"]) == ("MCPServer", "agent-service.dev/v1alpha1")
    assert (body["type"], body["reason"]) == ("Warning", "MCPUnreachable")


def test_api_failures_are_worth_a_retry(kube: KubeCluster) -> None:
    FakeApi.broken = True
    with pytest.raises(ApiUnavailableError, match="listing agents: 500"):
        kube.list_resources("Agent", (CONFIG_LABEL, "demo"))
    with pytest.raises(ApiUnavailableError, match="reading AgentConfig demo: 500"):
        kube.read_resource("AgentConfig", "demo")
