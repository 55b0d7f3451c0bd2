"""Scheduled latencies and recorded flush times; 64 concurrent streams."""

from __future__ import annotations

import io
import json
import threading
import time

import httpx
import pytest

from pytest_ollama_regress.sim import Latency, SimServer

LAT = Latency(load_ms=40, prefill_us=20, decode_ms=2)


@pytest.fixture(scope="module")
def sim():
    with SimServer(latency=LAT, env={"OLLAMA_NUM_PARALLEL": "64"},
                   log_stream=io.StringIO()) as server:
        yield server


def stream_chat(sim: SimServer, content: str = "hi", client: httpx.Client | None = None,
                **options) -> tuple[str, list[dict], int]:
    body = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": content}],
            "options": options}
    sent = time.perf_counter_ns()
    http = client or httpx.Client(timeout=30)
    try:
        with http.stream("POST", sim.url + "/api/chat", json=body, timeout=30) as response:
            lines = [json.loads(line) for line in response.iter_lines()]
            rid = response.headers["x-sim-request-id"]
    finally:
        if client is None:
            http.close()
    return rid, lines, sent


def test_one_flush_per_chunk_monotonic(sim):
    rid, lines, _ = stream_chat(sim)
    flushes = sim.flush_times(rid)
    assert len(flushes) == len(lines)
    assert flushes == sorted(flushes) and len(set(flushes)) == len(flushes)
    assert httpx.get(f"{sim.url}/_sim/flushes/{rid}").json() == flushes


def test_first_flush_at_or_after_schedule_cold_and_warm(sim):
    httpx.post(sim.url + "/api/generate", json={"model": "qwen3:4b", "keep_alive": 0})
    body = {"model": "qwen3:4b", "prompt": "x", "think": False, "options": {"num_predict": 4}}
    sent = time.perf_counter_ns()
    cold = httpx.post(sim.url + "/api/generate", json={**body, "stream": False}, timeout=30)
    record = sim.request_record(cold.headers["x-sim-request-id"])
    final = cold.json()
    assert final["load_duration"] >= LAT.load_ns
    assert record.scheduled_first_token_ns >= sent + LAT.load_ns + LAT.decode_ns + \
        LAT.prefill_ns(final["prompt_eval_count"])
    for _ in range(3):
        rid, lines, sent = stream_chat(sim, "a b c d e f", num_predict=5)
        record = sim.request_record(rid)
        flushes = sim.flush_times(rid)
        scheduled = record.scheduled_first_token_ns
        prompt_tokens = lines[-1]["prompt_eval_count"]
        assert flushes[0] >= scheduled
        assert flushes[0] - scheduled < 20_000_000  # on time (generous for busy machines)
        # the schedule is known in advance: runner ready + prefill + one decode step
        assert scheduled - record.started_ns >= LAT.prefill_ns(prompt_tokens) + LAT.decode_ns
        for index, flush in enumerate(flushes[:-1]):
            assert flush >= scheduled + index * LAT.decode_ns


def test_request_record_endpoint(sim):
    rid, _, _ = stream_chat(sim)
    data = httpx.get(f"{sim.url}/_sim/requests/{rid}").json()
    assert data["request_id"] == rid and data["done"] is True
    assert data["scheduled_first_token_ns"] <= data["flushes"][0]
    assert httpx.get(f"{sim.url}/_sim/flushes/999999").status_code == 404
    assert sim.flush_times("999999") == []


def test_durations_reflect_latency(sim):
    rid, lines, _ = stream_chat(sim, num_predict=10)
    final = lines[-1]
    assert final["eval_count"] == 10
    assert final["eval_duration"] >= 9 * LAT.decode_ns
    assert final["prompt_eval_duration"] >= LAT.prefill_ns(final["prompt_eval_count"])
    assert final["total_duration"] >= final["eval_duration"] + final["prompt_eval_duration"]


def test_64_concurrent_streams():
    slow = Latency(load_ms=1, prefill_us=1, decode_ms=25)
    with SimServer(latency=slow, env={"OLLAMA_NUM_PARALLEL": "64"},
                   log_stream=io.StringIO()) as sim:
        _run_64(sim)


def _run_64(sim: SimServer) -> None:
    httpx.post(sim.url + "/api/generate", json={"model": "llama3.2:3b"}, timeout=30)
    barrier = threading.Barrier(64, timeout=30)
    # one client for all threads: building 64 clients (TLS contexts) takes seconds by itself
    client = httpx.Client(limits=httpx.Limits(max_connections=64), timeout=60)
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        try:
            barrier.wait()
            rid, lines, _ = stream_chat(sim, f"question {index}", client, num_predict=12)
            assert lines[-1]["done"] is True and lines[-1]["eval_count"] == 12
            flushes = sim.flush_times(rid)
            with lock:
                results.append((flushes[0], flushes[-1]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    client.close()
    assert not errors and len(results) == 64
    first_end = min(end for _, end in results)
    overlapping = sum(1 for start, _ in results if start < first_end)
    assert overlapping >= 48  # they really ran at the same time


def test_slow_ttft_first_token_late_rest_on_time():
    env = {"OLLAMA_SIM_TTFT_DELAY_MS": "80"}
    with SimServer(profile="slow-ttft", env=env, latency=LAT, log_stream=io.StringIO()) as sim:
        httpx.post(sim.url + "/api/generate", json={"model": "llama3.2:3b"}, timeout=30)
        rid, lines, _ = stream_chat(sim, num_predict=6)
        record = sim.request_record(rid)
        flushes = sim.flush_times(rid)
    ttft = flushes[0] - record.started_ns
    assert ttft >= 80_000_000 + LAT.decode_ns
    gaps = [b - a for a, b in zip(flushes, flushes[1:-1], strict=False)]
    assert all(gap < 30_000_000 for gap in gaps)
