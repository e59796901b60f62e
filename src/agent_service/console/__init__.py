"""The web console: static files only (HTML, CSS and native ES modules under ``static/``).

No build step and no Node toolchain: the browser loads the files as they are in the package
(docs/console.md says why). ``api.routes.console`` serves them at ``/ui``; this package holds
no code so that it can be shipped, listed and checked (tests/unit/test_console_static.py) alone.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).with_name("static")
"""The console's files: ``index.html`` and ``assets/`` (CSS, ES modules, icon)."""
