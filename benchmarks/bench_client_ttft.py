"""How accurately OllamaClient stamps stream chunks, and what it costs per chunk.

Run from the repository root::

    python benchmarks/bench_client_ttft.py            # full run, about 2 minutes on 2 cores
    python benchmarks/bench_client_ttft.py --quick    # fewer requests

1. **TTFT measurement error**: for every request, the client's arrival stamp of the first
   non-empty content chunk minus the simulator's ``perf_counter_ns`` right after it flushed
   that chunk (``/_sim/requests/<id>``; both clocks are CLOCK_MONOTONIC on one machine).
   Measured at 1, 16 and 64 concurrent streams (threads sharing one client), with the
   simulator in this process (it then shares the GIL with the client) and in a child process.
   The error over every chunk of every stream is shown too.
2. **Per-chunk client cost**: CPU time of the client thread (``time.thread_time_ns``) while
   streaming a long answer with zero decode latency, divided by the chunk count; compared with
   a bare ``httpx`` stream that only iterates lines, and with a replay of the recorded lines
   through the client's stream parser (no socket, no HTTP parsing) that isolates the client's
   own parsing and stamping.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from pytest_ollama_regress.client import OllamaClient
from pytest_ollama_regress.sim import Latency, SimServer
from pytest_ollama_regress.sim import server as sim_server
from pytest_ollama_regress.timing import StreamTiming, percentiles

MODEL = "llama3.2:3b"
NUM_PARALLEL = "64"
# A JSON schema with many properties makes the simulator's answer thousands of tokens long.
LONG_SCHEMA = {"type": "object", "properties": {f"field_{i}": {"type": "string"} for i in range(300)}}

CHILD = """
import sys
from pytest_ollama_regress.sim import Latency, SimServer
from pytest_ollama_regress.sim import server as sim_server
if {nodelay} and not getattr(sim_server._Handler, "disable_nagle_algorithm", False):
    sim_server._Handler.disable_nagle_algorithm = True
sim = SimServer(env={{"OLLAMA_NUM_PARALLEL": "{parallel}"}},
                latency=Latency(load_ms=0, prefill_us=0, decode_ms={decode}), log_stream=None)
sim.start()
print(sim.url, flush=True)
sys.stdin.read()
sim.stop()
"""

FlushFn = Callable[[str], list[int]]


def nagle_fix_needed() -> bool:
    """Go's net package sets TCP_NODELAY on every connection; an old simulator did not."""
    return not getattr(sim_server._Handler, "disable_nagle_algorithm", False)


@contextmanager
def simulator(mode: str, decode_ms: float, nodelay: bool) -> Iterator[tuple[str, FlushFn]]:
    """A simulator in this process or in a child; yields its URL and a flush-time lookup."""
    if mode == "in-process":
        if nodelay and nagle_fix_needed():
            sim_server._Handler.disable_nagle_algorithm = True
        latency = Latency(load_ms=0, prefill_us=0, decode_ms=decode_ms)
        with (
            open(os.devnull, "w") as devnull,
            SimServer(env={"OLLAMA_NUM_PARALLEL": NUM_PARALLEL}, latency=latency,
                      log_stream=devnull) as sim,
        ):

            def flushes(request_id: str) -> list[int]:
                record = sim.request_record(request_id)
                assert record is not None and record.wait(10)
                return sim.flush_times(request_id)

            yield sim.url, flushes
        return
    code = CHILD.format(nodelay=nodelay, parallel=NUM_PARALLEL, decode=decode_ms)
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        if not url.startswith("http://"):
            raise SystemExit("the simulator child did not start")
        with httpx.Client(base_url=url, timeout=10) as http:

            def flushes(request_id: str) -> list[int]:
                for _ in range(200):
                    record = http.get(f"/_sim/requests/{request_id}").json()
                    if record["done"]:
                        return list(record["flushes"])
                    time.sleep(0.01)
                raise RuntimeError(f"request {request_id} never finished")

            yield url, flushes
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=10)


