"""Process settings of every command, read from ``AGENT_*`` environment variables.

The only module that reads the environment. ``Settings()`` is built once by each entry point
(``cli``) and passed down; nothing builds it at import time. Groups map to variable prefixes:
``AGENT_REDIS_URL`` is ``settings.redis.url``, ``AGENT_API_PORT`` is ``settings.api.port``.
The agent config (models, agents, tools, limits) is not a setting: ``agentconfig`` owns it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_commas(value: Any) -> Any:
    """``"a, b,,c"`` (one environment variable) as ``["a", "b", "c"]``; lists pass through."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_commas)]
"""A list setting given comma-separated (``NoDecode``: pydantic-settings does not parse JSON)."""


class RedisSettings(BaseModel):
    """Redis: broker of the task queue and store of task records, events and sessions."""

    url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis URL (redis:// or rediss://). One database holds queue and records.",
    )
    key_prefix: str = Field(default="agent:", description="Prefix of every key the service writes.")
    socket_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Socket timeout of Redis commands; a dead Redis fails fast."
    )
    max_connections: int = Field(
        default=256, ge=1, description="Connection pool size per process (covers 100+ runs)."
    )
    password_file: Path | None = Field(
        default=None,
        description="File holding the Redis password (a mounted Secret; a trailing line break "
        "is ignored). Replaces a password in the URL, and needs no URL escaping: any character "
        "works. Unset: the URL's password, if any.",
    )
    sentinels: CommaList = Field(
        default_factory=list,
        description="Redis Sentinel nodes, comma-separated `host:port`. Set: every process asks "
        "them for the master (`AGENT_REDIS_SENTINEL_MASTER`) and follows a failover; the URL "
        "then gives only the scheme (rediss: TLS), user and database. Empty: no Sentinel.",
    )
    sentinel_master: str | None = Field(
        default=None, description="Name of the master the Sentinels monitor (with Sentinels)."
    )
    sentinel_password_file: Path | None = Field(
        default=None,
        description="File holding the Sentinels' own password (`requirepass` of sentinel.conf). "
        "Unset: the Sentinels need none.",
    )
    tls_ca_file: Path | None = Field(
        default=None,
        description="CA bundle (PEM) that signed the Redis (and Sentinel) server certificates, "
        "for rediss:// URLs. Unset: the system CAs. Certificates are always verified.",
    )
    ack_replicas: int | None = Field(
        default=None,
        ge=0,
        description="Replicas a new task must reach before `POST /v1/tasks` answers 202 (Redis "
        "WAIT), so a failover keeps it. Default: 1 with Sentinels, 0 without.",
    )
    ack_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Longest wait for those replicas; past it the task is accepted anyway "
        "(logged: it exists on the master).",
    )
    admit_memory_percent: float = Field(
        default=90.0,
        gt=0,
        le=100,
        description="`POST /v1/tasks` answers 503 (Retry-After) once Redis uses this share of "
        "its `maxmemory`: the rest is headroom for the runs in flight to finish. Read from "
        "INFO at most once a second. Redis without maxmemory: never.",
    )
    consume_memory_percent: float = Field(
        default=95.0,
        gt=0,
        le=100,
        description="Workers stop taking new tasks off the queue while Redis uses this share of "
        "its `maxmemory` (queued tasks wait, runs in flight finish); above the admit share.",
    )

    @model_validator(mode="after")
    def _sentinel_needs_a_master(self) -> RedisSettings:
        if self.sentinels and not self.sentinel_master:
            raise ValueError("AGENT_REDIS_SENTINELS needs AGENT_REDIS_SENTINEL_MASTER")
        for node in self.sentinels:
            host, _, port = node.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"AGENT_REDIS_SENTINELS: {node!r} is not host:port")
        if self.admit_memory_percent >= self.consume_memory_percent:
            # Between the two, queued tasks still start; above the second only runs in flight
            # write, so they are the ones that finish when Redis fills up.
            raise ValueError(
                f"admit_memory_percent ({self.admit_memory_percent:g}) must be below "
                f"consume_memory_percent ({self.consume_memory_percent:g})"
            )
        return self


DEFAULT_SECRETS_DIR = Path("/var/run/secrets/agent-service")


