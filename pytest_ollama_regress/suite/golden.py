"""Greedy golden outputs: the numerics check's fixed, versioned prompt set
(``numerics_prompts.json``), one greedy run per prompt, and how two runs compare (exact match,
first divergent token, a readable diff).

A run keeps the generated tokens (their text, and their ids where the server gives them) and,
per position, the top-k log-probabilities the server reported (``divergence`` reads them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from pytest_ollama_regress.suite.snapshots import unified_diff

__all__ = ["GreedyRun", "Mismatch", "PromptCase", "PromptSet", "compare", "prompt_set"]

PROMPTS_FILE = "numerics_prompts.json"


@dataclass(frozen=True)
class PromptCase:
    """One prompt of the set: chat messages, and a picture for vision cases."""

    id: str
    messages: tuple[Mapping[str, Any], ...]
    vision: bool = False
    picture: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class PromptSet:
    """The versioned prompt set (the version names what snapshots and figures belong to)."""

    version: int
    cases: tuple[PromptCase, ...]

    def case(self, case_id: str) -> PromptCase:
        return next(c for c in self.cases if c.id == case_id)

    def ids(self, *, vision: bool) -> list[str]:
        return [c.id for c in self.cases if c.vision == vision]


@cache
def prompt_set() -> PromptSet:
    """The prompt set shipped with the package."""
    raw = json.loads(resources.files(__package__).joinpath(PROMPTS_FILE).read_text("utf-8"))
    cases = tuple(PromptCase(c["id"], tuple(c["messages"]), bool(c.get("vision")),
                             c.get("picture")) for c in raw["cases"])
    return PromptSet(int(raw["version"]), cases)


@dataclass(frozen=True)
class GreedyRun:
    """One greedy decode of a case: tokens (text; ids where known), and per position the
    server's top-k log-probabilities (token text -> logprob; empty without logprobs)."""

    case: str
    tokens: tuple[str, ...]
    ids: tuple[int, ...] = ()
    top: tuple[Mapping[str, float], ...] = ()
    done_reason: str | None = None
    #: the prompt as token ids (llama-server), for teacher-forced scoring
    prompt_ids: tuple[int, ...] = field(default=(), repr=False)

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def has_logprobs(self) -> bool:
        return any(self.top)

    def record(self, version: int) -> dict[str, Any]:
        """What a snapshot keeps: the prompt-set version, the text and its tokens."""
        return {"prompt_set": version, "text": self.text, "tokens": list(self.tokens),
                "done_reason": self.done_reason}

    def key(self, index: int) -> Any:
        """The identity of token ``index``: its id where known, else its text."""
        return self.ids[index] if len(self.ids) == len(self.tokens) else self.tokens[index]


@dataclass(frozen=True)
class Mismatch:
    """Where a candidate's greedy output leaves the baseline's."""

    case: str
    position: int  # first divergent token (the shorter length when one is a prefix)
    baseline: GreedyRun
    candidate: GreedyRun

    def describe(self) -> str:
        """``case@position: 'base' -> 'cand'`` (``<end>`` past a run's last token)."""
        def at(run: GreedyRun) -> str:
            return repr(run.tokens[self.position]) if self.position < len(run.tokens) else "<end>"
        return f"{self.case}@{self.position}: {at(self.baseline)} -> {at(self.candidate)}"

    def diff(self, baseline_label: str, candidate_label: str) -> str:
        """A unified diff of the two texts, a line per sentence-ish chunk, from the divergence."""
        return unified_diff(_lines(self.baseline.text), _lines(self.candidate.text),
                            expected_label=f"{baseline_label} {self.case}",
                            actual_label=f"{candidate_label} {self.case}")


def _lines(text: str) -> str:
    """Break a text after sentence ends so a diff shows where it changed."""
    for end in (". ", "! ", "? ", ": "):
        text = text.replace(end, end.rstrip() + "\n")
    return text


def first_divergence(baseline: GreedyRun, candidate: GreedyRun) -> int | None:
    """The first position whose tokens differ (``None`` when the runs are identical)."""
    shared = min(len(baseline.tokens), len(candidate.tokens))
    for index in range(shared):
        if baseline.key(index) != candidate.key(index):
            return index
    if len(baseline.tokens) == len(candidate.tokens):
        return None
    return shared


def compare(baselines: Sequence[GreedyRun], candidates: Sequence[GreedyRun]) -> list[Mismatch]:
    """The cases whose candidate output differs from the baseline's (matched by case id)."""
    theirs = {run.case: run for run in baselines}
    found = []
    for mine in candidates:
        base = theirs.get(mine.case)
        if base is None:
            continue
        position = first_divergence(base, mine)
        if position is not None:
            found.append(Mismatch(mine.case, position, base, mine))
    return found
