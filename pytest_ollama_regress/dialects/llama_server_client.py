"""httpx client for llama.cpp's ``llama-server``: ``/health``, ``/props``, ``/slots``,
``/v1/models``, ``/apply-template``, ``/tokenize``, streamed ``/v1/chat/completions`` and the
native ``/completion`` (token ids in, per-token log-probabilities out).

It shares the Ollama client's transport (socket-read stamps, request deadlines, one error type:
``OllamaError`` with the HTTP status and the server's message) and returns the same
:class:`Completion`, so a chunk is timed the same way on both families. llama.cpp's final chunk
carries ``timings`` (``prompt_n``, ``prompt_ms``, ``predicted_n``, ``predicted_ms``): they become
the :class:`ServerMetrics` (prompt evaluation and decoding; llama-server has no load phase per
request). Error bodies are ``{"error": {"code", "message", "type", ...}}``; ``error_body``
keeps them (``exceed_context_size_error`` carries ``n_prompt_tokens`` and ``n_ctx``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from pytest_ollama_regress.dialects import deadlines
from pytest_ollama_regress.dialects.ollama_client import (
    Completion,
    OllamaClient,
    OllamaError,
    batched,
    read_stamp,
)
from pytest_ollama_regress.dialects.timing import ServerMetrics, StreamTiming

__all__ = ["LlamaServerClient", "metrics_from_timings"]

_DONE = b"[DONE]"


def metrics_from_timings(timings: Mapping[str, Any] | None) -> ServerMetrics:
    """llama.cpp's ``timings`` (milliseconds) as :class:`ServerMetrics` (nanoseconds)."""
    t = timings or {}

    def ns(key: str) -> int:
        value = t.get(key)
        return int(float(value) * 1e6) if isinstance(value, int | float) else 0

    prompt, predicted = ns("prompt_ms"), ns("predicted_ms")
    return ServerMetrics(
        total_duration=prompt + predicted,
        load_duration=0,
        prompt_eval_count=int(t.get("prompt_n") or 0),
        prompt_eval_duration=prompt,
        eval_count=int(t.get("predicted_n") or 0),
        eval_duration=predicted,
    )