class ConfigFileSettings(BaseModel):
    """Where the agent config (models, fallbacks, tools, limits) comes from."""

    file: Path | None = Field(
        default=None,
        description="YAML agent config file. Unset: the built-in config on the LLM simulator.",
    )
    reload_interval_seconds: float = Field(
        default=1.0,
        ge=0,
        description="How often the config file is checked for changes (a ConfigMap update is an "
        "atomic symlink swap); a valid new file is applied without restart. 0: never reloaded.",
    )
    secrets_dir: Path = Field(
        default=DEFAULT_SECRETS_DIR,
        description="Where Kubernetes Secrets named by `secretKeyRef` in the config are mounted "
        "(one directory per Secret, one file per key).",
    )


class SimSettings(BaseModel):
    """The LLM simulator, as the built-in agent config reaches it."""

    url: str = Field(
        default="http://127.0.0.1:8100/v1",
        description="Base URL of the simulator used by the built-in config (no config file).",
    )


class ApiSettings(BaseModel):
    """The HTTP API."""

    host: str = Field(default="0.0.0.0", description="Bind address (0.0.0.0 in containers).")  # noqa: S104
    port: int = Field(default=8000, ge=1, le=65535, description="HTTP port.")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes. 1 runs uvicorn alone; more run gunicorn with uvicorn workers "
        "(each ~110 MB after import; ~150 MB more if a model needs LiteLLM).",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body accepted (413 above)."
    )
    max_message_chars: int = Field(
        default=32_000, ge=1, description="Longest `message` accepted (422 above)."
    )
    max_metadata_bytes: int = Field(default=8192, ge=0, description="Largest `metadata` as JSON.")
    cors_origins: CommaList = Field(
        default_factory=list,
        description="Origins allowed by CORS, comma-separated. Empty (default): CORS off.",
    )
    max_in_flight: int = Field(
        default=256,
        ge=0,
        description="Requests one API process serves at once (probes and /metrics excepted); "
        "above it, 503 with Retry-After at once instead of queueing. 0: no limit.",
    )
    sse_keepalive_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Interval of SSE keep-alive comments (proxies drop idle streams).",
    )
    graceful_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="On SIGTERM, how long the server waits for requests in flight (sync runs, "
        "streams) before ending them with a 503 or an SSE `error` event of type "
        "`shutting_down`. Default: the config's run timeout + 15 s.",
    )


class WorkerSettings(BaseModel):
    """The Celery worker."""

    queue: str = Field(default="agent", description="Celery queue (a Redis list of that name).")
    concurrency: int = Field(
        default=128,
        ge=1,
        le=2000,
        description="Runs held at once by one worker process (slots). Runs are async I/O on one "
        "event loop, so one process holds many; ~4.5 ms CPU per LLM call bounds it.",
    )
    max_redeliveries: int = Field(
        default=3,
        ge=0,
        description="Deliveries beyond the first before a task ends `failed` with type `poison`.",
    )
    visibility_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Seconds before an unacknowledged task is redelivered. Default: the config's "
        "run timeout + 60 s, so a live run is never delivered twice.",
    )
    heartbeat_file: Path | None = Field(
        default=None,
        description="File touched every 10 s by the consumer loop (liveness: younger than 60 s).",
    )
    ready_file: Path | None = Field(
        default=None, description="File present while the worker is ready to consume (readiness)."
    )
    lease_seconds: float = Field(
        default=15.0,
        ge=1,
        description="Liveness lease each worker holds in Redis (renewed every third of it). The "
        "runs of a worker whose lease ran out are put back on the queue by the live workers at "
        "once, instead of after the visibility timeout.",
    )
    reclaim_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often a worker looks for expired leases and for lost messages: a dead "
        "worker's runs are back within about lease + this.",
    )
    lost_after_seconds: float = Field(
        default=60.0,
        ge=1,
        description="A task still `queued` this long whose message is neither on the queue nor "
        "held by a worker (taken by a worker killed at that instant) is queued again.",
    )
    pod_deletion_cost: bool = Field(
        default=False,
        description="Keep this pod's `controller.kubernetes.io/pod-deletion-cost` annotation "
        "equal to its runs in progress, so a scale-down removes idle workers first. Needs "
        "`patch` on pods (the chart's worker Role) and the pod's name and namespace.",
    )
    pod_name: str | None = Field(
        default=None, description="This worker's pod (downward API), for the deletion cost."
    )
    pod_namespace: str | None = Field(
        default=None, description="This worker's namespace (downward API), for the deletion cost."
    )
    pod_deletion_cost_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Shortest time between two patches of the deletion cost (a change waits "
        "at most this long; an unchanged cost is never patched).",
    )
    kube_api_url: str | None = Field(
        default=None,
        description="Kubernetes API server for the deletion cost. Default: the in-cluster "
        "address (`KUBERNETES_SERVICE_HOST`, `KUBERNETES_SERVICE_PORT`).",
    )
    service_account_dir: Path = Field(
        default=Path("/var/run/secrets/kubernetes.io/serviceaccount"),
        description="Directory of the pod's service-account `token` and `ca.crt`, read for each "
        "patch (tokens rotate).",
    )
    journal: bool = Field(
        default=True,
        description="Record each step of queued runs in their step journal (docs/durability.md). "
        "False only to measure what the journal costs (bench/worker_concurrency.py): a "
        "redelivered run then starts over, repeating its LLM and tool calls, and a run cannot "
        "resume after an approval.",
    )

    @model_validator(mode="after")
    def _deletion_cost_needs_the_pod(self) -> WorkerSettings:
        if self.pod_deletion_cost and not (self.pod_name and self.pod_namespace):
            raise ValueError(
                "AGENT_WORKER_POD_DELETION_COST needs AGENT_WORKER_POD_NAME and "
                "AGENT_WORKER_POD_NAMESPACE"
            )
        if self.reclaim_interval_seconds >= self.lease_seconds:
            raise ValueError(
                f"reclaim_interval_seconds ({self.reclaim_interval_seconds:g}) must be below "
                f"lease_seconds ({self.lease_seconds:g})"
            )
        return self


