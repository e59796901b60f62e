"""The Metrics class over a fresh registry: config series, and the off switch."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from agent_service.observability.metrics import Metrics


def test_config_info_keeps_one_series_at_one() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.set_config(1, "aaa")
    metrics.set_config(2, "bbb")
    value = metrics.registry.get_sample_value
    assert value("agent_config_info", {"generation": "2", "hash": "bbb"}) == 1
    # 0, not removed: a removed series would keep 1 in a multiprocess file
    assert value("agent_config_info", {"generation": "1", "hash": "aaa"}) == 0


def test_disabled_metrics_record_and_export_nothing() -> None:
    metrics = Metrics(CollectorRegistry(), enabled=False)
    metrics.http_requests.labels("GET", "/healthz", "200").inc()
    metrics.http_duration.labels("GET", "/healthz").observe(0.1)
    metrics.worker_in_progress.labels("q").dec()
    metrics.prime("q", [("m", "openai")], ["calculator"], [("m", "n")])
    metrics.set_config(3, "ccc")
    assert generate_latest(metrics.registry) == b""
    assert not metrics.enabled


def test_knowledge_metrics_by_named_methods() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.prime_knowledge(["docs"])
    value = metrics.registry.get_sample_value
    assert value("agent_retrieval_hits_count", {"kb": "docs"}) == 0
    metrics.retrieval_finished("docs", 0.03, 4)
    metrics.retrieval_finished("docs", 0.2, 0)
    metrics.knowledge_chunks_counted("docs", 120)
    metrics.knowledge_chunks_counted("docs", 95)
    assert value("agent_retrieval_duration_seconds_count", {"kb": "docs"}) == 2
    assert value("agent_retrieval_duration_seconds_bucket", {"kb": "docs", "le": "0.05"}) == 1
    assert value("agent_retrieval_hits_sum", {"kb": "docs"}) == 4
    assert value("agent_retrieval_hits_bucket", {"kb": "docs", "le": "0.0"}) == 1
    assert value("agent_knowledge_chunks", {"kb": "docs"}) == 95
