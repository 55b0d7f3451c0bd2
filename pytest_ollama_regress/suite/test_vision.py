"""vision: images reach the model.

Counting goes through the debug render (``_debug_render_only``, v0.11.5+): ``image_count``
and the ``[img-N]`` tags (or, for natively chatted models from v0.30, the media markers) must
match the images sent, on chat and on generate, in earlier history messages too, with a
literal ``[img]`` replaced in order. Every healthy tag form is accepted (attached, a blank line
or a renderer's space); the render snapshots show a change of form between images. The render
only shows what the server placed, so runner-side loss is checked too: ``prompt_eval_count``
must grow with every added image, and an answer about several pictures must account for each.
A real answer about a generated picture must name its colour or count. Broken images are a
400. Images sent to a model without vision are handled the way the target's release and the
model's architecture do (§16.3).
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ollama_regress.dialects.ollama_client import OllamaError
from pytest_ollama_regress.suite.checks import marks
from pytest_ollama_regress.suite.expectations import (
    Expectations,
    ReleaseRules,
    explain_image_count,
    found_image_tags,
    found_media_markers,
    generate_tag_forms,
    image_tag_forms,
    image_tags,
    rule,
)
from pytest_ollama_regress.suite.model_facts import IMAGE_ERROR_TEXT, ModelFacts
from pytest_ollama_regress.suite.pictures import Picture, make_picture, picture_set
from pytest_ollama_regress.suite.support import (
    ANSWER_OPTIONS,
    check,
    fail,
    mentions,
    model_facts,
    needs_capable_model,
    needs_debug_render,
    non_vision_model,
    settle,
)

pytestmark = marks("vision")

QUESTION = "How many shapes are in this picture, and what colour are they?"
COUNTS = [1, 2, 3]


def _check_count(render: Any, sent: int, applied: str = "debug-render image_count") -> None:
    got = render.image_count
    check(got == sent, rule(applied).fail(
        f"image_count {got} != {sent}: {explain_image_count(got, sent)}"))


def _natively_chatted(text: str, sent: int, expect: Expectations) -> bool:
    """The render is the native-Jinja form (v0.30+: a model without its own Go template, or
    any model under ``OLLAMA_GO_TEMPLATE=0``): no tags, one media marker per image."""
    return (expect.native_chat is not False and not found_image_tags(text)
            and len(found_media_markers(text)) == sent)


def _check_tags(text: str, sent: int, applied: str,
                expect: Expectations | None = None) -> None:
    found, wanted = found_image_tags(text), image_tags(sent)
    if found == wanted or (expect and _natively_chatted(text, sent, expect)):
        return
    fail(rule(applied).fail(
        f"tags {' '.join(found) or 'none'} != {' '.join(wanted)}: "
        f"{explain_image_count(len(found), sent)}\nrendered template:\n{text}"))


def _check_in(forms: tuple[str, ...], text: str, applied: str, what: str) -> None:
    if any(form in text for form in forms):
        return
    shown = " or ".join(repr(f) for f in forms)
    fail(rule(applied).fail(f"{shown} not in the render: {what}\nrendered template:\n{text}"))


def _chat_forms(content: str, images: int, native: bool, start: int = 0) -> tuple[str, ...]:
    """Healthy renders of a message's content: tagged, or unchanged when chatted natively."""
    if native:
        return (content,)
    return image_tag_forms(content, images, start)


def _skip_single_image_model(facts: ModelFacts, count: int) -> None:
    if facts.single_image and count > 1:
        pytest.skip(f"{facts.name} ({facts.architecture}) takes one image per request "
                    f"(rule: {rule('mllama one image').name})")


@pytest.mark.parametrize("count", COUNTS, ids=[f"{n}-image" for n in COUNTS])
def test_chat_image_count(ollama: Any, ollama_vision_model: str, ollama_expect: Expectations,
                          count: int) -> None:
    needs_debug_render(ollama_expect)
    facts = model_facts(ollama, ollama_vision_model)
    _skip_single_image_model(facts, count)
    content = "Describe these pictures."
    render = ollama.render_chat(ollama_vision_model, [
        {"role": "user", "content": content, "images": [p.png for p in picture_set(count)]}])
    text = render.rendered_template
    _check_count(render, count)
    _check_tags(text, count, "chat image tags", ollama_expect)
    _check_in(_chat_forms(content, count, _natively_chatted(text, count, ollama_expect)), text,
              "chat image tags", "the tags are not right before the message content")


