"""Agent and MCPServer resources through the controller's renderer, over a fake cluster.

Each joins the release's AgentConfig when it carries the label, is checked on its own against
the config it joins, and is refused on its own: the others keep serving, and one that was
served before keeps its last good generation (kept in the ConfigMap). What the pods get is read
back with the pods' own parser. Kubernetes is a fake here; MCP probes are a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agent_service.agentconfig.agents import AgentSpec
from agent_service.agentconfig.crd import AGENT_KIND, CONFIG_LABEL, KIND, MCP_SERVER_KIND
from agent_service.agentconfig.load import parse_config_document
from agent_service.agentconfig.mcp import McpServerSpec
from agent_service.agentconfig.model import AgentConfig
from agent_service.agentconfig.render import CONFIG_KEY
from agent_service.controller.ports import ConfigMapState, Policy, ProbeResult
from agent_service.controller.reconcile import ANNOTATION_GENERATION, Decision
from agent_service.controller.renderer import Renderer
from agent_service.controller.served import ANNOTATION_RESOURCES
from agent_service.observability.metrics import Metrics
from tests.controller.fakes import FakeCluster

CONFIGMAP = "demo-config"
RELEASE = "demo"
LABELS = {CONFIG_LABEL: RELEASE}
NOW = "2026-12-01T10:00:00Z"

BASE: dict[str, Any] = {
    "defaultModel": "main",
    "models": [
        {"name": "main", "model": "openai/gpt-4o-mini"},
        {"name": "local", "model": "openai/qwen", "apiBase": "http://vllm.llm.svc:8000/v1"},
    ],
    "tools": {
        "http": [
            {"name": "weather", "description": "Weather by city", "url": "https://w.example.com"}
        ]
    },
}
ORDERS_MCP: dict[str, Any] = {
    "url": "http://mcp-demo.agents.svc:8200/mcp",
    "allowPrivateNetworks": True,
    "timeoutSeconds": 10,
}
ORDERS: dict[str, Any] = {
    "description": "Answers questions about orders.",
    "systemPrompt": "You help customers with their orders.",
    "tools": {"mcp": [{"server": "orders"}]},
}
HELPER: dict[str, Any] = {"description": "Arithmetic.", "tools": {"calculator": True}}


def agent(config: AgentConfig, name: str) -> AgentSpec:
    found: AgentSpec = next(a for a in config.agents if a.name == name)
    return found


class FakeProber:
    """The prober as a table: a result per server URL (None: not probed yet)."""

    def __init__(self) -> None:
        self.results: dict[str, ProbeResult] = {}
        self.requested: list[list[str]] = []

    def result(self, spec: McpServerSpec) -> ProbeResult | None:
        return self.results.get(spec.url)

    def request(self, specs: Sequence[McpServerSpec]) -> None:
        self.requested.append([spec.name for spec in specs])


class Release:
    """The renderer of release ``demo`` over a fake cluster holding its AgentConfig."""

    def __init__(self, base: dict[str, Any] | None = None, **policy: Any) -> None:
        self.cluster = FakeCluster(secrets={"orders-mcp": {"token"}})
        self.policy = Policy(
            **{
                "configmap": CONFIGMAP,
                "mounted_secrets": frozenset({"orders-mcp"}),
                "allow_private_networks": True,
                "agentconfig": RELEASE,
                "label": (CONFIG_LABEL, RELEASE),
                **policy,
            }
        )
        self.metrics = Metrics(CollectorRegistry())
        self.prober = FakeProber()
        self.renderer = self.new_renderer()
        if base is not None:
            self.cluster.apply(KIND, RELEASE, base)

    def new_renderer(self) -> Renderer:
        return Renderer(self.cluster, self.policy, self.metrics, self.prober, clock=lambda: NOW)

    def agent(self, name: str, spec: dict[str, Any], **kw: Any) -> None:
        self.cluster.apply(AGENT_KIND, name, spec, labels=kw.pop("labels", LABELS), **kw)

    def server(self, name: str, spec: dict[str, Any], **kw: Any) -> None:
        self.cluster.apply(MCP_SERVER_KIND, name, spec, labels=kw.pop("labels", LABELS), **kw)

    def render(self) -> Decision:
        return self.renderer.reconcile_once()

    def config(self) -> tuple[AgentConfig, int | None]:
        """What the pods read from the ConfigMap."""
        return parse_config_document(self.cluster.configmaps[CONFIGMAP].data[CONFIG_KEY])

    def ready(self, kind: str, name: str) -> dict[str, Any]:
        return self.cluster.condition(kind, name, "Ready")

    def accepted(self, kind: str, name: str) -> dict[str, Any]:
        return self.cluster.condition(kind, name, "Accepted")

    def reloads(self, result: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "agent_config_reloads_total", {"result": result}
        )
        return value or 0.0


# --- joining ---------------------------------------------------------------------------------


def test_an_agent_and_its_mcp_server_join_the_config() -> None:
    r = Release(BASE)
    r.render()
    before, generation = r.config()
    assert generation == 1 and list(before.profiles()) == ["default"]
    r.server("orders", ORDERS_MCP)
    r.agent("orders", ORDERS)
    decision = r.render()
    config, generation = r.config()
    assert generation == 2, "a change of the rendered config is a new config generation"
    assert [a.name for a in config.agents] == ["default", "orders"]
    assert [s.name for s in config.mcp_servers] == ["orders"]
    assert config.default_agent_name == "default", "requests naming no agent: as before"
    profiles = config.profiles()
    assert profiles["default"] == before.profiles()["default"], "the default agent is unchanged"
    orders = profiles["orders"]
    assert orders.model == "main" and orders.system_prompt == ORDERS["systemPrompt"]
    assert [ref.server for ref in orders.tools.mcp] == ["orders"]
    status = r.cluster.status(AGENT_KIND, "orders")
    assert status["observedGeneration"] == 1 and status["servedGeneration"] == 1
    assert status["model"] == "main", "the inherited model is shown"
    assert status["tools"] == "orders__*"
    assert r.accepted(AGENT_KIND, "orders")["reason"] == "Valid"
    ready = r.ready(AGENT_KIND, "orders")
    assert (ready["status"], ready["reason"]) == ("True", "Served")
    assert ready["message"] == f"served by the pods (ConfigMap {CONFIGMAP})"
    assert ("Normal", "Served", ready["message"]) in r.cluster.events
    agentconfig = r.cluster.status(KIND, RELEASE)
    assert agentconfig["agents"] == ["default", "orders"]
    assert agentconfig["mcpServers"] == ["orders"] and agentconfig["configGeneration"] == 2
    assert agentconfig["appliedGeneration"] == 1
    assert r.prober.requested[-1] == ["orders"], "the served MCP servers are probed"
    assert decision.generation == 2


def test_resources_without_the_label_are_not_rendered() -> None:
    r = Release(BASE)
    r.agent("stranger", HELPER, labels={CONFIG_LABEL: "another-release"})
    r.agent("unlabelled", HELPER, labels={})
    r.render()
    config, _ = r.config()
    assert list(config.profiles()) == ["default"]
    assert r.cluster.status(AGENT_KIND, "stranger") == {}, "another release's: left alone"


def test_the_rendered_agents_are_valid_for_the_pods() -> None:
    """Everything written passes the pods' own validation (the composed config is re-checked
    as a whole: an agent's model, tools and servers name what the config declares)."""
    r = Release(BASE)
    r.server("orders", ORDERS_MCP)
    r.agent("orders", {**ORDERS, "model": "local", "tools": {"http": ["weather"], "mcp": [
        {"server": "orders", "include": ["lookup_order"]}]}})  # fmt: skip
    r.agent("helper", HELPER)
    r.render()
    config, _ = r.config()
    assert set(config.profiles()) == {"default", "orders", "helper"}
    assert r.cluster.status(AGENT_KIND, "orders")["tools"] == "weather,orders__lookup_order"
    assert r.cluster.status(AGENT_KIND, "orders")["model"] == "local"


