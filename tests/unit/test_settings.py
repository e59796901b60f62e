"""Settings from the environment and agent config validation (precise errors with paths)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_service.agentconfig.load import ConfigError, parse_agent_config
from agent_service.cli import main
from agent_service.settings import Settings, describe_settings

VALID = """
defaultModel: fast
models:
  - name: fast
    model: openai/gpt-4o-mini
    apiKey: {env: OPENAI_API_KEY}
    inputCostPer1K: 0.00015
    outputCostPer1K: 0.0006
    fallbacks: [local]
  - name: local
    model: openai/qwen2.5
    apiBase: http://vllm:8000/v1
tools:
  http:
    - name: weather
      description: Weather by city
      url: https://tools.example.com/weather
      parameters: {type: object, properties: {city: {type: string}}}
limits: {maxIterations: 4, runTimeoutSeconds: 30}
"""


def test_settings_read_grouped_agent_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_REDIS_URL", "redis://r:6380/2")
    monkeypatch.setenv("AGENT_API_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("AGENT_WORKER_CONCURRENCY", "64")
    monkeypatch.setenv("AGENT_CONFIG_FILE", "/etc/agent/config.yaml")
    settings = Settings()
    assert settings.redis.url == "redis://r:6380/2"
    assert settings.api.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.worker.concurrency == 64
    assert settings.config.file == Path("/etc/agent/config.yaml")


def test_settings_defaults_without_environment() -> None:
    settings = Settings()
    assert settings.api.port == 8000
    assert settings.api.cors_origins == []
    assert settings.tasks.ttl_seconds == 7 * 24 * 3600
    assert settings.worker.max_redeliveries == 3


def test_every_setting_is_documented() -> None:
    rows = describe_settings()
    assert {"AGENT_REDIS_URL", "AGENT_CONFIG_FILE", "AGENT_API_PORT"} <= {r[0] for r in rows}
    assert all(description for _, _, description in rows if not _.startswith("AGENT_LOG_"))


def test_valid_config_parses_with_camel_case_and_secret_refs() -> None:
    config = parse_agent_config(VALID)
    assert config.default_model == "fast"
    assert config.model("fast").api_key is not None
    assert config.model("fast").provider == "openai"
    assert config.limits.max_iterations == 4
    assert config.tools.http[0].name == "weather"


@pytest.mark.parametrize(
    ("mutation", "where", "reason"),
    [
        (("defaultModel: fast", "defaultModel: nope"), "defaultModel", "is not a configured model"),
        (("fallbacks: [local]", "fallbacks: [ghost]"), "models[0].fallbacks[0]", "'ghost' is not"),
        (("maxIterations: 4", "maxIterations: 0"), "limits.maxIterations", "greater than or equal"),
        (
            ("apiKey: {env: OPENAI_API_KEY}", "apiKey: sk-123"),
            "models[0].apiKey",
            "valid dictionary",
        ),
        (("name: weather", "name: calculator"), "tools.http[0].name", "name of a built-in tool"),
        (("url: https://tools", "url: ftp://tools"), "tools.http[0].url", "pattern"),
        (("inputCostPer1K: 0.00015", "inputCostPer1K: -1"), "models[0].inputCostPer1K", "greater"),
        (("limits:", "limitz:"), "limitz", "Extra inputs"),
    ],
)
def test_invalid_configs_name_the_path_and_reason(
    mutation: tuple[str, str], where: str, reason: str
) -> None:
    text = VALID.replace(*mutation)
    with pytest.raises(ConfigError) as info:
        parse_agent_config(text)
    assert any(path == where and reason in why for path, why in info.value.errors), (
        info.value.errors
    )


def test_custom_resource_manifest_is_read_from_spec() -> None:
    manifest = "apiVersion: agent-service.io/v1alpha1\nkind: AgentConfig\nspec:\n" + "\n".join(
        "  " + line for line in VALID.splitlines()
    )
    assert parse_agent_config(manifest).default_model == "fast"


def test_config_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(VALID)
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.replace("maxIterations: 4", "maxIterations: -3"))
    assert main(["config", "validate", str(good)]) == 0
    assert "valid (2 models, default fast" in capsys.readouterr().out
    assert main(["config", "validate", str(bad)]) == 1
    assert "limits.maxIterations" in capsys.readouterr().err


def test_multiprocess_cleanup_removes_dead_and_own_pid_files(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from agent_service.observability.exposition import clean_multiprocess_dir

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    alive = os.getppid()
    files = {
        "dead": tmp_path / f"counter_{dead}.db",
        "own": tmp_path / f"gauge_livesum_{os.getpid()}.db",
        "alive": tmp_path / f"counter_{alive}.db",
    }
    for file in files.values():
        file.write_bytes(b"x")
    clean_multiprocess_dir(tmp_path)
    assert not files["dead"].exists()
    assert not files["own"].exists()
    assert files["alive"].exists()


def test_a_manifest_declares_its_generation() -> None:
    from agent_service.agentconfig.load import parse_config_document

    nested = "".join(f"  {line}\n" for line in VALID.strip().splitlines())
    manifest = (
        "apiVersion: agent-service.dev/v1alpha1\nkind: AgentConfig\n"
        f"metadata: {{name: a, generation: 12}}\nspec:\n{nested}"
    )
    config, generation = parse_config_document(manifest)
    assert generation == 12 and config.default_model == "fast"
    assert parse_config_document(VALID)[1] is None
    bogus = manifest.replace("generation: 12", "generation: yes")
    assert parse_config_document(bogus)[1] is None


@pytest.mark.parametrize(
    "ref",
    [
        "{}",
        "{env: A, file: /b}",
        "{env: A, secretKeyRef: {name: s, key: k}}",
        "{secretKeyRef: {name: S_Upper, key: k}}",
        "{value: sk-live-123}",
    ],
)
def test_api_key_must_name_exactly_one_place(ref: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_agent_config(VALID.replace("{env: OPENAI_API_KEY}", ref))
    assert any(path.startswith("models[0].apiKey") for path, _ in caught.value.errors)


def test_secret_key_ref_reads_the_mounted_secret(tmp_path: Path) -> None:
    from agent_service.agentconfig.secrets import resolve_secret
    from agent_service.agentconfig.spec import SecretKeyRef, SecretRef

    (tmp_path / "llm-keys").mkdir()
    (tmp_path / "llm-keys" / "openai").write_text("sk-from-secret\n")
    ref = SecretRef(secret_key_ref=SecretKeyRef(name="llm-keys", key="openai"))
    assert resolve_secret(ref, tmp_path) == "sk-from-secret"
    missing = SecretRef(secret_key_ref=SecretKeyRef(name="llm-keys", key="other"))
    assert resolve_secret(missing, tmp_path) is None
    (tmp_path / "key").write_text("sk-file")
    assert resolve_secret(SecretRef(file=str(tmp_path / "key")), tmp_path) == "sk-file"


def test_duplicate_tenants_are_refused() -> None:
    text = VALID + "tenants: [{name: team-a}, {name: team-a}]\n"
    with pytest.raises(ConfigError, match="duplicate tenant name 'team-a'"):
        parse_agent_config(text)