class TaskSettings(BaseModel):
    """Task records and their event streams."""

    ttl_seconds: int = Field(
        default=7 * 24 * 3600, ge=60, description="How long task records and events are kept."
    )
    events_max: int = Field(default=2000, ge=10, description="Events kept per task stream.")


class MetricsSettings(BaseModel):
    """Prometheus metrics."""

    port: int = Field(
        default=9100,
        ge=0,
        le=65535,
        description="Port of the separate /metrics endpoint of api and worker processes (0: off).",
    )
    host: str = Field(default="0.0.0.0", description="Bind address of the metrics port.")  # noqa: S104
    enabled: bool = Field(
        default=True,
        description="Record metrics. False only to measure their cost: nothing is exported.",
    )


class TracingSettings(BaseModel):
    """OpenTelemetry traces. Export is configured by the standard ``OTEL_*`` variables."""

    capture_content: bool = Field(
        default=False,
        description="Record prompt, completion and tool text on spans (`gen_ai.input.messages`, "
        "...). Off by default: user text and model output may hold personal data.",
    )


class AuthSettings(BaseModel):
    """Client authentication: API keys mapped to tenants."""

    enabled: bool = Field(
        default=True,
        description="Require an API key (`Authorization: Bearer` or `X-API-Key`) on /v1. False "
        "serves every caller as tenant `default` (logged as a warning at start).",
    )
    keys_file: Path | None = Field(
        default=None,
        description="YAML file (a mounted Secret) of keys: `keys: [{tenant, key | sha256, "
        "name, role}]` (`role`: `tenant`, the default, or `admin`, which reads every tenant's "
        "history), or a directory whose every *.yaml file is one. Re-read when it changes. "
        "Adds to `apiKeys` of the agent config.",
    )
    metrics_token_file: Path | None = Field(
        default=None,
        description="File holding a bearer token required on /metrics (both ports). Unset: "
        "/metrics is open.",
    )


