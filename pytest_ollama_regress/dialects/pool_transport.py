"""httpx transports over httpcore connection pools whose network backend we choose.

httpx's own transports do not take httpcore's ``network_backend``; httpx documents custom
transports (``httpx.BaseTransport.handle_request``) as the way to plug in another one. These
are that: :class:`PoolTransport` / :class:`AsyncPoolTransport` send through one pool built by
the caller; :class:`LaneTransport` / :class:`AsyncLaneTransport` give each request in flight a
one-connection pool of its own ("lane"), lent from a free list and given back when the
response is closed. Lanes exist because httpcore's pool re-scans every connection for every
idle one (``is_idle`` called connections² times) each time a request starts or ends: with 64
streams in flight that was about 2 million calls per 256 requests, most of the async client's
CPU (``docs/benchmarks.md``). httpcore's exceptions become httpx's of the same name, the most
specific one that matches (a ``ReadTimeout`` stays a ``ReadTimeout``), so callers catch
``httpx.TransportError`` as with httpx's own transport.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpcore
import httpx

__all__ = ["AsyncLaneTransport", "AsyncPoolTransport", "LaneTransport", "PoolTransport",
           "httpx_errors", "lane_settings", "pool_settings"]

#: httpcore's exception -> httpx's; the first match wins, so subclasses come first
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def httpx_errors() -> Iterator[None]:
    """Re-raise httpcore's transport exceptions as httpx's (others pass unchanged)."""
    try:
        yield
    except Exception as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise


def pool_settings(limits: httpx.Limits, verify: bool | str | ssl.SSLContext = True
                  ) -> dict[str, Any]:
    """httpcore pool keywords for httpx ``limits`` and TLS verification."""
    return {
        "ssl_context": httpx.create_ssl_context(verify=verify),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }


def lane_settings(limits: httpx.Limits, verify: bool | str | ssl.SSLContext = True
                  ) -> dict[str, Any]:
    """httpcore keywords of one lane's pool (one connection, kept alive as ``limits`` say);
    build it once and share it: the TLS context loads the certificate store."""
    return {"ssl_context": httpx.create_ssl_context(verify=verify), "max_connections": 1,
            "max_keepalive_connections": 1, "keepalive_expiry": limits.keepalive_expiry}


def _pool_wait(request: httpx.Request) -> float | None:
    """How long ``request`` may wait for a free connection (httpx's ``pool`` timeout)."""
    timeout = request.extensions.get("timeout")
    return timeout.get("pool") if isinstance(timeout, dict) else None


def _core_request(request: httpx.Request, content: Any) -> httpcore.Request:
    url = request.url
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                         target=url.raw_path),
        headers=request.headers.raw,
        content=content,
        extensions=request.extensions,
    )


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Any, closed: Callable[[], None] | None = None) -> None:
        self._stream = stream
        self._closed = closed  # called once, after the stream closed

    def __iter__(self) -> Iterator[bytes]:
        with httpx_errors():
            yield from self._stream

    def close(self) -> None:
        try:
            if hasattr(self._stream, "close"):
                self._stream.close()
        finally:
            closed, self._closed = self._closed, None
            if closed is not None:
                closed()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, stream: Any, closed: Callable[[], None] | None = None) -> None:
        self._stream = stream
        self._closed = closed

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        try:
            if hasattr(self._stream, "aclose"):
                await self._stream.aclose()
        finally:
            closed, self._closed = self._closed, None
            if closed is not None:
                closed()


class PoolTransport(httpx.BaseTransport):
    """An httpx transport sending through ``pool`` (closed with the transport)."""

    def __init__(self, pool: httpcore.ConnectionPool) -> None:
        self.pool = pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with httpx_errors():
            answer = self.pool.handle_request(_core_request(request, request.stream))
        return httpx.Response(status_code=answer.status, headers=answer.headers,
                              stream=_Body(answer.stream), extensions=answer.extensions)

    def close(self) -> None:
        self.pool.close()


