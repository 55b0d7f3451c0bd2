"""Log-probability divergence between a baseline's and a candidate's next-token distributions,
position by position, estimated from the top-k log-probabilities servers report.

Per position: the KL divergence KL(baseline || candidate) in nats over the baseline's top-k
tokens plus one bucket for the rest of each distribution (a token missing from the candidate's
top-k is taken as likely as its least likely one: an upper bound on its probability, so the
estimate errs low), and whether both put the same token on top. Over all positions: mean, p99
and max KL, the same-top-token rate and the worst positions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pytest_ollama_regress.dialects.timing import percentiles

__all__ = ["Divergence", "Position", "position", "summarise", "topk_kl"]

_EPS = 1e-6
WORST = 3


def topk_kl(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """KL(P || Q) in nats from two top-k maps (token -> logprob); 0 for identical maps."""
    if not p or not q:
        return 0.0
    floor = min(q.values())
    kl = p_mass = q_mass = 0.0
    for token, lp in p.items():
        lq = q.get(token, floor)
        pp = math.exp(lp)
        kl += pp * (lp - lq)
        p_mass += pp
        q_mass += math.exp(lq)
    p_rest, q_rest = max(1.0 - p_mass, _EPS), max(1.0 - q_mass, _EPS)
    kl += p_rest * math.log(p_rest / q_rest)
    return max(kl, 0.0)


def _top(dist: Mapping[str, float]) -> str:
    return max(dist.items(), key=lambda item: item[1])[0]


@dataclass(frozen=True)
class Position:
    """One compared position: the case, the token index, KL and the two top tokens."""

    case: str
    index: int
    kl: float
    baseline_top: str
    candidate_top: str

    @property
    def same_top(self) -> bool:
        return self.baseline_top == self.candidate_top

    def describe(self) -> str:
        tops = (repr(self.baseline_top) if self.same_top else
                f"{self.baseline_top!r} -> {self.candidate_top!r}")
        return f"{self.case}@{self.index} {tops} KL {self.kl:.3g}"


def position(case: str, index: int, p: Mapping[str, float], q: Mapping[str, float]) -> Position:
    """Compare the baseline's (``p``) and the candidate's (``q``) top-k at one position."""
    return Position(case, index, topk_kl(p, q), _top(p), _top(q))


@dataclass(frozen=True)
class Divergence:
    """Summary over every compared position."""

    positions: int
    mean_kl: float
    p99_kl: float
    max_kl: float
    same_top_rate: float
    worst: tuple[Position, ...]

    def describe(self) -> str:
        worst = "; ".join(p.describe() for p in self.worst)
        return (f"mean KL {self.mean_kl:.4g} nats/token, p99 {self.p99_kl:.3g}, max "
                f"{self.max_kl:.3g}, same top token {self.same_top_rate:.1%} over "
                f"{self.positions} positions" + (f" (worst: {worst})" if worst else ""))


def summarise(positions: Iterable[Position]) -> Divergence | None:
    """The summary of ``positions``; ``None`` when there are none (no logprobs)."""
    items = list(positions)
    if not items:
        return None
    kls = [p.kl for p in items]
    worst = tuple(sorted(items, key=lambda p: p.kl, reverse=True)[:WORST])
    return Divergence(len(items), sum(kls) / len(kls), percentiles(kls, (99,))[99], max(kls),
                      sum(p.same_top for p in items) / len(items), worst)
