"""Fault tests: real redis-server, API, worker and simulator processes, broken on purpose.

Each module builds its own stack (queue and key prefix of its own); each test bounds every wait,
so a lost task or a hung process fails the test instead of stalling the suite. Helpers are in
``tests.faults.harness``.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.faults
