"""The Celery task: a few lines handing the run to the process's event loop."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.exceptions import Reject
from opentelemetry import context as otel_context

from agent_service.domain.errors import DependencyUnavailableError
from agent_service.observability.tracing import TRACE_HEADERS, extract_context
from agent_service.queue.celery_app import RUN_TASK_NAME
from agent_service.worker.execution import Execution, execute_task
from agent_service.worker.runtime import LoopThread


def register_tasks(app: Celery, loop: LoopThread, deps: Execution) -> None:
    @app.task(name=RUN_TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def run_agent(self: Any, task_id: str) -> str | None:
        # CeleryInstrumentor opened this task's span on task_prerun, as a child of the
        # message's traceparent; the run continues it on the loop thread, so hand it over.
        current = otel_context.get_current()
        headers = {k: str(v) for k in TRACE_HEADERS if (v := getattr(self.request, k, None))}
        sent_from = extract_context(headers)
        # Which copy of the message this is: a stale copy of a replaced one is not run.
        delivery_tag = (getattr(self.request, "properties", None) or {}).get("delivery_tag")
        try:
            status = loop.run(execute_task(deps, task_id, current, sent_from, delivery_tag))
        except DependencyUnavailableError as exc:
            # Redis went away mid-run, or stayed full: hand the message back (or leave it
            # unacked, to be redelivered later) rather than acknowledging a lost run.
            raise Reject(str(exc), requeue=True) from exc
        return status.value if status else None
