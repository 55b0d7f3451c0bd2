"""Small helpers shared by the suite's check modules (not a test module)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import pytest

from pytest_ollama_regress.catalogue.names import find_model
from pytest_ollama_regress.catalogue.settings import CatalogueSettings
from pytest_ollama_regress.session import session_of
from pytest_ollama_regress.suite.context_policy import ModelLimits
from pytest_ollama_regress.suite.expectations import Expectations, Rule, Verdict
from pytest_ollama_regress.suite.model_facts import ModelFacts

ANSWER_OPTIONS: dict[str, Any] = {"temperature": 0, "seed": 42, "num_predict": 96}
"""Sampling for answers that are checked: deterministic and short."""

_FILLER = (
    "the quick brown fox jumps over a lazy dog while seven clocks count the hours and a "
    "small boat drifts along the quiet river under the pale morning light "
)


def fail(message: str) -> NoReturn:
    """Fail the check with ``message`` only (it names the regression and the rule)."""
    pytest.fail(message, pytrace=False)


def check(condition: bool, message: str) -> None:
    """``fail(message)`` unless ``condition``."""
    if not condition:
        fail(message)


CAPABLE_PARAMETERS = 1_000_000_000
"""Below this many parameters a model is not asked to describe pictures (answer checks)."""


def needs_debug_render(expect: Expectations) -> None:
    """Skip a check that reads ``_debug_render_only`` on a server without it (probed)."""
    if not expect.debug_render:
        pytest.skip(expect.skip_reason("debug-render"))


def settle(verdict: Verdict, expect: Expectations, applied: Rule | str, message: str) -> None:
    """Act on a :meth:`Expectations.judge` verdict: fail with ``message``, skip naming
    ``--ollama-behaves-as`` when only the release would tell, or return."""
    if verdict == "fail":
        fail(message)
    if verdict == "ambiguous":
        pytest.skip(expect.ambiguous_reason(applied))


def model_facts(client: Any, model: str) -> ModelFacts:
    """What ``/api/show`` says about ``model`` that changes healthy behaviour (§16)."""
    return ModelFacts.from_show(model, client.show(model))


def needs_capable_model(facts: ModelFacts, what: str) -> None:
    """Skip an answer-content check on a model too small to describe pictures."""
    if facts.parameter_count is not None and facts.parameter_count < CAPABLE_PARAMETERS:
        pytest.skip(f"{facts.name} has {facts.parameter_count / 1e6:.0f}M parameters: too "
                    f"small to judge {what}; name a capable model with --ollama-vision-model")


def mentions(text: str, words: Iterable[str]) -> list[str]:
    """The ``words`` that occur in ``text`` as whole words (case-insensitive)."""
    return [w for w in words
            if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text, re.IGNORECASE)]


def filler(length: int) -> str:
    """ASCII text of exactly ``length`` bytes."""
    repeats = length // len(_FILLER) + 1
    return (_FILLER * repeats)[:length]


def model_limits(client: Any, model: str) -> ModelLimits:
    """Context maximum and vision capability of ``model`` from ``/api/show``."""
    return ModelLimits.from_show(model, client.show(model))


def _base_name(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def ps_entry(client: Any, model: str) -> Mapping[str, Any] | None:
    """The ``/api/ps`` entry of ``model``, or ``None`` when it is not loaded."""
    wanted = _base_name(model)
    for entry in client.ps():
        names = {_base_name(str(entry.get(k, ""))) for k in ("name", "model")}
        if wanted in names:
            return entry
    return None


def non_vision_model(config: pytest.Config, models: Iterable[Any], target_id: str) -> str:
    """A completion model without vision: ``--ollama-model NAME`` when NAME is one, else the
    first such model in discovery order; skips the check when the target has none."""
    entries = [m for m in models if m.is_completion and not m.is_vision]
    selector = session_of(config).get(CatalogueSettings).selector
    named = find_model(entries, selector.value) if selector.kind == "name" else None
    if named is not None:
        return str(named.name)
    if not entries:
        pytest.skip(f"target {target_id} has no completion model without vision; pull one "
                    "(e.g. llama3.2) to check images sent to a model without vision")
    return str(entries[0].name)
