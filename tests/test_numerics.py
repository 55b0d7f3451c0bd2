"""The numerics check's parts without a server: prompt set, greedy comparison, top-k KL, the
verdict and its options."""

from __future__ import annotations

import math

import pytest

from pytest_ollama_regress.sim import logprobs as sim_logprobs
from pytest_ollama_regress.suite.divergence import position, summarise, topk_kl
from pytest_ollama_regress.suite.golden import GreedyRun, compare, first_divergence, prompt_set
from pytest_ollama_regress.suite.numerics_gate import Thresholds, judge
from pytest_ollama_regress.suite.numerics_probe import aligned_positions
from pytest_ollama_regress.suite.numerics_requests import top_map

LIMITS = Thresholds(max_kl=0.05, min_same_top=0.9, min_exact=0.5)


def _dist(**probs: float) -> dict[str, float]:
    return {token: math.log(p) for token, p in probs.items()}


def test_prompt_set_is_versioned_and_covers_the_kinds() -> None:
    prompts = prompt_set()
    assert prompts.version >= 1
    assert {"system-prompt", "chat-turns", "long-context"} <= set(prompts.ids(vision=False))
    assert prompts.ids(vision=True) == ["image"]
    assert prompts.case("image").picture
    long = prompts.case("long-context").messages[-1]["content"]
    assert len(long.split()) > 250


def test_topk_kl_is_zero_for_equal_and_grows_with_difference() -> None:
    p = _dist(a=0.7, b=0.2, c=0.05)
    assert topk_kl(p, p) == pytest.approx(0.0, abs=1e-12)
    near = topk_kl(p, _dist(a=0.68, b=0.22, c=0.05))
    far = topk_kl(p, _dist(b=0.7, a=0.2, c=0.05))
    assert 0 < near < 0.01 < far
    # a token missing from the candidate's top-k counts as likely as its least likely one
    assert topk_kl(p, _dist(b=0.9, d=0.06)) > far


def test_positions_summarise_mean_p99_max_and_worst() -> None:
    p = _dist(a=0.9, b=0.05)
    items = [position("x", i, p, p) for i in range(9)]
    items.append(position("x", 9, p, _dist(b=0.9, a=0.05)))
    summary = summarise(items)
    assert summary is not None and summary.positions == 10
    assert summary.same_top_rate == pytest.approx(0.9)
    assert summary.max_kl == summary.worst[0].kl > 1
    assert summary.mean_kl == pytest.approx(summary.max_kl / 10)
    assert "x@9 'a' -> 'b'" in summary.describe()
    assert summarise([]) is None


def _run(case: str, text: str, drift: float = 0.0) -> GreedyRun:
    tokens = tuple(text.split("|"))
    top = tuple(dict(sim_logprobs.distribution(case, i, t, drift)[:10]) for i, t in enumerate(tokens))
    return GreedyRun(case, tokens, top=top)


def test_greedy_runs_compare_by_first_divergent_token() -> None:
    base = _run("a", "The| sky| is| blue|.")
    assert first_divergence(base, base) is None
    assert first_divergence(base, _run("a", "The| sky| looks| blue|.")) == 2
    assert first_divergence(base, _run("a", "The| sky")) == 2
    [mismatch] = compare([base, _run("b", "x")], [_run("a", "The| sky| looks"), _run("b", "x")])
    assert mismatch.describe() == "a@2: ' is' -> ' looks'"
    diff = mismatch.diff("baseline b0", "c1")
    assert diff.startswith("--- baseline b0 a\n+++ c1 a")


def test_aligned_positions_stop_after_divergence_unless_forced() -> None:
    base = _run("a", "The| sky| is| blue|.")
    cand = _run("a", "The| sky| looks| grey|.")
    shared = aligned_positions(base, cand, {})
    assert [p.index for p in shared] == [0, 1, 2]
    forced = aligned_positions(base, cand, {3: dict(base.top[3]), 4: dict(base.top[4])})
    assert [p.index for p in forced] == [0, 1, 2, 3, 4]
    assert forced[3].kl == 0


def test_verdict_names_the_numbers_for_regression_and_healthy_change() -> None:
    base = _run("a", "The| sky| is| blue|.")
    same = judge("b0 (1.0)", 1, [], summarise(aligned_positions(base, base, {})), LIMITS)
    assert same.identical and not same.regression
    drifted = _run("a", "The| sky| is| blue|.", drift=1.0)
    bad = judge("b0 (1.0)", 1, [], summarise(aligned_positions(base, drifted, {})), LIMITS)
    assert bad.regression and "mean KL" in bad.message and "> 0.05 allowed" in bad.message
    assert bad.properties["ollama_numerics_mean_kl"] > 0.05
    slight = _run("a", "The| sky| is| blue|.", drift=0.02)
    ok = judge("b0 (1.0)", 1, [], summarise(aligned_positions(base, slight, {})), LIMITS)
    assert not ok.regression and ok.message.startswith("healthy change against baseline b0")
    tokens_only = judge("b0", 4, compare([GreedyRun("x", ("a",))] * 3,
                                         [GreedyRun("x", ("b",))] * 3), None, LIMITS)
    assert tokens_only.regression and "exact-match rate 25% < 50% allowed" in tokens_only.message


def test_top_map_keeps_the_likelier_of_equal_texts() -> None:
    entries = [{"token": "a", "logprob": -2.0}, {"token": "a", "logprob": -0.5},
               {"token": "b", "logprob": -1.0}, {"token": "c"}]
    assert top_map(entries) == {"a": -0.5, "b": -1.0}


def test_simulated_drift_parts_greedy_output_deterministically() -> None:
    pieces = [f" w{i}" for i in range(40)]
    same = sim_logprobs.greedy_pieces("k", pieces, 0.0, lambda: [" x"] * 40)
    assert same == pieces
    drifted = sim_logprobs.greedy_pieces("k", pieces, 1.0, lambda: [" x"] * 40)
    assert drifted == sim_logprobs.greedy_pieces("k", pieces, 1.0, lambda: [" x"] * 40)
    assert drifted != pieces and len(drifted) == len(pieces)
    entry = sim_logprobs.entry("k", 0, " w0", 5)
    assert entry["token"] == " w0" and len(entry["top_logprobs"]) == 5
    assert entry["top_logprobs"][0]["token"] == " w0"


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_simulator_returns_logprobs_from_0_12_11(stream: bool) -> None:
    from pytest_ollama_regress.dialects.ollama_client import OllamaClient
    from pytest_ollama_regress.sim import SimServer

    messages = [{"role": "user", "content": "Why is the sky blue?"}]
    options = {"temperature": 0, "seed": 42, "num_predict": 12}
    for version, expected in (("0.12.11", True), ("0.12.6", False)):
        with SimServer(version=version) as sim, OllamaClient(sim.url) as client:
            answer = client.chat("llama3.2:3b", messages, stream=stream, options=options,
                                 logprobs=True, top_logprobs=3)
        assert bool(answer.logprobs) is expected, version
        if expected:
            assert "".join(e["token"] for e in answer.logprobs) == answer.text
            assert all(len(e["top_logprobs"]) == 3 and e["top_logprobs"][0]["token"] == e["token"]
                       for e in answer.logprobs)


def test_numerics_rates_read_as_fractions_or_percentages() -> None:
    from pytest_ollama_regress.suite.settings import _number

    rate = _number("--ollama-numerics-min-same-top", "90%", rate=True)
    assert rate("95%") == rate("0.95") == rate("95") == pytest.approx(0.95)
    assert _number("--ollama-numerics-max-kl", "0.01")("0.02") == pytest.approx(0.02)
