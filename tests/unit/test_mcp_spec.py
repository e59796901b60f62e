"""The MCP server config model: names, headers from secrets, filters, bounds."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agent_service.mcptools import McpServerSpec


def parse(**fields: Any) -> McpServerSpec:
    return McpServerSpec.model_validate(
        {"name": "orders", "url": "http://orders:8000/mcp", **fields}
    )


def test_a_full_spec_in_camel_case() -> None:
    spec = parse(
        headers={
            "Authorization": {
                "secretKeyRef": {"name": "orders-mcp", "key": "token"},
                "prefix": "Bearer ",
            }
        },
        timeoutSeconds=5,
        include=["lookup_order"],
        exclude=["track_shipment"],
        allowPrivateNetworks=True,
    )
    header = spec.headers["Authorization"]
    assert header.secret_key_ref is not None and header.secret_key_ref.key == "token"
    assert header.prefix == "Bearer "
    assert spec.timeout_seconds == 5
    assert spec.allow_private_networks
    dumped = spec.model_dump(by_alias=True, exclude_defaults=True)
    assert dumped["allowPrivateNetworks"] is True
    assert McpServerSpec.model_validate(dumped) == spec


def test_defaults() -> None:
    spec = parse()
    assert spec.timeout_seconds == 30
    assert spec.headers == {} and spec.include == [] and spec.exclude == []
    assert not spec.allow_private_networks


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Orders"}, "String should match pattern"),
        ({"name": "orders.v1"}, "String should match pattern"),
        ({"name": "a" * 33}, "String should match pattern"),
        ({"name": "orders-"}, "String should match pattern"),
        ({"url": "ftp://orders/mcp"}, "String should match pattern"),
        ({"url": "https://user:pw@orders/mcp"}, "must not hold credentials"),
        ({"timeoutSeconds": 0}, "greater than 0"),
        ({"timeoutSeconds": 601}, "less than or equal to 600"),
        ({"headers": {"Authorization": {"env": "A", "file": "/b"}}}, "exactly one of"),
        ({"headers": {"Authorization": {"prefix": "Bearer "}}}, "exactly one of"),
        ({"headers": {"Host": {"env": "H"}}}, "set by the MCP transport itself"),
        ({"headers": {"mcp-session-id": {"env": "H"}}}, "set by the MCP transport itself"),
        ({"headers": {"Bad Header": {"env": "H"}}}, "not a valid HTTP header name"),
        ({"headers": {"X-A": {"env": "A"}, "x-a": {"env": "B"}}}, "unique"),
        ({"headers": {"X-A": {"env": "A", "prefix": "tab\t"}}}, "String should match pattern"),
        ({"headers": {"X-A": {"value": "inline secret"}}}, "Extra inputs are not permitted"),
        ({"include": ["has space"]}, "not a valid MCP tool name"),
        ({"include": ["a"], "exclude": ["a"]}, "both included and excluded: a"),
        ({"token": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_specs_are_refused_with_a_reason(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse(**fields)


def test_the_spec_is_frozen() -> None:
    spec = parse()
    with pytest.raises(ValidationError):
        spec.url = "http://elsewhere/mcp"  # type: ignore[misc]
