"""Deterministic next-token distributions for the simulated answers (``logprobs``, v0.12.11+).

At each position the emitted piece is the most likely token; the other top-k tokens and their
margins come from a generator seeded by the prompt and the position, and the top-k together
hold 95 % of the probability. A numerics profile adds ``drift`` (Gaussian noise of that many
nats, seeded the same way) to every logit: where it lifts another token above the emitted one,
greedy decoding takes that token and the answer goes on differently from there
(:func:`greedy_pieces`), as a broken kernel or a quantised KV cache makes a real model do.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable

__all__ = ["TOP_MASS", "distribution", "entry", "greedy_pieces"]

TOP_MASS = 0.95
MAX_TOP = 20
_VOCAB = (" the", " a", " and", " of", " to", " is", " in", " that", " it", " for", " on",
          " with", " as", " this", " be", " at", " by", " or", " an", " are", ".", ",", " which",
          " from", " not", " but", " each", " one", " answer", " model")


def _rng(key: str, index: int, salt: str) -> random.Random:
    digest = hashlib.sha256(f"{salt}|{index}|{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _logits(key: str, index: int, chosen: str, drift: float) -> dict[str, float]:
    rng = _rng(key, index, "top")
    others = rng.sample([w for w in _VOCAB if w != chosen], MAX_TOP - 1)
    logits = {chosen: 0.0}
    for rank, token in enumerate(others):
        logits[token] = -(1.5 + 0.6 * rank + rng.random())
    if drift > 0:
        noise = _rng(key, index, "drift")
        logits = {token: value + noise.gauss(0.0, drift) for token, value in logits.items()}
    return logits


def distribution(key: str, index: int, chosen: str, drift: float = 0.0) -> list[tuple[str, float]]:
    """The top tokens at ``index`` (most likely first, ``chosen`` always first: greedy decoding
    emitted it) with their log-probabilities."""
    logits = _logits(key, index, chosen, drift)
    best = max(logits, key=logits.__getitem__)
    logits[chosen], logits[best] = logits[best], logits[chosen]
    top = max(logits.values())
    norm = top + math.log(sum(math.exp(v - top) for v in logits.values())) - math.log(TOP_MASS)
    return sorted(((t, v - norm) for t, v in logits.items()), key=lambda item: -item[1])


def entry(key: str, index: int, chosen: str, top_k: int, drift: float = 0.0) -> dict[str, object]:
    """One ``logprobs`` entry as Ollama sends it (``token``, ``logprob``, ``bytes``,
    ``top_logprobs`` of ``top_k`` entries)."""
    ranked = distribution(key, index, chosen, drift)
    logprob = dict(ranked)[chosen]

    def item(token: str, value: float) -> dict[str, object]:
        return {"token": token, "logprob": value, "bytes": list(token.encode())}

    return {**item(chosen, logprob), "top_logprobs": [item(t, v) for t, v in ranked[:top_k]]}


def greedy_pieces(key: str, pieces: list[str], drift: float,
                  continuation: Callable[[], list[str]]) -> list[str]:
    """``pieces`` as greedy decoding emits them under ``drift``: up to the first position whose
    most likely token is another one, then that token and ``continuation()``."""
    if drift <= 0:
        return pieces
    for index, piece in enumerate(pieces):
        logits = _logits(key, index, piece, drift)
        best = max(logits, key=logits.__getitem__)
        if best != piece:
            return [*pieces[:index], best, *continuation()][:len(pieces)]
    return pieces
