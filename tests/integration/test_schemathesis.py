"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis), over HTTP
against a real API process: no input yields a 5xx, and every answer matches the schema.

Each operation gets ``MAX_EXAMPLES`` generated requests (valid and invalid), driven with
Hypothesis directly: schemathesis' pytest plugin does not run under this pytest version. All
operations are fuzzed and every failure is reported, not only the first.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks

from agent_service.api.auth import generate_key
from tests.conftest import RedisServer, Sim
from tests.integration.stack import secured_env
from tests.postgres import PostgresServer
from tests.procs import cli

# Many generated requests per operation: longer than the default per-test timeout.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

KEY = generate_key()
MAX_EXAMPLES = int(os.environ.get("AGENT_TEST_FUZZ_EXAMPLES", "30"))


@schemathesis.check
def invalid_input_is_rejected(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """schemathesis' negative_data_rejection, with 413 counted as a rejection (an oversized
    body is invalid input, and 413 is its documented answer)."""
    if response.status_code == 413:
        return True
    return checks.negative_data_rejection(ctx, response, case)


CROSS_FIELD_RULES = {("GET", "/v1/tasks"), ("GET", "/v1/usage")}
"""Routes whose 400 answers a rule no schema states: an opaque pagination cursor the service
never made, or fields that contradict each other (a usage window over 400 days, ``to`` before
``from``, ``limit`` with ``interval``). Types, bounds and patterns are 422 there, as elsewhere;
tests/history checks each 400."""


@schemathesis.check
def valid_input_is_accepted(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """schemathesis' positive_data_acceptance, except a 400 of ``CROSS_FIELD_RULES``."""
    if response.status_code == 400 and (case.method.upper(), case.path) in CROSS_FIELD_RULES:
        return True
    return checks.positive_data_acceptance(ctx, response, case)


CHECKS = [
    checks.not_a_server_error,
    checks.response_schema_conformance,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    # Invalid input (wrong types, missing fields, bad patterns) must be a 4xx, and valid input
    # must not be: the description says what the server enforces (api/openapi.py adds what
    # only settings and the config in force know, such as the configured model names).
    invalid_input_is_rejected,
    valid_input_is_accepted,
]


@pytest.fixture(scope="module")
def fuzzed_api(
    redis_server: RedisServer,
    sim: Sim,
    postgres_server: PostgresServer,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """An API with history on (a migrated database), so the history routes answer for real."""
    root = tmp_path_factory.mktemp("fuzz")
    secret = root / "webhook-secret"
    secret.write_text("fuzz-webhook-secret")
    with postgres_server.database() as history_url:
        env = secured_env(
            redis_server.url,
            sim.url,
            log_dir,
            root,
            {"fuzz": KEY},
            AGENT_WEBHOOKS_SECRET_FILE=str(secret),
            AGENT_HISTORY_URL=history_url,
        )
        done = subprocess.run(
            cli("history", "migrate"), env=env.env(), capture_output=True, check=False, timeout=60
        )
        assert done.returncode == 0, done.stderr
        api, url = env.start_api()
        # Background responses that stream follow their task: a worker runs them.
        worker = env.start_worker()
        yield url
        worker.stop()
        api.stop()


def _fuzz(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not os.environ.get("AGENT_TEST_FUZZ_EXAMPLES"),  # CI: the same cases
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {KEY}"}, checks=CHECKS, timeout=30
        )

    check()


def test_no_input_breaks_the_api(fuzzed_api: str) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_api}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8, [op.label for op in operations]
    failures = {}
    for operation in operations:
        for mode in schemathesis.GenerationMode:  # schema-valid and schema-violating input
            try:
                _fuzz(operation, mode)
            except Unsatisfiable:
                # An operation with no parameters and no body has no invalid input to make.
                assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # collect every operation's failure, then report all
                failures[f"{operation.label} ({mode.value})"] = f"{type(exc).__name__}: {exc}"[
                    :3000
                ]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_the_description_says_what_the_server_refuses(fuzzed_api: str) -> None:
    """The cases an outside fuzz run found: refused by the server, and outside the schema."""
    headers = {"Authorization": f"Bearer {KEY}"}
    described = httpx.get(f"{fuzzed_api}/openapi.json", timeout=10).json()
    schemas = described["components"]["schemas"]
    task = schemas["TaskBody"]["properties"]
    assert "" not in task["model"]["anyOf"][0]["enum"]
    assert task["webhook_url"]["anyOf"][0]["pattern"].startswith("^https://[A-Za-z]")
    assert schemas["RunBody"]["properties"]["stream"]["type"] == "boolean"
    for body in (
        {"message": "hi", "model": ""},
        {"message": "hi", "webhook_url": "https://"},
        {"message": "hi", "stream": 0},
    ):
        resp = httpx.post(f"{fuzzed_api}/v1/tasks", json=body, headers=headers, timeout=10)
        assert resp.status_code == 422, (body, resp.text)