def test_default_agent_may_name_an_agent_resource() -> None:
    r = Release({**BASE, "defaultAgent": "helper"})
    r.agent("helper", HELPER)
    r.render()
    config, _ = r.config()
    assert config.default_agent_name == "helper"
    assert r.ready(KIND, RELEASE)["status"] == "True"


def test_agents_listed_in_the_agentconfig_come_first_and_keep_their_names() -> None:
    """An AgentConfig with its own agents (and servers) from before Agent resources loads and
    renders unchanged; resources join after them and cannot take their names."""
    own = {
        **BASE,
        "mcpServers": [{"name": "crm", "url": "https://crm.example.com/mcp"}],
        "agents": [{"name": "support", "tools": {"mcp": [{"server": "crm"}]}}],
    }
    r = Release(own)
    r.render()
    alone, _ = r.config()
    assert alone == AgentConfig.model_validate(own)
    r.agent("support", HELPER)
    r.server("crm", ORDERS_MCP)
    r.agent("helper", HELPER)
    r.render()
    config, _ = r.config()
    assert [a.name for a in config.agents] == ["support", "helper"]
    assert agent(config, "support") == agent(alone, "support")
    assert r.ready(AGENT_KIND, "support")["reason"] == "NameConflict"
    assert "AgentConfig lists an agent of that name" in r.ready(AGENT_KIND, "support")["message"]
    assert r.ready(MCP_SERVER_KIND, "crm")["reason"] == "NameConflict"
    assert [s.url for s in config.mcp_servers] == ["https://crm.example.com/mcp"]


