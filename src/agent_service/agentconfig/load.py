"""Reading an agent config: YAML (or JSON) text or a file into a validated ``AgentConfig``.

Called at start by the API and the worker (``load_config_version``), by the reloader for each
new version of the file, by ``agent-service config validate``, and by tests. Errors are
``ConfigError`` with precise ``(path, reason)`` pairs, so an operator sees
``agents[1].model: ...`` rather than a stack trace.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from agent_service.agentconfig.model import AgentConfig, ConfigVersion, default_agent_config
from agent_service.agentconfig.spec import Loc, SpecError, format_path
from agent_service.settings import Settings

# libyaml's parser when PyYAML has it (the wheels do): a ConfigMap with a few hundred agents
# parses in milliseconds instead of a second; the same safe constructors either way.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(Exception):
    """The agent config file is missing, unreadable or invalid. ``errors`` are (path, reason)."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        super().__init__(f"{source}: " + "; ".join(f"{p}: {r}" for p, r in errors))
        self.source = source
        self.errors = errors


def validation_errors(exc: ValidationError, prefix: Loc = ()) -> list[tuple[str, str]]:
    """pydantic's errors as ``(path, message)`` pairs, paths like ``agents[1].model`` (under
    ``prefix``); the cross-field problems of ``SpecError`` each at its own path."""
    out: list[tuple[str, str]] = []
    for err in exc.errors():
        loc: Loc = (*prefix, *err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, SpecError):
            out.extend((format_path((*loc, *where)), message) for where, message in cause.problems)
        else:
            out.append((format_path(loc) or "(root)", err["msg"]))
    return out


def parse_config_document(text: str, source: str = "<config>") -> tuple[AgentConfig, int | None]:
    """Parse YAML (or JSON) text into an ``AgentConfig`` and the generation it declares.

    The text is either the config itself or a manifest that nests it under ``spec`` (an
    ``AgentConfig`` resource, or the controller's rendering of one, which carries the
    resource's ``metadata.generation``; the generation is None otherwise).
    """
    try:
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506  # a safe loader
    except yaml.YAMLError as exc:
        raise ConfigError(source, [("(file)", f"invalid YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise ConfigError(source, [("(file)", "expected a mapping at the top level")])
    generation: int | None = None
    if "spec" in data and "apiVersion" in data:
        metadata = data.get("metadata")
        declared = metadata.get("generation") if isinstance(metadata, dict) else None
        if isinstance(declared, int) and not isinstance(declared, bool) and declared > 0:
            generation = declared
        data = data["spec"]
    try:
        return AgentConfig.model_validate(data), generation
    except ValidationError as exc:
        raise ConfigError(source, validation_errors(exc)) from exc


def parse_agent_config(text: str, source: str = "<config>") -> AgentConfig:
    """Parse and validate YAML (or JSON) text into an ``AgentConfig``."""
    return parse_config_document(text, source)[0]


def read_config_file(path: Path) -> tuple[AgentConfig, int | None]:
    """The config in ``path`` and its declared generation (``ConfigError`` if unusable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [("(file)", f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError:
        raise ConfigError(str(path), [("(file)", "not UTF-8 text")]) from None
    return parse_config_document(text, str(path))


def load_config_version(settings: Settings) -> ConfigVersion:
    """The agent config in force at start, with its generation (1 unless the file says):
    the file named by ``AGENT_CONFIG_FILE``, else the built-in config on the simulator."""
    path = settings.config.file
    if path is None:
        return ConfigVersion.of(default_agent_config(settings.sim.url), 1)
    config, generation = read_config_file(path)
    return ConfigVersion.of(config, generation or 1)
