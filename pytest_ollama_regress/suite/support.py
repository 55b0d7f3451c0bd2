"""Small helpers shared by the suite's check modules (not a test module)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import pytest

from pytest_ollama_regress.expectations import Expectations
from pytest_ollama_regress.numctx import ModelLimits

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


def needs_debug_render(expect: Expectations) -> None:
    """Skip a check that reads ``_debug_render_only`` on a server without it."""
    if not expect.debug_render:
        pytest.skip(expect.skip_reason("debug-render"))


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
