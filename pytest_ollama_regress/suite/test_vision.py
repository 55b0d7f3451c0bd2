"""vision: images reach the model.

Counting goes through the debug render (``_debug_render_only``, v0.11.5+): ``image_count``
and the ``[img-N]`` tags must match the images sent, on chat and on generate, in earlier
history messages too, with a literal ``[img]`` replaced in order. A real answer about a
generated picture must name its colour or count. Broken images are a 400. Images sent to a
model without vision are handled the way the target's version does.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ollama_regress.client import OllamaError
from pytest_ollama_regress.expectations import (
    Expectations,
    explain_image_count,
    found_image_tags,
    image_tags,
    rule,
)
from pytest_ollama_regress.images import Picture, make_picture, picture_set
from pytest_ollama_regress.suite.support import (
    ANSWER_OPTIONS,
    check,
    fail,
    mentions,
    needs_debug_render,
    non_vision_model,
)

pytestmark = pytest.mark.vision

QUESTION = "How many shapes are in this picture, and what colour are they?"
COUNTS = [1, 2, 3]


def _check_count(render: Any, sent: int, applied: str = "debug-render image_count") -> None:
    got = render.image_count
    check(got == sent, rule(applied).fail(
        f"image_count {got} != {sent}: {explain_image_count(got, sent)}"))


def _check_tags(text: str, sent: int, applied: str) -> None:
    found, wanted = found_image_tags(text), image_tags(sent)
    check(found == wanted, rule(applied).fail(
        f"tags {' '.join(found) or 'none'} != {' '.join(wanted)}: "
        f"{explain_image_count(len(found), sent)}\nrendered template:\n{text}"))


def _check_in(expected: str, text: str, applied: str, what: str) -> None:
    check(expected in text, rule(applied).fail(
        f"{expected!r} not in the render: {what}\nrendered template:\n{text}"))


@pytest.mark.parametrize("count", COUNTS, ids=[f"{n}-image" for n in COUNTS])
def test_chat_image_count(ollama: Any, ollama_vision_model: str, ollama_expect: Expectations,
                          count: int) -> None:
    needs_debug_render(ollama_expect)
    content = "Describe these pictures."
    render = ollama.render_chat(ollama_vision_model, [
        {"role": "user", "content": content, "images": [p.png for p in picture_set(count)]}])
    _check_count(render, count)
    _check_tags(render.rendered_template, count, "chat image tags")
    _check_in(ollama_expect.chat_content_render(content, count), render.rendered_template,
              "chat image tags", "the tags are not right before the message content")


@pytest.mark.parametrize("count", COUNTS, ids=[f"{n}-image" for n in COUNTS])
def test_generate_image_count(ollama: Any, ollama_vision_model: str,
                              ollama_expect: Expectations, count: int) -> None:
    needs_debug_render(ollama_expect)
    prompt = "Describe these pictures."
    render = ollama.render_generate(ollama_vision_model, prompt,
                                    images=[p.png for p in picture_set(count)])
    applied = ollama_expect.generate_image_rule.name
    _check_count(render, count)
    _check_tags(render.rendered_template, count, applied)
    _check_in(ollama_expect.generate_render_prefix(count) + prompt, render.rendered_template,
              applied, "the image tags are not where this version puts them")


def test_literal_img_placeholder(ollama: Any, ollama_vision_model: str,
                                 ollama_expect: Expectations) -> None:
    needs_debug_render(ollama_expect)
    content = "Compare [img] with [img]: which one has more shapes?"
    render = ollama.render_chat(ollama_vision_model, [
        {"role": "user", "content": content, "images": [p.png for p in picture_set(2)]}])
    _check_count(render, 2)
    _check_in(ollama_expect.chat_content_render(content, 2), render.rendered_template,
              "literal [img] placeholder", "each [img] must become the next [img-N]")


def test_history_images(ollama: Any, ollama_vision_model: str,
                        ollama_expect: Expectations) -> None:
    needs_debug_render(ollama_expect)
    first, second = picture_set(2)
    messages = [
        {"role": "user", "content": "Here is the first picture.", "images": [first.png]},
        {"role": "assistant", "content": f"It shows {first.label}."},
        {"role": "user", "content": "Here is the second one. How do they differ?",
         "images": [second.png]},
    ]
    render = ollama.render_chat(ollama_vision_model, messages)
    _check_count(render, 2)
    _check_tags(render.rendered_template, 2, "chat image tags")
    for index, message in ((0, messages[0]), (1, messages[2])):
        _check_in(ollama_expect.chat_content_render(message["content"], 1, start=index),
                  render.rendered_template, "chat image tags",
                  "images of earlier messages are numbered in order across the history")


def _answer(ollama: Any, model: str, endpoint: str, picture: Picture) -> str:
    if endpoint == "chat":
        return ollama.chat(model, [{"role": "user", "content": QUESTION,
                                    "images": [picture.png]}], options=ANSWER_OPTIONS).text
    return ollama.generate(model, QUESTION, images=[picture.png], options=ANSWER_OPTIONS).text


@pytest.mark.parametrize("endpoint", ["chat", "generate"])
def test_model_sees_picture(ollama: Any, ollama_vision_model: str, endpoint: str,
                            ollama_vision_words: tuple[str, ...] | None) -> None:
    picture = make_picture(3, "red")
    words = ollama_vision_words or picture.expected_words()
    answer = _answer(ollama, ollama_vision_model, endpoint, picture)
    check(bool(mentions(answer, words)), rule("vision answer").fail(
        f"the answer about {picture.label} names none of {', '.join(words)}: the model did "
        f"not see the picture\nanswer: {answer!r}"))


BROKEN_IMAGES = {
    "invalid-base64": "this is not base64!",
    "data-uri": "data:image/png;base64," + make_picture(1, "blue").b64,
}


@pytest.mark.parametrize("endpoint", ["chat", "generate"])
@pytest.mark.parametrize("kind", sorted(BROKEN_IMAGES))
def test_broken_image_is_rejected(ollama: Any, ollama_vision_model: str, endpoint: str,
                                  kind: str) -> None:
    image = BROKEN_IMAGES[kind]
    applied = rule("image data-uri" if kind == "data-uri" else "image base64")
    try:
        if endpoint == "chat":
            ollama.chat(ollama_vision_model, [{"role": "user", "content": QUESTION,
                                               "images": [image]}], options=ANSWER_OPTIONS)
        else:
            ollama.generate(ollama_vision_model, QUESTION, images=[image],
                            options=ANSWER_OPTIONS)
    except OllamaError as exc:
        check(exc.status == 400, applied.fail(
            f"{kind} image gave status {exc.status} ({exc.message!r}), not 400"))
        return
    fail(applied.fail(f"{kind} image was accepted (200): it must be a 400"))


def test_images_to_non_vision_model(ollama: Any, ollama_models: list[Any], ollama_target: Any,
                                    ollama_expect: Expectations,
                                    pytestconfig: pytest.Config) -> None:
    model = non_vision_model(pytestconfig, ollama_models, ollama_target.id)
    picture = make_picture(3, "red")
    applied = ollama_expect.non_vision_images_rule
    messages = [{"role": "user", "content": QUESTION, "images": [picture.png]}]
    try:
        answer = ollama.chat(model, messages, options=ANSWER_OPTIONS).text
    except OllamaError as exc:
        check(not ollama_expect.non_vision_images_accepted, applied.fail(
            f"the request failed ({exc}): this version accepts images for any model"))
        check(400 <= exc.status < 600, applied.fail(f"unexpected failure {exc}"))
        return
    seen = mentions(answer, ("red",))
    check(not seen, applied.fail(
        f"{model} has no vision yet described {picture.label}\nanswer: {answer!r}"))
    if ollama_expect.non_vision_images_accepted and ollama_expect.debug_render:
        render = ollama.render_chat(model, messages)
        _check_count(render, 1, applied.name)
        _check_tags(render.rendered_template, 1, applied.name)
