"""numerics: greedy golden outputs and log-probability divergence against the baseline.

A fixed, versioned prompt set (``numerics_prompts.json``: a system prompt, chat turns,
arithmetic, a longer document, and a picture for a vision model) is decoded greedily
(temperature 0, seed 42, ``--ollama-numerics-tokens`` tokens) with ``logprobs`` and
``top_logprobs`` (Ollama >= 0.12.11; older servers give the tokens only). Each output is
snapshotted per image; with ``--ollama-baseline`` the candidate's outputs and next-token
distributions are compared with the baseline's over the shared prefix (Ollama cannot be fed
tokens): exact-match rate, first divergent token, mean / p99 / max KL and the same-top-token
rate, judged by the ``--ollama-numerics-*`` thresholds (see ``numerics_gate``).
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ollama_regress.suite.checks import marks
from pytest_ollama_regress.suite.expectations import rule
from pytest_ollama_regress.suite.golden import prompt_set

pytestmark = marks("numerics")

TEXT = prompt_set().ids(vision=False)
IMAGE = prompt_set().ids(vision=True)


def _model(request: pytest.FixtureRequest, vision: bool) -> str:
    return str(request.getfixturevalue("ollama_vision_model" if vision else "ollama_model"))


@pytest.mark.parametrize("case", [*TEXT, *IMAGE])
def test_golden_outputs(request: pytest.FixtureRequest, ollama_numerics: Any,
                        render_snapshot: Any, case: str) -> None:
    record = ollama_numerics.record(_model(request, case in IMAGE), case)
    assert render_snapshot == record, rule("numerics snapshot").fail(
        f"the greedy output of {case!r} changed since this image's snapshot was recorded "
        "(--snapshot-update records the new one)")


@pytest.mark.parametrize("group", ["text", "image"])
def test_divergence_from_baseline(request: pytest.FixtureRequest, ollama_numerics: Any,
                                  group: str) -> None:
    cases = IMAGE if group == "image" else TEXT
    ollama_numerics.against_baseline(_model(request, group == "image"), cases)
