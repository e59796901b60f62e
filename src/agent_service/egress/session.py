"""Guarded aiohttp sessions: every connection they open goes through the SSRF guard.

The runtime creates one per config snapshot for HTTP tools, and the webhook dispatcher one for
deliveries; both inside their event loop, and both close them. Code that is handed a session
can check it is guarded with ``is_guarded`` (host names would otherwise bypass the policy).
"""

from __future__ import annotations

import weakref

import aiohttp
from aiohttp.resolver import ThreadedResolver

from agent_service.egress.guard import GuardedResolver

MAX_CONNECTIONS = 200

# Sessions made here and their allow_private flag, so a consumer can refuse a session whose
# connector does not filter resolved addresses the way it expects.
_GUARDED: weakref.WeakKeyDictionary[aiohttp.ClientSession, bool] = weakref.WeakKeyDictionary()


def create_guarded_session(
    allow_private_networks: bool, *, limit: int = MAX_CONNECTIONS, **kwargs: object
) -> aiohttp.ClientSession:
    """A session whose every connection goes through the SSRF-guarded resolver.

    Call it inside the running event loop; the caller owns the session and closes it.
    ``kwargs`` go to ``aiohttp.ClientSession`` (headers, timeout...).
    """
    # The connector does not own a resolver it is given, so it never closes it: harmless, as
    # ThreadedResolver.close() is a no-op.
    resolver = GuardedResolver(ThreadedResolver(), allow_private_networks)
    connector = aiohttp.TCPConnector(resolver=resolver, limit=limit)
    # trust_env=False: a proxy from the environment would connect on our behalf, unchecked.
    session = aiohttp.ClientSession(connector=connector, trust_env=False, **kwargs)  # type: ignore[arg-type]
    _GUARDED[session] = allow_private_networks
    return session


def is_guarded(session: aiohttp.ClientSession, allow_private_networks: bool) -> bool:
    """Whether ``session`` came from ``create_guarded_session(allow_private_networks)``."""
    return _GUARDED.get(session) == allow_private_networks
