"""The numerics check's runs and comparisons (the ``ollama_numerics`` fixture).

Greedy runs are kept in the session per (target, server URL, model, case), so the snapshot
test and the baseline comparison decode a prompt once, and every candidate reuses the
baseline's runs. The comparison aligns the two runs' distributions position by position:
up to and including the first divergent token both were conditioned on the same tokens; past
it, where the dialect can force tokens (llama-server), the candidate scores the baseline's
tokens; otherwise the comparison ends there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_ollama_regress.suite.divergence import Position, position, summarise
from pytest_ollama_regress.suite.golden import GreedyRun, compare, first_divergence, prompt_set
from pytest_ollama_regress.suite.numerics_gate import Thresholds, Verdict, judge
from pytest_ollama_regress.suite.numerics_requests import NumericsRequests

__all__ = ["NumericsProbe", "NumericsStore", "aligned_positions"]

NOTE_PROPERTY = "ollama_note"


@dataclass
class NumericsStore:
    """Greedy runs of this session, per (target id, url, model, case)."""

    runs: dict[tuple[str, str, str, str], GreedyRun] = field(default_factory=dict)


def aligned_positions(baseline: GreedyRun, candidate: GreedyRun,
                      forced: dict[int, dict[str, float]]) -> list[Position]:
    """The compared positions of one case: the shared prefix and the first divergent token
    from both runs, then the candidate's ``forced`` scores of the baseline's later tokens."""
    diverged = first_divergence(baseline, candidate)
    shared = len(baseline.tokens) if diverged is None else diverged + 1
    out = []
    for index in range(min(len(baseline.top), len(baseline.tokens))):
        p = baseline.top[index]
        q = candidate.top[index] if index < shared and index < len(candidate.top) else (
            forced.get(index))
        if p and q:
            out.append(position(baseline.case, index, p, q))
    return out


@dataclass
class NumericsProbe:
    """Greedy runs of one target and their comparison with the ``--ollama-baseline``."""

    client: Any
    target: Any
    baseline: Any
    requests: NumericsRequests
    store: NumericsStore
    tokens: int
    limits: Thresholds
    record_property: Callable[[str, object], None]

    def run(self, model: str, case: str) -> GreedyRun:
        """This target's greedy run of ``case`` (decoded once per session)."""
        return self._run_on(self.client, self.target, model, case)

    def _run_on(self, client: Any, info: Any, model: str, case: str) -> GreedyRun:
        key = (info.id, info.url, model, case)
        if key not in self.store.runs:
            self.store.runs[key] = self.requests.greedy(client, model, prompt_set().case(case),
                                                        tokens=self.tokens)
        return self.store.runs[key]

    def record(self, model: str, case: str) -> dict[str, Any]:
        """What the per-image snapshot keeps of ``case``."""
        return self.run(model, case).record(prompt_set().version)

    def against_baseline(self, model: str, cases: Sequence[str]) -> Verdict:
        """Judge ``cases`` against the baseline (skips without one or on the baseline itself);
        records the numbers as JUnit properties and fails on a regression."""
        base = self.baseline
        if base is None:
            pytest.skip("no --ollama-baseline: nothing to compare with")
        if base.is_current:
            pytest.skip(f"{base.id} is the baseline")
        mine = [self.run(model, c) for c in cases]
        theirs = [self._run_on(base.client, base.info, model, c) for c in cases]
        mismatches = compare(theirs, mine)
        positions: list[Position] = []
        # last case first: the server's prompt cache still holds the last greedy run, so
        # forcing tokens on it needs no second prefill of that prompt
        for baseline_run, candidate_run in reversed(list(zip(theirs, mine, strict=True))):
            diverged = first_divergence(baseline_run, candidate_run)
            later = [] if diverged is None else list(range(diverged + 1,
                                                            len(baseline_run.tokens)))
            forced = (self.requests.score(self.client, model, baseline_run, later)
                      if later and baseline_run.has_logprobs and candidate_run.has_logprobs
                      else {})
            positions += aligned_positions(baseline_run, candidate_run, forced)
        label = f"{base.id} ({base.info.server_version})"
        verdict = judge(label, len(cases), mismatches, summarise(positions), self.limits)
        for name, value in verdict.properties.items():
            self.record_property(name, value)
        if verdict.regression:
            diffs = "\n".join(m.diff(f"baseline {base.id}", self.target.id) for m in mismatches)
            pytest.fail(f"{verdict.message}\n{diffs}".rstrip(), pytrace=False)
        if not verdict.identical:
            self.record_property(NOTE_PROPERTY, f"{self.target.id} numerics: {verdict.message}")
        return verdict
