"""Stream timing definitions (TTFT, inter-token gaps), server metrics and percentiles.

Every instant here is a ``time.perf_counter_ns()`` value (CLOCK_MONOTONIC on Linux), so it can
be compared with the simulator's flush times taken on the same machine.

Definitions (they differ between benchmarking tools, so they are fixed here):

* **request sent** (``request_sent_ns``): just before the first byte of the request (its
  header block) is written to the socket, i.e. after the connection was taken from the pool or
  opened. Connection setup is therefore *not* part of TTFT. Taken from httpcore's
  ``http11.send_request_headers.started`` trace event; when no trace event fires (another
  transport), the instant just before ``httpx.Client.send`` is used instead.
* **first byte** (``first_byte_ns``): when the socket read that completed the response status
  line and headers returned.
* **chunk arrival** (``chunk_arrivals_ns``): when the data of the socket read that completed
  the chunk's line arrived, before any HTTP, text or JSON parsing. httpx hands over all
  complete lines of one read before it reads again, so a line takes the stamp of the latest
  read; several lines that arrive in one read share it. Each stamp's source is in
  ``chunk_sources``: ``"kernel"``, the kernel's receive stamp of the read's data (Linux,
  plain TCP; see :mod:`~.kernel_stamps`), independent of when the reading thread ran;
  ``"kernel-batch"``, the same for a chunk that shares its read with later chunks: the stamp
  is then the last packet's arrival, an upper bound for this one; ``"read"``, when the read
  returned to this process (TLS, other systems); ``"line"``, where the stamping stream cannot
  be installed: the instant ``iter_lines`` yields the line, which adds the client's parsing
  time, about 0.1-0.5 ms on a busy 2-core machine. ``stamp_source`` is the source of
  ``first_byte_ns``; ``first_content_source`` that of ``first_content_ns``, and
  ``first_content_read_ns`` the socket-read stamp of the same chunk (for comparison).
* **TTFT** (``ttft_ns``): request sent -> arrival of the first chunk whose *content*
  (``message.content`` for chat, ``response`` for generate) is non-empty. Empty-content chunks
  (role-only, thinking-only, tool calls) never count; thinking has its own
  ``first_thinking_ns``. This matches llmperf and GenAI-Perf, and GuideLLM's "TTFOT"; vLLM
  instead counts the first event even when its content is empty.
* **token chunk**: a chunk carrying non-empty content, thinking or tool calls (the final
  ``done`` chunk counts only if it carries text). ``last_token_ns`` is the last one.
* **inter-token gaps** (``inter_token_gaps_ns``): the list of differences between successive
  token-chunk arrivals (vLLM's "ITL" list; *not* a per-token average). A stream of ``n``
  token chunks has ``n - 1`` gaps. TTFT is not one of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

__all__ = ["ServerMetrics", "StreamTiming", "percentiles"]


@dataclass(slots=True)
class StreamTiming:
    """Client-side arrival times of one response (all ``perf_counter_ns`` values)."""

    request_sent_ns: int = 0
    first_byte_ns: int | None = None
    first_content_ns: int | None = None
    first_thinking_ns: int | None = None
    last_token_ns: int | None = None
    chunk_arrivals_ns: list[int] = field(default_factory=list)
    token_arrivals_ns: list[int] = field(default_factory=list)
    end_ns: int | None = None
    stamp_source: str = "read"
    #: the source of each ``chunk_arrivals_ns`` stamp: "kernel", "kernel-batch", "read", "line"
    chunk_sources: list[str] = field(default_factory=list)
    first_content_source: str | None = None
    #: when the read that brought the first content returned (equals ``first_content_ns``
    #: unless the kernel stamped it)
    first_content_read_ns: int | None = None

    @property
    def ttft_ns(self) -> int | None:
        """Time to first non-empty content, or None when no content arrived."""
        if self.first_content_ns is None:
            return None
        return self.first_content_ns - self.request_sent_ns

    @property
    def ttft_s(self) -> float | None:
        """``ttft_ns`` in seconds."""
        ttft = self.ttft_ns
        return None if ttft is None else ttft / 1e9

    @property
    def ttfb_ns(self) -> int | None:
        """Time to the response headers."""
        if self.first_byte_ns is None:
            return None
        return self.first_byte_ns - self.request_sent_ns

    @property
    def time_to_first_thinking_ns(self) -> int | None:
        """Time to the first non-empty thinking text, or None."""
        if self.first_thinking_ns is None:
            return None
        return self.first_thinking_ns - self.request_sent_ns

    @property
    def e2e_ns(self) -> int | None:
        """Request sent -> last token chunk (the trailing metrics-only chunk excluded)."""
        if self.last_token_ns is None:
            return None
        return self.last_token_ns - self.request_sent_ns

    @property
    def inter_token_gaps_ns(self) -> list[int]:
        """Gaps between successive token-chunk arrivals (``len == token chunks - 1``)."""
        return [b - a for a, b in pairwise(self.token_arrivals_ns)]


def _ns(final: Mapping[str, object], key: str) -> int:
    value = final.get(key)
    return int(value) if isinstance(value, (int, float)) else 0


@dataclass(frozen=True, slots=True)
class ServerMetrics:
    """The server's own accounting from the final chunk; durations in ns, 0 when absent."""

    total_duration: int = 0
    load_duration: int = 0
    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0

    @classmethod
    def from_final(cls, final: Mapping[str, object]) -> ServerMetrics:
        """Read the metric fields (all ``omitempty`` on the wire) from a final object."""
        return cls(
            total_duration=_ns(final, "total_duration"),
            load_duration=_ns(final, "load_duration"),
            prompt_eval_count=_ns(final, "prompt_eval_count"),
            prompt_eval_duration=_ns(final, "prompt_eval_duration"),
            eval_count=_ns(final, "eval_count"),
            eval_duration=_ns(final, "eval_duration"),
        )

    @property
    def eval_rate(self) -> float:
        """Generated tokens per second (``eval_count / eval_duration``); 0.0 without data."""
        if self.eval_duration <= 0:
            return 0.0
        return self.eval_count * 1e9 / self.eval_duration

    @property
    def prompt_eval_rate(self) -> float:
        """Prompt tokens per second; 0.0 without data."""
        if self.prompt_eval_duration <= 0:
            return 0.0
        return self.prompt_eval_count * 1e9 / self.prompt_eval_duration


def percentiles(values: Iterable[float], ps: Sequence[float] = (50, 95, 99)) -> dict[float, float]:
    """Percentiles of ``values`` by linear interpolation between closest ranks.

    For sorted values ``x[0..n-1]`` the p-th percentile is at rank ``r = p / 100 * (n - 1)``:
    ``x[floor(r)] + (r - floor(r)) * (x[ceil(r)] - x[floor(r)])`` (NumPy's default "linear"
    method, Hyndman-Fan type 7). p0 is the minimum, p100 the maximum. Keys are the requested
    ``ps`` as given. Raises ``ValueError`` for no values or a p outside 0..100.
    """
    data = sorted(float(v) for v in values)
    if not data:
        raise ValueError("percentiles() needs at least one value")
    last = len(data) - 1
    out: dict[float, float] = {}
    for p in ps:
        if not 0 <= p <= 100 or isinstance(p, bool):
            raise ValueError(f"percentile {p!r} is outside 0..100")
        rank = p / 100 * last
        lo = math.floor(rank)
        hi = min(lo + 1, last)
        frac = rank - lo
        out[p] = data[lo] + frac * (data[hi] - data[lo]) if frac else data[lo]
    return out
