"""Secrets generated once and never changed: ``agent-service ensure-secret``.

The Helm chart's ``pre-install,pre-upgrade`` hook Job runs this with the specs of the Secrets it
needs generated (the bundled Redis' password, the /metrics token, the helm test pod's API key), so
that no value is generated when the chart is rendered: two renders are byte-identical and a GitOps
tool never sees a new password. The rule is one sentence: **a value that exists is never
changed**. For each Secret:

* absent: it is created with every key generated;
* present: keys it lacks are added (a Secret from an older chart may lack a derived key), the
  values it holds are kept; an API key's keys-file entry is derived from the key it holds;
* owned by a Helm release (an older chart rendered it): it gets ``helm.sh/resource-policy:
  keep``, so the upgrade that stops rendering it does not delete it under the running pods.

A spec is ``NAME/KEY=KIND``: ``password`` (32 letters and digits: URL-safe, what Redis gets),
``token`` (48 URL-safe characters) or ``api-key:TENANT`` (``ak_`` + 43 URL-safe characters in
KEY, plus ``keys.yaml``: the keys-file entry of its SHA-256 for TENANT, which the api mounts).

Pure but for the ``SecretStore`` port (``kube.KubeSecrets``; fakes in tests). Called by
``cli.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import secrets
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import yaml

log = logging.getLogger(__name__)

KEYS_FILE_KEY = "keys.yaml"
RESOURCE_POLICY = "helm.sh/resource-policy"
MANAGED_BY = "agent-service-ensure-secret"
PASSWORD_LENGTH = 32
TOKEN_BYTES = 36  # 48 URL-safe characters
API_KEY_BYTES = 32  # the service's own keys: "ak_" + 43 characters, 256 bits

Kind = Literal["password", "token", "api-key"]

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_TENANT = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SPEC = re.compile(r"^(?P<name>[^/=]+)/(?P<key>[^/=]+)=(?P<kind>[a-z-]+)(?::(?P<tenant>.+))?$")


class SpecError(ValueError):
    """A spec or label argument that cannot be used (the message says why)."""


class SecretStoreError(RuntimeError):
    """The Kubernetes API refused or failed (raised by ``SecretStore`` methods)."""


class RefusedError(RuntimeError):
    """An existing Secret is in a state this command will not repair without changing a value."""


@dataclass(frozen=True)
class SecretSpec:
    """One key of one Secret, and how to generate its value."""

    name: str
    key: str
    kind: Kind
    tenant: str | None = None

    def __str__(self) -> str:
        suffix = f":{self.tenant}" if self.tenant else ""
        return f"{self.name}/{self.key}={self.kind}{suffix}"


def parse_spec(text: str) -> SecretSpec:
    """``NAME/KEY=KIND`` (``KIND`` is password, token or api-key:TENANT)."""
    match = _SPEC.match(text)
    if match is None:
        raise SpecError(f"{text!r}: expected NAME/KEY=KIND, e.g. my-redis/redis-password=password")
    name, key, kind, tenant = match.group("name", "key", "kind", "tenant")
    if not _NAME.match(name):
        raise SpecError(f"{text!r}: {name!r} is not a valid Secret name")
    if not _KEY.match(key) or key == KEYS_FILE_KEY:
        raise SpecError(f"{text!r}: {key!r} is not a usable key of a Secret")
    if kind in {"password", "token"}:
        if tenant is not None:
            raise SpecError(f"{text!r}: only api-key takes a tenant")
        return SecretSpec(name, key, "password" if kind == "password" else "token")
    if kind == "api-key":
        if tenant is None or not _TENANT.match(tenant):
            raise SpecError(f"{text!r}: api-key needs a tenant name, e.g. =api-key:helm-test")
        return SecretSpec(name, key, "api-key", tenant)
    raise SpecError(f"{text!r}: unknown kind {kind!r} (password, token or api-key:TENANT)")


def parse_labels(items: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments as a label map."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpecError(f"{item!r}: expected a label as KEY=VALUE")
        labels[key] = value
    return labels


def keys_file_entry(tenant: str, key: bytes) -> str:
    """The keys file (``AGENT_AUTH_KEYS_FILE`` format) holding ``key`` by its hash only."""
    digest = hashlib.sha256(key).hexdigest()
    entry = {"tenant": tenant, "sha256": digest, "name": tenant}
    return yaml.safe_dump({"keys": [entry]}, sort_keys=False)


def generate_value(kind: Kind) -> str:
    """A new random value of ``kind`` (``secrets``: a CSPRNG)."""
    if kind == "password":
        alphabet = string.ascii_letters + string.digits
        return "".join(secrets.choice(alphabet) for _ in range(PASSWORD_LENGTH))
    if kind == "token":
        return secrets.token_urlsafe(TOKEN_BYTES)
    return "ak_" + secrets.token_urlsafe(API_KEY_BYTES)


@dataclass(frozen=True)
class StoredSecret:
    """What the store holds: decoded data, labels and annotations."""

    data: Mapping[str, bytes]
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    version: str = ""  # resourceVersion: an addition is refused if the Secret changed meanwhile


class SecretStore(Protocol):
    """The namespace's Secrets (``kube.KubeSecrets``; fakes in tests)."""

    def read(self, name: str) -> StoredSecret | None:
        """The Secret ``name``, or None if there is none."""

    def create(self, name: str, data: Mapping[str, str], labels: Mapping[str, str]) -> bool:
        """Create it; False (and nothing written) when a Secret of that name already exists."""

    def add(
        self, name: str, version: str, data: Mapping[str, str], annotations: Mapping[str, str]
    ) -> bool:
        """Add keys and annotations to the Secret at ``version``; False if it changed since."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one Secret: ``created``, ``completed`` (keys or keep-annotation added)
    or ``kept`` (nothing to do)."""

    name: str
    action: Literal["created", "completed", "kept"]
    keys: tuple[str, ...] = ()
    adopted: bool = False

    def describe(self) -> str:
        keys = f" (keys added: {', '.join(self.keys)})" if self.keys else ""
        keep = f"; marked {RESOURCE_POLICY}=keep (an older chart owned it)" if self.adopted else ""
        return f"Secret {self.name}: {self.action}{keys}{keep}"


