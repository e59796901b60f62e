"""Run history in Postgres: the archive of finished runs, its queries, feedback and retention.

The only package that talks to Postgres (SQLAlchemy 2 async on psycopg 3). ``open_history``
(``runtime``) builds it for a process from ``HistorySettings``; the worker's
``history_drainer`` writes what the Redis outbox (``store.history_outbox``) holds with
``HistoryArchive``; the API reads it with ``RunQueries``, ``UsageQueries`` and records
feedback with ``FeedbackStore``. Connection failures leave this package as
``DependencyUnavailableError`` (503 at the API; the drainer waits and retries).

``runtime``, ``models`` (the errors, the routes' query and answer shapes) and ``scope`` import
no SQLAlchemy, psycopg or Alembic: a process with history off never loads them.
"""
