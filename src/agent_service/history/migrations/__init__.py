"""Alembic migrations of the history tables (run by ``history.migrate``, never by hand)."""
