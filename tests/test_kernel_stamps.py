"""Kernel receive stamps (``dialects/kernel_stamps.py``): the clock they map onto, which packet
a read reports when several arrived, and the fallbacks."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator

import httpcore
import pytest

from pytest_ollama_regress.dialects import kernel_stamps
from pytest_ollama_regress.dialects.kernel_stamps import (
    KernelStampBackend,
    KernelStampStream,
    enable,
    kernel_stream,
    recv_stamped,
)

linux = pytest.mark.skipif(sys.platform != "linux", reason="SO_TIMESTAMPNS is Linux's")
#: how long the second packet waits: far above scheduling noise, so the two stamps differ
GAP_S = 0.03


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(client with kernel stamps on, server side with Nagle off), over loopback."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        server, _ = listener.accept()
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        yield client, server
    finally:
        client.close()
        server.close()


def _wait_readable(sock: socket.socket, size: int) -> None:
    """Until ``size`` bytes are queued on ``sock`` (bounded: 2 s)."""
    deadline = time.monotonic() + 2
    while len(sock.recv(size, socket.MSG_PEEK | socket.MSG_DONTWAIT)) < size:
        assert time.monotonic() < deadline, "the data never arrived"
        time.sleep(0.001)


@linux
def test_a_stamp_is_when_the_packet_arrived_on_the_perf_counter_clock(pair) -> None:
    client, server = pair
    assert enable(client)
    got: dict[str, object] = {}
    reader = threading.Thread(target=lambda: got.update(r=recv_stamped(client, 1024)))
    reader.start()
    time.sleep(0.05)  # the reader waits in recvmsg
    sent = time.perf_counter_ns()
    server.sendall(b"x" * 100)
    reader.join(5)
    data, stamp, returned = got["r"]  # type: ignore[misc]
    assert data == b"x" * 100
    assert stamp is not None and sent <= stamp <= returned
    # the stamp is the packet's arrival, not the reader's wake-up
    assert stamp - sent < returned - sent


@linux
def test_one_read_of_several_packets_reports_the_last_packets_arrival(pair) -> None:
    """What TTFT needs to know: a read that returns the first chunk together with later ones
    carries the stamp of the latest packet, so the first chunk's stamp is an upper bound."""
    client, server = pair
    assert enable(client)
    server.sendall(b"first\n")
    first_sent = time.perf_counter_ns()
    time.sleep(GAP_S)
    second_sent = time.perf_counter_ns()
    server.sendall(b"second\n")
    _wait_readable(client, 13)
    data, stamp, returned = recv_stamped(client, 1024)
    assert data == b"first\nsecond\n"
    assert stamp is not None and second_sent <= stamp <= returned
    assert stamp - first_sent >= GAP_S * 1e9 * 0.9


@linux
def test_reading_only_the_first_packets_bytes_still_reports_the_last_arrival(pair) -> None:
    """TCP merges the queued packets into one buffer that keeps the latest stamp: reading
    less cannot recover the first packet's own arrival."""
    client, server = pair
    assert enable(client)
    server.sendall(b"first\n")
    time.sleep(GAP_S)
    second_sent = time.perf_counter_ns()
    server.sendall(b"second\n")
    _wait_readable(client, 13)
    data, stamp, _ = recv_stamped(client, 6)
    assert data == b"first\n"
    assert stamp is not None and stamp >= second_sent


@linux
def test_a_wall_clock_step_between_arrival_and_read_drops_the_stamp(pair, monkeypatch) -> None:
    client, server = pair
    assert enable(client)
    server.sendall(b"x")
    _wait_readable(client, 1)
    real = time.time_ns
    monkeypatch.setattr(kernel_stamps.time, "time_ns", lambda: real() - 10**9)  # stepped back
    data, stamp, _ = recv_stamped(client, 16)
    assert data == b"x" and stamp is None


def test_without_the_option_a_read_brings_no_stamp(pair) -> None:
    client, server = pair
    server.sendall(b"x")
    _wait_readable(client, 1)
    data, stamp, returned = recv_stamped(client, 16)
    assert (data, stamp) == (b"x", None) and returned > 0


def test_enable_refuses_what_is_not_a_plain_socket(pair) -> None:
    assert not enable(object())
    client, _ = pair
    assert enable(client) is (sys.platform == "linux")


class _FakeStream(httpcore.NetworkStream):
    def __init__(self, sock: object) -> None:
        self.sock = sock

    def get_extra_info(self, info: str) -> object:
        return self.sock if info == "socket" else None


class _FakeBackend(httpcore.NetworkBackend):
    def __init__(self, sock: object) -> None:
        self.sock = sock

    def connect_tcp(self, *args: object, **kwargs: object) -> httpcore.NetworkStream:
        return _FakeStream(self.sock)


def test_the_backend_leaves_streams_without_a_plain_socket_alone() -> None:
    """TLS or other transports: no kernel stream, so callers keep the read stamp."""
    stream = KernelStampBackend(_FakeBackend(object())).connect_tcp("127.0.0.1", 1)
    assert isinstance(stream, _FakeStream) and kernel_stream(stream) is None


@linux
def test_the_backend_stream_reads_with_stamps_and_maps_timeouts(pair) -> None:
    client, server = pair
    stream = KernelStampBackend(_FakeBackend(client)).connect_tcp("127.0.0.1", 1)
    assert isinstance(stream, KernelStampStream) and kernel_stream(stream) is stream
    with pytest.raises(httpcore.ReadTimeout):
        stream.read(16, timeout=0.01)
    sent = time.perf_counter_ns()
    server.sendall(b"hello")
    assert stream.read(16, timeout=5) == b"hello"
    assert stream.last_rx_ns is not None and stream.last_rx_ns >= sent