# --- refused on its own ----------------------------------------------------------------------

AGENT_PROBLEMS = [
    ("unknown-model", "orders", {**ORDERS, "model": "gpt-5"}, "UnknownModel", "spec.model",
     "'gpt-5' is not a configured model (models: main, local)"),
    ("unknown-mcp-server", "orders", {**ORDERS, "tools": {"mcp": [{"server": "crm"}]}},
     "UnknownMCPServer", "spec.tools.mcp[0].server", "'crm' is not an mcpServers entry"),
    ("unknown-http-tool", "orders", {**ORDERS, "tools": {"http": ["stocks"]}}, "UnknownTool",
     "spec.tools.http[0]", "'stocks' is not a tools.http entry"),
    ("schema", "orders", {**ORDERS, "limits": {"maxIterations": 1000}}, "InvalidSpec",
     "spec.limits.maxIterations", "less than or equal to 100"),
    ("unknown-field", "orders", {**ORDERS, "prompt": "hi"}, "InvalidSpec", "spec.prompt",
     "Extra inputs are not permitted"),
    ("bad-response-format", "orders", {**ORDERS, "responseFormat": {"type": "nope"}},
     "InvalidSpec", "spec.responseFormat", "not a valid JSON schema"),
    ("name-of-a-model", "local", HELPER, "NameConflict", "metadata.name",
     "'local' cannot name an Agent: it is the name of a model of the AgentConfig"),
    ("name-default", "default", HELPER, "NameConflict", "metadata.name",
     "it is the AgentConfig's own agent (it lists no agents)"),
    ("name-too-long", "a" * 70, HELPER, "InvalidSpec", "metadata.name", "cannot name an agent"),
    ("name-in-spec", "orders", {**ORDERS, "name": "other"}, "InvalidSpec", "spec.name",
     "an Agent's name is its metadata.name"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "spec", "reason", "path", "text"),
    [case[1:] for case in AGENT_PROBLEMS],
    ids=[case[0] for case in AGENT_PROBLEMS],
)
def test_an_invalid_agent_is_refused_on_its_own(
    name: str, spec: dict[str, Any], reason: str, path: str, text: str
) -> None:
    r = Release(BASE)
    r.server("orders", ORDERS_MCP)
    r.agent("helper", HELPER)
    r.agent(name, spec)
    r.render()
    config, _ = r.config()
    assert [a.name for a in config.agents] == ["default", "helper"], "the others are served"
    accepted, ready = r.accepted(AGENT_KIND, name), r.ready(AGENT_KIND, name)
    assert (accepted["status"], accepted["reason"]) == ("False", reason)
    assert accepted["message"].startswith(f"{path}: ") and text in accepted["message"], accepted
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert "generation 1 is not served" in ready["message"]
    assert "Nothing of it is served." in ready["message"]
    status = r.cluster.status(AGENT_KIND, name)
    assert "servedGeneration" not in status and "model" not in status
    assert r.ready(AGENT_KIND, "helper")["status"] == "True"
    assert r.ready(KIND, RELEASE)["status"] == "True", "the AgentConfig is not to blame"
    assert ("Warning", reason) in [e[:2] for e in r.cluster.events]
    assert r.reloads("rejected") == 1