@pytest.mark.parametrize("count", COUNTS, ids=[f"{n}-image" for n in COUNTS])
def test_generate_image_count(ollama: Any, ollama_vision_model: str,
                              ollama_expect: Expectations, count: int) -> None:
    needs_debug_render(ollama_expect)
    _skip_single_image_model(model_facts(ollama, ollama_vision_model), count)
    prompt = "Describe these pictures."
    render = ollama.render_generate(ollama_vision_model, prompt,
                                    images=[p.png for p in picture_set(count)])
    applied = "generate image tags attached"
    _check_count(render, count)
    _check_tags(render.rendered_template, count, applied)
    _check_in(generate_tag_forms(prompt, count), render.rendered_template, applied,
              "the image tags are not right before the prompt")


def test_literal_img_placeholder(ollama: Any, ollama_vision_model: str,
                                 ollama_expect: Expectations) -> None:
    needs_debug_render(ollama_expect)
    facts = model_facts(ollama, ollama_vision_model)
    _skip_single_image_model(facts, 2)
    content = "Compare [img] with [img]: which one has more shapes?"
    render = ollama.render_chat(ollama_vision_model, [
        {"role": "user", "content": content, "images": [p.png for p in picture_set(2)]}])
    text = render.rendered_template
    _check_count(render, 2)
    known_bug = facts.has_renderer and ollama_expect.promises("renderer [img] not replaced")
    _check_in(_chat_forms(content, 2, _natively_chatted(text, 2, ollama_expect)), text,
              "renderer [img] not replaced" if known_bug else "literal [img] placeholder",
              "each [img] must become the next [img-N]" + (
                  " (a known upstream bug of renderer models, fixed in 0.23.4)"
                  if known_bug else ""))


def test_history_images(ollama: Any, ollama_vision_model: str,
                        ollama_expect: Expectations) -> None:
    needs_debug_render(ollama_expect)
    facts = model_facts(ollama, ollama_vision_model)
    _skip_single_image_model(facts, 2)
    first, second = picture_set(2)
    messages = [
        {"role": "user", "content": "Here is the first picture.", "images": [first.png]},
        {"role": "assistant", "content": f"It shows {first.label}."},
        {"role": "user", "content": "Here is the second one. How do they differ?",
         "images": [second.png]},
    ]
    render = ollama.render_chat(ollama_vision_model, messages)
    text = render.rendered_template
    _check_count(render, 2)
    _check_tags(text, 2, "chat image tags", ollama_expect)
    native = _natively_chatted(text, 2, ollama_expect)
    for index, message in ((0, messages[0]), (1, messages[2])):
        _check_in(_chat_forms(message["content"], 1, native, start=index),
                  text, "chat image tags",
                  "images of earlier messages are numbered in order across the history")


SESSION_WORDS = ("1", "2", "3", "4")
"""One per request of the growth check: a different first word defeats the prompt cache; one
digit each, so every request's text has the same number of tokens."""


def _prompt_tokens(ollama: Any, model: str, images: list[bytes], word: str) -> int:
    messages = [{"role": "system", "content": f"{word} Session."},
                {"role": "user", "content": "Describe these pictures.", "images": images}]
    return ollama.chat(model, messages, options={"temperature": 0, "num_predict": 1}
                       ).metrics.prompt_eval_count


def test_prompt_eval_grows_per_image(ollama: Any, ollama_vision_model: str) -> None:
    """The runner embeds every image: each added image adds prompt tokens (§16.6)."""
    facts = model_facts(ollama, ollama_vision_model)
    pictures = [p.png for p in picture_set(len(SESSION_WORDS) - 1)]
    counts = []
    for n, word in enumerate(SESSION_WORDS):
        if facts.single_image and n > 1:
            break
        counts.append(_prompt_tokens(ollama, ollama_vision_model, pictures[:n], word))
    flat = [n for n in range(1, len(counts)) if counts[n] <= counts[n - 1]]
    if flat:
        shown = ", ".join(f"{n} images: {c}" for n, c in enumerate(counts))
        embedded = flat[0] - 1
        fail(rule("image count accounts every image").fail(
            f"prompt_eval_count did not grow with image {flat[0]} ({shown}): the runner "
            f"embedded {embedded} of {len(counts) - 1} images"))


