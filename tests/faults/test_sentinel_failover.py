"""A Redis Sentinel failover under load: the master is SIGKILLed while tasks are submitted and
run; the Sentinels promote the replica; the API and the worker find the new master by
themselves. New tasks meet 503s with ``Retry-After`` for a few seconds (measured and printed),
never a timeout or a 500, and every accepted task ends ``succeeded``: none lost.

A real ``redis-server`` master and replica and three ``redis-sentinel`` processes (Debian's
``redis-sentinel``) on loopback, all with passwords no URL could carry, given to the service as
files (``AGENT_REDIS_PASSWORD_FILE``, ``AGENT_REDIS_SENTINEL_PASSWORD_FILE``).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import SimFactory
from tests.faults.harness import Load, Stack, running_stack, wait_terminal, wait_until
from tests.integration.stack import StackEnv, model, write_agent_config
from tests.procs import Proc, base_env, free_port

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

MASTER = "mymaster"
PASSWORD = "s3cr@t/p:ss%1?"  # of the Redis servers
SENTINEL_PASSWORD = "sent#nel:p@ss"  # of the Sentinels themselves
VISIBILITY = 8  # runs cut by the failover come back this soon


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install {name}; make test does it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class Topology:
    master: Proc
    master_port: int
    replica_port: int
    sentinel_ports: list[int]
    procs: list[Proc]

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=SENTINEL_PASSWORD, socket_timeout=2)

    def master_address(self) -> tuple[str, int] | None:
        for port in self.sentinel_ports:
            try:
                with self.sentinel(port) as client:
                    host, found = client.sentinel_get_master_addr_by_name(MASTER)
                    return (host.decode() if isinstance(host, bytes) else str(host)), int(found)
            except (redis.RedisError, TypeError):
                continue
        return None


def _server(binary: str, port: int, work: Path, log_dir: Path, *more: str) -> Proc:
    (work / str(port)).mkdir()
    args = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(work / str(port)),
        "--save", "",
        "--appendonly", "no",
        "--maxmemory-policy", "noeviction",
        "--requirepass", PASSWORD,
        "--masterauth", PASSWORD,
        "--repl-diskless-sync-delay", "0",
        *more,
    ]  # fmt: skip
    return Proc(f"redis-{port}", args, base_env(), log_dir)


def _sentinel(binary: str, port: int, master_port: int, work: Path, log_dir: Path) -> Proc:
    config = work / f"sentinel-{port}.conf"
    config.write_text(
        f"port {port}\n"
        "bind 127.0.0.1\n"
        f"dir {work}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n"
        f'sentinel auth-pass {MASTER} "{PASSWORD}"\n'
        f"sentinel down-after-milliseconds {MASTER} 1000\n"
        f"sentinel failover-timeout {MASTER} 10000\n"
        f"sentinel parallel-syncs {MASTER} 1\n"
        f'requirepass "{SENTINEL_PASSWORD}"\n'
        f'sentinel sentinel-pass "{SENTINEL_PASSWORD}"\n'
    )
    return Proc(f"sentinel-{port}", [binary, str(config)], base_env(), log_dir)


@pytest.fixture(scope="module")
def topology(log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    server, sentinel = _binary("redis-server"), _binary("redis-sentinel")
    work = tmp_path_factory.mktemp("sentinel")
    master_port, replica_port = free_port(), free_port()
    master = _server(server, master_port, work, log_dir)
    replica = _server(
        server, replica_port, work, log_dir, "--replicaof", "127.0.0.1", str(master_port)
    )
    procs = [master, replica]
    try:
        with redis.Redis(port=replica_port, password=PASSWORD) as client:
            wait_until(
                lambda: _ask(lambda: client.info("replication")["master_link_status"] == "up"),
                "the replica in sync",
                20,
            )
        ports = [free_port() for _ in range(3)]
        procs += [_sentinel(sentinel, p, master_port, work, log_dir) for p in ports]
        topo = Topology(master, master_port, replica_port, ports, procs)
        for port in ports:  # every Sentinel knows the replica and the two others
            wait_until(lambda port=port: _ask(lambda: _knows_all(topo, port)), "sentinels", 30)
        yield topo
    finally:
        for proc in procs:
            proc.stop()


def _ask(check: object) -> bool:
    try:
        return bool(check())  # type: ignore[operator]
    except redis.RedisError:
        return False


def _knows_all(topo: Topology, port: int) -> bool:
    with topo.sentinel(port) as client:
        state = client.sentinel_master(MASTER)
    return int(state["num-slaves"]) == 1 and int(state["num-other-sentinels"]) == 2


@pytest.fixture(scope="module")
def stack(
    topology: Topology,
    sim_factory: SimFactory,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("sentinel-stack")
    (work / "password").write_text(PASSWORD + "\n")
    (work / "sentinel-password").write_text(SENTINEL_PASSWORD)
    sim = sim_factory("--ttft", "0.5")
    config = write_agent_config(
        work / "agent.yaml", [model("sim", sim.url)], limits={"runTimeoutSeconds": VISIBILITY - 2}
    )
    nodes = ",".join(f"127.0.0.1:{port}" for port in topology.sentinel_ports)
    env = StackEnv(
        # The URL's host is not used: the Sentinels name the master.
        f"redis://{MASTER}:6379/0",
        sim.url,
        log_dir,
        extra={
            "AGENT_CONFIG_FILE": str(config),
            "AGENT_REDIS_SENTINELS": nodes,
            "AGENT_REDIS_SENTINEL_MASTER": MASTER,
            "AGENT_REDIS_PASSWORD_FILE": str(work / "password"),
            "AGENT_REDIS_SENTINEL_PASSWORD_FILE": str(work / "sentinel-password"),
            "AGENT_REDIS_SOCKET_TIMEOUT_SECONDS": "1",
            "AGENT_WORKER_CONCURRENCY": "16",
            "AGENT_WORKER_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY),
        },
    )
    with running_stack(env) as stack:
        yield stack


def test_a_failover_under_load_loses_no_accepted_task(topology: Topology, stack: Stack) -> None:
    assert topology.master_address() == ("127.0.0.1", topology.master_port)
    load = Load(stack.url, interval=0.03).start()
    try:
        wait_until(lambda: len(load.accepted()) >= 30, "tasks accepted before the failover", 30)
        topology.master.signal(signal.SIGKILL)
        killed = time.monotonic()
        wait_until(
            lambda: topology.master_address() == ("127.0.0.1", topology.replica_port),
            "the Sentinels promoting the replica",
            30,
        )
        promoted = time.monotonic() - killed
        wait_until(
            lambda: any(o.status == 202 and o.sent > killed + promoted for o in load.outcomes),
            "tasks accepted by the new master",
            30,
        )
        time.sleep(2.0)  # keep submitting a little after the failover
    finally:
        outcomes = load.stop()

    unexpected = [o for o in outcomes if o.status not in (202, 503)]
    assert not unexpected, f"answers other than 202/503 (timeouts, 500s): {unexpected[:5]}"
    refused = [o for o in outcomes if o.status == 503]
    assert all(o.retry_after for o in refused), "a 503 without Retry-After"
    after = [o for o in outcomes if o.sent >= killed]
    first_ok = min((o.sent for o in after if o.status == 202), default=killed) - killed
    window = (max(o.sent for o in refused) - min(o.sent for o in refused)) if refused else 0.0

    accepted = load.accepted()
    with httpx.Client(base_url=stack.url, timeout=15) as client:
        records = wait_terminal(client, accepted, timeout=90)
    failed = [
        (t, r["status"], r["error"]) for t, r in records.items() if r["status"] != "succeeded"
    ]
    assert not failed, f"{len(failed)} of {len(accepted)} accepted tasks did not succeed: {failed}"
    assert stack.api.alive() and stack.worker.proc.alive(), stack.worker.proc.log()[-3000:]
    print(
        f"\nSentinel failover: replica promoted {promoted:.1f} s after the master's SIGKILL "
        f"(down-after 1 s); {len(refused)} submissions refused with 503 + Retry-After over "
        f"{window:.1f} s; first task accepted again {first_ok:.1f} s after the kill; "
        f"{len(accepted)} accepted, lost: 0"
    )