class AsyncPoolTransport(httpx.AsyncBaseTransport):
    """An httpx async transport sending through ``pool`` (closed with the transport)."""

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        self.pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with httpx_errors():
            answer = await self.pool.handle_async_request(_core_request(request, request.stream))
        return httpx.Response(status_code=answer.status, headers=answer.headers,
                              stream=_AsyncBody(answer.stream), extensions=answer.extensions)

    async def aclose(self) -> None:
        await self.pool.aclose()


class LaneTransport(httpx.BaseTransport):
    """Each request in flight on a one-connection pool of its own (``new_pool()``), at most
    ``limit`` of them; a request waits up to httpx's ``pool`` timeout for a free one.
    Safe to share between threads."""

    def __init__(self, new_pool: Callable[[], httpcore.ConnectionPool], limit: int) -> None:
        self._new_pool = new_pool
        self._limit = limit
        self._lanes: list[httpcore.ConnectionPool] = []
        self._free: list[httpcore.ConnectionPool] = []
        self._changed = threading.Condition()

    def _take(self, wait: float | None) -> httpcore.ConnectionPool:
        ends = None if wait is None else time.monotonic() + wait
        with self._changed:
            while not self._free:
                if len(self._lanes) < self._limit:
                    self._lanes.append(self._new_pool())
                    return self._lanes[-1]
                left = None if ends is None else ends - time.monotonic()
                if left is not None and left <= 0:
                    raise httpx.PoolTimeout(f"all {self._limit} connections are in use")
                self._changed.wait(left)
            return self._free.pop()  # the one used last: its connection is warm

    def _give(self, lane: httpcore.ConnectionPool) -> None:
        with self._changed:
            self._free.append(lane)
            self._changed.notify()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        lane = self._take(_pool_wait(request))
        try:
            with httpx_errors():
                answer = lane.handle_request(_core_request(request, request.stream))
        except BaseException:
            self._give(lane)
            raise
        return httpx.Response(status_code=answer.status, headers=answer.headers,
                              stream=_Body(answer.stream, lambda: self._give(lane)),
                              extensions=answer.extensions)

    def close(self) -> None:
        with self._changed:
            lanes, self._lanes, self._free = self._lanes, [], []
        for lane in lanes:
            lane.close()


class AsyncLaneTransport(httpx.AsyncBaseTransport):
    """:class:`LaneTransport` for one asyncio event loop."""

    def __init__(self, new_pool: Callable[[], httpcore.AsyncConnectionPool],
                 limit: int) -> None:
        self._new_pool = new_pool
        self._limit = limit
        self._lanes: list[httpcore.AsyncConnectionPool] = []
        self._free: list[httpcore.AsyncConnectionPool] = []
        self._waiting: collections.deque[asyncio.Future[httpcore.AsyncConnectionPool]] = (
            collections.deque())

    async def _take(self, wait: float | None) -> httpcore.AsyncConnectionPool:
        if self._free:
            return self._free.pop()
        if len(self._lanes) < self._limit:
            self._lanes.append(self._new_pool())
            return self._lanes[-1]
        handed: asyncio.Future[httpcore.AsyncConnectionPool] = (
            asyncio.get_running_loop().create_future())
        self._waiting.append(handed)
        try:
            return await asyncio.wait_for(handed, wait)
        except asyncio.TimeoutError:
            raise httpx.PoolTimeout(f"all {self._limit} connections are in use") from None

    def _give(self, lane: httpcore.AsyncConnectionPool) -> None:
        while self._waiting:
            handed = self._waiting.popleft()
            if not handed.done():
                handed.set_result(lane)
                return
        self._free.append(lane)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        lane = await self._take(_pool_wait(request))
        try:
            with httpx_errors():
                answer = await lane.handle_async_request(_core_request(request, request.stream))
        except BaseException:
            self._give(lane)
            raise
        return httpx.Response(status_code=answer.status, headers=answer.headers,
                              stream=_AsyncBody(answer.stream, lambda: self._give(lane)),
                              extensions=answer.extensions)

    async def aclose(self) -> None:
        lanes, self._lanes, self._free = self._lanes, [], []
        for lane in lanes:
            await lane.aclose()
