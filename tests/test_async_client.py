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


@pytest.fixture
def stamped_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(client: non-blocking, kernel stamps on; server side, Nagle off), over loopback."""
    from pytest_ollama_regress.dialects.kernel_stamps import enable

    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        server, _ = listener.accept()
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.setblocking(False)
    assert enable(client)
    try:
        yield client, server
    finally:
        client.close()
        server.close()


@linux
def test_the_inbox_reads_each_packet_when_it_comes_not_when_the_task_asks(stamped_pair) -> None:
    """Two packets 30 ms apart while the task is busy elsewhere: read as two parts, each with
    its own stamp (a read after both came would merge them and name the second's arrival)."""
    from pytest_ollama_regress.dialects.kernel_stamps_async import Inbox

    client, server = stamped_pair

    async def main() -> list[tuple[bytes, int | None]]:
        inbox = Inbox(client, asyncio.get_running_loop())
        server.sendall(b"first\n")
        await asyncio.sleep(0.03)  # the task is not reading: the loop still is
        server.sendall(b"second\n")
        await asyncio.sleep(0.03)
        got = [await inbox.take(1024, 1), await inbox.take(1024, 1)]
        server.close()
        got.append(await inbox.take(1024, 1))
        inbox.close()
        return got

    (first, t1), (second, t2), (end, t3) = asyncio.run(main())
    assert (first, second, end, t3) == (b"first\n", b"second\n", b"", None)
    assert t1 is not None and t2 is not None and t2 - t1 > 20_000_000


@linux
def test_the_inbox_pauses_reading_above_its_high_water_mark(stamped_pair, monkeypatch) -> None:
    from pytest_ollama_regress.dialects import kernel_stamps_async

    monkeypatch.setattr(kernel_stamps_async, "HIGH_WATER", 1000)
    monkeypatch.setattr(kernel_stamps_async, "READ_BYTES", 500)
    client, server = stamped_pair
    payload = bytes(range(256)) * 40  # 10 KiB

    async def main() -> bytes:
        inbox = kernel_stamps_async.Inbox(client, asyncio.get_running_loop())
        server.sendall(payload)
        server.close()
        await asyncio.sleep(0.05)
        assert 1000 <= inbox._buffered < 1500  # paused at the mark, the rest left in TCP
        data = b""
        while chunk := (await inbox.take(300, 1))[0]:
            data += chunk
        return data

    assert asyncio.run(main()) == payload


@linux
def test_the_inbox_times_out_without_data(stamped_pair) -> None:
    from pytest_ollama_regress.dialects.kernel_stamps_async import Inbox

    client, _server = stamped_pair

    async def main() -> None:
        inbox = Inbox(client, asyncio.get_running_loop())
        try:
            await inbox.take(10, 0.05)
        finally:
            inbox.close()

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(main())


def test_lanes_hold_one_connection_per_request_in_flight(sim: SimServer) -> None:
    """The sync client under 8 threads and the async one under 8 tasks: answers as usual, at
    most ``max_connections`` connections, and a request that finds every one busy for
    ``connect_timeout`` fails saying the pool is exhausted."""
    import threading
    import time

    with OllamaClient(sim.url, max_connections=3) as client:
        results: list[str] = []
        threads = [threading.Thread(target=lambda: results.append(
            client.generate(MODEL, "hi", options={"num_predict": 3}).text)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(results) == 8 and all(results)
        addresses = {  # sequential requests reuse the warm connection of a free lane
            client.request("GET", "/api/version").extensions["network_stream"]
            .get_extra_info("client_addr") for _ in range(6)}
        assert len(addresses) == 1

    async def busy(client: AsyncOllamaClient) -> list[str]:
        answers = await asyncio.gather(*(client.generate(MODEL, f"p{i}",
                                                         options={"num_predict": 3})
                                         for i in range(8)))
        return [answer.text for answer in answers]

    assert all(run(busy, sim.url, max_connections=2))

    slow = Latency(load_ms=0, prefill_us=10, decode_ms=200)
    with SimServer(latency=slow) as server, OllamaClient(
            server.url, max_connections=1, connect_timeout=0.2) as client:
        first = threading.Thread(target=lambda: client.generate(
            MODEL, "long", options={"num_predict": 5}))
        first.start()
        time.sleep(0.3)
        with pytest.raises(OllamaError) as exhausted:
            client.generate(MODEL, "second", options={"num_predict": 1})
        first.join(timeout=30)
    assert exhausted.value.status == 0 and "pool exhausted" in exhausted.value.message
