"""Timeouts bound whole requests: a server that trickles cannot keep one alive.

A tiny HTTP server in a thread answers with a body that arrives a little at a time (a byte,
a blank line or an NDJSON chunk every ``interval`` seconds), for at most ``limit`` seconds.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from pytest_ollama_regress.dialects import deadlines
from pytest_ollama_regress.dialects.ollama_client import OllamaClient, OllamaError
from pytest_ollama_regress.targets.providers import probe_version
from pytest_ollama_regress.targets.registry import TargetError

SLACK = 1.5  # a loaded 2-core machine


class Trickle:
    """Serves one kind of slow answer on 127.0.0.1 until closed (each answer <= limit s)."""

    def __init__(self, kind: str, interval: float = 0.2, limit: float = 15.0) -> None:
        self.kind, self.interval, self.limit = kind, interval, limit
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _pieces(self) -> Iterator[bytes]:
        chunk = json.dumps({"model": "m", "message": {"role": "assistant", "content": "x"},
                            "done": False}).encode() + b"\n"
        while True:
            if self.kind == "blank-lines":
                yield b"\n"
            elif self.kind == "chunks":
                yield chunk
            else:  # "bytes": one byte of a JSON body that never completes
                yield b" "

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                if self.kind == "bytes":
                    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" \
                           b"Content-Length: 100000\r\n\r\n"
                else:
                    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n" \
                           b"Transfer-Encoding: chunked\r\n\r\n"
                conn.sendall(head)
                ends = time.monotonic() + self.limit
                for piece in self._pieces():
                    if self.stop.is_set() or time.monotonic() > ends:
                        return
                    if self.kind != "bytes":
                        piece = b"%x\r\n%s\r\n" % (len(piece), piece)
                    conn.sendall(piece)
                    time.sleep(self.interval)
            except OSError:
                return  # the client gave up

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture
def trickle(request: pytest.FixtureRequest) -> Iterator[Trickle]:
    server = Trickle(request.param)
    yield server
    server.close()


def _timed(fn) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


@pytest.mark.parametrize("trickle", ["blank-lines"], indirect=True)
def test_blank_lines_are_not_chunks_a_stream_stalls(trickle: Trickle) -> None:
    with OllamaClient(trickle.url, stall_timeout=1, request_timeout=30) as client:
        elapsed, exc = _timed(lambda: client.chat("m", [{"role": "user", "content": "hi"}]))
    assert isinstance(exc, OllamaError) and exc.status == 0, exc
    assert exc.message == f"stalled: no chunk from {trickle.url}/api/chat for 1s (stall timeout)"
    assert elapsed < 1 + SLACK


@pytest.mark.parametrize("trickle", ["chunks"], indirect=True)
def test_a_steady_stream_ends_at_its_request_deadline(trickle: Trickle) -> None:
    with OllamaClient(trickle.url, stall_timeout=1, request_timeout=2) as client:
        elapsed, exc = _timed(lambda: client.generate("m", "hi"))
    assert isinstance(exc, OllamaError) and exc.in_stream, exc
    assert "did not end within 2s (request timeout)" in exc.message
    assert exc.partial is not None and exc.partial.chunks  # what had arrived is kept
    assert 2 <= elapsed < 2 + SLACK


@pytest.mark.parametrize("trickle", ["bytes"], indirect=True)
def test_a_non_streaming_call_completes_within_the_stall_timeout(trickle: Trickle) -> None:
    with OllamaClient(trickle.url, stall_timeout=1) as client:
        for call in (lambda: client.show("m"), client.version):
            elapsed, exc = _timed(call)
            assert isinstance(exc, OllamaError), exc
            assert "no complete answer from" in exc.message
            assert "within 1s (stall timeout; a non-streaming request must complete" in exc.message
            assert elapsed < 1 + SLACK


@pytest.mark.parametrize("trickle", ["bytes"], indirect=True)
def test_the_version_probe_is_bounded_by_its_timeout(trickle: Trickle) -> None:
    elapsed, exc = _timed(lambda: probe_version(trickle.url, timeout=1, what="--ollama-url x"))
    assert isinstance(exc, TargetError), exc
    assert "--ollama-url x: no answer from GET /api/version within 1 s" in str(exc)
    assert elapsed < 1 + SLACK


@pytest.mark.parametrize("trickle", ["bytes"], indirect=True)
def test_the_readiness_probe_is_bounded(trickle: Trickle) -> None:
    from pytest_ollama_regress.containers.provider import PROBE_DEADLINE, _probe_version

    elapsed, exc = _timed(lambda: _probe_version(trickle.url))
    assert exc is None and elapsed < PROBE_DEADLINE + SLACK


def test_limits_are_per_thread_and_nest() -> None:
    assert deadlines.current() is None
    with deadlines.limits(total=5) as outer:
        seen: list[object] = []
        thread = threading.Thread(target=lambda: seen.append(deadlines.current()))
        thread.start()
        thread.join()
        assert seen == [None]
        with deadlines.limits(stall=1) as inner:
            assert deadlines.current() is inner
        assert deadlines.current() is outer
    assert deadlines.current() is None


def test_the_nearest_deadline_clamps_a_read() -> None:
    with deadlines.limits(total=10, stall=2) as lim:
        timeout, which = lim.clamp(60)
        assert which == "stall" and 1.5 < timeout <= 2
        assert lim.clamp(0.5) == (0.5, None)  # the per-read timeout is shorter: untouched
        lim.stall, lim.total = None, 0.0
        assert lim.remaining()[1] == "total" and lim.remaining()[0] <= 0


@pytest.mark.parametrize("trickle", ["blank-lines"], indirect=True)
def test_the_async_client_obeys_the_stall_deadline(trickle: Trickle) -> None:
    """Deadlines hold per asyncio task: blank lines do not keep a stream alive."""
    import asyncio

    from pytest_ollama_regress.dialects.async_ollama_client import AsyncOllamaClient

    async def chat() -> None:
        async with AsyncOllamaClient(trickle.url, stall_timeout=1, request_timeout=30) as c:
            await c.chat("m", [{"role": "user", "content": "hi"}])

    elapsed, exc = _timed(lambda: asyncio.run(chat()))
    assert isinstance(exc, OllamaError) and "stalled: no chunk from" in exc.message, exc
    assert elapsed < 1 + SLACK


@pytest.mark.parametrize("trickle", ["chunks"], indirect=True)
def test_the_async_client_obeys_the_request_deadline(trickle: Trickle) -> None:
    import asyncio

    from pytest_ollama_regress.dialects.async_ollama_client import AsyncOllamaClient

    async def chat() -> None:
        async with AsyncOllamaClient(trickle.url, stall_timeout=5, request_timeout=1) as c:
            await c.chat("m", [{"role": "user", "content": "hi"}])

    elapsed, exc = _timed(lambda: asyncio.run(chat()))
    assert isinstance(exc, OllamaError) and "deadline: the stream" in exc.message, exc
    assert exc.partial is not None and exc.partial.chunks
    assert elapsed < 1 + SLACK
