"""httpx transports over an httpcore connection pool whose network backend we choose.

httpx's own transports do not take httpcore's ``network_backend``; httpx documents custom
transports (``httpx.BaseTransport.handle_request``) as the way to plug in another one. These
two are that, for a pool built by the caller: :class:`PoolTransport` (sync) and
:class:`AsyncPoolTransport`. httpcore's exceptions become httpx's of the same name, the most
specific one that matches (a ``ReadTimeout`` stays a ``ReadTimeout``), so callers catch
``httpx.TransportError`` as with httpx's own transport.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpcore
import httpx

__all__ = ["AsyncPoolTransport", "PoolTransport", "httpx_errors", "pool_settings"]

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
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with httpx_errors():
            yield from self._stream

    def close(self) -> None:
        if hasattr(self._stream, "close"):
            self._stream.close()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


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
