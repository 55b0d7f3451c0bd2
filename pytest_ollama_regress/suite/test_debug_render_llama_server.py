"""debug_render on llama.cpp's server: the chat template as ``POST /apply-template`` renders
it, snapshotted per image (syrupy) and diffed against the ``--ollama-baseline`` image's render.

A changed template (an image started with ``--chat-template``, a GGUF with another template)
shows as a readable unified diff; identical images render identically.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ollama_regress.suite.checks import marks
from pytest_ollama_regress.suite.snapshots import normalise_render, unified_diff

pytestmark = marks("debug_render", "llama-server")

CONVERSATIONS: dict[str, list[dict[str, str]]] = {
    "system-user": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello."},
    ],
    "multi-turn": [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Red."},
        {"role": "user", "content": "Another one."},
    ],
}


def _render(client: Any, case: str) -> str:
    return normalise_render(client.apply_template(CONVERSATIONS[case]))


@pytest.mark.parametrize("case", CONVERSATIONS)
def test_template_render_snapshot(ollama: Any, case: str, render_snapshot: Any) -> None:
    rendered = _render(ollama, case)
    for message in CONVERSATIONS[case]:
        assert message["content"] in rendered, (
            f"the {message['role']} message {message['content']!r} is missing from the render:\n"
            f"{rendered}")
    assert rendered == render_snapshot, (
        f"the render of {case!r} changed since this image's snapshot was recorded "
        "(--snapshot-update records the new one)")


@pytest.mark.parametrize("case", CONVERSATIONS)
def test_template_render_matches_baseline(ollama: Any, ollama_target: Any, ollama_baseline: Any,
                                 case: str) -> None:
    if ollama_baseline is None:
        pytest.skip("no --ollama-baseline: nothing to compare with")
    if ollama_baseline.is_current:
        pytest.skip(f"{ollama_baseline.id} is the baseline")
    mine, theirs = _render(ollama, case), _render(ollama_baseline.client, case)
    if mine == theirs:
        return
    base = f"{ollama_baseline.id} ({ollama_baseline.info.server_version})"
    diff = unified_diff(theirs, mine, expected_label=f"baseline {base}",
                        actual_label=f"{ollama_target.id} ({ollama_target.server_version})")
    pytest.fail(f"the chat template renders {case!r} differently from baseline {base}:\n{diff}",
                pytrace=False)
