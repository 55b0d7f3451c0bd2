"""Scheduler semantics: ``/api/ps`` context_length per version, parallel slots, reloads,
keep_alive, default ``num_ctx`` (version, VRAM tier, ``OLLAMA_CONTEXT_LENGTH``)."""

from __future__ import annotations

import io
import threading
import time

import httpx
import pytest

from pytest_ollama_regress.sim import Latency, SimServer

LOAD_MS = 30
LAT = Latency(load_ms=LOAD_MS, prefill_us=1, decode_ms=0.2)
LOAD_NS = LOAD_MS * 1_000_000


def server(version: str = "0.12.6", profile: str = "good", **env: str) -> SimServer:
    return SimServer(version=version, profile=profile, env=env, latency=LAT,
                     log_stream=io.StringIO())


def gen(client: httpx.Client, model: str = "llama3.2:3b", **extra) -> dict:
    body = {"model": model, "prompt": "hi", "stream": False, **extra}
    body.setdefault("options", {}).setdefault("num_predict", 2)
    response = client.post("/api/generate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def ps(client: httpx.Client) -> dict[str, dict]:
    return {m["name"]: m for m in client.get("/api/ps").json()["models"]}


# -- /api/ps context_length -----------------------------------------------------------------

@pytest.mark.parametrize(("version", "num_ctx", "expected"), [
    ("0.10.0", 4096, 4096),       # NumCtx*parallel / parallel
    ("0.11.5", 4096, 4096),
    ("0.11.5", 200_000, 200_000),  # before the clamp to the trained context
    ("0.15.5", 200_000, 131_072),  # v0.15.5+: the actual clamped value
    ("0.15.5", 2, 4),              # floor of 4
])
def test_ps_context_length_by_version(version, num_ctx, expected):
    with server(version, OLLAMA_NUM_PARALLEL="4") as sim, \
            httpx.Client(base_url=sim.url, timeout=10) as client:
        gen(client, options={"num_ctx": num_ctx, "num_predict": 1})
        entry = ps(client)["llama3.2:3b"]
    assert entry["context_length"] == expected  # never multiplied by num_parallel


def test_ps_vision_floor_from_0_11_5():
    for version, expected in (("0.11.4", 1024), ("0.11.5", 2048)):
        with server(version) as sim, httpx.Client(base_url=sim.url, timeout=10) as client:
            gen(client, "llava:7b", options={"num_ctx": 1024, "num_predict": 1})
            assert ps(client)["llava:7b"]["context_length"] == expected


def test_ps_has_no_context_length_field_shape():
    with server("0.12.6") as sim, httpx.Client(base_url=sim.url, timeout=10) as client:
        gen(client)
        entry = client.get("/api/ps").json()["models"][0]
    assert list(entry) == ["name", "model", "size", "digest", "details", "expires_at",
                           "size_vram", "context_length"]
    assert entry["size_vram"] == entry["size"] > 2_000_000_000


@pytest.mark.parametrize(("version", "vram", "expected"), [
    ("0.12.6", "80", 4096), ("0.15.4", "80", 4096),
    ("0.15.5", "16", 4096), ("0.15.5", "24", 32768), ("0.15.5", "80", 131072),
])
def test_default_num_ctx_by_version_and_vram(version, vram, expected):
    with server(version, OLLAMA_SIM_VRAM_GIB=vram) as sim, \
            httpx.Client(base_url=sim.url, timeout=10) as client:
        gen(client)
        assert ps(client)["llama3.2:3b"]["context_length"] == expected
        if version == "0.15.5":
            assert any("vram-based default context" in line for line in sim.log_lines())


def test_cpu_only_reports_no_vram():
    with server("0.15.5", OLLAMA_SIM_VRAM_GIB="0") as sim, \
            httpx.Client(base_url=sim.url, timeout=10) as client:
        gen(client)
        entry = ps(client)["llama3.2:3b"]
    assert entry["size_vram"] == 0 and entry["context_length"] == 4096


def test_ollama_context_length_env():
    with server("0.12.6", OLLAMA_CONTEXT_LENGTH="8192") as sim, \
            httpx.Client(base_url=sim.url, timeout=10) as client:
        gen(client)
        assert ps(client)["llama3.2:3b"]["context_length"] == 8192
        gen(client, options={"num_ctx": 2048, "num_predict": 1})
        assert ps(client)["llama3.2:3b"]["context_length"] == 2048


# -- parallel slots ---------------------------------------------------------------------

def _concurrent_chats(sim: SimServer, model: str, count: int, tokens: int) -> list[tuple]:
    spans: list[tuple[int, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count, timeout=30)
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=count))

    def one() -> None:
        body = {"model": model, "prompt": "hi", "options": {"num_predict": tokens}}
        barrier.wait()
        if model == "all-minilm":
            response = client.post(sim.url + "/api/embed", json={"model": model, "input": "x"})
            rid = response.headers["x-sim-request-id"]
            end = sim.flush_times(rid)[-1]
            with lock:
                spans.append((sim.request_record(rid).started_ns, end))
            return
        with client.stream("POST", sim.url + "/api/generate", json=body) as r:
            r.read()
            rid = r.headers["x-sim-request-id"]
        flushes = sim.flush_times(rid)
        with lock:
            spans.append((flushes[0], flushes[-1]))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    client.close()
    return spans


