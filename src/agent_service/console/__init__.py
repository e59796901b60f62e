"""The web console: static files only (HTML, CSS and native ES modules under ``static/``).

No build step and no Node toolchain: the browser loads the files as they are in the package
(docs/console.md says why). ``api.routes.console`` serves them at ``/ui``; this package holds
only the files and their location, so that it ships in the wheel and the image as data and is
checked on its own (tests/unit/test_console_static.py).
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).with_name("static")
"""The console's files: ``index.html`` and ``assets/`` (CSS, ES modules, icon)."""