SERVER_PROBLEMS = [
    ("metadata-address", {"url": "http://169.254.169.254/mcp"}, {},
     "ToolURLNotAllowed", "spec.url", "169.254.169.254"),
    ("host-not-allowed", ORDERS_MCP, {"allowed_tool_hosts": ("*.example.com",)},
     "ToolURLNotAllowed", "spec.url", "'mcp-demo.agents.svc' is not in the allowed tool hosts"),
    ("private-networks", ORDERS_MCP, {"allow_private_networks": False},
     "PrivateNetworksNotAllowed", "spec.allowPrivateNetworks", "MCP servers"),
    ("secret-missing", {**ORDERS_MCP, "headers": {"Authorization": {
        "secretKeyRef": {"name": "nope", "key": "token"}, "prefix": "Bearer "}}}, {},
     "SecretNotFound", "spec.headers.Authorization.secretKeyRef", "Secret 'nope' does not exist"),
    ("secret-not-mounted", {**ORDERS_MCP, "headers": {"Authorization": {
        "secretKeyRef": {"name": "orders-mcp", "key": "token"}}}},
     {"mounted_secrets": frozenset()}, "SecretNotMounted",
     "spec.headers.Authorization.secretKeyRef", "not mounted into the pods"),
    ("credentials-in-url", {**ORDERS_MCP, "url": "http://u:p@mcp.example.com/mcp"}, {},
     "InvalidSpec", "spec.url", "must not hold credentials"),
    ("reserved-header", {**ORDERS_MCP, "headers": {"Host": {"env": "X"}}}, {}, "InvalidSpec",
     "spec.headers", "set by the MCP transport itself"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "policy", "reason", "path", "text"),
    [case[1:] for case in SERVER_PROBLEMS],
    ids=[case[0] for case in SERVER_PROBLEMS],
)
def test_an_invalid_mcp_server_is_refused_and_its_agents_say_why(
    spec: dict[str, Any], policy: dict[str, Any], reason: str, path: str, text: str
) -> None:
    r = Release(BASE, **policy)
    r.server("orders", spec)
    r.agent("orders", ORDERS)
    r.agent("helper", HELPER)
    r.render()
    config, _ = r.config()
    assert config.mcp_servers == [] and [a.name for a in config.agents] == ["default", "helper"]
    accepted = r.accepted(MCP_SERVER_KIND, "orders")
    assert (accepted["status"], accepted["reason"]) == ("False", reason)
    assert accepted["message"].startswith(f"{path}: ") and text in accepted["message"], accepted
    assert r.ready(MCP_SERVER_KIND, "orders")["status"] == "False"
    agent = r.ready(AGENT_KIND, "orders")
    assert agent["reason"] == "UnknownMCPServer"
    assert f"(MCPServer 'orders' is not served: {path}: " in agent["message"], agent["message"]
    assert r.prober.requested[-1] == [], "a refused server is not probed"


def test_an_mcp_server_name_must_suit_tool_names() -> None:
    r = Release(BASE)
    r.server("orders.v2", ORDERS_MCP)
    r.render()
    accepted = r.accepted(MCP_SERVER_KIND, "orders.v2")
    assert accepted["reason"] == "InvalidSpec" and accepted["message"].startswith("metadata.name:")


# --- last known good -------------------------------------------------------------------------


