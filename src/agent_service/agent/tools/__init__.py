"""The agent's built-in tools (``calculator``, ``current_time``) and the tool registry.

``registry.build_toolset`` merges the enabled built-ins with the HTTP tools that the
``httptools`` adapter builds; the agent loop dispatches the model's tool calls through it.
"""
