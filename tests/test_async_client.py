"""The asyncio client (``dialects/async_ollama_client.py``): the sync client's answers, errors
and timing from one event loop, kernel receive stamps on plain TCP, and the transport it
sends through (``dialects/pool_transport.py``)."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Iterator

import httpcore
import httpx
import pytest

from pytest_ollama_regress.dialects.async_ollama_client import AsyncOllamaClient
from pytest_ollama_regress.dialects.ollama_client import OllamaClient, OllamaError
from pytest_ollama_regress.dialects.pool_transport import httpx_errors
from pytest_ollama_regress.sim import Latency, SimServer

MODEL = "llama3.2:3b"
HELLO = [{"role": "user", "content": "Say hello."}]
linux = pytest.mark.skipif(sys.platform != "linux", reason="kernel receive stamps are Linux's")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    latency = Latency(load_ms=0, prefill_us=10, decode_ms=2)
    with SimServer(env={"OLLAMA_NUM_PARALLEL": "32"}, latency=latency) as server:
        yield server


def run(coro_fn, url: str, **kw):
    """``coro_fn(client)`` on a fresh event loop with a fresh client."""
    async def main():
        async with AsyncOllamaClient(url, **kw) as client:
            return await coro_fn(client)
    return asyncio.run(main())


def test_answers_match_the_sync_client(sim: SimServer) -> None:
    with OllamaClient(sim.url) as sync:
        expected_chat = sync.chat(MODEL, HELLO)
        expected_generate = sync.generate(MODEL, "Why is the sky blue?",
                                          options={"num_predict": 5})

    async def both(client: AsyncOllamaClient):
        return (await client.version(), await client.chat(MODEL, HELLO),
                await client.chat(MODEL, HELLO, stream=False),
                await client.generate(MODEL, "Why is the sky blue?",
                                      options={"num_predict": 5}))

    version, chat, whole, generate = run(both, sim.url)
    assert version == "0.12.6"
    assert chat.text == whole.text == expected_chat.text and chat.text
    assert len(chat.chunks) == len(expected_chat.chunks) > 1 and len(whole.chunks) == 1
    assert chat.final["done"] and chat.metrics.eval_count == expected_chat.metrics.eval_count
    assert generate.text == expected_generate.text
    timing = chat.timing
    assert timing.request_sent_ns < timing.first_byte_ns <= timing.first_content_ns
    assert timing.ttft_ns > 0 and len(timing.chunk_arrivals_ns) == len(chat.chunks)


@linux
def test_concurrent_streams_carry_kernel_stamps_matching_the_flushes(sim: SimServer) -> None:
    """32 streams on one loop: every first content chunk is kernel-stamped, within a loaded
    machine's bounds of the simulator's flush of it."""
    async def many(client: AsyncOllamaClient):
        return await asyncio.gather(*(
            client.generate(MODEL, f"stream {i}", options={"num_predict": 4})
            for i in range(32)))

    results = run(many, sim.url)
    for result in results:
        timing = result.timing
        assert timing.first_content_source in ("kernel", "kernel-batch")
        assert set(timing.chunk_sources) <= {"kernel", "kernel-batch"}
        assert timing.first_content_read_ns >= timing.first_content_ns
        request_id = result.headers["x-sim-request-id"]
        record = sim.request_record(request_id)
        assert record is not None and record.wait(5)
        flushes = sim.flush_times(request_id)
        first = next(i for i, c in enumerate(result.chunks) if c["response"])
        assert -10_000_000 < timing.first_content_ns - flushes[first] < 30_000_000


def test_errors_are_the_sync_clients(sim: SimServer) -> None:
    with pytest.raises(OllamaError) as missing:
        run(lambda c: c.generate("no-such-model", "hi"), sim.url)
    assert missing.value.status == 404 and "not found" in missing.value.message

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(OllamaError) as refused:
        run(lambda c: c.version(), f"http://127.0.0.1:{port}", connect_timeout=2)
    assert refused.value.status == 0 and "cannot connect" in refused.value.message


def test_an_https_url_is_read_without_kernel_stamps() -> None:
    """TLS is not read with recvmsg: the client still builds (AnyIO backend, read stamps)."""
    async def build() -> str:
        async with AsyncOllamaClient("https://127.0.0.1:1") as client:
            return repr(client)
    assert asyncio.run(build()) == "AsyncOllamaClient('https://127.0.0.1:1')"


@pytest.mark.parametrize(("theirs", "ours"), [
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.TimeoutException, httpx.TimeoutException),
])
def test_the_transport_raises_httpx_errors(theirs, ours) -> None:
    with pytest.raises(ours) as raised, httpx_errors():
        raise theirs("boom")
    assert type(raised.value) is ours and str(raised.value) == "boom"


def test_other_errors_pass_the_transport_unchanged() -> None:
    with pytest.raises(KeyError), httpx_errors():
        raise KeyError("x")
