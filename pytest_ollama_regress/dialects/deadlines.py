"""Deadlines that bound a whole HTTP request, not one socket read.

httpx's timeouts apply to each read, write and connect, so a server that trickles a byte (or a
blank line) every half second keeps any request alive forever. Here every request runs under
:func:`limits`: a **total** deadline for the whole request (connect, send, headers, body) and,
for streams, a **stall** deadline that only moves when the caller sees progress
(:meth:`Limits.progress`, e.g. one NDJSON chunk; blank lines and stray bytes do not count).

They are enforced at the socket: :class:`DeadlineBackend` wraps httpcore's network backend and
shortens every connect/read/write timeout to what is left, raising httpcore's own timeout
exceptions (so httpx reports ``ConnectTimeout``/``ReadTimeout``/``WriteTimeout``) when nothing
is left; :attr:`Limits.expired` then says which deadline ran out. :class:`AsyncDeadlineBackend`
does the same for httpcore's async streams. Limits live in a context variable: per thread, and
per asyncio task, so one client can serve several threads or tasks.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from pytest_ollama_regress.dialects.pool_transport import PoolTransport, pool_settings

__all__ = ["AsyncDeadlineBackend", "DeadlineBackend", "Limits", "current", "limits",
           "transport"]


@dataclass
class Limits:
    """The deadlines of the request in flight on this thread (``None``: unbounded)."""

    total: float | None = None  # seconds for the whole request
    stall: float | None = None  # seconds without progress
    started: float = field(default_factory=time.monotonic)
    mark: float = field(default_factory=time.monotonic)  # last progress
    expired: str | None = None  # "total" or "stall" once one ran out

    def progress(self) -> None:
        """The caller saw progress (a chunk): the stall deadline moves on."""
        self.mark = time.monotonic()

    def remaining(self) -> tuple[float | None, str | None]:
        """(seconds left, which deadline is nearest); ``(None, None)`` when unbounded."""
        now = time.monotonic()
        seconds: float | None = None
        which: str | None = None
        if self.total is not None:
            seconds, which = self.started + self.total - now, "total"
        if self.stall is not None:
            stall_left = self.mark + self.stall - now
            if seconds is None or stall_left < seconds:
                seconds, which = stall_left, "stall"
        return seconds, which

    def clamp(self, timeout: float | None) -> tuple[float | None, str | None]:
        """``timeout`` shortened to what is left: (timeout, the deadline that set it or None)."""
        seconds, which = self.remaining()
        if seconds is None or (timeout is not None and timeout <= seconds):
            return timeout, None
        return max(seconds, 0.0), which


_current: contextvars.ContextVar[Limits | None] = contextvars.ContextVar(
    "pytest_ollama_regress_limits", default=None)


def current() -> Limits | None:
    """The limits of this thread's (or asyncio task's) request in flight, if any."""
    return _current.get()


@contextlib.contextmanager
def limits(total: float | None = None, stall: float | None = None) -> Iterator[Limits]:
    """Run one request under these deadlines (nested calls restore the outer ones)."""
    lim = Limits(total=total, stall=stall)
    token = _current.set(lim)
    try:
        yield lim
    finally:
        _current.reset(token)


def _limited(timeout: float | None, error: type[Exception]) -> tuple[float | None, str | None]:
    """(timeout clamped to the current deadlines, the deadline that clamped it or None)."""
    lim = current()
    if lim is None:
        return timeout, None
    clamped, which = lim.clamp(timeout)
    if which is not None and clamped is not None and clamped <= 0:
        lim.expired = which
        raise error(f"{which} deadline passed")
    return clamped, which


def _call(fn: Any, timeout: float | None, error: type[Exception], *args: Any) -> Any:
    """``fn(*args, timeout)`` with the timeout clamped; a timeout it hits is blamed right."""
    clamped, which = _limited(timeout, error)
    try:
        return fn(*args, clamped)
    except httpcore.TimeoutException:
        lim = current()
        if lim is not None and which is not None:
            lim.expired = which  # the deadline set this timeout, not the per-read one
        raise


async def _acall(fn: Callable[[float | None], Awaitable[Any]], timeout: float | None,
                 error: type[Exception]) -> Any:
    """``await fn(timeout)`` with the timeout clamped, as :func:`_call`."""
    clamped, which = _limited(timeout, error)
    try:
        return await fn(clamped)
    except httpcore.TimeoutException:
        lim = current()
        if lim is not None and which is not None:
            lim.expired = which
        raise


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose reads and writes end at the current request's deadlines."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _call(self._stream.read, timeout, httpcore.ReadTimeout, max_bytes)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _call(self._stream.write, timeout, httpcore.WriteTimeout, buffer)

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return DeadlineStream(self._stream.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore network backend whose connects and streams obey the current deadlines."""

    def __init__(self, backend: httpcore.NetworkBackend | None = None) -> None:
        self._backend = backend or httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        stream = _call(
            lambda t: self._backend.connect_tcp(host, port, t, *args, **kwargs),
            timeout, httpcore.ConnectTimeout,
        )
        return DeadlineStream(stream)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        stream = _call(
            lambda t: self._backend.connect_unix_socket(path, t, *args, **kwargs),
            timeout, httpcore.ConnectTimeout,
        )
        return DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class AsyncDeadlineStream(httpcore.AsyncNetworkStream):
    """An async network stream whose reads and writes end at the current deadlines."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await _acall(lambda t: self._stream.read(max_bytes, t), timeout,
                            httpcore.ReadTimeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await _acall(lambda t: self._stream.write(buffer, t), timeout, httpcore.WriteTimeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return AsyncDeadlineStream(await self._stream.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
    """httpcore async network backend whose connects and streams obey the current deadlines."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        stream = await _acall(
            lambda t: self._backend.connect_tcp(host, port, t, *args, **kwargs),
            timeout, httpcore.ConnectTimeout,
        )
        return AsyncDeadlineStream(stream)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        stream = await _acall(
            lambda t: self._backend.connect_unix_socket(path, t, *args, **kwargs),
            timeout, httpcore.ConnectTimeout,
        )
        return AsyncDeadlineStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def transport(*, verify: bool = True, limits: httpx.Limits | None = None) -> PoolTransport:
    """An httpx transport obeying :func:`limits`."""
    pool = httpcore.ConnectionPool(network_backend=DeadlineBackend(),
                                   **pool_settings(limits or httpx.Limits(), verify))
    return PoolTransport(pool)
