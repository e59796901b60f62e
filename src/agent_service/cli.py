"""The ``agent-service`` command: api, worker, sim-llm, up, controller, crd, ensure-secret,
config validate, mcp-demo, history migrate, submit.

Each subcommand builds ``Settings`` once from the environment and hands it to the entry point it
starts. Heavy modules (litellm, celery, fastapi) are imported only by the subcommand that needs
them, so ``agent-service sim-llm`` starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent_service import __version__
from agent_service.agentconfig.load import ConfigError
from agent_service.settings import Settings, describe_settings


def _settings_epilog() -> str:
    lines = ["settings (environment variables):"]
    for env, default, description in describe_settings():
        lines.append(f"  {env}={default}")
        if description:
            lines.append(f"      {description}")
    lines.append("  OTEL_* variables configure OpenTelemetry export (none set: no export).")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    epilog = _settings_epilog()
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="agent-service",
        description="A Kubernetes-native service for running LLM agents.",
        epilog=epilog,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"agent-service {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    api = sub.add_parser("api", help="run the HTTP API", epilog=epilog, formatter_class=fmt)
    api.add_argument("--host", help="bind address (AGENT_API_HOST)")
    api.add_argument("--port", type=int, help="port (AGENT_API_PORT)")
    api.add_argument("--workers", type=int, help="processes (AGENT_API_WORKERS)")

    worker = sub.add_parser(
        "worker", help="run a Celery worker", epilog=epilog, formatter_class=fmt
    )
    worker.add_argument("--concurrency", type=int, help="runs in flight (AGENT_WORKER_CONCURRENCY)")
    worker.add_argument("--queue", help="queue to consume (AGENT_WORKER_QUEUE)")

    sim = sub.add_parser(
        "sim-llm", help="run the OpenAI-compatible LLM simulator", formatter_class=fmt
    )
    from agent_service.sim.options import add_arguments

    add_arguments(sim)

    up = sub.add_parser(
        "up", help="run the whole local stack in the foreground", epilog=epilog, formatter_class=fmt
    )
    up.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    up.add_argument("--sim-port", type=int, default=0, help="simulator port (default: a free one)")
    up.add_argument("--sim-ttft", type=float, default=0.05, help="simulated time to first token")
    up.add_argument(
        "--with-monitoring",
        action="store_true",
        help="also run Prometheus (with the rules in alerts/) and Alertmanager",
    )

    sub.add_parser(
        "controller",
        help="run the controller of the AgentConfig, Agent and MCPServer resources (Kubernetes)",
        epilog=epilog,
        formatter_class=fmt,
    )
    crd = sub.add_parser(
        "crd",
        help="print the CustomResourceDefinitions of AgentConfig, Agent and MCPServer (YAML)",
    )
    crd.add_argument(
        "--kind",
        choices=["AgentConfig", "Agent", "MCPServer"],
        help="print only this kind's (the file k8s/crds/<kind in lower case>.yaml)",
    )

    demo = sub.add_parser(
        "mcp-demo",
        help="run the demo MCP server (order lookup tools, Streamable HTTP on /mcp)",
        formatter_class=fmt,
    )
    demo.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8200, help="port (default 8200)")
    ensure = sub.add_parser(
        "ensure-secret",
        help="create Secrets with generated values once; never change an existing value "
        "(the Helm chart's pre-install/pre-upgrade hook)",
    )
    from agent_service.controller.generated_secrets import add_arguments as add_secret_arguments

    add_secret_arguments(ensure)

    config = sub.add_parser("config", help="agent config tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    validate = config_sub.add_parser("validate", help="validate an agent config file")
    validate.add_argument("file", help="YAML agent config file")

    submit = sub.add_parser(
        "submit",
        help="submit a task to the API (--wait prints its answer); what scheduled CronJobs run",
        epilog="environment: AGENT_API_URL (the API, default http://127.0.0.1:8000), "
        "AGENT_API_KEY (its key). Exit codes: 0 ok, 1 the task failed, 2 the API refused the "
        "request, 3 the API is unreachable, 4 --timeout passed.",
    )
    from agent_service.submit import add_arguments as add_submit_arguments

    add_submit_arguments(submit)

    knowledge = sub.add_parser(
        "knowledge", help="knowledge bases: ingest files", epilog=epilog, formatter_class=fmt
    )
    from agent_service.knowledge_cli import add_arguments as add_knowledge_arguments

    add_knowledge_arguments(knowledge)

    history = sub.add_parser("history", help="run history in Postgres", epilog=epilog)
    history_sub = history.add_subparsers(dest="history_command", required=True, metavar="ACTION")
    history_sub.add_parser(
        "migrate",
        help="migrate the history schema (AGENT_HISTORY_URL) to this release; a Helm hook Job",
    )
    return parser


def _validate_config(path: str) -> int:
    from pathlib import Path

    from agent_service.agentconfig.load import parse_agent_config

    try:
        config = parse_agent_config(Path(path).read_text(encoding="utf-8"), path)
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        for where, reason in exc.errors:
            print(f"{path}: {where}: {reason}", file=sys.stderr)
        return 1
    print(
        f"{path}: valid ({len(config.models)} models, default {config.default_model}, "
        f"hash {config.fingerprint()})"
    )
    return 0


def _ensure_secrets(args: argparse.Namespace) -> int:
    import logging

    from agent_service.controller import generated_secrets, kube

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return generated_secrets.run(args, kube.secret_store)


def _serve(command: str, args: argparse.Namespace, settings: Settings) -> int:
    """Start a long-running process: api, worker, controller or the local stack."""
    if command == "api":
        from agent_service.api.server import serve_api

        settings.api.host = args.host or settings.api.host
        settings.api.port = args.port or settings.api.port
        settings.api.workers = args.workers or settings.api.workers
        return serve_api(settings)
    if command == "worker":
        from agent_service.worker.main import run_worker

        settings.worker.concurrency = args.concurrency or settings.worker.concurrency
        settings.worker.queue = args.queue or settings.worker.queue
        return run_worker(settings)
    if command == "controller":
        from agent_service.controller.main import run_controller

        return run_controller(settings)
    if command == "up":
        from agent_service.launcher import run_local_stack

        return run_local_stack(
            settings,
            api_port=args.port,
            sim_port=args.sim_port,
            sim_ttft=args.sim_ttft,
            with_monitoring=args.with_monitoring,
        )
    raise AssertionError(command)


def _tool(command: str, args: argparse.Namespace) -> int:
    """A short-lived or auxiliary command: the MCP demo server, the chart's secret hook, the
    history migration, knowledge ingestion."""
    from agent_service.observability.logging import configure_logging

    if command == "ensure-secret":
        return _ensure_secrets(args)
    settings = Settings()
    # `knowledge ingest` answers on stdout (its summary): its log lines go to stderr.
    configure_logging(
        settings.log, component=command, stream=sys.stderr if command == "knowledge" else None
    )
    if command == "mcp-demo":
        from agent_service.mcptools.demo import serve_demo

        serve_demo(args.host, args.port)
        return 0
    if command == "knowledge":
        from agent_service.knowledge_cli import run_knowledge

        return run_knowledge(args, settings)
    from agent_service.history.commands import migrate_command

    return migrate_command(settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: str = args.command
    if command == "sim-llm":
        from agent_service.sim.options import options_from_args
        from agent_service.sim.server import serve as serve_sim

        serve_sim(options_from_args(args))
        return 0
    if command == "config":
        return _validate_config(args.file)
    if command == "submit":
        from agent_service.submit import run_submit

        return run_submit(args)
    if command in ("mcp-demo", "ensure-secret", "history", "knowledge"):
        return _tool(command, args)
    if command == "crd":
        from agent_service.agentconfig.crd import render_crd_yaml, render_crds_yaml

        sys.stdout.write(render_crd_yaml(args.kind) if args.kind else render_crds_yaml())
        return 0
    return _serve(command, args, Settings())


if __name__ == "__main__":
    sys.exit(main())
