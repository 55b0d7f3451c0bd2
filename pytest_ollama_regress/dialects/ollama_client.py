"""httpx client for Ollama's HTTP API with one error type and per-chunk stream timing.

Every failure surfaces as :class:`OllamaError`:

* HTTP errors (``{"error": ...}`` JSON bodies, gin's plain-text ``404 page not found`` /
  ``405 method not allowed``, bare statuses) carry the HTTP status and the server's message;
* an NDJSON ``{"error": ...}`` line inside a 200 stream (mid-stream, or as the first line as
  Ollama <= 0.12.5 sends runner failures) has status 200 and ``in_stream=True``;
* connect failures, connect timeouts, stalls (no chunk for ``stall_timeout`` seconds) and
  requests past their deadline have status 0 and a message naming the URL and the cause.

Deadlines bound whole requests, not single socket reads (see :mod:`deadlines`): a server that
trickles bytes or blank lines cannot keep a request alive past them.

Timing definitions live in :mod:`pytest_ollama_regress.dialects.timing`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import httpcore
import httpx

from pytest_ollama_regress.dialects import deadlines
from pytest_ollama_regress.dialects.client_base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from pytest_ollama_regress.dialects.kernel_stamps import KernelStampBackend
from pytest_ollama_regress.dialects.ndjson_stream import NdjsonAssembly
from pytest_ollama_regress.dialects.ollama_payloads import (
    ImageInput,
    chat_payload,
    encode_image,
    encode_messages,
    generate_payload,
    put,
)
from pytest_ollama_regress.dialects.pool_transport import LaneTransport, lane_settings
from pytest_ollama_regress.dialects.read_stamps import StampingBackend, batched, read_stamp
from pytest_ollama_regress.dialects.results import Completion, DebugRender, OllamaError
from pytest_ollama_regress.dialects.timing import ServerMetrics, StreamTiming

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "Completion", "DebugRender", "ImageInput", "OllamaClient",
           "OllamaError", "batched", "encode_image", "read_stamp", "stamping_transport"]

ProgressCallback = Callable[[dict[str, Any]], object]

_SENT_EVENT = "http11.send_request_headers.started"
_EMPTY: dict[str, Any] = {}


def stamping_transport(limits: httpx.Limits, verify: bool = True) -> LaneTransport:
    """An httpx transport whose streams stamp every read (kernel receive stamps where the
    socket gives them) and obey the request :mod:`deadlines`; one connection per request in
    flight, at most ``limits.max_connections``."""
    backend = StampingBackend(deadlines.DeadlineBackend(KernelStampBackend(httpcore.SyncBackend())))
    settings = lane_settings(limits, verify)
    return LaneTransport(lambda: httpcore.ConnectionPool(network_backend=backend, **settings),
                         limits.max_connections or 128)


class OllamaClient(ClientBase):
    """Synchronous client for one Ollama server (timeouts as :class:`ClientBase` says;
    ``request_timeout`` defaults to ``DEFAULT_REQUEST_TIMEOUT``, 600 s).

    The client is safe to share between threads.
    """

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
        transport = stamping_transport(
            httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=self._timeout(),
            transport=transport,
            headers={"Accept": "application/json", **(headers or {})},
        )

    def __enter__(self) -> OllamaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __repr__(self) -> str:
        return f"OllamaClient({self.base_url!r})"

    # --- plain endpoints -------------------------------------------------------------------

    def version(self) -> str:
        """``GET /api/version``; an OllamaError if the answer is not Ollama's."""
        body = self._call("GET", "/api/version")
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, str):
            raise OllamaError(
                200,
                f"not an Ollama API: /api/version answered {json.dumps(body)[:120]}",
                url=self._url("/api/version"),
            )
        return version

    def tags(self) -> list[dict[str, Any]]:
        """``GET /api/tags``: the installed models."""
        return list(self._call("GET", "/api/tags").get("models") or [])

    def show(self, model: str, verbose: bool = False) -> dict[str, Any]:
        """``POST /api/show``."""
        return self._call("POST", "/api/show", put({"model": model}, verbose=verbose or None))

    def ps(self) -> list[dict[str, Any]]:
        """``GET /api/ps``: the loaded models."""
        return list(self._call("GET", "/api/ps").get("models") or [])

    def embed(self, model: str, input: str | Sequence[str], **kw: Any) -> dict[str, Any]:
        """``POST /api/embed``; extra keywords (``truncate``, ``dimensions``, ...) are sent."""
        return self._call("POST", "/api/embed", {"model": model, "input": input, **kw})

    def delete(self, model: str) -> None:
        """``DELETE /api/delete`` (200 with an empty body on success)."""
        self._call("DELETE", "/api/delete", {"model": model}, expect_json=False)

    def pull(
        self, model: str, on_progress: ProgressCallback | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        """``POST /api/pull`` streamed; calls ``on_progress`` per progress object.

        Returns every progress object. An ``{"error": ...}`` line (e.g. an unknown model,
        which Ollama reports after ``pulling manifest`` with HTTP 200) raises OllamaError, as
        does a stream that ends without ``success``.
        """
        url = self._url("/api/pull")
        payload = {"model": model, "stream": True, **kw}
        progress: list[dict[str, Any]] = []
        with self._streaming() as lim:
            response, _ = self._open("POST", "/api/pull", payload, StreamTiming())
            lim.progress()
            self._read_progress(response, url, lim, progress, on_progress)
        if not progress or progress[-1].get("status") != "success":
            last = progress[-1].get("status") if progress else None
            raise OllamaError(
                response.status_code,
                f"pull of {model!r} ended without 'success' (last status: {last!r})",
                url=url,
                in_stream=True,
            )
        return progress

    def _read_progress(
        self,
        response: httpx.Response,
        url: str,
        lim: deadlines.Limits,
        progress: list[dict[str, Any]],
        on_progress: ProgressCallback | None,
    ) -> None:
        try:
            for line in response.iter_lines():
                if not line:
                    continue
                lim.progress()
                obj = self._parse_line(line, response, url)
                if "error" in obj:
                    raise OllamaError(
                        response.status_code, str(obj["error"]), url=url, in_stream=True
                    )
                progress.append(obj)
                if on_progress is not None:
                    on_progress(obj)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, url, in_stream=True) from None
        finally:
            response.close()

    # --- inference --------------------------------------------------------------------------

    def chat(
        self,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        *,
        stream: bool = True,
        options: Mapping[str, Any] | None = None,
        keep_alive: float | str | None = None,
        think: bool | str | None = None,
        truncate: bool | None = None,
        format: str | Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        **extra: Any,
    ) -> Completion:
        """``POST /api/chat``; images inside messages may be bytes (base64-encoded here)."""
        payload = chat_payload(model, messages, stream=stream, options=options,
                               keep_alive=keep_alive, think=think, truncate=truncate,
                               format=format, tools=tools, **extra)
        return self._infer("/api/chat", payload, chat=True, stream=stream)

    def generate(
        self,
        model: str,
        prompt: str = "",
        *,
        images: Sequence[ImageInput] | None = None,
        system: str | None = None,
        stream: bool = True,
        options: Mapping[str, Any] | None = None,
        keep_alive: float | str | None = None,
        raw: bool | None = None,
        truncate: bool | None = None,
        think: bool | str | None = None,
        **extra: Any,
    ) -> Completion:
        """``POST /api/generate``; ``images`` are bytes (base64-encoded here) or base64 str."""
        payload = generate_payload(model, prompt, images=images, system=system, stream=stream,
                                   options=options, keep_alive=keep_alive, raw=raw,
                                   truncate=truncate, think=think, **extra)
        return self._infer("/api/generate", payload, chat=False, stream=stream)

    def unload(self, model: str) -> Completion:
        """Unload ``model`` (chat with no messages and ``keep_alive: 0``)."""
        return self.chat(model, [], stream=False, keep_alive=0)

    def render_chat(
        self, model: str, messages: Iterable[Mapping[str, Any]], **kw: Any
    ) -> DebugRender:
        """The prompt the server would run for a chat (``_debug_render_only``, >= 0.11.5)."""
        payload = {"model": model, "messages": encode_messages(messages), **kw}
        return self._render("/api/chat", payload)

    def render_generate(
        self,
        model: str,
        prompt: str,
        images: Sequence[ImageInput] | None = None,
        **kw: Any,
    ) -> DebugRender:
        """The prompt the server would run for a generate (``_debug_render_only``)."""
        payload = put(
            {"model": model, "prompt": prompt},
            images=[encode_image(i) for i in images] if images is not None else None,
        )
        payload.update(kw)
        return self._render("/api/generate", payload)

    def request(
        self, method: str, path: str, json: Any = None, *, check: bool = False, **kw: Any
    ) -> httpx.Response:
        """Raw escape hatch: the read response, whatever its status unless ``check``.

        Transport failures raise OllamaError (status 0); with ``check=True`` a status >= 400
        raises OllamaError too (e.g. gin's plain-text ``404 page not found``).
        """
        url = self._url(path)
        try:
            with self._whole():
                response = self._http.request(method, path, json=json, **kw)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, url, in_stream=False) from None
        if check and response.status_code >= 400:
            raise self._http_error(response, url)
        return response

    # --- internals --------------------------------------------------------------------------

    def _open(
        self, method: str, path: str, payload: Any, timing: StreamTiming
    ) -> tuple[httpx.Response, str]:
        """Send a request, stamping ``timing``; returns the open response (status < 400)."""

        def trace(event: str, info: object) -> None:
            if event == _SENT_EVENT:
                timing.request_sent_ns = time.perf_counter_ns()

        url = self._url(path)
        request = self._http.build_request(method, path, json=payload, extensions={"trace": trace})
        timing.request_sent_ns = time.perf_counter_ns()  # replaced by the trace event
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, url, in_stream=False) from None
        stamped = read_stamp(response)
        # no read has happened since the one that completed the headers
        timing.first_byte_ns = stamped.last_stamp_ns if stamped else time.perf_counter_ns()
        timing.stamp_source = stamped.last_source if stamped else "line"
        if response.status_code >= 400:
            self._read_all(response, url)
            raise self._http_error(response, url)
        return response, url

    def _read_all(self, response: httpx.Response, url: str) -> bytes:
        """Read a whole body and close the response; transport failures as OllamaError."""
        try:
            return response.read()
        except httpx.TransportError as exc:
            raise self._transport_error(exc, url, in_stream=False) from None
        finally:
            response.close()

    def _call(
        self, method: str, path: str, payload: Any = None, *, expect_json: bool = True
    ) -> Any:
        """A non-streaming request: returns the decoded JSON body (or None)."""
        with self._whole():
            response, url = self._open(method, path, payload, StreamTiming())
            body = self._read_all(response, url)
        if not expect_json:
            return None
        try:
            return json.loads(body)
        except ValueError:
            raise OllamaError(
                response.status_code,
                f"invalid JSON from {url}: {body[:120]!r}",
                url=url,
            ) from None

    def _render(self, path: str, payload: dict[str, Any]) -> DebugRender:
        payload = {**payload, "stream": False, "_debug_render_only": True}
        raw = self._call("POST", path, payload)
        info = raw.get("_debug_info") if isinstance(raw, dict) else None
        if not isinstance(info, dict):
            raise OllamaError(
                200,
                "no _debug_info in the response: the server ignored _debug_render_only "
                "(it needs Ollama >= 0.11.5)",
                url=self._url(path),
            )
        return DebugRender(
            rendered_template=str(info.get("rendered_template", "")),
            image_count=int(info.get("image_count") or 0),
            shape="full" if "done" in raw else "minimal",
            raw=raw,
        )

    def _infer(self, path: str, payload: dict[str, Any], *, chat: bool, stream: bool) -> Completion:
        timing = StreamTiming()
        if stream:
            with self._streaming() as lim:
                response, url = self._open("POST", path, payload, timing)
                lim.progress()
                return self._consume(response, url, timing, chat=chat)
        with self._whole():
            response, url = self._open("POST", path, payload, timing)
            body = self._read_all(response, url)
        stamped = read_stamp(response)
        t = stamped.last_stamp_ns if stamped else time.perf_counter_ns()
        source = stamped.last_source if stamped else "line"
        obj = self._parse_line(body, response, url)
        if "error" in obj:
            raise OllamaError(response.status_code, str(obj["error"]), url=url)
        timing.chunk_arrivals_ns.append(t)
        timing.chunk_sources.append(source)
        src = (obj.get("message") or _EMPTY) if chat else obj
        content = src.get("content" if chat else "response") or ""
        thinking = src.get("thinking") or ""
        tool_calls = list(src.get("tool_calls") or [])
        if content or thinking or tool_calls:
            timing.token_arrivals_ns.append(t)
            timing.last_token_ns = t
        if content:
            timing.first_content_ns = t
            timing.first_content_source = source
            timing.first_content_read_ns = stamped.last_read_ns if stamped else t
        if thinking:
            timing.first_thinking_ns = t
        timing.end_ns = t
        return Completion(
            text=content,
            thinking=thinking,
            done_reason=obj.get("done_reason"),
            final=obj,
            chunks=[obj],
            timing=timing,
            metrics=ServerMetrics.from_final(obj),
            message=obj.get("message") if chat else None,
            tool_calls=tool_calls,
            status=response.status_code,
            headers=response.headers,
            logprobs=list(obj.get("logprobs") or []),
        )

    def _consume(
        self, response: httpx.Response, url: str, timing: StreamTiming, *, chat: bool
    ) -> Completion:
        """Read an NDJSON inference stream, stamping every line (see ``StreamTiming``)."""
        stream = NdjsonAssembly(response, url, timing, chat=chat)
        try:
            for line in response.iter_lines():
                stream.feed(line)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, url, in_stream=True,
                                        partial=stream.partial()) from None
        finally:
            response.close()
        return stream.finish()
