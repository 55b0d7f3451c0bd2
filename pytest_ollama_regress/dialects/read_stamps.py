"""Per-read arrival stamps of a connection's network stream (sync and async).

A line that httpx hands over (``iter_lines``/``aiter_lines``) was completed by the latest
socket read: httpx yields every complete line of one read before it reads again. A stamped
stream remembers, for its latest read, when it returned to this process (``last_read_ns``) and
the best stamp of its data (``last_stamp_ns``): the kernel's receive stamp where the socket
gives one (``last_source`` ``"kernel"``, see :mod:`~.kernel_stamps`), else the read's
(``"read"``). ``reads`` counts reads, so lines with the same count came in one read.
"""

from __future__ import annotations

import time
from typing import Any

import httpcore
import httpx

from pytest_ollama_regress.dialects.kernel_stamps import kernel_stream
from pytest_ollama_regress.dialects.timing import StreamTiming

__all__ = ["AsyncStampingBackend", "ReadStamps", "StampingBackend", "batched", "read_stamp"]


class ReadStamps:
    """The stamps of a stream's latest read (see the module docstring)."""

    def __init__(self, stream: Any) -> None:
        self._kernel = kernel_stream(stream)
        self.last_read_ns = 0
        self.last_stamp_ns = 0
        self.last_source = "read"
        self.reads = 0

    def _stamp(self) -> None:
        """Note a read that just returned."""
        self.reads += 1
        self.last_read_ns = now = time.perf_counter_ns()
        kernel = self._kernel.last_rx_ns if self._kernel is not None else None
        if kernel is None:
            self.last_stamp_ns, self.last_source = now, "read"
        else:
            self.last_stamp_ns, self.last_source = kernel, "kernel"


class _StampedStream(ReadStamps, httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        super().__init__(stream)
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._stream.read(max_bytes, timeout)
        self._stamp()
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _StampedStream(self._stream.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _AsyncStampedStream(ReadStamps, httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        super().__init__(stream)
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = await self._stream.read(max_bytes, timeout)
        self._stamp()
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return _AsyncStampedStream(await self._stream.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class StampingBackend(httpcore.NetworkBackend):
    """httpcore network backend whose streams stamp every read."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _StampedStream(self._backend.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _StampedStream(self._backend.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class AsyncStampingBackend(httpcore.AsyncNetworkBackend):
    """httpcore async network backend whose streams stamp every read."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return _AsyncStampedStream(await self._backend.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any
                                  ) -> httpcore.AsyncNetworkStream:
        return _AsyncStampedStream(await self._backend.connect_unix_socket(*args, **kwargs))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def batched(timing: StreamTiming) -> None:
    """The latest chunk shares its read with the next one: a kernel stamp is then the later
    packet's arrival, an upper bound for this chunk (source ``"kernel-batch"``)."""
    if timing.chunk_sources and timing.chunk_sources[-1] == "kernel":
        timing.chunk_sources[-1] = "kernel-batch"
        if timing.first_content_ns == timing.chunk_arrivals_ns[-1] and (
                timing.first_content_source == "kernel"):
            timing.first_content_source = "kernel-batch"


def read_stamp(response: httpx.Response) -> ReadStamps | None:
    """The stamped stream ``response`` was read from, or None (another transport)."""
    stream = response.extensions.get("network_stream")
    return stream if isinstance(stream, ReadStamps) else None
