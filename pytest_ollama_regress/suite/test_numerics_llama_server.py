"""numerics on llama.cpp's server: greedy golden completions and log-probability divergence.

The prompt set of ``numerics_prompts.json`` is templated by ``/apply-template``, tokenized and
decoded greedily by ``/completion`` from token ids (temperature 0, seed 42, ``n_probs``);
outputs are snapshotted per image. With ``--ollama-baseline`` the baseline's tokens are forced
on the candidate one position at a time, so next-token distributions are compared at every
position of the baseline's output, past the first divergent token too: mean / p99 / max KL and
the same-top-token rate, judged by the ``--ollama-numerics-*`` thresholds. The picture case runs
when the server has the image modality (``--mmproj``), over ``/v1/chat/completions``.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ollama_regress.suite.checks import marks
from pytest_ollama_regress.suite.expectations import rule
from pytest_ollama_regress.suite.golden import prompt_set

pytestmark = marks("numerics", "llama-server")

TEXT = prompt_set().ids(vision=False)
IMAGE = prompt_set().ids(vision=True)


def _model(request: pytest.FixtureRequest, vision: bool) -> str:
    return str(request.getfixturevalue("ollama_vision_model" if vision else "ollama_model"))


@pytest.mark.parametrize("case", [*TEXT, *IMAGE])
def test_golden_completions(request: pytest.FixtureRequest, ollama_numerics: Any,
                            render_snapshot: Any, case: str) -> None:
    record = ollama_numerics.record(_model(request, case in IMAGE), case)
    assert render_snapshot == record, rule("numerics snapshot").fail(
        f"the greedy completion of {case!r} changed since this image's snapshot was recorded "
        "(--snapshot-update records the new one)")


@pytest.mark.parametrize("group", ["text", "image"])
def test_completion_divergence_from_baseline(request: pytest.FixtureRequest,
                                             ollama_numerics: Any, group: str) -> None:
    cases = IMAGE if group == "image" else TEXT
    ollama_numerics.against_baseline(_model(request, group == "image"), cases)