Generator = Callable[[Kind], str]


def _missing(
    specs: Sequence[SecretSpec], data: Mapping[str, bytes], generate: Generator
) -> dict[str, str]:
    """The keys to add to a Secret holding ``data`` (everything, for a new Secret)."""
    added: dict[str, str] = {}
    for spec in specs:
        present = spec.key in data
        value = data[spec.key] if present else None
        if value is None:
            if spec.kind == "api-key" and KEYS_FILE_KEY in data:
                # A keys-file entry for a key we do not hold: a new key would not match it.
                raise RefusedError(
                    f"Secret {spec.name} has {KEYS_FILE_KEY} but no {spec.key}: delete the Secret "
                    "(the next helm upgrade generates both) or add the key yourself"
                )
            added[spec.key] = generate(spec.kind)
            value = added[spec.key].encode()
        if spec.kind == "api-key" and KEYS_FILE_KEY not in data:
            assert spec.tenant is not None  # parse_spec guarantees it
            added[KEYS_FILE_KEY] = keys_file_entry(spec.tenant, value)
    return added


def _owned_by_helm(secret: StoredSecret) -> bool:
    return (
        secret.labels.get("app.kubernetes.io/managed-by") == "Helm"
        or "meta.helm.sh/release-name" in secret.annotations
    )


def _ensure_one(
    store: SecretStore,
    name: str,
    specs: Sequence[SecretSpec],
    labels: Mapping[str, str],
    generate: Generator,
) -> Outcome:
    for _ in range(5):  # another writer between our read and write: read again
        existing = store.read(name)
        if existing is None:
            data = _missing(specs, {}, generate)
            if store.create(name, data, {**labels, "app.kubernetes.io/managed-by": MANAGED_BY}):
                return Outcome(name, "created", tuple(sorted(data)))
            continue
        added = _missing(specs, existing.data, generate)
        adopt = _owned_by_helm(existing) and existing.annotations.get(RESOURCE_POLICY) != "keep"
        if not added and not adopt:
            return Outcome(name, "kept")
        annotations = {RESOURCE_POLICY: "keep"} if adopt else {}
        if store.add(name, existing.version, added, annotations):
            return Outcome(name, "completed", tuple(sorted(added)), adopt)
    raise SecretStoreError(f"Secret {name} keeps changing under us: try again")


def ensure_secrets(
    store: SecretStore,
    specs: Sequence[SecretSpec],
    labels: Mapping[str, str],
    generate: Generator = generate_value,
) -> list[Outcome]:
    """Make every Secret of ``specs`` exist with every key, changing no existing value."""
    by_name: dict[str, list[SecretSpec]] = {}
    for spec in specs:
        keys = by_name.setdefault(spec.name, [])
        if any(other.key == spec.key for other in keys):
            raise SpecError(f"{spec}: {spec.name}/{spec.key} is listed twice")
        if spec.kind == "api-key" and any(other.kind == "api-key" for other in keys):
            raise SpecError(f"{spec}: one api-key per Secret (it owns {KEYS_FILE_KEY})")
        keys.append(spec)
    return [_ensure_one(store, name, group, labels, generate) for name, group in by_name.items()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ensure-secret`` subcommand's arguments (``cli.py``)."""
    parser.add_argument(
        "specs",
        nargs="+",
        metavar="NAME/KEY=KIND",
        help="a Secret key to generate if absent: KIND is password, token or api-key:TENANT",
    )
    parser.add_argument(
        "--namespace", help="namespace of the Secrets (default: the pod's own, else default)"
    )
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label of the Secrets it creates (repeatable)",
    )


def run(args: argparse.Namespace, store_factory: Callable[[str | None], SecretStore]) -> int:
    """Parse, ensure, report; exit status 0, or 1 with the reason on the log."""
    try:
        specs = [parse_spec(text) for text in args.specs]
        labels = parse_labels(args.label)
        store = store_factory(args.namespace)
        outcomes = ensure_secrets(store, specs, labels)
    except (SpecError, RefusedError, SecretStoreError) as exc:
        log.error("ensure-secret: %s", exc)
        return 1
    for outcome in outcomes:
        log.info("%s", outcome.describe())
    return 0
