"""OpenAI's published OpenAPI description, for checking the OpenAI-compatible routes against it.

The file comes from ``AGENT_TEST_OPENAI_SPEC`` (``.ci/run`` and the CI workflow set it); unset,
the pinned upstream copy (the commit and sha256 of scripts/fetch-test-schemas.sh) is downloaded
once into the user's cache. Without either the tests that need it skip, except under CI=true,
where they fail.

``OpenAISpec.check(name, instance)`` validates a value against ``#/components/schemas/<name>``
with jsonschema, on a copy of the spec adapted to plain JSON Schema: OpenAPI 3.0's
``nullable: true`` (which the file still uses in places) becomes a ``null`` alternative (in
an ``enum`` too: OpenAI streams ``finish_reason: null``), and
``oneOf`` becomes ``anyOf`` (OpenAI's unions rely on a ``discriminator`` jsonschema ignores, and
some variants overlap).
"""

from __future__ import annotations

import functools
import hashlib
import os
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

SPEC_ENV = "AGENT_TEST_OPENAI_SPEC"
PINNED_COMMIT = "f85dbe223d40e1a31cba812ab2d755c7e98a92a3"
PINNED_SHA256 = "db5d7478feae10b4d331834c60d9765a8aa042e38419f9b1694288c11aa8ebc8"
PINNED_URL = f"https://raw.githubusercontent.com/openai/openai-openapi/{PINNED_COMMIT}/openapi.yaml"


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def spec_path() -> Path:
    """The spec file: ``AGENT_TEST_OPENAI_SPEC``, else the pinned copy (downloaded once)."""
    value = os.environ.get(SPEC_ENV)
    if value:
        path = Path(value)
        if not path.is_file():
            _unavailable(f"{SPEC_ENV}={value} is not a file")
        return path
    cached = Path.home() / ".cache" / "agent-service-tests" / f"openai-{PINNED_COMMIT[:12]}.yaml"
    if not cached.is_file():
        try:
            with urllib.request.urlopen(PINNED_URL, timeout=60) as answer:
                data = answer.read()
        except OSError as exc:
            _unavailable(f"{SPEC_ENV} is unset and {PINNED_URL} cannot be fetched ({exc})")
        if hashlib.sha256(data).hexdigest() != PINNED_SHA256:
            pytest.fail(f"{PINNED_URL} does not have the pinned sha256 {PINNED_SHA256}")
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(data)
    return cached


def _plain(schema: Any) -> Any:
    """A copy of an OpenAPI schema as plain JSON Schema (see the module docstring)."""
    if isinstance(schema, list):
        return [_plain(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {("anyOf" if key == "oneOf" else key): _plain(value) for key, value in schema.items()}
    if out.pop("nullable", False) is True:
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
        elif "$ref" in out:
            out = {"anyOf": [{"$ref": out.pop("$ref")}, {"type": "null"}], **out}
    return out


class OpenAISpec:
    """The loaded spec: its raw document and validators of its component schemas."""

    def __init__(self, path: Path) -> None:
        with path.open() as handle:
            self.document: dict[str, Any] = yaml.load(handle, Loader=yaml.CSafeLoader)
        self._components = _plain(self.document["components"])

    @functools.cache  # noqa: B019  # one spec per session
    def validator(self, name: str) -> Draft202012Validator:
        schema = {"$ref": f"#/components/schemas/{name}", "components": self._components}
        return Draft202012Validator(schema)

    def errors(self, name: str, instance: Any) -> list[str]:
        """What is wrong with ``instance`` as a ``name`` (empty: it conforms)."""
        found = sorted(self.validator(name).iter_errors(instance), key=lambda e: e.path)
        return [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message[:300]}"
            for error in found[:5]
        ]

    def check(self, name: str, instance: Any) -> None:
        problems = self.errors(name, instance)
        assert not problems, f"not a valid {name}:\n" + "\n".join(problems)


@functools.cache
def load_spec() -> OpenAISpec:
    return OpenAISpec(spec_path())
