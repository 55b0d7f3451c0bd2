"""TTFT through pytest-benchmark: the timer, extra_info, percentiles in the JSON, the gate."""

from __future__ import annotations

import json

import pytest

from pytest_ollama_regress.suite.ttft_probe import (
    Comparison,
    TtftClock,
    TtftResult,
    TtftSample,
    TtftStore,
    probe_prompt,
    summary_lines,
)

TTFT = ("--pyargs", "pytest_ollama_regress.suite", "-p", "no:cacheprovider", "-m", "ttft",
        "--ollama-ttft-rounds=3", "--ollama-ttft-warmup=1")


@pytest.fixture(autouse=True)
def _not_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs are sessions of their own, even when this one runs under pytest-xdist."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


def test_clock_reports_the_recorded_ttft() -> None:
    clock = TtftClock()
    start = clock()
    clock.record(0.25)
    assert clock() == pytest.approx(start + 0.25)
    start = clock()  # a round that recorded nothing measures wall time
    assert clock() >= start


def test_probe_prompts_differ_per_round() -> None:
    assert probe_prompt("short", 1) != probe_prompt("short", 2)
    assert len(probe_prompt("long", 0).split()) > 1400
    with pytest.raises(ValueError, match="use short or long"):
        probe_prompt("medium", 0)


def _sample(ttft_ms: float, load_ms: float = 0, prefill_ms: float = 1) -> TtftSample:
    return TtftSample(int(ttft_ms * 1e6), int(load_ms * 1e6), int(prefill_ms * 1e6), 20, 8,
                      16_000_000, 2_000_000)


def test_result_rules_and_table() -> None:
    good = TtftResult("sim-good", "0.12.6", "short-warm", "m", [_sample(5), _sample(6)])
    slow = TtftResult("sim-slow", "0.12.6", "short-warm", "m", [_sample(300), _sample(310)])
    assert good.overhead_failure() is None
    assert "held back after prefill (rule: ttft first-token overhead" in slow.overhead_failure()
    assert good.percentiles_ms() == {50: 5.5, 95: pytest.approx(5.95), 99: pytest.approx(5.99)}
    slow.comparison = Comparison("sim-good", 5.5e6, 305e6, 0.15)
    assert slow.comparison.failed and "TTFT regressed (rule: ttft gate" in \
        slow.comparison.failure()
    assert not Comparison("sim-good", 5.5e6, 6e6, 0.15).failed
    assert not Comparison("sim-good", 5.5e6, 305e6, None).failed
    store = TtftStore({("sim-good", "a"): good, ("sim-slow", "a"): slow})
    lines = summary_lines(store)
    assert lines[0].split()[:4] == ["target", "case", "model", "rounds"]
    assert "+5445.5% vs sim-good (gate 15%: FAIL)" in lines[2]


def test_json_has_percentiles_and_extra_info(pytester: pytest.Pytester) -> None:
    out = pytester.path / "bench.json"
    result = pytester.runpytest_subprocess(*TTFT, "--ollama-sim=good", f"--benchmark-json={out}")
    result.assert_outcomes(passed=4, skipped=4)  # llama.cpp's TTFT checks skip here
    result.stdout.fnmatch_lines(["*ollama ttft (ms)*", "target*case*p50*p95*p99*",
                                 "sim-good*short-warm*llama3.2:3b*3*"])
    benchmarks = json.loads(out.read_text())["benchmarks"]
    assert {b["group"] for b in benchmarks} == {"ttft short-warm", "ttft short-cold",
                                                 "ttft long-warm", "ttft long-cold"}
    for bench in benchmarks:
        stats, info = bench["stats"], bench["extra_info"]
        assert stats["rounds"] == 3 and stats["min"] <= stats["p50"] <= stats["p99"]
        assert stats["p50"] == pytest.approx(stats["median"])
        assert info["target"] == "sim-good" and info["server_version"] == "0.12.6"
        assert info["ttft_p50_ms"] == pytest.approx(stats["median"] * 1e3, abs=0.01)
        for key in ("load_duration_ms", "prompt_eval_duration_ms", "eval_rate_tps",
                    "prompt_eval_count", "ttft_p95_ms", "ttft_p99_ms"):
            assert key in info
    cold = next(b for b in benchmarks if b["group"] == "ttft long-cold")["extra_info"]
    warm = next(b for b in benchmarks if b["group"] == "ttft long-warm")["extra_info"]
    assert cold["load_duration_ms"] > 10 * warm["load_duration_ms"]
    assert cold["prompt_eval_count"] > 1000


def test_gate_measures_a_missing_baseline_itself(pytester: pytest.Pytester) -> None:
    """Only the candidate's tests run: the baseline is measured inside them (no order)."""
    result = pytester.runpytest_subprocess(
        *TTFT, "--ollama-sim=good", "--ollama-sim=slow-ttft", "--ollama-baseline=good",
        "--ollama-ttft-max-regression=50%", "-k", "slow-ttft and short-warm", "-rf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*vs baseline sim-good*TTFT regressed (rule: ttft gate*"])


def test_benchmark_disabled_still_checks(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(*TTFT, "--ollama-sim=slow-ttft",
                                           "--benchmark-disable", "-k", "short-warm")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*held back after prefill*"])