class WebhookSettings(BaseModel):
    """Completion webhooks of tasks (`webhook_url`)."""

    secret_file: Path | None = Field(
        default=None,
        description="File with the HMAC secret signing webhooks of tenants without their own "
        "`webhookSecret`. Unset: those tenants cannot use webhooks.",
    )
    allow_http: bool = Field(
        default=False, description="Allow plain http:// webhook URLs (https only by default)."
    )
    allowed_hosts: CommaList = Field(
        default_factory=list,
        description="Host patterns webhooks may target, comma-separated (`*.example.com`). "
        "Empty: any public host.",
    )
    allow_private_networks: bool = Field(
        default=False,
        description="Let webhooks reach loopback, link-local and private addresses (SSRF guard).",
    )
    max_attempts: int = Field(
        default=8, ge=1, le=50, description="Deliveries tried before a webhook goes dead-letter."
    )
    backoff_initial_seconds: float = Field(
        default=2.0, gt=0, description="Wait before the first retry (doubles, with jitter)."
    )
    backoff_max_seconds: float = Field(
        default=600.0, gt=0, description="Longest wait between two deliveries."
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="Timeout of a POST.")
    lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a worker holds a delivery it took from the outbox; if it dies, "
        "another worker delivers it once this has passed. Must exceed the POST timeout.",
    )

    @model_validator(mode="after")
    def _lease_covers_a_post(self) -> WebhookSettings:
        # A lease running out while its POST is still in flight would let a second worker
        # deliver the same attempt concurrently.
        if self.lease_seconds <= self.timeout_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds:g}) must exceed timeout_seconds "
                f"({self.timeout_seconds:g})"
            )
        return self


class HistorySettings(BaseModel):
    """Run history in Postgres: the outbox drained by workers, retention, the archived records.

    ``url`` unset turns history off: nothing is archived, task records live their whole
    ``AGENT_TASKS_TTL_SECONDS`` in Redis, as without the feature.
    """

    url: SecretStr | None = Field(
        default=None,
        description="Postgres URL (`postgresql://user:password@host:5432/db`; `postgres://` and "
        "`postgresql+psycopg://` are accepted too). Unset: history off.",
    )
    password_file: Path | None = Field(
        default=None,
        description="File holding the Postgres password (a mounted Secret); replaces the URL's "
        "password, so it needs no URL escaping. Unset: the URL's own password.",
    )
    migrate_at_start: bool = Field(
        default=True,
        description="Workers bring the schema to the newest migration before their first "
        "archive, under a Postgres advisory lock (many pods starting at once migrate once). "
        "False when a Helm hook Job runs `agent-service history migrate` instead.",
    )
    retention_days: int = Field(
        default=90,
        ge=0,
        description="Days an archived run is kept (by its creation time); older ones are "
        "deleted in batches. 0: kept forever.",
    )
    retention_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds between two retention sweeps of a worker (one worker sweeps at a "
        "time, under an advisory lock).",
    )
    retention_batch_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Runs deleted per transaction by a sweep: small batches hold their row "
        "locks for milliseconds, never a long lock.",
    )
    archived_record_ttl_seconds: int = Field(
        default=3600,
        ge=60,
        description="Seconds a task record (and its events) stays in Redis once archived; "
        "then `GET /v1/tasks/{id}` reads it from Postgres. A record whose webhook is still "
        "being delivered keeps its full TTL.",
    )
    drain_batch_size: int = Field(
        default=200,
        ge=1,
        le=5000,
        description="Finished runs a worker takes from the outbox and archives in one transaction.",
    )
    drain_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between two looks at the outbox when it is empty (a full batch "
        "is followed by the next one at once). Bounds the archive lag of a quiet system.",
    )
    lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a worker holds a batch it took from the outbox; if it dies "
        "mid-archive, another archives the batch again (idempotently) once this has passed. "
        "Must exceed the statement timeout.",
    )
    pool_size: int = Field(
        default=5, ge=1, le=100, description="Postgres connections per process (pool size)."
    )
    connect_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Timeout of a new Postgres connection: a dead one fails fast.",
    )
    statement_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Longest a history statement (an archive batch, a usage query) may run.",
    )

    @property
    def enabled(self) -> bool:
        return self.url is not None

    @model_validator(mode="after")
    def _lease_covers_a_batch(self) -> HistorySettings:
        # A lease running out while its batch is still being written lets a second worker
        # archive it concurrently: harmless (idempotent), but wasted work.
        if self.lease_seconds <= self.statement_timeout_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds:g}) must exceed statement_timeout_seconds "
                f"({self.statement_timeout_seconds:g})"
            )
        return self


