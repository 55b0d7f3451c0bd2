"""Unit tests for timing.py: definitions, server metrics, percentiles."""

from __future__ import annotations

import random
import statistics

import pytest

from pytest_ollama_regress.dialects.timing import ServerMetrics, StreamTiming, percentiles


def test_percentiles_linear_interpolation() -> None:
    # ranks: p50 -> 1.5 (between 20 and 30), p99 -> 2.97
    result = percentiles([40, 10, 30, 20], (0, 50, 99, 100))
    assert result == pytest.approx({0: 10.0, 50: 25.0, 99: 39.7, 100: 40.0})


def test_percentiles_matches_statistics_inclusive_quantiles() -> None:
    rng = random.Random(7)
    values = [rng.uniform(0, 1000) for _ in range(501)]
    expected = statistics.quantiles(values, n=100, method="inclusive")  # p1..p99, type 7
    got = percentiles(values, list(range(1, 100)))
    assert [got[p] for p in range(1, 100)] == pytest.approx(expected)


def test_percentiles_single_value_and_default_keys() -> None:
    assert percentiles([5]) == {50: 5.0, 95: 5.0, 99: 5.0}
    assert percentiles(iter([3, 1, 2]))[50] == 2.0


@pytest.mark.parametrize("bad", [[-1], [100.5]])
def test_percentiles_rejects_out_of_range(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="outside 0..100"):
        percentiles([1, 2], bad)


def test_percentiles_rejects_empty() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        percentiles([])


def test_stream_timing_derived_values() -> None:
    t = StreamTiming(
        request_sent_ns=1_000,
        first_byte_ns=1_500,
        first_content_ns=3_000,
        first_thinking_ns=2_000,
        token_arrivals_ns=[2_000, 3_000, 3_500, 5_000],
        last_token_ns=5_000,
    )
    assert t.ttft_ns == 2_000
    assert t.ttft_s == pytest.approx(2e-6)
    assert t.ttfb_ns == 500
    assert t.time_to_first_thinking_ns == 1_000
    assert t.e2e_ns == 4_000
    assert t.inter_token_gaps_ns == [1_000, 500, 1_500]


def test_stream_timing_without_content() -> None:
    t = StreamTiming(request_sent_ns=10)
    assert t.ttft_ns is None
    assert t.ttft_s is None
    assert t.ttfb_ns is None
    assert t.time_to_first_thinking_ns is None
    assert t.e2e_ns is None
    assert t.inter_token_gaps_ns == []


def test_server_metrics_from_final() -> None:
    final = {
        "done": True,
        "total_duration": 5_000_000_000,
        "load_duration": 1_000_000,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 130_000_000,
        "eval_count": 50,
        "eval_duration": 2_000_000_000,
    }
    m = ServerMetrics.from_final(final)
    assert m.total_duration == 5_000_000_000
    assert m.load_duration == 1_000_000
    assert m.prompt_eval_count == 26
    assert m.eval_count == 50
    assert m.eval_rate == pytest.approx(25.0)
    assert m.prompt_eval_rate == pytest.approx(200.0)


def test_server_metrics_absent_fields_are_zero() -> None:
    # the metric fields are omitempty on the wire: absent means 0
    m = ServerMetrics.from_final({"done": True, "done_reason": "unload"})
    assert m == ServerMetrics()
    assert m.eval_rate == 0.0
    assert m.prompt_eval_rate == 0.0
