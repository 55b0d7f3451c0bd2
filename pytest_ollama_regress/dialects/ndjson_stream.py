"""Assembling Ollama's NDJSON chat/generate stream into a :class:`Completion`, line by line,
with every chunk's arrival stamp (see :mod:`~.timing` for the definitions).

The reading loop (sync ``iter_lines`` or async ``aiter_lines``) hands each line to
:meth:`NdjsonAssembly.feed` as soon as it gets it; the stamp is the read's that completed the
line (:mod:`~.read_stamps`), or the instant of the hand-over where no stamped stream is found.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from pytest_ollama_regress.dialects import deadlines
from pytest_ollama_regress.dialects.read_stamps import batched, read_stamp
from pytest_ollama_regress.dialects.results import Completion, OllamaError
from pytest_ollama_regress.dialects.timing import ServerMetrics, StreamTiming

__all__ = ["NdjsonAssembly", "assemble"]

_EMPTY: dict[str, Any] = {}


class NdjsonAssembly:
    """One inference stream's chunks, texts and timing as its lines arrive."""

    def __init__(self, response: httpx.Response, url: str, timing: StreamTiming, *,
                 chat: bool, streamed: bool = True) -> None:
        self.response = response
        self.streamed = streamed  # False: one whole JSON body (``stream: false``)
        self.url = url
        self.timing = timing
        self.chat = chat
        self._stamped = read_stamp(response)
        self._limits = deadlines.current()
        self._content_key = "content" if chat else "response"
        self._last_read = -1  # the read that brought the latest chunk
        self.chunks: list[dict[str, Any]] = []
        self.texts: list[str] = []
        self.thoughts: list[str] = []
        self.tool_calls: list[Any] = []
        self.final: dict[str, Any] | None = None

    def feed(self, line: str) -> None:
        """Take one line just handed over (a blank line is no chunk: the stall deadline
        does not move); an error line or a line that is not a JSON object raises."""
        stamped = self._stamped
        if stamped is not None:
            t, source = stamped.last_stamp_ns, stamped.last_source
        else:
            t, source = time.perf_counter_ns(), "line"
        if not line:
            return
        if self._limits is not None:
            self._limits.progress()
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if type(obj) is not dict:
            what = "NDJSON line" if self.streamed else "JSON from server"
            raise self._error(f"invalid {what}: {line[:120]!r}")
        timing = self.timing
        if stamped is not None:
            if stamped.reads == self._last_read:
                batched(timing)  # the previous chunk came in this read too
            self._last_read = stamped.reads
        timing.chunk_arrivals_ns.append(t)
        timing.chunk_sources.append(source)
        self.chunks.append(obj)
        if "error" in obj:
            raise self._error(str(obj["error"]))
        src = (obj.get("message") or _EMPTY) if self.chat else obj
        content = src.get(self._content_key)
        thinking = src.get("thinking")
        calls = src.get("tool_calls")
        if content or thinking or calls:
            timing.token_arrivals_ns.append(t)
            if content:
                self.texts.append(content)
                if timing.first_content_ns is None:
                    timing.first_content_ns = t
                    timing.first_content_source = source
                    timing.first_content_read_ns = (
                        stamped.last_read_ns if stamped is not None else t)
            if thinking:
                self.thoughts.append(thinking)
                if timing.first_thinking_ns is None:
                    timing.first_thinking_ns = t
            if calls:
                self.tool_calls.extend(calls)
        if obj.get("done"):
            self.final = obj

    def partial(self) -> Completion:
        """What has arrived so far."""
        return assemble(self.chunks, self.texts, self.thoughts, self.tool_calls,
                        self.final or _EMPTY, self.timing, self.response, self.chat)

    def finish(self) -> Completion:
        """The whole answer once the stream ended; raises if no ``done`` chunk came."""
        timing = self.timing
        timing.end_ns = time.perf_counter_ns()
        if timing.token_arrivals_ns:
            timing.last_token_ns = timing.token_arrivals_ns[-1]
        if self.final is None:
            raise self._error("stream ended without a final done chunk")
        return self.partial()

    def _error(self, message: str) -> OllamaError:
        if not self.streamed:
            return OllamaError(self.response.status_code, message, url=self.url)
        return OllamaError(self.response.status_code, message, url=self.url, in_stream=True,
                           partial=self.partial())


def assemble(
    chunks: list[dict[str, Any]],
    texts: list[str],
    thoughts: list[str],
    tool_calls: list[Any],
    final: dict[str, Any],
    timing: StreamTiming,
    response: httpx.Response,
    chat: bool,
) -> Completion:
    """A :class:`Completion` of the chunks so far."""
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

