"""Generated pictures (``pytest_ollama_regress.suite.pictures``) and what a pixel counter sees."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pytest_ollama_regress.sim.vision import analyse
from pytest_ollama_regress.suite.pictures import PALETTE, make_picture, picture_set


@pytest.mark.parametrize("colour", sorted(PALETTE))
@pytest.mark.parametrize("count", [1, 2, 3, 5, 12])
@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
def test_counter_sees_count_and_colour(colour: str, count: int, shape: str) -> None:
    picture = make_picture(count, colour, shape=shape)  # type: ignore[arg-type]
    seen = analyse(picture.png)
    assert (seen.shapes, seen.colour, seen.background) == (count, colour, "white")


def test_png_is_deterministic_and_valid() -> None:
    first = make_picture(3, "red")
    make_picture.cache_clear()
    second = make_picture(3, "red")
    assert first.png == second.png
    image = Image.open(io.BytesIO(first.png))
    assert (image.format, image.size) == ("PNG", (256, 256))
    assert first.png != make_picture(3, "blue").png


def test_word_and_labels() -> None:
    picture = make_picture(2, "blue", word="CAT")
    assert picture.expected_words() == ("blue", "2", "two", "cat")
    assert picture.label == "2 blue circles and the word 'CAT'"
    assert picture.b64.startswith("iVBOR")
    assert make_picture(1, "red").label == "1 red circle"


def test_picture_set_is_distinct() -> None:
    pictures = picture_set(5)
    assert len({p.png for p in pictures}) == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"colour": "white"}, "unknown colour"), ({"count": 0}, "count must be"),
     ({"count": 13}, "count must be"), ({"shape": "star"}, "unknown shape"),
     ({"size": (10, 10)}, "at least 64x64")],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_picture(**kwargs)