def test_an_agent_that_becomes_invalid_keeps_its_last_good_generation() -> None:
    r = Release(BASE)
    calculator = {**ORDERS, "tools": {"calculator": True}}
    r.agent("orders", calculator)
    r.render()
    r.agent("orders", {**calculator, "model": "gpt-5", "description": "broken"})
    r.render()
    config, generation = r.config()
    assert agent(config, "orders").description == ORDERS["description"], "generation 1"
    status = r.cluster.status(AGENT_KIND, "orders")
    assert status["observedGeneration"] == 2 and status["servedGeneration"] == 1
    assert status["model"] == "main" and status["tools"] == "calculator"
    ready = r.ready(AGENT_KIND, "orders")
    assert (ready["status"], ready["reason"]) == ("False", "UnknownModel")
    assert "The pods keep serving its generation 1 (the last good one)." in ready["message"]
    # A restarted controller finds the last good generation in the ConfigMap.
    r.renderer = r.new_renderer()
    assert r.render().write is None
    assert r.cluster.status(AGENT_KIND, "orders")["servedGeneration"] == 1
    # Fixed: the new generation is served.
    r.agent("orders", {**calculator, "description": "fixed"})
    r.render()
    config, later = r.config()
    assert agent(config, "orders").description == "fixed" and later == generation + 1
    assert r.cluster.status(AGENT_KIND, "orders")["servedGeneration"] == 3
    assert r.ready(AGENT_KIND, "orders")["status"] == "True"


def test_a_last_good_generation_that_no_longer_fits_is_dropped() -> None:
    r = Release(BASE)
    r.agent("orders", {**HELPER, "model": "local"})
    r.render()
    r.agent("orders", {**HELPER, "model": "gpt-5"})
    r.render()
    assert r.cluster.status(AGENT_KIND, "orders")["servedGeneration"] == 1
    r.cluster.apply(KIND, RELEASE, {**BASE, "models": BASE["models"][:1]})  # "local" is gone
    r.render()
    config, _ = r.config()
    assert "orders" not in config.profiles()
    ready = r.ready(AGENT_KIND, "orders")
    assert "Its last good generation is not served either: spec.model: 'local'" in ready["message"]
    assert "servedGeneration" not in r.cluster.status(AGENT_KIND, "orders")


def test_a_recreated_resource_does_not_inherit_the_last_good_of_its_namesake() -> None:
    r = Release(BASE)
    r.agent("orders", HELPER)
    r.render()
    r.cluster.delete(AGENT_KIND, "orders")
    r.agent("orders", {**HELPER, "model": "gpt-5"}, uid="another-uid")
    r.render()
    config, _ = r.config()
    assert "orders" not in config.profiles()
    assert "Nothing of it is served." in r.ready(AGENT_KIND, "orders")["message"]


def test_an_mcp_server_that_becomes_invalid_keeps_serving_and_so_do_its_agents() -> None:
    r = Release(BASE)
    r.server("orders", ORDERS_MCP)
    r.agent("orders", ORDERS)
    r.render()
    r.server("orders", {**ORDERS_MCP, "url": "ftp://mcp-demo/mcp"})
    r.render()
    config, _ = r.config()
    assert [s.url for s in config.mcp_servers] == [ORDERS_MCP["url"]]
    assert r.ready(AGENT_KIND, "orders")["status"] == "True"
    server = r.ready(MCP_SERVER_KIND, "orders")
    assert (server["status"], server["reason"]) == ("False", "InvalidSpec")
    assert "The pods keep serving its generation 1" in server["message"]
    assert r.prober.requested[-1] == ["orders"], "the served (last good) spec is probed"


def test_deleted_or_unlabelled_resources_leave_the_config() -> None:
    r = Release(BASE)
    r.agent("orders", HELPER)
    r.agent("helper", HELPER)
    r.render()
    r.cluster.delete(AGENT_KIND, "orders")
    r.agent("helper", HELPER, labels={})
    r.render()
    config, _ = r.config()
    assert list(config.profiles()) == ["default"]


