"""Kernel receive stamps for asyncio clients: plain TCP connections read the moment the event
loop sees them readable, each read with its kernel stamp (``SO_TIMESTAMPNS``; see
:mod:`~.kernel_stamps` for the clock and which packet a read names).

Why not read when the task asks: a kernel stamp names the last packet a read consumed, and
when two packets of one stream wait unread TCP merges them, so the read reports the later
one's arrival. A task reads again only after it has handled the previous chunk and the loop
came back to it, two or three loop iterations later; under load (64 streams on 2 cores) an
iteration can outlast a decode step. Here a reader callback (``loop.add_reader``) reads every
ready socket at the start of each iteration into the connection's :class:`Inbox`, and the
task drains the inbox one read at a time, so a chunk keeps its own packet's stamp whenever
the loop got to the socket before the next packet came (``docs/benchmarks.md`` measures how
often it did not). Linux and a running asyncio loop only: TLS, unix sockets, other systems
and other event loops (trio) go to the backend it wraps.
"""

from __future__ import annotations

import asyncio
import collections
import select
import socket
import sys
from collections.abc import Iterable
from typing import Any

import httpcore

from pytest_ollama_regress.dialects.kernel_stamps import KERNEL_STREAM, enable, recv_stamped

__all__ = ["AsyncKernelStampBackend", "AsyncKernelStampStream", "Inbox"]

READ_BYTES = 65536
#: reading pauses while this much waits unread by the task (TCP's flow control takes over)
HIGH_WATER = 4 * 1024 * 1024


class Inbox:
    """The reads of one socket, taken when the loop reports it readable, for its task."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock = sock
        self._loop = loop
        self._parts: collections.deque[tuple[bytes, int | None]] = collections.deque()
        self._ended = False
        self._error: OSError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._buffered = 0
        self._reading = True
        loop.add_reader(sock.fileno(), self._fill)

    def _fill(self) -> None:
        """Read all the socket holds, each read with its stamp (the loop's reader callback)."""
        while self._buffered < HIGH_WATER:
            try:
                data, stamp, _ = recv_stamped(self.sock, READ_BYTES)
            except BlockingIOError:
                break
            except OSError as exc:
                self._error = exc
                break
            if not data:
                self._ended = True
                break
            self._parts.append((data, stamp))
            self._buffered += len(data)
        if self._ended or self._error is not None or self._buffered >= HIGH_WATER:
            self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def take(self, max_bytes: int, timeout: float | None) -> tuple[bytes, int | None]:
        """The next read's data (at most ``max_bytes``) and kernel stamp; ``b""`` at the end.
        Raises ``TimeoutError`` after ``timeout`` seconds without data, ``OSError`` on a
        failed read."""
        while not self._parts and not self._ended and self._error is None:
            self._waiter = self._loop.create_future()
            await asyncio.wait_for(self._waiter, timeout)
        if self._parts:
            data, stamp = self._parts.popleft()
            if len(data) > max_bytes:
                self._parts.appendleft((data[max_bytes:], stamp))
                data = data[:max_bytes]
            self._buffered -= len(data)
            if not self._reading and not self._ended and self._error is None and (
                    self._buffered < HIGH_WATER // 2 and self.sock.fileno() >= 0):
                self._reading = True
                self._loop.add_reader(self.sock.fileno(), self._fill)
            return data, stamp
        if self._error is not None:
            raise self._error
        return b"", None

    def close(self) -> None:
        """Stop reading (for now, or before the socket is closed)."""
        if self._reading and self.sock.fileno() >= 0:
            self._loop.remove_reader(self.sock.fileno())
        self._reading = False


class AsyncKernelStampStream(httpcore.AsyncNetworkStream):
    """A plain TCP connection read through an :class:`Inbox`; ``last_rx_ns`` is the kernel's
    stamp of the latest read's data (``None`` when it brought none)."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self._sock = sock
        self._inbox = Inbox(sock, loop)
        self.last_rx_ns: int | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            data, self.last_rx_ns = await self._inbox.take(max_bytes, timeout)
        except asyncio.TimeoutError as exc:
            raise httpcore.ReadTimeout(exc) from exc
        except OSError as exc:
            raise httpcore.ReadError(exc) from exc
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_sendall(self._sock, buffer), timeout)
        except asyncio.TimeoutError as exc:
            raise httpcore.WriteTimeout(exc) from exc
        except OSError as exc:
            raise httpcore.WriteError(exc) from exc

    async def aclose(self) -> None:
        self._inbox.close()
        self._sock.close()

    async def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError(
            "TLS is not read by the kernel-stamping backend (use http:// or the default one)")

    def get_extra_info(self, info: str) -> Any:
        if info == KERNEL_STREAM:
            return self
        if info == "socket":
            return self._sock
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "is_readable":  # data or end of stream waiting: a dropped pooled connection
            return bool(select.select([self._sock], [], [], 0)[0])
        return None


class AsyncKernelStampBackend(httpcore.AsyncNetworkBackend):
    """httpcore async backend: plain TCP read as the loop sees it readable, with kernel
    receive stamps (see the module docstring); the rest goes to ``fallback``."""

    def __init__(self, fallback: httpcore.AsyncNetworkBackend) -> None:
        self._fallback = fallback

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or sys.platform != "linux":
            return await self._fallback.connect_tcp(host, port, timeout, local_address,
                                                    socket_options)
        try:
            sock = await asyncio.wait_for(
                self._open(loop, host, port, local_address, socket_options or ()), timeout)
        except asyncio.TimeoutError as exc:
            raise httpcore.ConnectTimeout(exc) from exc
        except OSError as exc:
            raise httpcore.ConnectError(exc) from exc
        if not enable(sock):
            sock.close()
            return await self._fallback.connect_tcp(host, port, timeout, local_address,
                                                    socket_options)
        return AsyncKernelStampStream(sock, loop)

    @staticmethod
    async def _open(loop: asyncio.AbstractEventLoop, host: str, port: int,
                    local_address: str | None, options: Iterable[Any]) -> socket.socket:
        addresses = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        failure: OSError | None = None
        for family, kind, proto, _name, address in addresses:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                for option in options:
                    sock.setsockopt(*option)
                if local_address is not None:
                    sock.bind((local_address, 0))
                await loop.sock_connect(sock, address)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:
                sock.close()
                failure = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise failure or OSError(f"no address for {host}:{port}")

    async def connect_unix_socket(self, *args: Any, **kwargs: Any
                                  ) -> httpcore.AsyncNetworkStream:
        return await self._fallback.connect_unix_socket(*args, **kwargs)

    async def sleep(self, seconds: float) -> None:
        await self._fallback.sleep(seconds)
