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

pytestmark = pytest.mark.integration

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


CHECKS = [
    checks.not_a_server_error,
    checks.response_schema_conformance,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    # Invalid input (wrong types, missing fields, bad patterns) must be a 4xx. The converse
    # (positive_data_acceptance) is not asked: a schema-valid body may still name a model
    # that is not configured, which only the running config knows (422).
    invalid_input_is_rejected,
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
    with postgres_server.database() as history_url:
        env = secured_env(
            redis_server.url,
            sim.url,
            log_dir,
            root,
            {"fuzz": KEY},
            AGENT_HISTORY_URL=history_url,
        )
        done = subprocess.run(
            cli("history", "migrate"), env=env.env(), capture_output=True, check=False, timeout=60
        )
        assert done.returncode == 0, done.stderr
        api, url = env.start_api()
        yield url
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
