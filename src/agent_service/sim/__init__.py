"""The OpenAI-compatible LLM simulator behind ``agent-service sim-llm``.

A deterministic, tool-using stand-in for a real model: the local stack's default model and the
backend of every test and benchmark, reached by LiteLLM over HTTP like any OpenAI provider.
``options`` holds its settings and flags, ``behaviour`` decides what it answers, ``tokens``
counts tokens, and ``server`` serves the HTTP API.
"""
