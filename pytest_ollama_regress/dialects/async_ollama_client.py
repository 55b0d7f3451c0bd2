"""asyncio client for Ollama's chat and generate endpoints, timed like :class:`OllamaClient`.

One event loop reads every stream: where many streams run at once (a load test), no reading
thread waits for the GIL between a packet's arrival and its read, so a read rarely carries
two chunks and each chunk keeps its own kernel receive stamp (``chunk_sources`` ``kernel``
rather than ``kernel-batch``; see :mod:`~.kernel_stamps`). Plain ``http://`` servers on Linux
are read that way; ``https://`` or other systems use httpcore's AnyIO backend with read
stamps. Errors, deadlines (per asyncio task), payloads and the :class:`Completion` are the
sync client's. Use it from one event loop (``asyncio.run``, or an async test)::

    async with AsyncOllamaClient(url) as client:
        answers = await asyncio.gather(*(client.generate(model, p) for p in prompts))
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpcore
import httpx

from pytest_ollama_regress.dialects.client_base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from pytest_ollama_regress.dialects.deadlines import AsyncDeadlineBackend
from pytest_ollama_regress.dialects.kernel_stamps_async import AsyncKernelStampBackend
from pytest_ollama_regress.dialects.ndjson_stream import NdjsonAssembly
from pytest_ollama_regress.dialects.ollama_payloads import (
    ImageInput,
    chat_payload,
    generate_payload,
)
from pytest_ollama_regress.dialects.pool_transport import AsyncLaneTransport, lane_settings
from pytest_ollama_regress.dialects.read_stamps import AsyncStampingBackend, read_stamp
from pytest_ollama_regress.dialects.results import Completion, OllamaError
from pytest_ollama_regress.dialects.timing import StreamTiming

__all__ = ["AsyncOllamaClient", "async_stamping_transport"]

_SENT_EVENT = "http11.send_request_headers.started"


def async_stamping_transport(limits: httpx.Limits, *, tls: bool) -> AsyncLaneTransport:
    """An httpx async transport whose streams stamp every read and obey the deadlines;
    kernel receive stamps on plain TCP (``tls`` False); one connection per request in flight,
    at most ``limits.max_connections``."""
    backend: httpcore.AsyncNetworkBackend = httpcore.AnyIOBackend()
    if not tls:
        backend = AsyncKernelStampBackend(backend)
    stamped = AsyncStampingBackend(AsyncDeadlineBackend(backend))
    settings = lane_settings(limits, True)
    return AsyncLaneTransport(
        lambda: httpcore.AsyncConnectionPool(network_backend=stamped, **settings),
        limits.max_connections or 128)


class AsyncOllamaClient(ClientBase):
    """Async client for one Ollama server (timeouts as :class:`ClientBase` says)."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 5.0,
        stall_timeout: float = 60.0,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_connections: int = 128,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(base_url, connect_timeout=connect_timeout, stall_timeout=stall_timeout,
                         request_timeout=request_timeout)
        limits = httpx.Limits(max_connections=max_connections,
                              max_keepalive_connections=max_connections)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=self._timeout(),
            transport=async_stamping_transport(limits,
                                               tls=self.base_url.startswith("https:")),
            headers={"Accept": "application/json", **(headers or {})},
        )

    async def __aenter__(self) -> AsyncOllamaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"AsyncOllamaClient({self.base_url!r})"

    async def version(self) -> str:
        """``GET /api/version``; an OllamaError if the answer is not Ollama's."""
        with self._whole():
            response, url = await self._open("GET", "/api/version", None, StreamTiming())
            body = await self._read_all(response, url)
        try:
            version = json.loads(body).get("version")
        except (ValueError, AttributeError):
            version = None
        if not isinstance(version, str):
            raise OllamaError(200, f"not an Ollama API: /api/version answered {body[:120]!r}",
                              url=url)
        return version

    async def chat(self, model: str, messages: Iterable[Mapping[str, Any]], *,
                   stream: bool = True, options: Mapping[str, Any] | None = None,
                   **extra: Any) -> Completion:
        """``POST /api/chat`` (keywords as :meth:`OllamaClient.chat`)."""
        payload = chat_payload(model, messages, stream=stream, options=options, **extra)
        return await self._infer("/api/chat", payload, chat=True, stream=stream)

    async def generate(self, model: str, prompt: str = "", *,
                       images: Sequence[ImageInput] | None = None, stream: bool = True,
                       options: Mapping[str, Any] | None = None, **extra: Any) -> Completion:
        """``POST /api/generate`` (keywords as :meth:`OllamaClient.generate`)."""
        payload = generate_payload(model, prompt, images=images, stream=stream,
                                   options=options, **extra)
        return await self._infer("/api/generate", payload, chat=False, stream=stream)

    # --- internals --------------------------------------------------------------------------

    async def _open(self, method: str, path: str, payload: Any,
                    timing: StreamTiming) -> tuple[httpx.Response, str]:
        """Send a request, stamping ``timing``; returns the open response (status < 400)."""

        async def trace(event: str, info: object) -> None:
            if event == _SENT_EVENT:
                timing.request_sent_ns = time.perf_counter_ns()

        url = self._url(path)
        request = self._http.build_request(method, path, json=payload,
                                           extensions={"trace": trace})
        timing.request_sent_ns = time.perf_counter_ns()  # replaced by the trace event
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, url, in_stream=False) from None
        stamped = read_stamp(response)
        timing.first_byte_ns = stamped.last_stamp_ns if stamped else time.perf_counter_ns()
        timing.stamp_source = stamped.last_source if stamped else "line"
        if response.status_code >= 400:
            await self._read_all(response, url)
            raise self._http_error(response, url)
        return response, url

    async def _read_all(self, response: httpx.Response, url: str) -> bytes:
        """Read a whole body and close the response; transport failures as OllamaError."""
        try:
            return await response.aread()
        except httpx.TransportError as exc:
            raise self._transport_error(exc, url, in_stream=False) from None
        finally:
            await response.aclose()

    async def _infer(self, path: str, payload: dict[str, Any], *, chat: bool,
                     stream: bool) -> Completion:
        timing = StreamTiming()
        if not stream:
            with self._whole():
                response, url = await self._open("POST", path, payload, timing)
                body = await self._read_all(response, url)
            whole = NdjsonAssembly(response, url, timing, chat=chat, streamed=False)
            whole.feed(body.decode("utf-8", "replace"))
            return whole.finish()
        with self._streaming() as lim:
            response, url = await self._open("POST", path, payload, timing)
            lim.progress()
            assembly = NdjsonAssembly(response, url, timing, chat=chat)
            try:
                async for line in response.aiter_lines():
                    assembly.feed(line)
            except httpx.TransportError as exc:
                raise self._transport_error(exc, url, in_stream=True,
                                            partial=assembly.partial()) from None
            finally:
                await response.aclose()
            return assembly.finish()
