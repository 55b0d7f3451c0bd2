"""What the clients return and raise: :class:`Completion`, :class:`DebugRender` and the one
error type :class:`OllamaError` (see :mod:`~.ollama_client` for when it is raised)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from pytest_ollama_regress.dialects.timing import ServerMetrics, StreamTiming

__all__ = ["Completion", "DebugRender", "OllamaError"]


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


