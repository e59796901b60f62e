"""Every rule about where the service may send requests: the one room for outbound URLs.

``guard`` is the SSRF guard (addresses: URL checks and a resolver filtering every DNS answer),
``hosts`` the allowed-host patterns an operator sets, ``session`` the guarded aiohttp sessions
HTTP tools and webhooks share. Callers: ``httptools``, ``mcptools``, the webhook dispatcher, the
API's webhook URL check and the controller's validation of tool and server URLs.
"""
