"""Redis persistence: task records, their event streams, session memory.

With ``queue``, the only package that talks to Redis. Redis errors leave this package as
``DependencyUnavailableError`` so callers answer 503 without knowing redis-py.
"""