def test_the_last_good_state_is_recorded_in_the_configmap() -> None:
    r = Release(BASE)
    r.server("orders", ORDERS_MCP)
    r.agent("orders", ORDERS)
    r.render()
    import json

    record = json.loads(r.cluster.configmaps[CONFIGMAP].annotations[ANNOTATION_RESOURCES])
    assert record[AGENT_KIND] == {"orders": {"uid": "uid-Agent-orders", "generation": 1}}
    assert record[MCP_SERVER_KIND] == {"orders": {"uid": "uid-MCPServer-orders", "generation": 1}}
    assert record[KIND]["name"] == RELEASE and record[KIND]["implicitDefault"] is True
    # A ConfigMap edited into nonsense holds no last good state: valid resources are rendered.
    r.cluster.configmaps[CONFIGMAP] = ConfigMapState({CONFIG_KEY: "{"}, {})
    r.render()
    config, _ = r.config()
    assert set(config.profiles()) == {"default", "orders"}


# --- the AgentConfig and the resources -------------------------------------------------------


def test_without_an_agentconfig_nothing_is_rendered() -> None:
    r = Release()
    r.agent("orders", HELPER)
    r.server("orders", ORDERS_MCP)
    decision = r.render()
    assert decision.write is None and CONFIGMAP not in r.cluster.configmaps
    accepted, ready = r.accepted(AGENT_KIND, "orders"), r.ready(AGENT_KIND, "orders")
    assert (accepted["status"], accepted["reason"]) == ("Unknown", "NoAgentConfig")
    assert (ready["status"], ready["reason"]) == ("False", "NoAgentConfig")
    assert f"AgentConfig {RELEASE} does not exist" in ready["message"]
    assert r.ready(MCP_SERVER_KIND, "orders")["reason"] == "NoAgentConfig"


def test_an_agentconfig_never_accepted_keeps_the_agents_waiting() -> None:
    r = Release({**BASE, "defaultModel": "nope"})
    r.agent("orders", HELPER)
    r.render()
    assert CONFIGMAP not in r.cluster.configmaps
    ready = r.ready(AGENT_KIND, "orders")
    assert ready["reason"] == "AgentConfigNotReady" and "(InvalidSpec)" in ready["message"]


def test_an_invalid_agentconfig_does_not_hold_back_the_agents() -> None:
    """The AgentConfig's last good spec stands in for its refused edit, and Agents still join."""
    r = Release(BASE)
    r.render()
    r.cluster.apply(KIND, RELEASE, {**BASE, "defaultModel": "nope"})
    r.agent("helper", HELPER)
    r.render()
    config, generation = r.config()
    assert config.default_model == "main" and "helper" in config.profiles()
    assert generation == 2
    agentconfig = r.ready(KIND, RELEASE)
    assert (agentconfig["status"], agentconfig["reason"]) == ("False", "InvalidSpec")
    assert "The pods keep its generation 1 (config generation 2" in agentconfig["message"]
    assert r.ready(AGENT_KIND, "helper")["status"] == "True"
    assert r.cluster.status(KIND, RELEASE)["appliedGeneration"] == 1


def test_a_default_agent_that_goes_away() -> None:
    """defaultAgent names an Agent that is deleted: the edit-time check refuses the AgentConfig
    and its last good spec names it too, so it is dropped and the status says so."""
    r = Release({**BASE, "defaultAgent": "helper"})
    r.agent("helper", HELPER)
    r.agent("orders", HELPER)
    r.render()
    r.cluster.delete(AGENT_KIND, "helper")
    r.render()
    config, _ = r.config()
    assert config.default_agent is None and config.default_agent_name == "default"
    ready = r.ready(KIND, RELEASE)
    assert (ready["status"], ready["reason"]) == ("False", "UnknownAgent")
    assert "'helper' is not a served agent" in ready["message"]
    assert "requests naming no agent get the first agent" in ready["message"]
    assert "orders" in config.profiles(), "the other agents keep serving"


