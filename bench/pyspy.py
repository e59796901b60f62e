"""py-spy recordings of benchmark processes, and where their CPU went, split by package.

``bench/peers.py --profile DIR`` wraps an extra, unmeasured round of each side in ``recording``:
py-spy (from its own virtual environment, ``peer_runtimes.PY_SPY``) samples every process of the
side and writes collapsed stacks (``--format raw``: one ``frame;frame;... count`` line per stack,
the input of flamegraph.pl and speedscope) to ``DIR``; ``split`` then reads a file back and says
which packages the samples were in: "self" by the innermost Python frame, "total" by any frame
of the stack (a package's callees included).
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench.peer_runtimes import PY_SPY
from tests.procs import Proc

# "function (/path/to/file.py:123)" (recorded with --full-filenames: py-spy's shortened paths
# drop package names); native frames (--native) have no .py path.
_FRAME_FILE = re.compile(r"\(([^()]*\.py):\d+\)$")
_STDLIB = re.compile(r"/lib/python3\.\d+/([^/]+)")


def package(frame: str) -> str:
    """The package a collapsed-stack frame belongs to: ``litellm``, ``agent_service.worker``..."""
    match = _FRAME_FILE.search(frame)
    if match is None:
        return "native"
    path = match.group(1)
    if "-packages/" in path:  # site-packages, dist-packages
        return path.split("-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/agent_service/" in path:
        parts = path.split("/agent_service/", 1)[1].split("/")
        return "agent_service" if len(parts) == 1 else f"agent_service.{parts[0]}"
    stdlib = _STDLIB.search(path)
    if stdlib:
        return f"stdlib {stdlib.group(1).removesuffix('.py')}"
    return Path(path).name


def split(raw: Path) -> tuple[int, list[tuple[str, float, float]]]:
    """(samples, [(package, self share, total share)]) of a py-spy ``--format raw`` file."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [package(frame) for frame in stack.split(";")]
        python = [name for name in frames if name != "native"] or ["native"]
        samples += count
        own[python[-1]] += count
        for name in set(frames):
            anywhere[name] += count
    if samples == 0:
        return 0, []
    rows = [(name, own[name] / samples, anywhere[name] / samples) for name in anywhere]
    rows.sort(key=lambda row: (row[1], row[2]), reverse=True)
    return samples, rows


@contextmanager
def recording(
    procs: Mapping[str, Proc], directory: Path, tag: str, flags: Sequence[str]
) -> Iterator[dict[str, Path]]:
    """Sample each process with py-spy while the block runs; yields label -> output file."""
    directory.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, Path] = {}
    recorders: list[subprocess.Popen[bytes]] = []
    for label, proc in procs.items():
        out = directory / f"{tag}-{re.sub(r'[^A-Za-z0-9]+', '-', label)}.txt"
        outputs[label] = out
        args = [PY_SPY.bin("py-spy"), "record", "--pid", str(proc.pid), "--format", "raw"]
        args += ["--output", str(out), "--full-filenames", "--nonblocking", *flags]
        recorders.append(
            subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    time.sleep(1.0)  # attached before the work starts
    try:
        yield outputs
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        for recorder in recorders:
            recorder.wait(timeout=60)


def add_profile_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--profile DIR`` and ``--profile-flags`` of a benchmark; ``what`` says what is profiled."""
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help=f"{what}: raw py-spy stacks to DIR"
    )
    parser.add_argument(
        "--profile-flags", default="--gil --rate 250", help="py-spy record flags (quoted)"
    )


def thread_split(raw: Path, threads: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Share of samples per thread kind: a stack belongs to the first kind one of whose frame
    names (``function``, without the file) it holds, else to ``other``. py-spy's async stacks
    are partial (a coroutine resumed shows from its own frame), so name the kinds by frames
    that stay at the bottom of their threads' stacks."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        names = {frame.split(" (", 1)[0] for frame in stack.split(";")}
        kind = next((k for k, marks in threads.items() if names.intersection(marks)), "other")
        counts[kind] += int(count_text)
    total = sum(counts.values()) or 1
    return {kind: counts[kind] / total for kind in [*threads, "other"]}


def print_split(label: str, raw: Path, top: int = 12) -> None:
    """The ``top`` packages of one recording, by self share, with their total share."""
    if not raw.exists():
        print(f"#   {label}: no samples (py-spy wrote no file: does it have ptrace rights?)")
        return
    samples, rows = split(raw)
    print(f"#   {label}: {samples} samples ({raw}); package: self % / total %")
    for name, own, total in rows[:top]:
        print(f"#     {name:40s} {own * 100:5.1f} / {total * 100:5.1f}")
