"""What the sync and async clients share: the base URL, the three timeouts, the request
deadlines they set and how HTTP and transport failures become :class:`OllamaError`."""

from __future__ import annotations

import json
from typing import Any

import httpx

from pytest_ollama_regress.dialects import deadlines
from pytest_ollama_regress.dialects.ollama_payloads import check_base_url
from pytest_ollama_regress.dialects.results import Completion, OllamaError

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "ClientBase"]

DEFAULT_REQUEST_TIMEOUT = 600.0


class ClientBase:
    """Settings and error mapping of a client for one server.

    * ``connect_timeout`` bounds connecting and waiting for a pooled connection.
    * ``stall_timeout``: a stream that sends no chunk for that long, before the first one
      (model load included) or between two, raises an :class:`OllamaError` saying
      "stalled"; blank keep-alive lines and partial lines are not chunks. A non-streaming
      request must complete (send, headers, whole body) within it.
    * ``request_timeout`` bounds a whole stream, however steadily it sends, and any
      non-streaming request too when shorter than ``stall_timeout``.
    """

    def __init__(self, base_url: str, *, connect_timeout: float, stall_timeout: float,
                 request_timeout: float) -> None:
        self.base_url = check_base_url(base_url)
        self.connect_timeout = connect_timeout
        self.stall_timeout = stall_timeout
        self.request_timeout = request_timeout

    def _timeout(self) -> httpx.Timeout:
        """httpx's per-operation timeouts (the deadlines bound the whole request)."""
        return httpx.Timeout(connect=self.connect_timeout, read=self.stall_timeout,
                             write=self.stall_timeout, pool=self.connect_timeout)

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _whole(self) -> Any:
        """Deadlines of a non-streaming request: all of it within the stall timeout."""
        return deadlines.limits(total=min(self.stall_timeout, self.request_timeout))

    def _streaming(self) -> Any:
        """Deadlines of a stream: a chunk per stall timeout, all of it within the request timeout."""
        return deadlines.limits(total=self.request_timeout, stall=self.stall_timeout)

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