def test_a_change_of_one_agent_is_no_news_for_the_others() -> None:
    r = Release(BASE)
    r.agent("helper", HELPER)
    r.render()
    events, patches = len(r.cluster.events), len(r.cluster.patches)
    r.agent("orders", HELPER)
    r.render()
    assert r.config()[1] == 2, "a new config generation"
    assert [o for o in r.cluster.event_objects[events:] if o[0] == AGENT_KIND] == [
        (AGENT_KIND, "orders")
    ], "no Event on helper"
    assert [p[1] for p in r.cluster.patches[patches:] if p[0] == AGENT_KIND] == ["orders"]


def test_resources_beyond_the_configs_bounds_are_refused_alone() -> None:
    """The config holds at most 500 agents and 100 MCP servers: the resources beyond, in name
    order, are refused (one too many must not break the rest)."""
    r = Release(BASE)
    for index in range(100):
        r.server(f"s{index:03}", {"url": f"https://mcp{index}.example.com/mcp"})
    r.server("zz", {"url": "https://last.example.com/mcp"})
    for index in range(499):  # with the AgentConfig's own written out: 500
        r.agent(f"a{index:03}", HELPER)
    r.agent("zz", HELPER)
    r.render()
    config, _ = r.config()
    assert len(config.agents) == 500 and len(config.mcp_servers) == 100
    for kind in (AGENT_KIND, MCP_SERVER_KIND):
        ready = r.ready(kind, "zz")
        assert (ready["status"], ready["reason"]) == ("False", "LimitExceeded"), kind
        assert "in name order, are not served" in ready["message"]
    assert r.ready(AGENT_KIND, "a498")["status"] == "True"
    assert r.ready(KIND, RELEASE)["status"] == "True"


def test_config_generation_only_grows() -> None:
    r = Release(BASE)
    r.render()
    r.agent("helper", HELPER)
    r.render()
    r.agent("orders", HELPER)
    r.render()
    assert r.config()[1] == 3
    r.cluster.apply(KIND, RELEASE, {**BASE, "systemPrompt": "Be brief."})  # generation 2
    r.render()
    assert r.config()[1] == 4
    r.cluster.delete(AGENT_KIND, "helper")
    r.cluster.delete(AGENT_KIND, "orders")
    r.render()
    config, generation = r.config()
    assert generation == 5 and list(config.profiles()) == ["default"]
    annotations = r.cluster.configmaps[CONFIGMAP].annotations
    assert annotations[ANNOTATION_GENERATION] == "5"


# --- MCP probes ------------------------------------------------------------------------------


def test_an_mcp_servers_status_follows_its_probes() -> None:
    r = Release(BASE)
    r.server("orders", ORDERS_MCP)
    r.render()
    ready = r.ready(MCP_SERVER_KIND, "orders")
    assert (ready["status"], ready["reason"]) == ("Unknown", "Probing")
    assert r.accepted(MCP_SERVER_KIND, "orders")["status"] == "True"
    url = ORDERS_MCP["url"]
    r.prober.results[url] = ProbeResult(True, ("lookup_order", "track_shipment"))
    r.render()
    status = r.cluster.status(MCP_SERVER_KIND, "orders")
    assert status["toolCount"] == 2 and status["tools"] == ["lookup_order", "track_shipment"]
    ready = r.ready(MCP_SERVER_KIND, "orders")
    assert (ready["status"], ready["reason"]) == ("True", "Reachable")
    assert "it offers 2 tools: lookup_order, track_shipment" in ready["message"]
    assert r.cluster.events[-1][:2] == ("Normal", "Reachable")
    r.prober.results[url] = ProbeResult(
        False, (), "cannot connect (All connection attempts failed)"
    )
    r.render()
    ready = r.ready(MCP_SERVER_KIND, "orders")
    assert (ready["status"], ready["reason"]) == ("False", "MCPUnreachable")
    assert "cannot connect (All connection attempts failed)" in ready["message"]
    assert "toolCount" not in r.cluster.status(MCP_SERVER_KIND, "orders")
    assert r.cluster.events[-1][:2] == ("Warning", "MCPUnreachable")
    assert r.reloads("rejected") == 0, "an unreachable server is not a refused spec"
    config, _ = r.config()
    assert [s.name for s in config.mcp_servers] == ["orders"], "still served: it may come back"
    r.prober.results[url] = ProbeResult(None, (), "not probed: header X comes from ...")
    r.render()
    assert r.ready(MCP_SERVER_KIND, "orders")["reason"] == "NotProbed"


