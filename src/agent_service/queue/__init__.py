"""The task queue: the Celery app factory and the producer side (enqueue).

With ``worker``, the only package that imports celery; with ``store``, the only one that talks
to Redis.
"""
