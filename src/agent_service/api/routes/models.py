"""``GET /v1/models``: the agents the caller may use and the configured models, as OpenAI SDKs
list them (``model`` in ``/v1/chat/completions`` takes either)."""

from __future__ import annotations

from fastapi import APIRouter

from agent_service.api.deps import CallerDep, SnapshotDep
from agent_service.api.schemas import ERROR_RESPONSES, ModelCard, ModelList

router = APIRouter(tags=["models"])


@router.get("/v1/models", response_model=ModelList, responses=ERROR_RESPONSES)
async def list_models(snapshot: SnapshotDep, caller: CallerDep) -> ModelList:
    """The caller's agents, then the models, of the agent config in force (it changes on a hot
    reload)."""
    version = snapshot.version
    config = version.config
    created = int(snapshot.agent.created_at)
    agents = [
        ModelCard(
            id=agent.name,
            created=created,
            owned_by="agent-service",
            kind="agent",
            default=agent.name == snapshot.default_agent,
        )
        for agent in snapshot.agents.values()
        if agent.profile.allows(caller.tenant)
    ]
    models = [
        ModelCard(
            id=spec.name,
            created=created,
            owned_by=spec.provider,
            kind="model",
            default=spec.name == config.default_model,
            fallbacks=list(spec.fallbacks),
        )
        for spec in config.models
    ]
    return ModelList(data=[*agents, *models], config_generation=version.generation)