def test_without_probes_an_accepted_mcp_server_is_ready_when_served() -> None:
    r = Release(BASE)
    r.renderer = Renderer(r.cluster, r.policy, r.metrics, None, clock=lambda: NOW)
    r.server("orders", ORDERS_MCP)
    r.render()
    ready = r.ready(MCP_SERVER_KIND, "orders")
    assert (ready["status"], ready["reason"]) == ("True", "Served")
    assert "not probed" in ready["message"]


# --- events reaching the renderer ------------------------------------------------------------


def _body(name: str, generation: int, labels: dict[str, str], uid: str = "u") -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": uid, "generation": generation, "labels": labels}}


def test_only_events_that_can_change_the_rendering_concern_the_renderer() -> None:
    r = Release(BASE)
    r.agent("orders", HELPER, uid="u")
    r.render()
    concerns = r.renderer.concerns
    assert not concerns(AGENT_KIND, "MODIFIED", _body("orders", 1, LABELS)), "status only"
    assert concerns(AGENT_KIND, "MODIFIED", _body("orders", 2, LABELS)), "a new spec"
    assert concerns(AGENT_KIND, "MODIFIED", _body("orders", 1, {})), "its label removed"
    assert concerns(AGENT_KIND, "DELETED", _body("orders", 1, LABELS))
    assert concerns(AGENT_KIND, None, _body("helper", 1, LABELS)), "a new one"
    assert not concerns(AGENT_KIND, "ADDED", _body("helper", 1, {})), "not ours"
    assert not concerns(AGENT_KIND, "DELETED", _body("helper", 1, {}))
    assert concerns(MCP_SERVER_KIND, "ADDED", _body("orders", 1, LABELS)), "kinds apart"


def test_the_registered_event_handler_renders() -> None:
    from agent_service.controller.handlers import build_registry

    r = Release(BASE)
    registry = build_registry(RELEASE, r.renderer, 60)
    (agents,) = [h for h in registry._watching.get_all_handlers() if h.param == AGENT_KIND]
    r.agent("helper", HELPER)
    body = {"metadata": {"name": "helper", "uid": "uid-Agent-helper", "generation": 1,
                         "labels": LABELS}}  # fmt: skip
    agents.fn(type="ADDED", body=body, param=AGENT_KIND)
    assert "helper" in r.config()[0].profiles()
    writes = r.cluster.writes
    patches = len(r.cluster.patches)
    agents.fn(type="MODIFIED", body=body, param=AGENT_KIND)  # its status, written by us
    assert (r.cluster.writes, len(r.cluster.patches)) == (writes, patches), "not reconciled"


def test_concurrent_requests_share_a_reconcile() -> None:
    """A request that arrives while a reconcile runs is served by the next one; requests that
    arrive together during it share that next one."""
    import threading
    import time

    r = Release(BASE)
    started, release = threading.Event(), threading.Event()
    reads = 0
    read = r.cluster.read_resource

    def slow_read(kind: str, name: str) -> Any:
        nonlocal reads
        reads += 1
        if reads == 1:
            started.set()
            assert release.wait(10)
        return read(kind, name)

    r.cluster.read_resource = slow_read  # type: ignore[method-assign]
    first = threading.Thread(target=r.renderer.request)
    first.start()
    assert started.wait(10)
    waiting = [threading.Thread(target=r.renderer.request) for _ in range(3)]
    for thread in waiting:
        thread.start()
    deadline = time.monotonic() + 10
    while r.renderer._requested < 4:  # every request has taken its ticket
        assert time.monotonic() < deadline
        time.sleep(0.01)
    release.set()
    for thread in [first, *waiting]:
        thread.join(10)
    assert reads == 2, "the first reconcile, then one for the three requests made during it"
    assert CONFIGMAP in r.cluster.configmaps
