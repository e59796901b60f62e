"""``GET /v1/agents``: the agents the caller's tenant may use, with their model and tools."""

from __future__ import annotations

from fastapi import APIRouter

from agent_service.api.deps import CallerDep, SnapshotDep
from agent_service.api.schemas import ERROR_RESPONSES, AgentCard, AgentList

router = APIRouter(tags=["agents"])


@router.get("/v1/agents", response_model=AgentList, responses=ERROR_RESPONSES)
async def list_agents(snapshot: SnapshotDep, caller: CallerDep) -> AgentList:
    """The agents of the config in force that the caller's tenant may use (others are not
    listed: to a tenant they do not exist)."""
    cards = [
        AgentCard(
            name=agent.name,
            description=agent.profile.description,
            model=agent.profile.model,
            tools=agent.tool_names,
            default=agent.name == snapshot.default_agent,
            structured_output=agent.profile.response_format is not None,
        )
        for agent in snapshot.agents.values()
        if agent.profile.allows(caller.tenant)
    ]
    return AgentList(
        data=cards,
        default_agent=snapshot.default_agent,
        config_generation=snapshot.version.generation,
    )
