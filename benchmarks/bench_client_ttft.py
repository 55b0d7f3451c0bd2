"""How accurately OllamaClient stamps stream chunks, and what it costs per chunk.

Run from the repository root::

    python benchmarks/bench_client_ttft.py            # full run, about 1 minute on 2 cores
    python benchmarks/bench_client_ttft.py --quick    # fewer requests
    python benchmarks/bench_client_ttft.py --capture --modes child   # + the capture referee

1. **TTFT measurement error**: for every request, the client's arrival stamp of the first
   non-empty content chunk minus the simulator's ``perf_counter_ns`` right after it flushed
   that chunk (``/_sim/requests/<id>``; both clocks are CLOCK_MONOTONIC on one machine).
   Measured at 1, 16 and 64 concurrent streams (threads sharing one client), with the
   simulator in this process (it then shares the GIL with the client) and in a child process.
   The error over every chunk of every stream is shown too, and the same cadence over bare
   TCP sockets between two processes (no HTTP, no JSON) gives this machine's floor.
   With ``--capture`` (root and Debian's ``tcpdump``), a packet capture of the loopback
   interface referees: each request's first-content packet, stamped by the kernel as it
   passed ``lo`` (``loopback_capture.py``), against the client's kernel receive stamp
   (``first_content_ns``, source ``kernel``), the same chunk's socket-read stamp
   (``first_content_read_ns``) and the simulator's flush stamp. The contestants: ours with
   threads sharing one ``OllamaClient``, ours with one asyncio loop (``AsyncOllamaClient``),
   the official ``ollama`` client, and vLLM's benchmark method (aiohttp); each request's
   prompt carries a marker the capture matches (``loopback_capture.marked``).
   ``--url URL [--dialect llama-server] [--model NAME]`` referees a real server the same way
   (no flush stamps there; llama-server: ours with threads and vLLM's method).
2. **Per-chunk client cost**: CPU time of the client thread (``time.thread_time_ns``) while
   streaming a long answer with zero decode latency, divided by the chunk count; compared with
   a bare ``httpx`` stream that only iterates lines, and with a replay of the recorded lines
   through the client's stream parser (no socket, no HTTP parsing) that isolates the client's
   own parsing and stamping.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from pytest_ollama_regress.dialects.async_ollama_client import AsyncOllamaClient
from pytest_ollama_regress.dialects.llama_server_client import LlamaServerClient
from pytest_ollama_regress.dialects.ollama_client import Completion, OllamaClient
from pytest_ollama_regress.dialects.timing import StreamTiming, percentiles
from pytest_ollama_regress.sim import Latency, SimServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loopback_capture import LoopbackCapture, first_content_packets, marked  # noqa: E402

MODEL = "llama3.2:3b"
NUM_PARALLEL = "64"
# A JSON schema with many properties makes the simulator's answer thousands of tokens long.
LONG_SCHEMA = {
    "type": "object",
    "properties": {f"field_{i}": {"type": "string"} for i in range(300)},
}

CHILD = """
import sys
from pytest_ollama_regress.sim import Latency, SimServer
sim = SimServer(env={{"OLLAMA_NUM_PARALLEL": "{parallel}"}},
                latency=Latency(load_ms=0, prefill_us=0, decode_ms={decode}), log_stream=None)
sim.start()
print(sim.url, flush=True)
sys.stdin.read()
sim.stop()
"""

FLOOR_CHILD = """
import json, socket, sys, threading, time
port, streams, count, gap = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
stamps = [[] for _ in range(streams)]
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(streams)]
def send(i):
    s = socks[i]
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(count):
        time.sleep(gap / 1000)
        s.sendall(b"x" * 120)
        stamps[i].append(time.perf_counter_ns())
