"""Time to first token through pytest-benchmark, per target, with a baseline gate.

pytest-benchmark times a callable from just before it is called to just after it returns.
TTFT is an instant *inside* a streaming request, so the probe gives pytest-benchmark a timer
(:class:`TtftClock`, its documented ``timer`` option) whose second reading of a round is
"first reading + the TTFT the round's request measured" (``StreamTiming.ttft_ns``: request
written -> first non-empty content). pytest-benchmark's stats, tables, ``--benchmark-save``
and ``--benchmark-compare`` are therefore TTFT in seconds, and only
``benchmark.pedantic`` is used (calibration would call the timer outside a request).

Every round sends a different prompt (a round number leads it), so a server's prompt cache
cannot turn prefill into a lookup. A cold round unloads the model first (``keep_alive: 0``,
untimed ``setup``); a warm round finds it loaded.

TTFT is the first *answer* token. A model with the ``thinking`` capability is asked with
``think: false`` (what a latency-sensitive client sends), so the number is comparable across
models and images; a model that thinks anyway has its time to the first thinking token kept
separately (``first_thinking_ms`` in ``extra_info``), and a stream with no answer token within
``num_predict`` fails with the reason.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_ollama_regress.dialects.timing import percentiles
from pytest_ollama_regress.suite.expectations import TTFT_OVERHEAD_SLACK_NS, rule
from pytest_ollama_regress.suite.ttft_requests import (
    PROBE_OPTIONS,
    TtftRequests,
    requests_for,
)

PERCENTILES = (50, 95, 99)
_WORDS = (
    "river", "stone", "light", "window", "garden", "paper", "engine", "winter", "signal",
    "market", "orange", "letter", "bridge", "silver", "forest", "music", "number", "planet",
    "circle", "yellow", "harbor", "voice", "morning", "table", "mountain", "pencil", "story",
    "camera", "island", "summer", "wire", "shadow", "kitchen", "doctor", "ladder",
)


def probe_prompt(kind: str, round_no: int) -> str:
    """A prompt of ``kind`` ``short`` (a dozen tokens) or ``long`` (~1,800 tokens)."""
    head = f"Round {round_no}."
    if kind == "short":
        return f"{head} Say hello in one short sentence."
    if kind != "long":
        raise ValueError(f"unknown prompt kind {kind!r}: use short or long")
    sentences = []
    for i in range(150):
        words = [_WORDS[(i * 7 + j * 3) % len(_WORDS)] for j in range(10)]
        sentences.append(" ".join(words).capitalize() + ".")
    return f"{head} Read this passage.\n" + " ".join(sentences) + \
        "\nSummarise the passage in one sentence."


class TtftClock:
    """A pytest-benchmark timer: odd readings are now, even readings start + recorded TTFT."""

    __name__ = "ttft_clock"
    __module__ = __name__

    def __init__(self) -> None:
        self._start: float | None = None
        self._ttft_s: float | None = None

    def __call__(self) -> float:
        now = time.perf_counter()
        if self._start is None:
            self._start, self._ttft_s = now, None
            return now
        start, self._start = self._start, None
        return now if self._ttft_s is None else start + self._ttft_s

    def record(self, ttft_s: float) -> None:
        """The TTFT the current round measured."""
        self._ttft_s = ttft_s


PREFILL_BATCH = 512
"""Ollama's default ``num_batch``: prompts up to this many tokens are prefilled in one batch."""


