"""debug_render: the prompts an image renders for a fixed set of conversations.

Each render is snapshotted per image (label or short ID plus server version, see
``pytest_ollama_regress.suite.snapshots``): the first run against an image records it, later runs
compare with it. With ``--ollama-baseline REF`` every other target's render is also compared
with the baseline's in the same run and a difference is shown as a unified diff (healthy tag
forms — attached, blank line, renderer space, media markers — made one first). The response
shape (minimal before v0.12.0, full after) must be a healthy one for the releases the target
may be; a candidate without the debug render whose baseline has it fails ("present in the
baseline, absent in the candidate").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from pytest_ollama_regress.suite.checks import marks
from pytest_ollama_regress.suite.expectations import Expectations, canonical_render, rule
from pytest_ollama_regress.suite.pictures import picture_set
from pytest_ollama_regress.suite.snapshots import normalise_render, unified_diff
from pytest_ollama_regress.suite.support import check, fail, needs_debug_render

pytestmark = marks("debug_render")


@dataclass(frozen=True)
class Conversation:
    """One recorded request: chat messages or a generate prompt, with or without images."""

    id: str
    endpoint: Literal["chat", "generate"]
    messages: tuple[dict[str, Any], ...] = ()
    prompt: str = ""
    system: str | None = None
    images: int = 0
    vision: bool = field(default=False)

    def render(self, client: Any, model: str) -> Any:
        pictures = [p.png for p in picture_set(self.images)]
        if self.endpoint == "generate":
            extra = {"system": self.system} if self.system else {}
            return client.render_generate(model, self.prompt, images=pictures or None, **extra)
        messages = [dict(m) for m in self.messages]
        if pictures:  # the images go to the last user message
            last = max(i for i, m in enumerate(messages) if m["role"] == "user")
            messages[last]["images"] = pictures
        return client.render_chat(model, messages)


CONVERSATIONS = (
    Conversation("system-user", "chat", (
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Name three primary colours."},
    )),
    Conversation("multi-turn", "chat", (
        {"role": "user", "content": "Hello!"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    )),
    Conversation("chat-images", "chat", (
        {"role": "system", "content": "Describe pictures precisely."},
        {"role": "user", "content": "Compare [img] and [img]."},
    ), images=2, vision=True),
    Conversation("generate-system", "generate", prompt="Why is the sky blue?",
                 system="Answer in one sentence."),
    Conversation("generate-images", "generate", prompt="Describe the pictures.", images=2,
                 vision=True),
)
IDS = [c.id for c in CONVERSATIONS]


def _model(request: pytest.FixtureRequest, conversation: Conversation) -> str:
    return str(request.getfixturevalue(
        "ollama_vision_model" if conversation.vision else "ollama_model"))


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=IDS)
def test_render_snapshot(request: pytest.FixtureRequest, ollama: Any,
                         ollama_expect: Expectations, render_snapshot: Any,
                         conversation: Conversation) -> None:
    needs_debug_render(ollama_expect)
    render = conversation.render(ollama, _model(request, conversation))
    shapes = ollama_expect.healthy_debug_shapes()
    applied = rule("debug-render shape full" if shapes == ("full",) else
                   "debug-render shape minimal")
    check(render.shape in shapes, applied.fail(
        f"debug response shape {render.shape!r} is not {' or '.join(shapes)} (what "
        f"{ollama_expect.server_version} may give): the response carries {sorted(render.raw)}"))
    assert render_snapshot == render, rule("debug-render snapshot").fail(
        f"the render of {conversation.id!r} changed since this image's snapshot was recorded "
        "(--snapshot-update records the new one)")


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=IDS)
def test_render_matches_baseline(request: pytest.FixtureRequest, ollama: Any,
                                 ollama_target: Any, ollama_expect: Expectations,
                                 ollama_baseline: Any, conversation: Conversation) -> None:
    if ollama_baseline is None:
        pytest.skip("no --ollama-baseline: nothing to compare with")
    if ollama_baseline.is_current:
        pytest.skip(f"{ollama_baseline.id} is the baseline")
    if not ollama_baseline.expect.debug_render:
        pytest.skip(f"baseline {ollama_baseline.id}: "
                    f"{ollama_baseline.expect.skip_reason('debug-render')}")
    if ollama_expect.promises("debug-render") is False:
        pytest.skip(ollama_expect.skip_reason("debug-render"))
    check(ollama_expect.debug_render, rule("debug-render").fail(
        f"{ollama_target.id} ({ollama_target.server_version}) has no debug render but baseline "
        f"{ollama_baseline.id} ({ollama_baseline.info.server_version}) has: present in the "
        "baseline, absent in the candidate"))
    model = _model(request, conversation)
    candidate = conversation.render(ollama, model)
    try:
        baseline = conversation.render(ollama_baseline.client, model)
    except Exception as exc:  # noqa: BLE001 - the baseline may lack the model
        pytest.skip(f"baseline {ollama_baseline.id} cannot render {conversation.id}: {exc}")
    mine = canonical_render(normalise_render(candidate.rendered_template))
    theirs = canonical_render(normalise_render(baseline.rendered_template))
    if mine == theirs and candidate.image_count == baseline.image_count:
        return
    base_label = f"{ollama_baseline.id} ({ollama_baseline.info.server_version})"
    diff = unified_diff(theirs, mine, expected_label=f"baseline {base_label}",
                        actual_label=f"{ollama_target.id} ({ollama_target.server_version})")
    counts = ("" if candidate.image_count == baseline.image_count else
              f"image_count {candidate.image_count} != baseline's {baseline.image_count}; ")
    fail(rule("debug-render baseline").fail(
        f"the render of {conversation.id!r} differs from baseline {base_label}: {counts}"
        "the prompt changed") + f"\n{diff}")
