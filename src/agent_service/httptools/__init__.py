"""HTTP tools: the only package that calls tool endpoints over HTTP.

``client`` builds the tools declared in the agent config and the SSRF-guarded session they
share; ``ssrf`` holds the address policy (also meant for outgoing webhooks).
"""
