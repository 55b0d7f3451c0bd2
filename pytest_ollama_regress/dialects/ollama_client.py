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

import base64
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpcore
import httpx

from pytest_ollama_regress.dialects import deadlines
from pytest_ollama_regress.dialects.kernel_stamps import KernelStampBackend, kernel_stream
from pytest_ollama_regress.dialects.timing import ServerMetrics, StreamTiming

__all__ = ["Completion", "DebugRender", "OllamaClient", "OllamaError"]

DEFAULT_REQUEST_TIMEOUT = 600.0

ImageInput = bytes | bytearray | memoryview | str
ProgressCallback = Callable[[dict[str, Any]], object]

_SENT_EVENT = "http11.send_request_headers.started"
_EMPTY: dict[str, Any] = {}


class _StampedStream(httpcore.NetworkStream):
    """A connection's network stream that remembers when its latest read's data arrived.

    A line handed over by ``iter_lines`` was completed by the latest socket read (httpx yields
    every complete line of one read before it reads again). ``last_read_ns`` is when that read
    returned to this process; ``last_stamp_ns`` is the best stamp of its data: the kernel's
    receive stamp where the socket gives one (``last_source`` ``"kernel"``, see
    :mod:`~.kernel_stamps`), else the read's (``"read"``).
    """

    __slots__ = ("_stream", "_kernel", "last_read_ns", "last_stamp_ns", "last_source", "reads")

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream
        self._kernel = kernel_stream(stream)
        self.last_read_ns = 0
        self.last_stamp_ns = 0
        self.last_source = "read"
        #: reads so far: lines with the same count came in one read
        self.reads = 0

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._stream.read(max_bytes, timeout)
        self.reads += 1
        self.last_read_ns = now = time.perf_counter_ns()
        kernel = self._kernel.last_rx_ns if self._kernel is not None else None
        if kernel is None:
            self.last_stamp_ns, self.last_source = now, "read"
        else:
            self.last_stamp_ns, self.last_source = kernel, "kernel"
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _StampedStream(self._stream.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _StampingBackend(httpcore.NetworkBackend):
    """httpcore network backend whose streams stamp every read (see ``_StampedStream``)."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _StampedStream(self._backend.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _StampedStream(self._backend.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _stamping_transport(limits: httpx.Limits) -> tuple[httpx.HTTPTransport, bool]:
    """httpx's own transport whose streams stamp reads and obey :mod:`deadlines`, and whether
    that took.

    If a future httpx lays its pool out differently (see :func:`deadlines.install`), the
    transport is unchanged (False): chunks are stamped when ``iter_lines`` yields them and
    deadlines are checked between reads instead.
    """
    transport = httpx.HTTPTransport(limits=limits)
    enforced = deadlines.install(
        transport,
        lambda backend: _StampingBackend(deadlines.DeadlineBackend(KernelStampBackend(backend))),
    )
    return transport, enforced


def batched(timing: StreamTiming) -> None:
    """The latest chunk shares its read with the next one: a kernel stamp is then the later
    packet's arrival, an upper bound for this chunk (source ``"kernel-batch"``)."""
    if timing.chunk_sources and timing.chunk_sources[-1] == "kernel":
        timing.chunk_sources[-1] = "kernel-batch"
        if timing.first_content_ns == timing.chunk_arrivals_ns[-1] and (
                timing.first_content_source == "kernel"):
            timing.first_content_source = "kernel-batch"


def read_stamp(response: httpx.Response) -> _StampedStream | None:
    stream = response.extensions.get("network_stream")
    return stream if isinstance(stream, _StampedStream) else None


class OllamaError(Exception):
    """Any failure talking to an Ollama server.

    ``status`` is the HTTP status (200 for an error line inside a stream, 0 when no HTTP
    response was had: connection refused, connect timeout, stall). ``message`` is the
    server's error text as sent (or the transport cause). ``in_stream`` is True when the
    error arrived after a 200 stream had started. ``partial`` holds what had been received of
    a stream before the failure, if anything.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        url: str = "",
        in_stream: bool = False,
        partial: Completion | None = None,
    ) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.url = url
        self.in_stream = in_stream
        self.partial = partial

    def __str__(self) -> str:
        where = f", {self.url}" if self.url and self.url not in self.message else ""
        stream = ", in stream" if self.in_stream else ""
        return f"{self.message.rstrip()} (status {self.status}{where}{stream})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (self.status, self.message, self.url, self.in_stream))


def _rebuild_error(status: int, message: str, url: str, in_stream: bool) -> OllamaError:
    return OllamaError(status, message, url=url, in_stream=in_stream)


@dataclass(slots=True)
class Completion:
    """A chat or generate result, streamed or not.

    ``text``/``thinking`` are the concatenated content/thinking; ``final`` is the last object
    (the ``done`` chunk); ``chunks`` every parsed object in order; ``message`` (chat only) the
    assistant message as a non-streaming response would give it; ``logprobs`` one entry per
    generated token (``token``, ``logprob``, ``top_logprobs``) when the request asked for
    ``logprobs`` (Ollama >= 0.12.11), else empty.
    """

    text: str
    thinking: str
    done_reason: str | None
    final: dict[str, Any]
    chunks: list[dict[str, Any]]
    timing: StreamTiming
    metrics: ServerMetrics
    message: dict[str, Any] | None = None
    tool_calls: list[Any] = field(default_factory=list)
    status: int = 200
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    logprobs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class DebugRender:
    """The result of a ``_debug_render_only`` request.

    ``shape`` is ``"minimal"`` for v0.11.5-0.11.11 (``{model, created_at, _debug_info}``, no
    ``done``) and ``"full"`` for >= 0.12 (a normal response with ``done: false`` and empty
    message/response). ``image_count`` is 0 when the server omitted it (``omitempty``).
    """

    rendered_template: str
    image_count: int
    shape: Literal["minimal", "full"]
    raw: dict[str, Any]


def encode_image(image: ImageInput) -> str:
    """Base64-encode raw image bytes; a ``str`` is taken as already encoded and sent as is."""
    if isinstance(image, str):
        return image
    if isinstance(image, (bytes, bytearray, memoryview)):
        return base64.b64encode(image).decode("ascii")
    raise TypeError(f"image must be bytes or a base64 str, not {type(image).__name__}")


def _encode_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for message in messages:
        msg = dict(message)
        if msg.get("images"):
            msg["images"] = [encode_image(img) for img in msg["images"]]
        out.append(msg)
    return out


def _put(payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Add the fields that are not None (so ``keep_alive=0`` and ``think=False`` are sent)."""
    for key, value in fields.items():
        if value is not None:
            payload[key] = value
    return payload


def _check_base_url(base_url: str) -> str:
    base = base_url.strip().rstrip("/")
    try:
        url = httpx.URL(base)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"invalid Ollama URL {base_url!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"invalid Ollama URL {base_url!r}: "
            "expected http://HOST:PORT (e.g. http://127.0.0.1:11434)"
        )
    return base