def _max_overlap(spans: list[tuple[int, int]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def test_num_parallel_limits_concurrent_generations():
    with server(OLLAMA_NUM_PARALLEL="2", OLLAMA_SIM_DECODE_MS="8") as sim:
        httpx.post(sim.url + "/api/generate", json={"model": "llama3.2:3b"}, timeout=10)
        spans = _concurrent_chats(sim, "llama3.2:3b", 6, 10)
    assert len(spans) == 6 and _max_overlap(spans) == 2


def test_num_parallel_default_is_one():
    with server(OLLAMA_SIM_DECODE_MS="8") as sim:
        httpx.post(sim.url + "/api/generate", json={"model": "llama3.2:3b"}, timeout=10)
        spans = _concurrent_chats(sim, "llama3.2:3b", 3, 10)
    assert _max_overlap(spans) == 1


def test_embedding_models_forced_to_one_slot():
    with server(OLLAMA_NUM_PARALLEL="4", OLLAMA_SIM_PREFILL_US="20000") as sim, \
            httpx.Client(base_url=sim.url, timeout=10) as client:
        client.post("/api/embed", json={"model": "all-minilm", "input": "x"})
        spans = _concurrent_chats(sim, "all-minilm", 3, 0)
        entry = ps(client)["all-minilm:latest"]
    assert len(spans) == 3
    ordered = sorted(spans)
    # each embed holds the only slot for its prefill: requests finish at least 20 ms apart
    ends = sorted(end for _, end in ordered)
    assert all(b - a >= 15_000_000 for a, b in zip(ends, ends[1:], strict=False))
    assert entry["context_length"] == 4096


# -- reloads ----------------------------------------------------------------------------

def test_reload_only_when_a_load_time_option_changes():
    with server() as sim, httpx.Client(base_url=sim.url, timeout=10) as client:
        first = gen(client)
        assert first["load_duration"] >= LOAD_NS
        same = gen(client, options={"temperature": 0.1, "seed": 3, "top_k": 5,
                                    "stop": ["x"], "num_predict": 2, "num_keep": 8})
        assert same["load_duration"] < LOAD_NS / 2  # sampling options never reload
        changed = gen(client, options={"num_ctx": 8192, "num_predict": 2})
        assert changed["load_duration"] >= LOAD_NS
        batch = gen(client, options={"num_ctx": 8192, "num_batch": 256, "num_predict": 2})
        assert batch["load_duration"] >= LOAD_NS
        auto_gpu = gen(client, options={"num_ctx": 8192, "num_batch": 256, "num_predict": 2})
        assert auto_gpu["load_duration"] < LOAD_NS / 2
        assert any("reloading" in line for line in sim.log_lines()) is False  # INFO level


def test_reload_debug_log_and_vision_floor_equal():
    with server(OLLAMA_DEBUG="1") as sim, httpx.Client(base_url=sim.url, timeout=10) as client:
        gen(client, "llava:7b", options={"num_ctx": 128, "num_predict": 1})
        again = gen(client, "llava:7b", options={"num_ctx": 1024, "num_predict": 1})
        assert again["load_duration"] < LOAD_NS / 2  # both floored to 2048
        gen(client, "llava:7b", options={"num_ctx": 4096, "num_predict": 1})
        assert any("msg=reloading" in line for line in sim.log_lines())


def test_num_ctx_above_trained_reload_rule_by_version():
    """From v0.15.5 num_ctx is compared after the clamp to the trained context."""
    for version, reloads in (("0.15.4", True), ("0.15.5", False)):
        with server(version) as sim, httpx.Client(base_url=sim.url, timeout=10) as client:
            gen(client, options={"num_ctx": 200_000, "num_predict": 1})
            second = gen(client, options={"num_ctx": 300_000, "num_predict": 1})
            assert (second["load_duration"] >= LOAD_NS) is reloads


def test_keep_alive_zero_unloads_and_load_unload_responses():
    with server() as sim, httpx.Client(base_url=sim.url, timeout=10) as client:
        loaded = client.post("/api/chat", json={"model": "llama3.2:3b", "messages": []}).json()
        assert list(loaded) == ["model", "created_at", "message", "done_reason", "done"]
        assert loaded["done_reason"] == "load" and loaded["done"] is True
        assert "llama3.2:3b" in ps(client)
        unloaded = client.post("/api/chat", json={"model": "llama3.2:3b", "messages": [],
                                                  "keep_alive": 0}).json()
        assert unloaded["done_reason"] == "unload"
        assert ps(client) == {}
        generate_load = client.post("/api/generate", json={"model": "qwen3:4b"}).json()
        assert list(generate_load) == ["model", "created_at", "response", "done",
                                       "done_reason"]
        assert generate_load["done_reason"] == "load"
        gen(client, "qwen3:4b", keep_alive=0)
        assert ps(client) == {}


def test_keep_alive_sets_expiry():
    with server() as sim, httpx.Client(base_url=sim.url, timeout=10) as client:
        gen(client, keep_alive=-1)
        forever = ps(client)["llama3.2:3b"]["expires_at"]
        assert int(forever[:4]) > 2200
        gen(client, keep_alive="1s")
        assert "llama3.2:3b" in ps(client)
        time.sleep(1.2)
        assert ps(client) == {}


def test_max_loaded_models_evicts_least_recent():
    with server() as sim, httpx.Client(base_url=sim.url, timeout=10) as client:
        for model in ("llama3.2:3b", "qwen3:4b", "gemma3:4b", "llava:7b"):
            gen(client, model)
        assert set(ps(client)) == {"qwen3:4b", "gemma3:4b", "llava:7b"}
