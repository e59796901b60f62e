"""Container-test fixtures: a Docker engine, the image built once per session, hardened containers.

Settings (read from the environment; ``.ci/run`` sets them, a user's machine needs none):

* ``AGENT_TEST_BASE_IMAGE``: the ``BASE_IMAGE`` build argument (unset: the Dockerfile's default,
  ``python:3.11-slim-bookworm`` from Docker Hub);
* ``AGENT_TEST_BUILD_CA``: a CA bundle passed to the build as the secret ``ca`` (for package
  indexes behind a TLS-intercepting proxy).

Without a Docker engine the tests skip, except under ``CI=true`` where they fail: CI must run them.
The image is built with ``scripts/build-image.sh``, the command users run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "agent-service:test"
UID = 10001
# Every container of the tests runs the way the chart runs pods: host network only so that it
# reaches the test's Redis on loopback, otherwise locked down.
HARDENING = (
    "--network=host",
    "--read-only",
    "--tmpfs=/tmp",
    f"--user={UID}:{UID}",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
)

REPORT: list[str] = []
"""Lines printed after the run (build time, image size, start-up times)."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("container image")
        for line in REPORT:
            terminalreporter.write_line(line)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _docker_client() -> str | None:
    # Debian's client has BuildKit built in; a client whose `build` needs the buildx plugin
    # fails without it, so prefer /usr/bin/docker when both exist.
    if Path("/usr/bin/docker").is_file():
        return "/usr/bin/docker"
    return shutil.which("docker")


@pytest.fixture(scope="session")
def docker() -> str:
    """The docker client, once an engine answers (skip, or fail under CI, otherwise)."""
    client = _docker_client()
    if client is None:
        reason = "no docker client installed (the container tests need a Docker engine)"
    else:
        try:
            info = subprocess.run(
                [client, "info"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except subprocess.TimeoutExpired:
            reason = f"no Docker engine answers: `{client} info` timed out"
        else:
            if info.returncode == 0:
                return client
            lines = (info.stdout + info.stderr).splitlines()
            # `docker info` prints the client part, then "ERROR: Cannot connect to ...".
            fallback = lines[-1] if lines else "no output"
            detail = next((line.strip() for line in lines if "ERROR" in line), fallback)
            reason = f"no Docker engine answers: `{client} info` failed: {detail}"
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: the container tests must run)")
    pytest.skip(reason)


def docker_out(docker: str, *args: str, timeout: float = 60) -> str:
    """Run a docker command that must succeed; its stdout."""
    result = subprocess.run(
        [docker, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


@pytest.fixture(scope="session")
def image(docker: str) -> str:
    """``agent-service:test``, built once per session from the working tree."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"IMAGE", "BASE_IMAGE", "BUILD_CA", "DOCKER"}
    }
    env.update(IMAGE=IMAGE, DOCKER=docker)
    base = os.environ.get("AGENT_TEST_BASE_IMAGE", "")
    if base:
        env["BASE_IMAGE"] = base
    ca = os.environ.get("AGENT_TEST_BUILD_CA", "")
    if ca:
        if not Path(ca).is_file():
            pytest.fail(f"AGENT_TEST_BUILD_CA={ca} is not a file")
        env["BUILD_CA"] = ca
    started = time.monotonic()
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-image.sh"), "--progress=plain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        pytest.fail(f"image build failed after {seconds:.0f} s:\n{result.stderr[-6000:]}")
    size = int(docker_out(docker, "image", "inspect", "--format", "{{.Size}}", IMAGE))
    REPORT.append(
        f"{IMAGE}: built in {seconds:.1f} s on {base or 'the default base'}; "
        f"size {size / 1e6:.0f} MB"
    )
    return IMAGE


class Container:
    """A detached container started by the tests (removed by the ``containers`` fixture)."""

    def __init__(self, docker: str, name: str) -> None:
        self.docker = docker
        self.name = name

    def logs(self, tail: int = 40, max_chars: int = 6000) -> str:
        result = subprocess.run(
            [self.docker, "logs", "--tail", str(tail), self.name],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return (result.stdout + result.stderr)[-max_chars:]

    def state(self, field: str) -> str:
        return docker_out(self.docker, "inspect", "--format", f"{{{{.State.{field}}}}}", self.name)

    def running(self) -> bool:
        return self.state("Running").strip() == "true"

    def exec(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.docker, "exec", self.name, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def fail(self, message: str) -> AssertionError:
        return AssertionError(f"{self.name}: {message}\n--- its log:\n{self.logs()}")


class Containers:
    """Starts hardened containers of the image; the fixture removes every one of them."""

    def __init__(self, docker: str, image: str) -> None:
        self.docker = docker
        self.image = image
        self.prefix = f"agent-test-{os.getpid()}-{secrets.token_hex(3)}"
        self.started: list[Container] = []

    def run(
        self,
        role: str,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        mounts: Mapping[Path, str] | None = None,
    ) -> Container:
        """Start ``args`` of the image as ``role``; ``mounts`` maps host directories to paths
        in the container, bind-mounted read-only (as the chart mounts Secrets)."""
        name = f"{self.prefix}-{role}"
        env_flags = [f"--env={key}={value}" for key, value in (env or {}).items()]
        mount_flags = [
            f"--mount=type=bind,src={source},dst={target},readonly"
            for source, target in (mounts or {}).items()
        ]
        container = Container(self.docker, name)
        self.started.append(container)
        docker_out(
            self.docker,
            "run",
            "--detach",
            f"--name={name}",
            "--label=agent-service-test=1",
            # Docker's HEALTHCHECK every 2 s instead of 30, so the test sees its verdict quickly.
            "--health-interval=2s",
            *HARDENING,
            *env_flags,
            *mount_flags,
            self.image,
            *args,
        )
        return container

    def remove_all(self) -> None:
        for container in self.started:
            subprocess.run(
                [self.docker, "rm", "--force", container.name],
                capture_output=True,
                timeout=60,
                check=False,
            )


@pytest.fixture
def containers(docker: str, image: str) -> Iterator[Containers]:
    started = Containers(docker, image)
    try:
        yield started
    finally:
        for container in started.started:
            # Shown by pytest only when the test failed.
            print(f"--- {container.name} log (tail):\n{container.logs()}")
        started.remove_all()


def wait_http(url: str, container: Container, timeout: float, status: int = 200) -> float:
    """Wait until ``url`` answers ``status``; fail early if ``container`` stops. Seconds waited."""
    started = time.monotonic()
    last: object = None
    with httpx.Client(timeout=2, trust_env=False) as client:
        while time.monotonic() - started < timeout:
            try:
                response = client.get(url)
                if response.status_code == status:
                    return time.monotonic() - started
                if response.status_code == 500:  # a bug, not a dependency still starting
                    raise container.fail(f"{url} answered 500: {response.text[:500]}")
                last = response.status_code
            except httpx.HTTPError as exc:
                last = exc
            if not container.running():
                raise container.fail(f"exited with {container.state('ExitCode').strip()}")
            time.sleep(0.2)
    raise container.fail(f"{url} did not answer {status} within {timeout} s (last: {last!r})")
