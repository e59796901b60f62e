"""Completion webhooks of tasks: the pure parts, free of Redis, Celery and HTTP clients.

``signing`` signs and verifies deliveries (HMAC-SHA256 over timestamp and body), ``policy``
decides what follows an attempt (delivered, retry after a backoff, dead), ``payload`` builds
the signed body, ``tenant_secret`` finds a tenant's signing secret. The API checks submissions
with them; ``worker.webhooks`` delivers from the Redis outbox that ``store.webhooks`` keeps.
"""
