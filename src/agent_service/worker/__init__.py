"""The Celery worker: thin tasks handing runs to one long-lived asyncio event loop per process."""
