#!/usr/bin/env python3
"""Container lifecycle benchmark: readiness latency and the plugin's cycle overhead.

* **Readiness latency**: from the moment the containerised server first answers
  ``GET /api/version`` (seen by a 1 ms prober thread that reads the port from the container's
  ``Listening on`` log line, as the plugin does) to the moment ``ContainerProvider.endpoint()``
  returns. Target <= 50 ms.
* **Cycle overhead**: one full plugin cycle (``endpoint()`` = compose up, log follower, polling
  until the server answers; ``close()`` = save the log, compose down) minus a bare
  ``docker compose up -d --wait`` + ``down`` of the same generated file (which waits only for
  the container to run, not for the server to answer). Target <= 1 s.

Needs an engine at DOCKER_HOST and the simulator images::

    eval "$(bash .ci/docker-up.sh)"
    python fixtures/images/build_sim_images.py >/dev/null
    python benchmarks/bench_containers.py [--cycles 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from pytest_ollama_regress.containers.compose_file import ComposeSpec, project_name
from pytest_ollama_regress.containers.engine import (
    DockerEngine,
    find_compose,
    parse_image_ref,
)
from pytest_ollama_regress.containers.provider import ContainerProvider, ContainerSettings
from pytest_ollama_regress.containers.readiness import find_listening
from pytest_ollama_regress.containers.reaper import Owner
from pytest_ollama_regress.targets.registry import Target

IMAGE = "ollama-regress-sim:good"


class Prober(threading.Thread):
    """Reads the port from the container's log, then polls ``/api/version`` every millisecond;
    records when it first answers."""

    def __init__(self, log_path: Path, limit: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.log_path = log_path
        self.first_ok: float | None = None
        self.limit = limit
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.perf_counter() + self.limit
        port: int | None = None
        with httpx.Client(timeout=0.5, trust_env=False) as http:
            while not self.stop.is_set() and time.perf_counter() < deadline:
                if port is None:
                    try:
                        line = find_listening(self.log_path.read_text(errors="replace"))
                    except OSError:
                        line = None
                    port = line.port if line is not None else None
                if port is not None:
                    try:
                        if http.get(f"http://127.0.0.1:{port}/api/version").status_code == 200:
                            self.first_ok = time.perf_counter()
                            return
                    except httpx.HTTPError:
                        pass
                time.sleep(0.001)


def plugin_cycle(engine, compose, target, workdir: Path, n: int) -> dict[str, float]:
    owner = Owner.new(f"bench{n:03d}")
    provider = ContainerProvider(engine, compose, ContainerSettings(network="host"), owner,
                                 workdir)
    project = project_name(owner.session, owner.worker, target.image.short_id, {})
    prober = Prober(workdir / project / "ollama.log")
    started = time.perf_counter()
    prober.start()
    provider.endpoint(target, {})
    seen = time.perf_counter()
    prober.join(timeout=10)  # it may see the server a moment after the plugin did
    prober.stop.set()
    provider.close()
    ended = time.perf_counter()
    assert prober.first_ok is not None, "the prober never saw the server"
    return {
        "readiness_ms": (seen - prober.first_ok) * 1000,
        "start_s": seen - started,
        "cycle_s": ended - started,
    }


def bare_cycle(compose, target, workdir: Path, n: int) -> float:
    spec = ComposeSpec(
        project=f"olr-bare-{n:03d}", image_id=target.image.id, network="host",
    )
    path = spec.write(workdir)
    base = [*compose.argv, "-f", str(path), "-p", spec.project]
    started = time.perf_counter()
    subprocess.run([*base, "up", "-d", "--wait"], check=True, capture_output=True, timeout=300)
    subprocess.run([*base, "down", "-v"], check=True, capture_output=True, timeout=300)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--json", type=Path, help="write the raw numbers here")
    args = parser.parse_args(argv)

    engine = DockerEngine()
    info = engine.info()
    compose = find_compose(engine)
    image = engine.resolve(parse_image_ref(args.image))
    target = Target(id=image.short_id, kind="image", ref=args.image, image=image)
    plugin, bare = [], []
    with tempfile.TemporaryDirectory(prefix="bench-containers-") as tmp:
        for n in range(args.cycles):  # interleaved so both see the same machine load
            plugin.append(plugin_cycle(engine, compose, target, Path(tmp), n))
            bare.append(bare_cycle(compose, target, Path(tmp), n))

    def stats(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "median": statistics.median(ordered),
            "p90": ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))],
            "max": ordered[-1],
        }

    readiness = stats([c["readiness_ms"] for c in plugin])
    cycle = stats([c["cycle_s"] for c in plugin])
    bare_stats = stats(bare)
    overhead = stats([c["cycle_s"] - b for c, b in zip(plugin, bare, strict=True)])
    result = {
        "engine": info.server_version,
        "compose": compose.version,
        "image": image.id,
        "cycles": args.cycles,
        "readiness_ms": readiness,
        "plugin_cycle_s": cycle,
        "bare_cycle_s": bare_stats,
        "overhead_s": overhead,
        "raw": {"plugin": plugin, "bare_s": bare},
    }
    print(f"Docker {info.server_version}, compose {compose.version}, {args.cycles} cycles of "
          f"{args.image} ({image.short_id}), host network")
    print("| measure | median | p90 | max | target |")
    print("|---|---|---|---|---|")
    print(f"| readiness latency (ms) | {readiness['median']:.1f} | {readiness['p90']:.1f} | "
          f"{readiness['max']:.1f} | <= 50 |")
    print(f"| plugin cycle (s) | {cycle['median']:.2f} | {cycle['p90']:.2f} | {cycle['max']:.2f} "
          "| |")
    print(f"| bare `up --wait` + `down` (s) | {bare_stats['median']:.2f} | {bare_stats['p90']:.2f}"
          f" | {bare_stats['max']:.2f} | |")
    print(f"| overhead (s) | {overhead['median']:.2f} | {overhead['p90']:.2f} | "
          f"{overhead['max']:.2f} | <= 1 |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    ok = readiness["median"] <= 50 and overhead["median"] <= 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