@dataclass(frozen=True)
class TtftSample:
    """One request: client TTFT and the server's own durations (ns)."""

    ttft_ns: int
    load_ns: int
    prompt_eval_ns: int
    prompt_eval_count: int
    eval_count: int
    eval_ns: int
    decode_step_ns: int = 0
    thinking_ns: int | None = None  # time to the first thinking token, when the model thought

    @classmethod
    def from_completion(cls, completion: Any, always_thinks: bool = False) -> TtftSample:
        """One sample; TTFT is the first answer token, or for a model that thinks whatever
        it is told (gpt-oss, §16.5) the first token of either kind (the first thinking token
        is kept apart, and a num_predict spent on thinking is not a failure)."""
        ttft = completion.timing.ttft_ns
        thinking = completion.timing.time_to_first_thinking_ns
        if always_thinks and thinking is not None:
            ttft = thinking if ttft is None else min(ttft, thinking)
        if ttft is None:
            why = (f"only thinking ({len(completion.thinking)} characters) within num_predict "
                   f"{completion.metrics.eval_count}: the model thinks although think:false "
                   "was sent" if thinking is not None else "no content")
            pytest.fail(f"the stream carried {why}, so it has no first answer token",
                        pytrace=False)
        m = completion.metrics
        gaps = completion.timing.inter_token_gaps_ns
        # the client's gaps between tokens; the server's eval_duration would include a late
        # first token itself
        step = int(statistics.median(gaps)) if gaps else (
            m.eval_duration // m.eval_count if m.eval_count else 0)
        return cls(ttft, m.load_duration, m.prompt_eval_duration, m.prompt_eval_count,
                   m.eval_count, m.eval_duration, step, thinking)

    @property
    def unexplained_ns(self) -> int:
        """Client TTFT not accounted for by the server's load and prefill."""
        return self.ttft_ns - self.load_ns - self.prompt_eval_ns

    @property
    def allowance_ns(self) -> int:
        """Slack plus two decode steps (the first token's own decode and the flush)."""
        return TTFT_OVERHEAD_SLACK_NS + 2 * self.decode_step_ns

    @property
    def eval_rate(self) -> float:
        return self.eval_count * 1e9 / self.eval_ns if self.eval_ns > 0 else 0.0


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


@dataclass
class TtftResult:
    """The measured rounds of one (target, case)."""

    target_id: str
    server_version: str
    case: str
    model: str
    samples: list[TtftSample]
    warmup: int = 0
    comparison: Comparison | None = None

    @property
    def median_ttft_ns(self) -> float:
        return _median([s.ttft_ns for s in self.samples])

    @property
    def seconds(self) -> list[float]:
        """TTFT of each measured round, in seconds."""
        return [s.ttft_ns / 1e9 for s in self.samples]

    def percentiles_ms(self) -> dict[int, float]:
        """p50/p95/p99 of TTFT in milliseconds."""
        values = percentiles([s.ttft_ns / 1e6 for s in self.samples], PERCENTILES)
        return {int(p): v for p, v in values.items()}

    def extra_info(self) -> dict[str, Any]:
        """What goes to pytest-benchmark's ``extra_info`` (kept in its JSON per image)."""
        pct = self.percentiles_ms()
        return {
            "target": self.target_id,
            "server_version": self.server_version,
            "model": self.model,
            "case": self.case,
            "rounds": len(self.samples),
            "warmup_rounds": self.warmup,
            **{f"ttft_p{p}_ms": round(v, 3) for p, v in pct.items()},
            "load_duration_ms": round(_median([s.load_ns for s in self.samples]) / 1e6, 3),
            "prompt_eval_duration_ms": round(
                _median([s.prompt_eval_ns for s in self.samples]) / 1e6, 3),
            "prompt_eval_count": int(_median([s.prompt_eval_count for s in self.samples])),
            "eval_rate_tps": round(_median([s.eval_rate for s in self.samples]), 2),
            "unexplained_ms": round(_median([s.unexplained_ns for s in self.samples]) / 1e6, 3),
            **({"first_thinking_ms": round(_median(thought) / 1e6, 3)} if (thought := [
                s.thinking_ns for s in self.samples if s.thinking_ns is not None]) else {}),
        }

    @property
    def prefill_fits_one_batch(self) -> bool:
        """Every round's prompt fitted one prefill batch, so the server's
        ``prompt_eval_duration`` covers all of it (Ollama's llama engine times only the last
        batch of a longer prompt: ``runner/llamarunner/runner.go``, measured on v0.12.6)."""
        return all(s.prompt_eval_count <= PREFILL_BATCH for s in self.samples)

    def overhead_failure(self) -> str | None:
        """The first-token overhead rule on the medians, or ``None`` when it holds (or cannot
        be judged: a prompt longer than one batch; the baseline gate still applies)."""
        if not self.prefill_fits_one_batch:
            return None
        unexplained = _median([s.unexplained_ns for s in self.samples])
        allowance = _median([s.allowance_ns for s in self.samples])
        if unexplained <= allowance:
            return None
        return rule("ttft first-token overhead").fail(
            f"median first token {unexplained / 1e6:.1f} ms after the server's load + prefill "
            f"(allowed {allowance / 1e6:.1f} ms; TTFT {self.median_ttft_ns / 1e6:.1f} ms): "
            "the first token is held back after prefill"
        )


@dataclass
class Comparison:
    """A candidate's median TTFT against the baseline's, and the gate's verdict."""

    baseline_id: str
    baseline_median_ns: float
    candidate_median_ns: float
    max_regression: float | None

    @property
    def change(self) -> float:
        """Relative change of the median (0.25 = 25 % slower)."""
        if self.baseline_median_ns <= 0:
            return 0.0
        return self.candidate_median_ns / self.baseline_median_ns - 1.0

    @property
    def failed(self) -> bool:
        return self.max_regression is not None and self.change > self.max_regression

    def failure(self) -> str | None:
        if not self.failed:
            return None
        assert self.max_regression is not None
        return rule("ttft gate").fail(
            f"median TTFT {self.candidate_median_ns / 1e6:.1f} ms vs baseline "
            f"{self.baseline_id} {self.baseline_median_ns / 1e6:.1f} ms: "
            f"{self.change:+.0%} > {self.max_regression:.0%} allowed: TTFT regressed"
        )


@dataclass
class TtftStore:
    """Every result of the session, keyed by (target id, case key)."""

    results: dict[tuple[str, str], TtftResult] = field(default_factory=dict)

    def __iter__(self) -> Iterator[TtftResult]:
        return iter(self.results.values())


def case_key(case: str, model: str, env: dict[str, str]) -> str:
    """What makes two targets' TTFT results comparable."""
    env_part = ",".join(f"{k}={v}" for k, v in sorted(env.items()))
    return f"{case}|{model}|{env_part}"


def sample_rounds(client: Any, model: str, kind: str, *, cold: bool, rounds: int,
                  warmup: int, options: dict[str, Any] | None = None,
                  requests: TtftRequests | None = None) -> list[TtftSample]:
    """Measure ``rounds`` requests (after ``warmup``) without pytest-benchmark."""
    requests = requests or requests_for("ollama")
    samples = []
    plan = requests.plan(client, model)
    opts = dict(options or PROBE_OPTIONS)
    if not cold:
        requests.prime(client, model, kind)
    for round_no in range(warmup + rounds):
        requests.before_round(client, model, cold=cold)
        completion = requests.send(client, model, requests.prompt(kind, round_no, cold=cold),
                                   plan, cold=cold, options=opts)
        if round_no >= warmup:
            samples.append(TtftSample.from_completion(completion, plan.always_thinks))
    return samples


@dataclass
class TtftProbe:
    """What the ``ollama_ttft`` fixture gives a test: measure, then check."""

    client: Any
    target: Any  # TargetInfo
    benchmark: Any
    clock: TtftClock
    store: TtftStore
    rounds: int
    warmup: int
    max_regression: float | None
    baseline: Any = None  # suite.plugin.Baseline or None
    #: told every result (the session's TTFT record, which the inventory reads)
    on_result: Callable[[TtftResult], None] | None = None
    #: how rounds are sent to this target's dialect
    requests: TtftRequests = field(default_factory=lambda: requests_for("ollama"))

    def measure(self, model: str, kind: str, *, cold: bool, case: str | None = None,
                options: dict[str, Any] | None = None) -> TtftResult:
        """Benchmark TTFT of ``kind`` prompts on ``model`` (cold: unloaded before each round)."""
        case = case or f"{kind}-{'cold' if cold else 'warm'}"
        opts = dict(options or PROBE_OPTIONS)
        requests = self.requests
        plan = requests.plan(self.client, model)
        samples: list[TtftSample] = []
        counter = iter(range(10**9))

        def setup() -> tuple[tuple[str], dict[str, Any]]:
            requests.before_round(self.client, model, cold=cold)
            return (requests.prompt(kind, next(counter), cold=cold),), {}

        def request(prompt: str) -> Any:
            completion = requests.send(self.client, model, prompt, plan, cold=cold,
                                       options=opts)
            sample = TtftSample.from_completion(completion, plan.always_thinks)
            samples.append(sample)
            self.clock.record(sample.ttft_ns / 1e9)
            return completion

        if not cold:  # the first warm round must not pay for a load left by earlier tests
            requests.prime(self.client, model, kind)
        self.benchmark.group = f"ttft {case}"
        self.benchmark.pedantic(request, setup=setup, rounds=self.rounds,
                                warmup_rounds=self.warmup, iterations=1)
        measured = samples[self.warmup:] if len(samples) > self.warmup else samples
        result = TtftResult(self.target.id, self.target.server_version, case, model,
                            measured, warmup=len(samples) - len(measured))
        key = case_key(case, model, self.target.env)
        self.store.results[(self.target.id, key)] = result
        result.comparison = self._compare(result, key, kind, cold, opts)
        if self.on_result is not None:
            self.on_result(result)
        self.benchmark.extra_info.update(result.extra_info())
        if result.comparison is not None:
            self.benchmark.extra_info.update({
                "baseline": result.comparison.baseline_id,
                "baseline_median_ms": round(result.comparison.baseline_median_ns / 1e6, 3),
                "change_vs_baseline": round(result.comparison.change, 4),
            })
        return result

    def _compare(self, result: TtftResult, key: str, kind: str, cold: bool,
                 options: dict[str, Any]) -> Comparison | None:
        baseline = self.baseline
        if baseline is None or baseline.is_current:
            return None
        stored = self.store.results.get((baseline.id, key))
        if stored is not None:
            median = stored.median_ttft_ns
        else:  # the baseline's own test did not run first: measure it here, same procedure
            samples = sample_rounds(baseline.client, result.model, kind, cold=cold,
                                    rounds=self.rounds, warmup=self.warmup, options=options,
                                    requests=requests_for(baseline.info.dialect))
            median = _median([s.ttft_ns for s in samples])
        return Comparison(baseline.id, median, result.median_ttft_ns, self.max_regression)

    def check(self, result: TtftResult) -> None:
        """Fail with every broken rule: first-token overhead, then the baseline gate."""
        problems = [p for p in (result.overhead_failure(),
                                result.comparison.failure() if result.comparison else None) if p]
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


def summary_lines(store: TtftStore) -> list[str]:
    """The terminal summary table (milliseconds)."""
    rows = [("target", "case", "model", "rounds", "p50", "p95", "p99", "load", "prefill",
             "tok/s", "vs baseline")]
    for r in store:
        pct = r.percentiles_ms()
        info = r.extra_info()
        versus = ""
        if r.comparison is not None:
            c = r.comparison
            verdict = "" if c.max_regression is None else (
                f" (gate {c.max_regression:.0%}: {'FAIL' if c.failed else 'ok'})")
            versus = f"{c.change:+.1%} vs {c.baseline_id}{verdict}"
        rows.append((r.target_id, r.case, r.model, str(len(r.samples)),
                     *(f"{pct[p]:.1f}" for p in PERCENTILES),
                     f"{info['load_duration_ms']:.1f}", f"{info['prompt_eval_duration_ms']:.1f}",
                     f"{info['eval_rate_tps']:.0f}", versus))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]