class OllamaClient:
    """Synchronous client for one Ollama server.

    * ``connect_timeout`` bounds connecting and waiting for a pooled connection.
    * ``stall_timeout``: a stream (chat, generate, pull) that sends no chunk for that long,
      before the first one (model load included) or between two, raises an
      :class:`OllamaError` saying "stalled"; blank keep-alive lines and partial lines are not
      chunks. A non-streaming request must complete (send, headers, whole body) within it.
    * ``request_timeout`` bounds a whole stream, however steadily it sends (default
      ``DEFAULT_REQUEST_TIMEOUT``, 600 s), and any non-streaming request too when shorter
      than ``stall_timeout``.

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
        self.base_url = _check_base_url(base_url)
        self.connect_timeout = connect_timeout
        self.stall_timeout = stall_timeout
        self.request_timeout = request_timeout
        transport, enforced = _stamping_transport(
            httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        )
        # Deadlines are enforced at the socket; only without that do reading loops check them.
        self._check = (lambda: None) if enforced else deadlines.check
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(
                connect=connect_timeout,
                read=stall_timeout,
                write=stall_timeout,
                pool=connect_timeout,
            ),
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
        return self._call("POST", "/api/show", _put({"model": model}, verbose=verbose or None))

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
                self._check()
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
        payload = _put(
            {"model": model, "messages": _encode_messages(messages), "stream": stream},
            options=options,
            keep_alive=keep_alive,
            think=think,
            truncate=truncate,
            format=format,
            tools=tools,
        )
        payload.update(extra)
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
        payload = _put(
            {"model": model, "prompt": prompt, "stream": stream},
            images=[encode_image(i) for i in images] if images is not None else None,
            system=system,
            options=options,
            keep_alive=keep_alive,
            raw=raw,
            truncate=truncate,
            think=think,
        )
        payload.update(extra)
        return self._infer("/api/generate", payload, chat=False, stream=stream)

    def unload(self, model: str) -> Completion:
        """Unload ``model`` (chat with no messages and ``keep_alive: 0``)."""
        return self.chat(model, [], stream=False, keep_alive=0)

    def render_chat(
        self, model: str, messages: Iterable[Mapping[str, Any]], **kw: Any
    ) -> DebugRender:
        """The prompt the server would run for a chat (``_debug_render_only``, >= 0.11.5)."""
        payload = {"model": model, "messages": _encode_messages(messages), **kw}
        return self._render("/api/chat", payload)

    def render_generate(
        self,
        model: str,
        prompt: str,
        images: Sequence[ImageInput] | None = None,
        **kw: Any,
    ) -> DebugRender:
        """The prompt the server would run for a generate (``_debug_render_only``)."""
        payload = _put(
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

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _whole(self) -> Any:
        """Deadlines of a non-streaming request: all of it within the stall timeout."""
        return deadlines.limits(total=min(self.stall_timeout, self.request_timeout))

    def _streaming(self) -> Any:
        """Deadlines of a stream: a chunk per stall timeout, all of it within the request timeout."""
        return deadlines.limits(total=self.request_timeout, stall=self.stall_timeout)

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
        perf = time.perf_counter_ns
        stamped = read_stamp(response)
        loads = json.loads
        arrivals = timing.chunk_arrivals_ns
        sources = timing.chunk_sources
        tokens = timing.token_arrivals_ns
        chunks: list[dict[str, Any]] = []
        texts: list[str] = []
        thoughts: list[str] = []
        tool_calls: list[Any] = []
        content_key = "content" if chat else "response"
        final: dict[str, Any] | None = None

        lim = deadlines.current()
        check = self._check
        last_read = -1  # the read that brought the latest chunk

        def partial() -> Completion:
            return self._assemble(
                chunks, texts, thoughts, tool_calls, final or _EMPTY, timing, response, chat
            )

        try:
            for line in response.iter_lines():
                if stamped is not None:
                    t, source = stamped.last_stamp_ns, stamped.last_source
                else:
                    t, source = perf(), "line"
                check()
                if not line:
                    continue  # a blank line is no chunk: the stall deadline does not move
                if lim is not None:
                    lim.progress()
                try:
                    obj = loads(line)
                except ValueError:
                    obj = None
                if type(obj) is not dict:
                    raise OllamaError(
                        response.status_code,
                        f"invalid NDJSON line: {line[:120]!r}",
                        url=url,
                        in_stream=True,
                        partial=partial(),
                    )
                if stamped is not None:
                    if stamped.reads == last_read:
                        batched(timing)  # the previous chunk came in this read too
                    last_read = stamped.reads
                arrivals.append(t)
                sources.append(source)
                chunks.append(obj)
                if "error" in obj:
                    raise OllamaError(
                        response.status_code,
                        str(obj["error"]),
                        url=url,
                        in_stream=True,
                        partial=partial(),
                    )
                src = (obj.get("message") or _EMPTY) if chat else obj
                content = src.get(content_key)
                thinking = src.get("thinking")
                calls = src.get("tool_calls")
                if content or thinking or calls:
                    tokens.append(t)
                    if content:
                        texts.append(content)
                        if timing.first_content_ns is None:
                            timing.first_content_ns = t
                            timing.first_content_source = source
                            timing.first_content_read_ns = (
                                stamped.last_read_ns if stamped is not None else t)
                    if thinking:
                        thoughts.append(thinking)
                        if timing.first_thinking_ns is None:
                            timing.first_thinking_ns = t
                    if calls:
                        tool_calls.extend(calls)
                if obj.get("done"):
                    final = obj
        except httpx.TransportError as exc:
            raise self._transport_error(exc, url, in_stream=True, partial=partial()) from None
        finally:
            response.close()
        timing.end_ns = perf()
        if tokens:
            timing.last_token_ns = tokens[-1]
        if final is None:
            raise OllamaError(
                response.status_code,
                "stream ended without a final done chunk",
                url=url,
                in_stream=True,
                partial=partial(),
            )
        return partial()

    @staticmethod
    def _assemble(
        chunks: list[dict[str, Any]],
        texts: list[str],
        thoughts: list[str],
        tool_calls: list[Any],
        final: dict[str, Any],
        timing: StreamTiming,
        response: httpx.Response,
        chat: bool,
    ) -> Completion:
        text = "".join(texts)
        thinking = "".join(thoughts)
        message = None
        if chat:
            message = {"role": "assistant", "content": text}
            if thinking:
                message["thinking"] = thinking
            if tool_calls:
                message["tool_calls"] = tool_calls
        return Completion(
            text=text,
            thinking=thinking,
            done_reason=final.get("done_reason"),
            final=final,
            chunks=chunks,
            timing=timing,
            metrics=ServerMetrics.from_final(final),
            message=message,
            tool_calls=tool_calls,
            status=response.status_code,
            headers=response.headers,
            logprobs=[entry for chunk in chunks for entry in chunk.get("logprobs") or ()],
        )

    @staticmethod
    def _parse_line(line: str | bytes, response: httpx.Response, url: str) -> dict[str, Any]:
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            raise OllamaError(
                response.status_code, f"invalid JSON from server: {line[:120]!r}", url=url
            )
        return obj

    @staticmethod
    def _http_error(response: httpx.Response, url: str) -> OllamaError:
        """An error from a >= 400 response: its JSON ``error`` text, else its plain body."""
        text = response.text
        message = text.strip()
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict) and "error" in body:
            message = str(body["error"])
        if not message:
            message = response.reason_phrase or f"HTTP {response.status_code}"
        return OllamaError(response.status_code, message, url=url)

    def _transport_error(
        self,
        exc: httpx.TransportError,
        url: str,
        *,
        in_stream: bool,
        partial: Completion | None = None,
    ) -> OllamaError:
        """Status-0 OllamaError naming the URL and the cause."""
        lim = deadlines.current()
        expired = lim.expired if lim is not None else None
        if lim is not None and expired == "stall":
            msg = f"stalled: no chunk from {url} for {lim.stall:g}s (stall timeout)"
        elif lim is not None and expired == "total" and lim.stall is not None:
            msg = (f"deadline: the stream from {url} did not end within {lim.total:g}s "
                   "(request timeout)")
        elif lim is not None and expired == "total":
            which = "stall timeout" if lim.total == self.stall_timeout else "request timeout"
            msg = (f"stalled: no complete answer from {url} within {lim.total:g}s ({which}; "
                   "a non-streaming request must complete within it)")
        elif isinstance(exc, httpx.ConnectTimeout):
            msg = f"cannot connect to {url}: connect timed out after {self.connect_timeout}s"
        elif isinstance(exc, httpx.ConnectError):
            msg = f"cannot connect to {url}: {exc or type(exc).__name__}"
        elif isinstance(exc, httpx.ReadTimeout):
            msg = f"stalled: no data from {url} for {self.stall_timeout}s (stall timeout)"
        elif isinstance(exc, httpx.WriteTimeout):
            msg = f"stalled: sending to {url} blocked for {self.stall_timeout}s (stall timeout)"
        elif isinstance(exc, httpx.PoolTimeout):
            msg = f"no free connection to {url} within {self.connect_timeout}s (pool exhausted)"
        else:
            msg = f"connection to {url} failed: {type(exc).__name__}: {exc}"
        return OllamaError(0, msg, url=url, in_stream=in_stream, partial=partial)