threads = [threading.Thread(target=send, args=(i,)) for i in range(streams)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(stamps), flush=True)
"""

FlushFn = Callable[[str], list[int]]


def socket_floor(streams: int, count: int, gap_ms: float) -> list[float]:
    """Same cadence with bare sockets (no HTTP, no JSON): what this machine allows, in us.

    A child process sends a 120-byte message per stream every ``gap_ms`` and stamps right
    after ``sendall``; one thread per stream here stamps right after ``recv``.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(streams)
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                FLOOR_CHILD,
                str(listener.getsockname()[1]),
                str(streams),
                str(count),
                str(gap_ms),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        conns = [listener.accept()[0] for _ in range(streams)]
    got: list[list[int]] = [[] for _ in range(streams)]

    def receive(i: int) -> None:
        conn = conns[i]
        received = 0
        while received < 120 * count:
            data = conn.recv(65536)
            if not data:
                break
            got[i].extend([time.perf_counter_ns()] * (len(data) // 120))
            received += len(data)

    threads = [threading.Thread(target=receive, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    out, _ = child.communicate(timeout=300)
    for thread in threads:
        thread.join(timeout=30)
    for conn in conns:
        conn.close()
    sent = json.loads(out)
    return [(g - s) / 1e3 for i in range(streams) for g, s in zip(got[i], sent[i], strict=True)]


@contextmanager
def simulator(mode: str, decode_ms: float) -> Iterator[tuple[str, FlushFn]]:
    """A simulator in this process or in a child; yields its URL and a flush-time lookup."""
    if mode == "in-process":
        latency = Latency(load_ms=0, prefill_us=0, decode_ms=decode_ms)
        with (
            open(os.devnull, "w") as devnull,
            SimServer(
                env={"OLLAMA_NUM_PARALLEL": NUM_PARALLEL}, latency=latency, log_stream=devnull
            ) as sim,
        ):

            def flushes(request_id: str) -> list[int]:
                record = sim.request_record(request_id)
                assert record is not None and record.wait(10)
                return sim.flush_times(request_id)

            yield sim.url, flushes
        return
    code = CHILD.format(parallel=NUM_PARALLEL, decode=decode_ms)
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
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


#: one request: (simulator request id or "", index of its first content chunk, every chunk's
#: stamp, the first content chunk's socket-read stamp, that chunk's stamp source, the marker
#: its prompt carried for the capture)
Record = tuple[str, int, list[int], int, str, str]


@dataclass(frozen=True)
class Server:
    """What the clients talk to: its URL, family and model."""

    url: str
    dialect: str = "ollama"
    model: str = MODEL

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/")[0])


def _has_content(chunk: dict) -> bool:
    """A chunk with text: Ollama's generate or chat line, or an OpenAI SSE delta."""
    delta = ((chunk.get("choices") or [{}])[0].get("delta") or {})
    return bool(chunk.get("response") or (chunk.get("message") or {}).get("content")
                or delta.get("content"))


def _record(result: Completion, marker: str) -> Record:
    timing = result.timing
    first = next(i for i, chunk in enumerate(result.chunks) if _has_content(chunk))
    return (result.headers.get("x-sim-request-id", ""), first, timing.chunk_arrivals_ns,
            timing.first_content_read_ns or 0, timing.first_content_source or "", marker)


def _threads(streams: int, work: Callable[[int], None]) -> None:
    """``work(index)`` on ``streams`` threads started together; the first failure raised."""
    barrier = threading.Barrier(streams)
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=60)
            work(index)
        except BaseException as exc:  # reported after join
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    if failures:
        raise failures[0]


def run_streams(server: Server, streams: int, per_stream: int, tokens: int) -> list[Record]:
    """``streams`` threads sharing one client (ours, sync), ``per_stream`` requests each."""
    results: list[Record] = []
    client_type = LlamaServerClient if server.dialect == "llama-server" else OllamaClient
    with client_type(server.url, stall_timeout=120) as client:

        def ask(prompt: str) -> Completion:
            if server.dialect == "llama-server":
                return client.chat(server.model, [{"role": "user", "content": prompt}],
                                   options={"max_tokens": tokens})
            return client.generate(server.model, prompt, options={"num_predict": tokens})

        ask("warm up")

        def work(index: int) -> None:
            for n in range(per_stream):
                marker = f"t{index}-{n}-{time.perf_counter_ns()}"
                results.append(_record(ask(marked(f"stream {index} request {n}", marker)),
                                       marker))

        _threads(streams, work)
    return results


def run_async_streams(server: Server, streams: int, per_stream: int,
                      tokens: int) -> list[Record]:
    """The same load as one asyncio task per stream on one event loop (ours, async)."""
    import asyncio

    results: list[Record] = []

    async def stream(client: AsyncOllamaClient, index: int, start: asyncio.Event) -> None:
        await start.wait()
        for n in range(per_stream):
            marker = f"a{index}-{n}-{time.perf_counter_ns()}"
            result = await client.generate(server.model, marked(f"async {index} {n}", marker),
                                           options={"num_predict": tokens})
            results.append(_record(result, marker))

    async def main() -> None:
        async with AsyncOllamaClient(server.url, stall_timeout=120) as client:
            await client.generate(server.model, "warm up", options={"num_predict": 1})
            start = asyncio.Event()
            tasks = [asyncio.create_task(stream(client, i, start)) for i in range(streams)]
            start.set()
            await asyncio.gather(*tasks)

    asyncio.run(main())
    return results


def run_official(server: Server, streams: int, per_stream: int, tokens: int) -> list[Record]:
    """The same load through the official ``ollama`` client, written as users write it: the
    first non-empty ``response`` the generator yields is stamped with ``perf_counter_ns``.
    A response event hook (httpx's, passed through ``ollama.Client``) notes the simulator's
    request id; it runs once per response, before the body is read."""
    import ollama

    results: list[Record] = []
    clients = []
    ids: list[list[str]] = [[] for _ in range(streams)]
    for index in range(streams):
        client = ollama.Client(host=server.url, event_hooks={"response": [
            lambda r, seen=ids[index]: seen.append(r.headers.get("x-sim-request-id", ""))]})
        client.generate(model=server.model, prompt="warm up", options={"num_predict": 1})
        clients.append(client)

    def work(index: int) -> None:
        for n in range(per_stream):
            marker = f"o{index}-{n}-{time.perf_counter_ns()}"
            first_ns, first = 0, -1
            parts = clients[index].generate(
                model=server.model, prompt=marked(f"official {index} {n}", marker),
                stream=True, options={"num_predict": tokens})
            for i, part in enumerate(parts):
                if part.response and not first_ns:
                    first_ns, first = time.perf_counter_ns(), i
            results.append((ids[index][-1], first, [first_ns] * (first + 1), first_ns,
                            "user loop", marker))

    _threads(streams, work)
    return results


def run_vllm_method(server: Server, streams: int, per_stream: int,
                    tokens: int) -> list[Record]:
    """vLLM's benchmark request function, written from its published method (not copied):
    one asyncio loop, aiohttp streaming ``POST /v1/chat/completions``, ``perf_counter`` taken
    as each SSE chunk comes off ``response.content``, before JSON parsing. Stamped here is the
    first chunk whose delta has content (vLLM counts the first chunk even when empty; servers
    send the role first, so that would be a different event)."""
    import asyncio

    import aiohttp

    results: list[Record] = []

    async def one(session: aiohttp.ClientSession, prompt: str, marker: str) -> Record:
        payload = {"model": server.model, "messages": [{"role": "user", "content": prompt}],
                   "stream": True, "max_tokens": tokens}
        first_ns, first, events = 0, -1, 0
        async with session.post(f"{server.url}/v1/chat/completions", json=payload) as response:
            request_id = response.headers.get("X-Sim-Request-Id", "")
            async for raw in response.content:
                stamp = time.perf_counter_ns()
                line = raw.strip()
                if not line:
                    continue
                data = line.decode().removeprefix("data: ")
                if data == "[DONE]":
                    break
                choices = json.loads(data).get("choices") or [{}]
                if choices[0].get("delta", {}).get("content") and not first_ns:
                    first_ns, first = stamp, events
                events += 1
        return (request_id, first, [first_ns] * (first + 1), first_ns, "asyncio chunk", marker)

    async def stream(session: aiohttp.ClientSession, index: int) -> None:
        for n in range(per_stream):
            marker = f"v{index}-{n}-{time.perf_counter_ns()}"
            results.append(await one(session, marked(f"vllm {index} {n}", marker), marker))

    async def main() -> None:
        timeout = aiohttp.ClientTimeout(total=600)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.gather(*(one(session, "warm up", "") for _ in range(streams)))
            await asyncio.gather(*(stream(session, i) for i in range(streams)))

    asyncio.run(main())
    return results


def ttft_errors(results: list[Record], flushes: FlushFn) -> tuple[list[float], list[float]]:
    """Errors in us: (first content chunk per request, every chunk of every request)."""
    first_errors: list[float] = []
    all_errors: list[float] = []
    for request_id, first, arrivals, *_rest in results:
        flushed = flushes(request_id)
        if len(flushed) != len(arrivals):
            raise RuntimeError(
                f"request {request_id}: {len(flushed)} flushes, {len(arrivals)} chunks"
            )
        first_errors.append((arrivals[first] - flushed[first]) / 1e3)
        all_errors.extend((a - f) / 1e3 for a, f in zip(arrivals, flushed, strict=True))
    return first_errors, all_errors


def referee(results: list[Record], flushes: FlushFn | None,
            captured: dict[str, int]) -> dict[str, list[float]]:
    """Errors in us against the captured first-content packet: the client's stamp (ours: the
    kernel's receive stamp), its socket-read stamp and the simulator's flush stamp (requests
    the capture missed are left out; no flush stamps from a real server)."""
    out: dict[str, list[float]] = {"client": [], "read": [], "flush": []}
    for request_id, first, arrivals, read_ns, _source, marker in results:
        packet = captured.get(marker)
        if packet is None:
            continue
        out["client"].append((arrivals[first] - packet) / 1e3)
        out["read"].append((read_ns - packet) / 1e3)
        if flushes is not None:
            out["flush"].append((flushes(request_id)[first] - packet) / 1e3)
    return out


def chunk_cost(url: str, reps: int) -> dict[str, float]:
    """Client-thread CPU us per chunk: OllamaClient, bare httpx lines, replayed parser."""
    payload = {
        "model": MODEL,
        "prompt": "long",
        "format": LONG_SCHEMA,
        "options": {"num_predict": 100_000},
    }
    client_cpu: list[float] = []
    httpx_cpu: list[float] = []
    replay_cpu: list[float] = []
    replay_lines_cpu: list[float] = []
    recorded: list[bytes] = []
    with OllamaClient(url, stall_timeout=30) as client, httpx.Client(base_url=url) as http:
        client.generate(MODEL, "warm up", options={"num_predict": 1})
        for _ in range(reps):
            start = time.thread_time_ns()
            result = client.generate(
                MODEL, "long", format=LONG_SCHEMA, options={"num_predict": 100_000}
            )
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
    """Signed p50, p99 and p1 (negative: the simulator stamped its flush late, see docs)."""
    if not values:
        return "- | - | -"
    p = percentiles(values, (1, 50, 99))
    return f"{p[50]:.0f} | {p[99]:.0f} | {p[1]:.0f}"


Runner = Callable[[Server, int, int, int], list[Record]]


def peers(server: Server, has_aiohttp: bool, has_official: bool) -> list[tuple[str, Runner]]:
    """The contestants this server can answer, in the order each round runs them."""
    if server.dialect == "llama-server":
        out: list[tuple[str, Runner]] = [("ours (threads)", run_streams)]
    else:
        out = [("ours (threads)", run_streams), ("ours (asyncio)", run_async_streams)]
        if has_official:
            out.append(("official ollama", run_official))
    if has_aiohttp:
        out.append(("vLLM method", run_vllm_method))
    return out


def refereed_rows(label: str, server: Server, flushes: FlushFn | None, contestants:
                  list[tuple[str, Runner]], plan: list[tuple[int, int]], tokens: int) -> list[str]:
    """Every contestant at every concurrency under one capture per concurrency, interleaved
    in two halves; one table row per (concurrency, contestant)."""
    rows: list[str] = []
    for streams, per_stream in plan:
        records: dict[str, list[Record]] = {name: [] for name, _ in contestants}
        half = max(1, per_stream // 2)
        load_before = os.getloadavg()[0]
        with LoopbackCapture(server.port) as capture:
            for _ in range(2):
                for name, run in contestants:
                    records[name] += run(server, streams, half, tokens)
        load_after = os.getloadavg()[0]
        captured = first_content_packets(capture.packets, server.port)
        drift = (capture.offsets[1] - capture.offsets[0]) / 1e3
        for name, _ in contestants:
            errors = referee(records[name], flushes, captured)
            counts = collections.Counter(r[4] for r in records[name])
            sources = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            read = fmt(errors["read"]) if name.startswith("ours") else "- | - | -"
            rows.append(
                f"| {label} | {name} | {streams} | {len(errors['client'])}/{len(records[name])} "
                f"| {sources} | {fmt(errors['client'])} | {read} | {fmt(errors['flush'])} "
                f"| {load_before:.1f}-{load_after:.1f} | {drift:+.0f} | {capture.report} |")
            print(rows[-1], flush=True)
    return rows


REFEREE_HEAD = (
    "| server | client | streams | matched | stamp source | client stamp p50 | p99 | p1 "
    "| socket-read stamp p50 | p99 | p1 | simulator flush p50 | p99 | p1 | load average "
    "| clock drift (us) | tcpdump |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    "---|---|---|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument(
        "--decode-ms",
        type=float,
        default=20.0,
        help="simulated decode time per token (default 20 = 50 tok/s)",
    )
    parser.add_argument("--tokens", type=int, default=4, help="tokens per request")
    parser.add_argument(
        "--modes", default="in-process,child", help="comma list of in-process, child"
    )
    parser.add_argument("--capture", action="store_true",
                        help="referee with a loopback packet capture (root, tcpdump)")
    parser.add_argument("--url", help="a running server instead of the simulator "
                        "(implies --capture; no flush stamps)")
    parser.add_argument("--dialect", default="ollama", choices=["ollama", "llama-server"],
                        help="the family of the --url server")
    parser.add_argument("--model", default=MODEL, help="the model --url serves")
    parser.add_argument("--streams", default="1,16,64",
                        help="comma list of concurrencies (1, 16, 64 by default)")
    parser.add_argument("--skip-cost", action="store_true", help="leave out the per-chunk cost")
    args = parser.parse_args(argv)
    if args.url:
        args.capture = True
    if args.capture and (why := LoopbackCapture.available()):
        parser.error(f"--capture: {why}")
    has_aiohttp = importlib.util.find_spec("aiohttp") is not None
    has_official = importlib.util.find_spec("ollama") is not None
    if args.capture and not has_aiohttp:
        print("# aiohttp is not installed: the vLLM-method peer is left out (pip install aiohttp)")
    scale = 0.5 if args.quick else 1.0
    requests = {1: 150, 16: 10, 64: 4}
    plan = [(n, max(2, int(requests.get(n, max(2, 160 // n)) * scale)))
            for n in (int(x) for x in args.streams.split(","))]
    print(
        f"# bench_client_ttft: python {platform.python_version()}, httpx {httpx.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}, decode {args.decode_ms} ms/token, "
        f"{args.tokens} tokens/request, load average {os.getloadavg()[0]:.1f}"
    )
    if args.url:
        server = Server(args.url.rstrip("/"), args.dialect, args.model)
        print(f"\nReferee: loopback capture, {args.dialect} at {server.url}, model "
              f"{server.model}; errors in us (stamp - packet):\n\n{REFEREE_HEAD}", flush=True)
        refereed_rows(args.dialect, server, None, peers(server, has_aiohttp, has_official),
                      plan, args.tokens)
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    print("\nErrors in us (client arrival stamp - simulator flush stamp):\n")
    print(
        "| simulator | streams | requests | first content p50 | p99 | p1 "
        "| every chunk p50 | p99 | p1 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    refereed: list[str] = []
    for mode in modes:
        with simulator(mode, args.decode_ms) as (url, flushes):
            server = Server(url)
            for streams, per_stream in plan:
                results = run_streams(server, streams, per_stream, args.tokens)
                first, every = ttft_errors(results, flushes)
                print(
                    f"| {mode} | {streams} | {len(first)} | {fmt(first)} | {fmt(every)} |",
                    flush=True,
                )
            if args.capture:
                if not refereed:
                    print("\nReferee: loopback capture, first-content packet; errors in us "
                          f"(stamp - packet):\n\n{REFEREE_HEAD}", flush=True)
                refereed += refereed_rows(f"simulator ({mode})", server, flushes,
                                          peers(server, has_aiohttp, has_official), plan,
                                          args.tokens)
    for streams, per_stream in plan:
        floor = socket_floor(streams, per_stream * (args.tokens + 1), args.decode_ms)
        print(f"| bare sockets (floor) | {streams} | - | - | - | - | {fmt(floor)} |", flush=True)
    if args.skip_cost:
        return 0
    print(
        "\n| simulator | chunks/stream | OllamaClient, end to end | bare httpx iter_lines "
        "| difference | client parse+stamp (replay, line split excluded) |"
    )
    print("|---|---|---|---|---|---|")
    for mode in modes:
        with simulator(mode, 0.0) as (url, _flushes):
            cost = chunk_cost(url, 3 if args.quick else 7)
        print(
            f"| {mode} | {cost['chunks']:.0f} | {cost['client']:.1f} us | "
            f"{cost['httpx']:.1f} us | {cost['client'] - cost['httpx']:.1f} us | "
            f"{cost['replay'] - cost['replay_lines']:.1f} us |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
