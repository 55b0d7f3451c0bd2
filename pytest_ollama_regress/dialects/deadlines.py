"""Deadlines that bound a whole HTTP request, not one socket read.

httpx's timeouts apply to each read, write and connect, so a server that trickles a byte (or a
blank line) every half second keeps any request alive forever. Here every request runs under
:func:`limits`: a **total** deadline for the whole request (connect, send, headers, body) and,
for streams, a **stall** deadline that only moves when the caller sees progress
(:meth:`Limits.progress`, e.g. one NDJSON chunk; blank lines and stray bytes do not count).

They are enforced at the socket: :class:`DeadlineBackend` wraps httpcore's network backend and
shortens every connect/read/write timeout to what is left, raising httpcore's own timeout
exceptions (so httpx reports ``ConnectTimeout``/``ReadTimeout``/``WriteTimeout``) when nothing
is left; :attr:`Limits.expired` then says which deadline ran out. Limits are per thread, so one
client can serve several threads. :func:`check` lets a reading loop enforce them too, for the
case where the backend could not be installed (see :func:`transport`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

__all__ = ["DeadlineBackend", "Limits", "check", "current", "limits", "transport"]


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


_local = threading.local()


def current() -> Limits | None:
    """The limits of this thread's request in flight, if any."""
    return getattr(_local, "limits", None)


@contextlib.contextmanager
def limits(total: float | None = None, stall: float | None = None) -> Iterator[Limits]:
    """Run one request under these deadlines (nested calls restore the outer ones)."""
    outer = current()
    _local.limits = lim = Limits(total=total, stall=stall)
    try:
        yield lim
    finally:
        _local.limits = outer


def check() -> None:
    """Raise ``httpx.ReadTimeout`` if a deadline of this thread's request has passed."""
    lim = current()
    if lim is None:
        return
    seconds, which = lim.remaining()
    if seconds is not None and seconds <= 0:
        lim.expired = which
        raise httpx.ReadTimeout(f"{which} deadline passed")


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


def install(transport: httpx.HTTPTransport, wrap: Any) -> bool:
    """Wrap the network backend of httpx's own connection pool with ``wrap(backend)``.

    httpx does not expose httpcore's ``network_backend`` parameter, so it is set on the pool
    httpx built. False (transport unchanged) if a future httpx lays its pool out differently;
    then only :func:`check` in the reading loops enforces the deadlines.
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(pool, httpcore.ConnectionPool) and isinstance(backend, httpcore.NetworkBackend):
        pool._network_backend = wrap(backend)
        return True
    return False


def transport(**kwargs: Any) -> httpx.HTTPTransport:
    """httpx's transport (``kwargs`` as for ``httpx.HTTPTransport``) obeying :func:`limits`."""
    result = httpx.HTTPTransport(**kwargs)
    install(result, DeadlineBackend)
    return result