def test_multi_image_answer(ollama: Any, ollama_vision_model: str,
                            ollama_vision_words: tuple[str, ...] | None) -> None:
    """An answer about several pictures accounts for every one of them (§16.6)."""
    facts = model_facts(ollama, ollama_vision_model)
    needs_capable_model(facts, "answers about pictures")
    _skip_single_image_model(facts, 3)
    if ollama_vision_words:
        pytest.skip("--ollama-vision-words names words for one picture; this check asks "
                    "about three")
    pictures = picture_set(3)
    question = ("There are three pictures. For each picture, say how many shapes it has "
                "and what colour they are.")
    answer = ollama.chat(ollama_vision_model, [
        {"role": "user", "content": question, "images": [p.png for p in pictures]}],
        options=ANSWER_OPTIONS).text
    missing = [p for p in pictures if not mentions(answer, (p.colour,))]
    if missing:
        seen = len(pictures) - len(missing)
        fail(rule("multi-image answer").fail(
            f"the answer names {seen} of {len(pictures)} pictures' colours (missing: "
            f"{', '.join(p.label for p in missing)}): the model did not see every image\n"
            f"answer: {answer!r}"))


def _answer(ollama: Any, model: str, endpoint: str, picture: Picture) -> str:
    if endpoint == "chat":
        return ollama.chat(model, [{"role": "user", "content": QUESTION,
                                    "images": [picture.png]}], options=ANSWER_OPTIONS).text
    return ollama.generate(model, QUESTION, images=[picture.png], options=ANSWER_OPTIONS).text


@pytest.mark.parametrize("endpoint", ["chat", "generate"])
def test_model_sees_picture(ollama: Any, ollama_vision_model: str, endpoint: str,
                            ollama_vision_words: tuple[str, ...] | None) -> None:
    if not ollama_vision_words:
        needs_capable_model(model_facts(ollama, ollama_vision_model), "answers about pictures")
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


def _image_outcomes(release: ReleaseRules, facts: ModelFacts) -> set[str]:
    """What a healthy ``release`` does with images sent to the text model ``facts``."""
    if facts.rejects_images(release):
        return {"error"}
    return {"accepted"} if release.non_vision_images_accepted else {"accepted", "error"}


def test_images_to_non_vision_model(ollama: Any, ollama_models: list[Any], ollama_target: Any,
                                    ollama_expect: Expectations,
                                    pytestconfig: pytest.Config) -> None:
    model = non_vision_model(pytestconfig, ollama_models, ollama_target.id)
    facts = model_facts(ollama, model)
    picture = make_picture(3, "red")
    messages = [{"role": "user", "content": QUESTION, "images": [picture.png]}]
    applied = rule("text-model image error") if facts.kinds & {"gemma3", "mistral3", "llama4",
                                                               "qwen25vl"} \
        else rule("non-vision images ignored")
    try:
        answer = ollama.chat(model, messages, options=ANSWER_OPTIONS).text
    except OllamaError as exc:
        check(400 <= exc.status < 600, applied.fail(f"unexpected failure {exc}"))
        settle(ollama_expect.judge("error", lambda r: _image_outcomes(r, facts)),
               ollama_expect, applied,
               applied.fail(f"the request failed ({exc}): this release accepts images for "
                            f"{model} ({facts.architecture}), a model without vision"))
        if all(facts.rejects_images(r) for r in ollama_expect.views):
            check(IMAGE_ERROR_TEXT in exc.message, applied.fail(
                f"the error does not say {IMAGE_ERROR_TEXT!r}: {exc.message!r}"))
        return
    settle(ollama_expect.judge("accepted", lambda r: _image_outcomes(r, facts)),
           ollama_expect, applied,
           applied.fail(f"{model} ({facts.architecture}, no vision) accepted an image: this "
                        f"release fails such a request with {IMAGE_ERROR_TEXT!r}"))
    seen = mentions(answer, ("red",))
    check(not seen, applied.fail(
        f"{model} has no vision yet described {picture.label}\nanswer: {answer!r}"))
    if ollama_expect.promises("non-vision images ignored") and ollama_expect.debug_render:
        render = ollama.render_chat(model, messages)
        _check_count(render, 1, applied.name)
        _check_tags(render.rendered_template, 1, applied.name, ollama_expect)
