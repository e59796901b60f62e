"""OpenAI's wire formats around the agent: Chat Completions and the Responses API.

The routes (``api.routes.openai``, ``api.routes.responses``) are thin; the translation between
OpenAI's bodies and the service's runs lives here, in plain functions over pydantic models, so
it is unit-tested without a server. docs/openai.md is the compatibility table.
"""