def ttft_errors(url: str, flushes: FlushFn, streams: int, per_stream: int, tokens: int
                ) -> tuple[list[float], list[float]]:
    """Errors in us: (first content chunk per request, every chunk of every request)."""
    results: list[tuple[str, int, list[int]]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(streams)
    failures: list[BaseException] = []
    with OllamaClient(url, stall_timeout=30) as client:
        client.generate(MODEL, "warm up", options={"num_predict": 1})

        def worker(index: int) -> None:
            try:
                barrier.wait(timeout=30)
                for n in range(per_stream):
                    result = client.generate(MODEL, f"stream {index} request {n}",
                                             options={"num_predict": tokens})
                    first = next(i for i, c in enumerate(result.chunks) if c.get("response"))
                    item = (result.headers["x-sim-request-id"], first,
                            result.timing.chunk_arrivals_ns)
                    with lock:
                        results.append(item)
            except BaseException as exc:  # reported after join
                failures.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(streams)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    if failures:
        raise failures[0]
    first_errors: list[float] = []
    all_errors: list[float] = []
    for request_id, first, arrivals in results:
        flushed = flushes(request_id)
        if len(flushed) != len(arrivals):
            raise RuntimeError(f"request {request_id}: {len(flushed)} flushes, "
                               f"{len(arrivals)} chunks")
        first_errors.append((arrivals[first] - flushed[first]) / 1e3)
        all_errors.extend((a - f) / 1e3 for a, f in zip(arrivals, flushed, strict=True))
    return first_errors, all_errors


def chunk_cost(url: str, reps: int) -> dict[str, float]:
    """Client-thread CPU us per chunk: OllamaClient, bare httpx lines, replayed parser."""
    payload = {"model": MODEL, "prompt": "long", "format": LONG_SCHEMA,
               "options": {"num_predict": 100_000}}
    client_cpu: list[float] = []
    httpx_cpu: list[float] = []
    replay_cpu: list[float] = []
    replay_lines_cpu: list[float] = []
    recorded: list[bytes] = []
    with OllamaClient(url, stall_timeout=30) as client, httpx.Client(base_url=url) as http:
        client.generate(MODEL, "warm up", options={"num_predict": 1})
        for _ in range(reps):
            start = time.thread_time_ns()
            result = client.generate(MODEL, "long", format=LONG_SCHEMA,
                                     options={"num_predict": 100_000})
            client_cpu.append((time.thread_time_ns() - start) / len(result.chunks) / 1e3)

            start = time.thread_time_ns()
            count = 0
            with http.stream("POST", "/api/generate", json=payload) as response:
                for _line in response.iter_lines():
                    count += 1
            httpx_cpu.append((time.thread_time_ns() - start) / count / 1e3)
        recorded = [(json.dumps(c, separators=(",", ":")) + "\n").encode() for c in result.chunks]

        for _ in range(reps):
            response = httpx.Response(200, content=iter(recorded))
            start = time.thread_time_ns()
            for _line in response.iter_lines():
                pass
            replay_lines_cpu.append((time.thread_time_ns() - start) / len(recorded) / 1e3)

            response = httpx.Response(200, content=iter(recorded))
            start = time.thread_time_ns()
            client._consume(response, url, StreamTiming(), chat=False)
            replay_cpu.append((time.thread_time_ns() - start) / len(recorded) / 1e3)
    med = statistics.median
    return {
        "chunks": float(len(recorded)),
        "client": med(client_cpu),
        "httpx": med(httpx_cpu),
        "replay": med(replay_cpu),
        "replay_lines": med(replay_lines_cpu),
    }


def fmt(values: list[float]) -> str:
    p = percentiles(values, (50, 99))
    return f"{p[50]:.0f} | {p[99]:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--decode-ms", type=float, default=20.0,
                        help="simulated decode time per token (default 20 = 50 tok/s)")
    parser.add_argument("--tokens", type=int, default=4, help="tokens per request")
    parser.add_argument("--modes", default="in-process,child",
                        help="comma list of in-process, child")
    parser.add_argument("--keep-nagle", action="store_true",
                        help="do not set TCP_NODELAY on a simulator that lacks it")
    args = parser.parse_args(argv)
    scale = 0.5 if args.quick else 1.0
    plan = [(1, int(150 * scale)), (16, int(10 * scale)), (64, max(2, int(4 * scale)))]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    nodelay = not args.keep_nagle
    print(f"# bench_client_ttft: python {platform.python_version()}, httpx {httpx.__version__}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}, decode {args.decode_ms} ms/token, "
          f"{args.tokens} tokens/request")
    if nagle_fix_needed():
        print("# note: the simulator does not set TCP_NODELAY (Go does); "
              + ("setting it for this run" if nodelay else "left as is (--keep-nagle)"))
    print("\n| simulator | streams | requests | first-content error p50 / p99 (us) "
          "| all-chunk error p50 / p99 (us) |")
    print("|---|---|---|---|---|")
    for mode in modes:
        with simulator(mode, args.decode_ms, nodelay) as (url, flushes):
            for streams, per_stream in plan:
                first, every = ttft_errors(url, flushes, streams, per_stream, args.tokens)
                print(f"| {mode} | {streams} | {len(first)} | {fmt(first)} | {fmt(every)} |",
                      flush=True)
    print("\n| simulator | chunks/stream | OllamaClient, end to end | bare httpx iter_lines "
          "| difference | client parse+stamp (replay, line split excluded) |")
    print("|---|---|---|---|---|---|")
    for mode in modes:
        with simulator(mode, 0.0, nodelay) as (url, _flushes):
            cost = chunk_cost(url, 3 if args.quick else 7)
        print(f"| {mode} | {cost['chunks']:.0f} | {cost['client']:.1f} us | "
              f"{cost['httpx']:.1f} us | {cost['client'] - cost['httpx']:.1f} us | "
              f"{cost['replay'] - cost['replay_lines']:.1f} us |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
