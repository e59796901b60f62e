"""HTTP tools: the only package that calls tool endpoints over HTTP.

``client`` builds the tools declared in the agent config on a session from
``egress.create_guarded_session``; where they may connect is ``egress``'s to decide.
"""