class ControllerSettings(BaseModel):
    """The config controller (``agent-service controller``): the AgentConfig, Agents and
    MCPServers of one release."""

    namespace: str | None = Field(
        default=None,
        description="Namespace watched (default: the pod's own, from its service account).",
    )
    agentconfig: str = Field(
        default="agent-service", description="Name of the AgentConfig resource to render."
    )
    configmap: str = Field(
        default="agent-service-config",
        description="ConfigMap written with the accepted config (the pods mount it).",
    )
    mounted_secrets: Annotated[list[str] | None, NoDecode, BeforeValidator(_split_commas)] = Field(
        default=None,
        description="Secrets mounted into api/worker pods, comma-separated: a `secretKeyRef` "
        "to any other is rejected. Unset: not checked.",
    )
    label: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$",
        description="The label (`KEY=VALUE`) of the Agents and MCPServers rendered with the "
        "AgentConfig. Unset: `agent-service.dev/config=<AGENTCONFIG>`.",
    )
    allowed_tool_hosts: CommaList = Field(
        default_factory=list,
        description="Host patterns HTTP tools and MCP servers may be at, comma-separated "
        "(`*.svc.cluster.local`). Empty: any public host.",
    )
    allow_private_networks: bool = Field(
        default=False,
        description="Whether a spec may let HTTP tools or an MCP server reach private addresses "
        "(`allowPrivateNetworks`).",
    )
    probe_mcp_servers: bool = Field(
        default=True,
        description="Connect to each MCPServer to list its tools (status `toolCount`, "
        "`MCPUnreachable`), again every resync; in the background, never delaying a render.",
    )
    resync_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Re-check interval (Secrets created later, drift, MCP servers probed again).",
    )
    health_port: int = Field(default=8080, ge=1, le=65535, description="Liveness endpoint port.")

    @property
    def selector(self) -> tuple[str, str]:
        """The label of the Agents and MCPServers rendered with the AgentConfig (key, value)."""
        if self.label is None:
            return "agent-service.dev/config", self.agentconfig
        key, _, value = self.label.partition("=")
        return key, value


class LlmSettings(BaseModel):
    """How the service calls its models (the models themselves are in the agent config)."""

    transport: Literal["auto", "litellm"] = Field(
        default="auto",
        description="auto: OpenAI-compatible servers (`openai/<name>` models with an `apiBase`) "
        "are called through the openai SDK directly, every other model through LiteLLM (a "
        "process that needs no LiteLLM never imports it: ~150 MB less, and 0.62x the worker "
        "CPU per call, docs/performance.md); litellm: every model through LiteLLM.",
    )


class McpSettings(BaseModel):
    """Clients of the MCP tool servers listed in the agent config (`mcpServers`)."""

    refresh_interval_seconds: float = Field(
        default=60.0,
        ge=1,
        le=86_400,
        description="How often each server's tool list is read again (tools added or removed "
        "on the server reach the agent within this time).",
    )
    reconnect_initial_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="First wait before reconnecting to a server that failed (doubles, with "
        "jitter, after each failed attempt).",
    )
    reconnect_max_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Longest wait between two reconnection attempts: a server back up is "
        "used again within about this time.",
    )


class KnowledgeSettings(BaseModel):
    """The vector store of the knowledge bases in the agent config (`knowledgeBases`).

    Exactly one of `chroma_url` (a Chroma server: clusters, and any stack of several processes)
    and `chroma_path` (embedded Chroma in a data directory: one process only, since another
    process opening it does not see this one's writes in its queries). Neither: knowledge bases
    in the config answer 503 until a store is set.
    """

    chroma_url: str | None = Field(
        default=None,
        description="Chroma server URL (`http://chroma:8000`, `https://host`): `chroma run` or "
        "any Chroma deployment.",
    )
    chroma_path: Path | None = Field(
        default=None,
        description="Data directory of an embedded Chroma (a single process, e.g. the CLI).",
    )
    chroma_token_file: Path | None = Field(
        default=None,
        description="File holding the Chroma token (a mounted Secret), sent on every request. "
        "Unset: no token.",
    )
    chroma_token_header: str = Field(
        default="Authorization",
        description="Header carrying the token: `Authorization` sends `Bearer <token>`, any "
        "other (`X-Chroma-Token`) the bare token.",
    )
    collection_prefix: str = Field(
        default="kb-",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,15}$",
        description="Prefix of the Chroma collections (`<prefix><kb>-chunks`, "
        "`<prefix><kb>-documents`): several installs can share one Chroma.",
    )
    timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Longest wait for one store call before a 503 (Chroma's client has none).",
    )
    max_document_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        le=100 * 1024 * 1024,
        description="Largest document `POST /v1/knowledge/{kb}/documents` and the CLI accept "
        "(413 above). It waits in Redis until a worker ingests it.",
    )


