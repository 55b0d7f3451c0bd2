"""Runner-side image loss (16.6): ``images-first-only`` against ``good``.

The render shows what the server placed, so both profiles render every image; only
``prompt_eval_count`` (same prompt, 0-3 images) and an answer that accounts for every
picture tell them apart.
"""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image, ImageDraw

from pytest_ollama_regress.sim import Latency, SimServer

FAST = Latency(load_ms=1, prefill_us=1, decode_ms=0.05)
QUESTION = "How many shapes do you see, and what colour are they?"
#: (shapes, colour) of picture 1, 2, 3 and the sentence the simulated vision gives for each
PICTURES = ((1, "red", "I see 1 (one) red shape on a white background."),
            (2, "blue", "I see 2 (two) blue shapes on a white background."),
            (3, "green", "I see 3 (three) green shapes on a white background."))
#: model, version, image tokens per picture (one per path: Go template, renderer, native)
PATHS = (("llava:7b", "0.12.6", 576), ("qwen3-vl:2b", "0.23.4", 256),
         ("smolvlm:256m", "0.30.0", 64))


def png(shapes: int, colour: str) -> str:
    image = Image.new("RGB", (100, 40), "white")
    draw = ImageDraw.Draw(image)
    for index in range(shapes):
        draw.rectangle([4 + 24 * index, 10, 20 + 24 * index, 30], fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


IMAGES = [png(shapes, colour) for shapes, colour, _ in PICTURES]


@pytest.fixture(scope="module")
def sims():
    started: dict[tuple[str, str], SimServer] = {}

    def get(profile: str, version: str) -> SimServer:
        if (profile, version) not in started:
            started[(profile, version)] = SimServer(
                profile=profile, version=version, env={"OLLAMA_SIM_MODELS": "all"},
                latency=FAST, log_stream=io.StringIO()).start()
        return started[(profile, version)]

    yield get
    for sim in started.values():
        sim.stop()


def ask(sim: SimServer, model: str, count: int, route: str, **extra) -> dict:
    images = IMAGES[:count]
    if route == "chat":
        body = {"messages": [{"role": "user", "content": QUESTION, "images": images}]}
    else:
        body = {"prompt": QUESTION, "images": images}
    response = httpx.post(f"{sim.url}/api/{route}", timeout=10, json={
        "model": model, "stream": False, "think": False, "options": {"num_predict": 200},
        **body, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def answer(body: dict) -> str:
    return body["message"]["content"] if "message" in body else body["response"]


@pytest.mark.parametrize("route", ["chat", "generate"])
@pytest.mark.parametrize(("model", "version", "per_image"), PATHS,
                         ids=[path[0] for path in PATHS])
def test_prompt_eval_count_grows_with_each_image_on_good_only(sims, model, version,
                                                              per_image, route):
    def growth(profile: str) -> list[int]:
        counts = [ask(sims(profile, version), model, n, route)["prompt_eval_count"]
                  for n in range(4)]
        return [b - a for a, b in zip(counts, counts[1:], strict=False)]

    assert growth("good") == [per_image] * 3
    assert growth("images-first-only") == [per_image, 0, 0]


@pytest.mark.parametrize("route", ["chat", "generate"])
def test_render_shows_every_image_on_both(sims, route):
    for profile in ("good", "images-first-only"):
        info = ask(sims(profile, "0.12.6"), "llava:7b", 3, route,
                   _debug_render_only=True)["_debug_info"]
        assert info["image_count"] == 3
        assert all(f"[img-{n}]" in info["rendered_template"] for n in range(3))


@pytest.mark.parametrize("route", ["chat", "generate"])
@pytest.mark.parametrize(("model", "version", "per_image"), PATHS,
                         ids=[path[0] for path in PATHS])
def test_answer_accounts_for_every_picture_on_good_only(sims, model, version, per_image,
                                                        route):
    good = answer(ask(sims("good", version), model, 3, route))
    assert good == " ".join(f"Image {n}: {sentence}"
                            for n, (_, _, sentence) in enumerate(PICTURES, 1))
    lossy = answer(ask(sims("images-first-only", version), model, 3, route))
    assert lossy == PICTURES[0][2]
    assert "blue" not in lossy and "green" not in lossy


def test_one_image_is_the_same_on_both(sims):
    bodies = [ask(sims(profile, "0.12.6"), "llava:7b", 1, "chat")
              for profile in ("good", "images-first-only")]
    assert answer(bodies[0]) == answer(bodies[1]) == PICTURES[0][2]
    assert bodies[0]["prompt_eval_count"] == bodies[1]["prompt_eval_count"]
