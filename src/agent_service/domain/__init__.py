"""Pure data shared by every layer: messages, runs, tasks, events, errors, the agent config.

Nothing here does I/O or imports a client library; every other package may import it.
"""
