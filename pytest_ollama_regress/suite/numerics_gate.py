"""The numerics verdict: a candidate against the baseline on the fixed prompt set.

With log-probabilities the distributions decide (greedy outputs can part at a near tie on
noise alone): a regression is a mean per-token KL above ``max_kl`` or a same-top-token rate
below ``min_same_top``. Without them only the greedy outputs are there: a regression is an
exact-match rate below ``min_exact``. Anything else that differs is a healthy change, said
with the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the settings read Thresholds at start-up; the rest loads with the check
    from pytest_ollama_regress.suite.divergence import Divergence
    from pytest_ollama_regress.suite.golden import Mismatch

__all__ = ["Thresholds", "Verdict", "judge"]


@dataclass(frozen=True)
class Thresholds:
    """What a candidate may diverge (``--ollama-numerics-*``)."""

    max_kl: float
    min_same_top: float
    min_exact: float


@dataclass(frozen=True)
class Verdict:
    """``regression`` fails the check; ``message`` names the numbers either way."""

    regression: bool
    message: str
    properties: dict[str, Any] = field(default_factory=dict)
    identical: bool = False


def judge(baseline: str, cases: int, mismatches: Sequence[Mismatch],
          divergence: Divergence | None, limits: Thresholds) -> Verdict:
    """The verdict on ``cases`` greedy outputs of which ``mismatches`` differ from
    ``baseline``'s, with the ``divergence`` of their distributions (``None``: no logprobs)."""
    from pytest_ollama_regress.suite.expectations import rule

    exact = (cases - len(mismatches)) / cases if cases else 1.0
    props: dict[str, Any] = {"ollama_numerics_baseline": baseline,
                             "ollama_numerics_exact_match": round(exact, 4),
                             "ollama_numerics_first_divergence": ", ".join(
                                 m.describe() for m in mismatches) or "none"}
    greedy = f"greedy outputs {cases - len(mismatches)}/{cases} identical"
    if mismatches:
        greedy += " (first divergent token: " + "; ".join(m.describe() for m in mismatches) + ")"
    reasons = []
    if divergence is not None:
        props.update({"ollama_numerics_mean_kl": round(divergence.mean_kl, 6),
                      "ollama_numerics_p99_kl": round(divergence.p99_kl, 6),
                      "ollama_numerics_max_kl": round(divergence.max_kl, 6),
                      "ollama_numerics_same_top": round(divergence.same_top_rate, 4),
                      "ollama_numerics_positions": divergence.positions})
        if divergence.mean_kl > limits.max_kl:
            reasons.append(f"mean KL {divergence.mean_kl:.4g} > {limits.max_kl:g} allowed")
        if divergence.same_top_rate < limits.min_same_top:
            reasons.append(f"same top token {divergence.same_top_rate:.1%} < "
                           f"{limits.min_same_top:.0%} allowed")
        numbers = f"{divergence.describe()}; {greedy}"
    else:
        if exact < limits.min_exact:
            reasons.append(f"exact-match rate {exact:.0%} < {limits.min_exact:.0%} allowed")
        numbers = f"no log-probabilities to compare; {greedy}"
    if reasons:
        return Verdict(True, rule("numerics gate").fail(
            f"numerics regressed against baseline {baseline}: {', '.join(reasons)}: {numbers}"),
            props)
    if not mismatches and (divergence is None or divergence.max_kl == 0):
        return Verdict(False, f"identical to baseline {baseline}: {numbers}", props, True)
    return Verdict(False, f"healthy change against baseline {baseline} (within the thresholds): "
                          f"{numbers}", props)
