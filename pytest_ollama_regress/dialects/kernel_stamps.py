"""Kernel receive timestamps of a client's TCP socket (Linux ``SO_TIMESTAMPNS``), on the
``perf_counter_ns`` clock.

With ``SO_TIMESTAMPNS`` set, every ``recvmsg`` also returns (ancillary data
``SCM_TIMESTAMPNS``) the instant the kernel received the data, taken in the network stack
whatever the reading thread was doing: a thread waiting for the GIL no longer delays it.

**Which packet.** The stamp is that of the last socket buffer the read consumed. TCP merges
packets that queue up unread into one buffer, which keeps the *latest* packet's stamp; so
when a read returns data of several packets (the client fell behind), the stamp is when the
last of them arrived, even if the read asks only for the first packet's bytes
(``tests/test_kernel_stamps.py`` shows both). For the lines one read completes, the stamp is
exact for the last line and an upper bound for the earlier ones; it is never later than the
socket-read stamp, so it is the better one either way.

**Clock.** The kernel stamps with CLOCK_REALTIME; ``time.perf_counter_ns`` is CLOCK_MONOTONIC
on Linux. Both advance at the same (NTP-slewed) rate and differ by an offset that only
changes when the wall clock is stepped. The offset is measured right after each read, as
``time_ns()`` minus the midpoint of two ``perf_counter_ns()`` around it (uncertainty: half
that bracket, under a microsecond; a bracket the scheduler stretched past 20 us is taken
again, up to three times). A stamp that maps after the read returned (the clock was
stepped in between) is dropped and the read's own stamp is used.

**Async.** :mod:`~.kernel_stamps_async` does the same for asyncio clients, reading each socket
as soon as the event loop sees it readable.

**Fallback.** TLS streams (``recvmsg`` does not go through ``ssl``), other systems, or a
socket that refuses the option: the backends leave the stream as it is and
:func:`kernel_stream` finds nothing, so callers keep the socket-read stamp.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any

import httpcore

__all__ = ["KERNEL_STREAM", "KernelStampBackend", "KernelStampStream", "enable", "kernel_stream",
           "recv_stamped"]

#: Linux's SO_TIMESTAMPNS (= SCM_TIMESTAMPNS); Python's socket module does not name it.
#: The value of the generic socket.h (x86-64, arm64, ...); other architectures refuse it or
#: answer without this message, and then the read stamp is used.
SO_TIMESTAMPNS = 35
#: ``get_extra_info`` key under which a stream chain answers its :class:`KernelStampStream`
KERNEL_STREAM = "pytest_ollama_regress.kernel_stream"
#: the clock offset's bracket is retaken (at most OFFSET_TRIES times) when wider than this
TIGHT_BRACKET_NS = 20_000
OFFSET_TRIES = 3
_TIMESPEC = struct.Struct("qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0


def enable(sock: Any) -> bool:
    """Ask the kernel to stamp what ``sock`` receives; False where it cannot (not Linux, TLS,
    not a socket, refused)."""
    if sys.platform != "linux" or not _ANCILLARY or type(sock) is not socket.socket:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def recv_stamped(sock: socket.socket, max_bytes: int) -> tuple[bytes, int | None, int]:
    """``(data, kernel receive instant or None, read returned)``, both ``perf_counter_ns``."""
    data, ancillary, _flags, _address = sock.recvmsg(max_bytes, _ANCILLARY)
    for _ in range(OFFSET_TRIES):  # a bracket the scheduler stretched gives a poor midpoint
        before = time.perf_counter_ns()
        wall = time.time_ns()
        after = time.perf_counter_ns()
        if after - before <= TIGHT_BRACKET_NS:
            break
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
            seconds, nanos = _TIMESPEC.unpack_from(payload)
            stamp = seconds * 1_000_000_000 + nanos - (wall - (before + after) // 2)
            return data, (stamp if stamp <= after else None), after
    return data, None, after


class KernelStampStream(httpcore.NetworkStream):
    """httpcore's plain TCP stream, read with ``recvmsg`` so each read keeps the kernel's
    receive stamp (``last_rx_ns``; ``None`` when the read brought none)."""

    __slots__ = ("_stream", "_sock", "last_rx_ns")

    def __init__(self, stream: httpcore.NetworkStream, sock: socket.socket) -> None:
        self._stream = stream
        self._sock = sock
        self.last_rx_ns: int | None = None

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        # what httpcore's sync stream does, with recvmsg for recv (same exceptions)
        try:
            self._sock.settimeout(timeout)
            data, self.last_rx_ns, _ = recv_stamped(self._sock, max_bytes)
        except TimeoutError as exc:  # socket.timeout
            raise httpcore.ReadTimeout(exc) from exc
        except OSError as exc:
            raise httpcore.ReadError(exc) from exc
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return self._stream.start_tls(*args, **kwargs)  # TLS: read stamps only

    def get_extra_info(self, info: str) -> Any:
        return self if info == KERNEL_STREAM else self._stream.get_extra_info(info)


class KernelStampBackend(httpcore.NetworkBackend):
    """httpcore network backend whose TCP streams carry kernel receive stamps where the
    system gives them (the stream is left as it is otherwise)."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(*args, **kwargs)
        sock = stream.get_extra_info("socket")
        return KernelStampStream(stream, sock) if enable(sock) else stream

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return self._backend.connect_unix_socket(*args, **kwargs)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def kernel_stream(stream: Any) -> Any:
    """The kernel-stamping stream under ``stream`` (sync or async: anything with
    ``last_rx_ns`` answering ``get_extra_info(KERNEL_STREAM)``; wrappers pass that down), or
    ``None``."""
    try:
        found = stream.get_extra_info(KERNEL_STREAM)
    except Exception:  # noqa: BLE001 - a stream that cannot answer has no kernel stamps
        return None
    return found if hasattr(found, "last_rx_ns") else None
