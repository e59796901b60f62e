"""Rendering a valid agent config into the document the pods read (the ConfigMap's data).

Called by the controller after it validated a resource. The document is the resource itself,
normalised, with its ``metadata.generation``; ``load.parse_config_document`` reads the
generation back, so pods report the generation the controller applied.
"""

from __future__ import annotations

from typing import Protocol

import yaml

from agent_service.agentconfig.crd import API_VERSION, KIND
from agent_service.agentconfig.model import AgentConfig

# libyaml's emitter when PyYAML has it: the same document, many times faster (see load.py).
_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

CONFIG_KEY = "config.yaml"
"""The ConfigMap key the pods mount as their config file."""


class Named(Protocol):
    """The resource being rendered (the controller's ``ObjectRef``)."""

    @property
    def name(self) -> str: ...

    @property
    def namespace(self) -> str: ...

    @property
    def generation(self) -> int: ...


def render_config(obj: Named, config: AgentConfig) -> dict[str, str]:
    """The ConfigMap data for a valid config: the resource, normalised, with its generation
    (``config.parse_config_document`` reads the generation back)."""
    document = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": obj.name, "namespace": obj.namespace, "generation": obj.generation},
        "spec": config.model_dump(mode="json", by_alias=True),
    }
    text = yaml.dump(document, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=100)
    return {CONFIG_KEY: text}
