"""vision on llama.cpp's server, when it reports the image modality (``/props``
``modalities.vision``, a model started with ``--mmproj``): each added image adds prompt
tokens (``timings.prompt_n``), so none is dropped. Skipped, naming why, otherwise."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from pytest_ollama_regress.suite.checks import marks

pytestmark = marks("vision", "llama-server")


@pytest.fixture
def vision_server(ollama: Any, ollama_target: Any) -> Any:
    modalities = ollama.props().get("modalities") or {}
    if not modalities.get("vision"):
        pytest.skip(f"{ollama_target.id} reports no image modality (/props modalities "
                    f"{modalities or 'absent'}): start llama-server with --mmproj for vision")
    return ollama


def _message(count: int, picture: Any) -> list[dict[str, Any]]:
    url = "data:image/png;base64," + base64.b64encode(picture.png).decode()
    parts: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": url}}] * count
    return [{"role": "user", "content": [*parts, {"type": "text", "text": "How many?"}]}]


def test_prompt_grows_with_each_image(vision_server: Any, ollama_model: str,
                                      ollama_picture: Any) -> None:
    picture = ollama_picture(count=2, colour="red")
    counts = []
    for images in range(3):
        completion = vision_server.chat(ollama_model, _message(images, picture),
                                        options={"max_tokens": 1, "cache_prompt": False})
        counts.append(completion.metrics.prompt_eval_count)
    grew = all(b > a for a, b in zip(counts, counts[1:], strict=False))
    assert grew, f"prompt tokens for 0/1/2 images: {counts}: an image was dropped"