class FaultSettings(BaseModel):
    """Fault points for the fault tests. Test-only: never set them in a deployment."""

    kill_after_pop: int = Field(
        default=0,
        ge=0,
        description="TEST ONLY. The worker SIGKILLs itself when it takes its N-th message off "
        "the queue, before recording it as held (the window the lost-message sweeper closes). "
        "0: off.",
    )


class LogSettings(BaseModel):
    level: str = Field(default="INFO", description="Log level (DEBUG, INFO, WARNING, ERROR).")
    json_lines: bool = Field(
        default=True, alias="json", description="JSON lines (true) or human-readable (false)."
    )
    mask_pii: bool = Field(
        default=False,
        description="Mask e-mail addresses and phone numbers in log lines ([email], [phone]).",
    )


class Settings(BaseSettings):
    """Every setting of the service. ``--help`` of each command lists them."""

    model_config = SettingsConfigDict(
        env_prefix="AGENT_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
        populate_by_name=True,
    )

    redis: RedisSettings = Field(default_factory=RedisSettings)
    config: ConfigFileSettings = Field(default_factory=ConfigFileSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    tasks: TaskSettings = Field(default_factory=TaskSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    controller: ControllerSettings = Field(default_factory=ControllerSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    fault: FaultSettings = Field(default_factory=FaultSettings)
    log: LogSettings = Field(default_factory=LogSettings)


def describe_settings() -> list[tuple[str, str, str]]:
    """(variable, default, description) of every setting, for ``--help``."""
    rows: list[tuple[str, str, str]] = []
    for group_name, group_field in Settings.model_fields.items():
        group_type = group_field.annotation
        assert isinstance(group_type, type) and issubclass(group_type, BaseModel)
        for name, field in group_type.model_fields.items():
            env = f"AGENT_{group_name}_{field.alias or name}".upper()
            default = field.get_default(call_default_factory=True)
            rows.append((env, "" if default is None else str(default), field.description or ""))
    return rows


class SettingsFileError(Exception):
    """A file a setting names is missing, unreadable or empty (``path``: the file)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def metrics_token(settings: Settings) -> str | None:
    """The bearer token /metrics requires (``AGENT_AUTH_METRICS_TOKEN_FILE``), or None.

    An unreadable or empty file is an error: starting with /metrics open would silently undo
    what the operator asked for.
    """
    path = settings.auth.metrics_token_file
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsFileError(path, f"cannot read: {exc.strerror}") from exc
    if not token:
        raise SettingsFileError(path, "the metrics token file is empty")
    return token


def secret_file(path: Path) -> str:
    """The secret a mounted file holds (a password), without its trailing line break: every
    other character, spaces included, is part of it. Unreadable or empty: ``SettingsFileError``
    (connecting without the password would fail later, less clearly)."""
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise SettingsFileError(path, f"cannot read: {exc.strerror}") from exc
    if not value:
        raise SettingsFileError(path, "the file is empty")
    return value


def environment_variable(name: str) -> str | None:
    """One variable of the process environment (secrets referenced as ``env`` in the agent
    config are read through here, so this module stays the one reader of the environment)."""
    return os.environ.get(name)


def kubernetes_service_address() -> str | None:
    """``https://host:port`` of the Kubernetes API from the variables every pod gets
    (``KUBERNETES_SERVICE_HOST``, ``KUBERNETES_SERVICE_PORT``); None outside a cluster."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    if not host:
        return None
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def multiprocess_metrics_dir() -> Path | None:
    """``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's own variable), when set."""
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def otel_environment() -> dict[str, str]:
    """The standard ``OTEL_*`` variables (exporter endpoint, protocol, service name, sampler...).

    Read by ``observability.tracing`` to decide whether and how spans are exported.
    """
    return {key: value for key, value in os.environ.items() if key.startswith("OTEL_")}


def ensure_multiprocess_metrics_dir() -> Path:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` to a private temporary directory if unset (gunicorn
    with several workers must share one; call before forking)."""
    current = multiprocess_metrics_dir()
    if current is not None:
        return current
    path = Path(tempfile.mkdtemp(prefix="agent-service-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def prepare_litellm_environment() -> None:
    """Make importing LiteLLM safe offline: use the bundled price map, never fetch one.

    Called by ``agent_service.llm`` right before it imports litellm (the import reads it).
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
