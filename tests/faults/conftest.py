"""Fault tests: real redis-server, API, worker and simulator processes, broken on purpose.

Each module builds its own stack (queue and key prefix of its own); each test bounds every wait,
so a lost task or a hung process fails the test instead of stalling the suite. Helpers are in
``tests.faults.harness``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.stack import StackEnv

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def client(stack_env: StackEnv) -> Iterator[httpx.Client]:
    """A client of an API process of the module's ``stack_env``. Its timeout bounds every call:
    far below the hangs the dependency faults inject."""
    proc, url = stack_env.start_api()
    try:
        with httpx.Client(base_url=url, timeout=15) as http:
            yield http
    finally:
        proc.stop()
