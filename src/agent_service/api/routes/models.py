"""``GET /v1/models``: the configured models, as OpenAI SDKs list them."""

from __future__ import annotations

from fastapi import APIRouter

from agent_service.api.deps import CallerDep, SnapshotDep
from agent_service.api.schemas import ERROR_RESPONSES, ModelCard, ModelList

router = APIRouter(tags=["models"])


@router.get("/v1/models", response_model=ModelList, responses=ERROR_RESPONSES)
async def list_models(snapshot: SnapshotDep, _: CallerDep) -> ModelList:
    """The models of the agent config in force (it changes on a hot reload)."""
    version = snapshot.version
    config = version.config
    return ModelList(
        data=[
            ModelCard(
                id=spec.name,
                created=int(snapshot.agent.created_at),
                owned_by=spec.provider,
                default=spec.name == config.default_model,
                fallbacks=list(spec.fallbacks),
            )
            for spec in config.models
        ],
        config_generation=version.generation,
    )