def _logprobs(choice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An OpenAI choice's ``logprobs.content`` entries (``logprobs: true`` was asked)."""
    logprobs = choice.get("logprobs")
    return list(logprobs.get("content") or []) if isinstance(logprobs, Mapping) else []


class LlamaServerClient(OllamaClient):
    """Synchronous client for one llama-server (timeouts as :class:`OllamaClient`'s)."""

    def __repr__(self) -> str:
        return f"LlamaServerClient({self.base_url!r})"

    # --- plain endpoints -------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /health``: ``{"status": "ok"}``; 503 (an OllamaError) while loading."""
        return dict(self._call("GET", "/health") or {})

    def props(self) -> dict[str, Any]:
        """``GET /props``: build info, chat template, default settings (``n_ctx`` per slot),
        ``total_slots``, ``modalities``."""
        return dict(self._call("GET", "/props") or {})

    def slots(self) -> list[dict[str, Any]]:
        """``GET /slots``: one entry per slot with its ``n_ctx`` (501 when disabled)."""
        return list(self._call("GET", "/slots") or [])

    def models(self) -> list[dict[str, Any]]:
        """``GET /v1/models``: the OpenAI ``data`` list (id, ``meta.n_ctx_train``, ...)."""
        body = self._call("GET", "/v1/models") or {}
        return list(body.get("data") or [])

    def apply_template(self, messages: Iterable[Mapping[str, Any]], **extra: Any) -> str:
        """``POST /apply-template``: the prompt the chat template renders."""
        body = self._call("POST", "/apply-template", {"messages": list(messages), **extra})
        return str((body or {}).get("prompt", ""))

    def tokenize(self, content: str, **extra: Any) -> list[int]:
        """``POST /tokenize``: the token ids of ``content`` (``add_special=True``: with the
        model's BOS, as ``/completion`` tokenizes a text prompt)."""
        body = self._call("POST", "/tokenize", {"content": content, **extra}) or {}
        return [t if isinstance(t, int) else int(t["id"]) for t in body.get("tokens") or []]

    # --- inference --------------------------------------------------------------------------

    def complete(self, prompt: str | list[int], *, n_predict: int, n_probs: int = 0,
                 options: Mapping[str, Any] | None = None) -> Completion:
        """``POST /completion`` (not streamed): ``prompt`` as text or token ids, ``n_probs``
        top log-probabilities per generated token in ``Completion.logprobs`` (``id``,
        ``token``, ``logprob``, ``top_logprobs``), from the model's logits before sampling."""
        payload = {"prompt": prompt, "n_predict": n_predict, "n_probs": n_probs,
                   "stream": False, **dict(options or {})}
        timing = StreamTiming()
        with self._whole():
            response, url = self._open("POST", "/completion", payload, timing)
            body = self._read_all(response, url)
        obj = self._parse_line(body, response, url)
        timing.end_ns = time.perf_counter_ns()
        stop = obj.get("stop_type") or ("stop" if obj.get("stop") else None)
        return Completion(text=str(obj.get("content") or ""), thinking="", done_reason=stop,
                          final=obj, chunks=[obj], timing=timing,
                          metrics=metrics_from_timings(obj.get("timings")),
                          status=response.status_code, headers=response.headers,
                          logprobs=list(obj.get("completion_probabilities") or []))

    def chat(self, model: str, messages: Iterable[Mapping[str, Any]], *, stream: bool = True,
             options: Mapping[str, Any] | None = None, **extra: Any) -> Completion:
        """``POST /v1/chat/completions``; ``options`` are llama.cpp sampling fields
        (``temperature``, ``max_tokens``, ``cache_prompt``, ...)."""
        payload = {"model": model, "messages": list(messages), "stream": stream,
                   **dict(options or {}), **extra}
        timing = StreamTiming()
        if not stream:
            with self._whole():
                response, url = self._open("POST", "/v1/chat/completions", payload, timing)
                body = self._read_all(response, url)
            stamped = read_stamp(response)
            t = stamped.last_stamp_ns if stamped else time.perf_counter_ns()
            source = stamped.last_source if stamped else "line"
            obj = self._parse_line(body, response, url)
            choice = (obj.get("choices") or [{}])[0]
            text = str((choice.get("message") or {}).get("content") or "")
            timing.chunk_arrivals_ns.append(t)
            timing.chunk_sources.append(source)
            if text:
                timing.token_arrivals_ns.append(t)
                timing.first_content_ns = timing.last_token_ns = t
                timing.first_content_source = source
                timing.first_content_read_ns = stamped.last_read_ns if stamped else t
            timing.end_ns = t
            return Completion(text=text, thinking="", done_reason=choice.get("finish_reason"),
                              final=obj, chunks=[obj], timing=timing,
                              metrics=metrics_from_timings(obj.get("timings")),
                              message=choice.get("message"), status=response.status_code,
                              headers=response.headers, logprobs=_logprobs(choice))
        with self._streaming() as lim:
            response, url = self._open("POST", "/v1/chat/completions", payload, timing)
            lim.progress()
            return self._consume_sse(response, url, timing)

    def _consume_sse(self, response: httpx.Response, url: str,
                     timing: StreamTiming) -> Completion:
        """Read a server-sent-events stream of chat chunks, stamping each ``data:`` line."""
        stamped = read_stamp(response)
        perf = time.perf_counter_ns
        lim = deadlines.current()
        chunks: list[dict[str, Any]] = []
        texts: list[str] = []
        thoughts: list[str] = []
        final: dict[str, Any] = {}
        finish: str | None = None
        done = False
        last_read = -1  # the read that brought the latest chunk
        try:
            for line in response.iter_lines():
                if stamped is not None:
                    t, source = stamped.last_stamp_ns, stamped.last_source
                else:
                    t, source = perf(), "line"
                if not line.startswith("data:"):
                    continue  # blank separators and comments are no chunks
                data = line[5:].strip()
                if data.encode() == _DONE:
                    done = True
                    break
                if lim is not None:
                    lim.progress()
                obj = self._parse_line(data, response, url)
                if stamped is not None:
                    if stamped.reads == last_read:
                        batched(timing)  # the previous chunk came in this read too
                    last_read = stamped.reads
                timing.chunk_arrivals_ns.append(t)
                timing.chunk_sources.append(source)
                chunks.append(obj)
                if "error" in obj:
                    raise self._error_of(response.status_code, obj, url, in_stream=True)
                choice = (obj.get("choices") or [{}])[0]
                delta = choice.get("delta") or {}
                content, thinking = delta.get("content"), delta.get("reasoning_content")
                if content or thinking:
                    timing.token_arrivals_ns.append(t)
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
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                if "timings" in obj:
                    final = obj
        except httpx.TransportError as exc:
            raise self._transport_error(exc, url, in_stream=True) from None
        finally:
            response.close()
        timing.end_ns = perf()
        if timing.token_arrivals_ns:
            timing.last_token_ns = timing.token_arrivals_ns[-1]
        if not done and finish is None:
            raise OllamaError(response.status_code, "stream ended without a finish_reason",
                              url=url, in_stream=True)
        text = "".join(texts)
        return Completion(text=text, thinking="".join(thoughts), done_reason=finish,
                          final=final, chunks=chunks, timing=timing,
                          metrics=metrics_from_timings(final.get("timings")),
                          message={"role": "assistant", "content": text},
                          status=response.status_code, headers=response.headers,
                          logprobs=[e for c in chunks
                                    for e in _logprobs((c.get("choices") or [{}])[0])])

    # --- errors -----------------------------------------------------------------------------

    @staticmethod
    def _error_of(status: int, body: Mapping[str, Any], url: str, *,
                  in_stream: bool = False) -> OllamaError:
        error = body.get("error")
        message = str(error.get("message") if isinstance(error, Mapping) else error)
        exc = OllamaError(status, message, url=url, in_stream=in_stream)
        exc.error_body = dict(error) if isinstance(error, Mapping) else {}  # type: ignore[attr-defined]
        return exc

    @staticmethod
    def _http_error(response: httpx.Response, url: str) -> OllamaError:
        """``{"error": {"message": ..., "type": ...}}`` bodies keep their fields in
        ``error_body``; anything else as the Ollama client reads it."""
        try:
            body = json.loads(response.text)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), Mapping):
            return LlamaServerClient._error_of(response.status_code, body, url)
        return OllamaClient._http_error(response, url)
