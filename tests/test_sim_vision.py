"""Deterministic simulated vision: background, 4-connected shapes > 20 px, dominant colour."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from pytest_ollama_regress.sim.vision import (
    Analysis,
    VisionError,
    analyse,
    describe,
    nearest_name,
    number_word,
)


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def shapes_image(count: int, colour: str = "red", background: str = "white",
                 size: tuple[int, int] = (200, 100)) -> Image.Image:
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    for index in range(count):
        x = 5 + (index % 8) * 24
        y = 5 + (index // 8) * 30
        draw.ellipse([x, y, x + 16, y + 16], fill=colour)
    return image


@pytest.mark.parametrize("count", [0, 1, 3, 7, 12])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_counts_shapes_in_any_format(count, fmt):
    result = analyse(encode(shapes_image(count, "blue"), fmt))
    assert result.shapes == count and result.background == "white"
    assert result.colour == ("blue" if count else None)


def test_small_specks_and_touching_shapes():
    image = shapes_image(2, "green", "black")
    draw = ImageDraw.Draw(image)
    draw.rectangle([150, 80, 153, 83], fill="green")  # 16 px: not a shape
    draw.rectangle([100, 50, 120, 60], fill="green")
    draw.rectangle([121, 50, 140, 60], fill="green")  # touches the previous one: one shape
    draw.point([(180, 10), (181, 11)], fill="green")  # diagonal only: specks
    result = analyse(encode(image))
    assert (result.shapes, result.colour, result.background) == (3, "green", "black")


def test_dominant_colour_is_most_common():
    image = shapes_image(2, "yellow")
    ImageDraw.Draw(image).rectangle([100, 40, 190, 95], fill="purple")
    assert analyse(encode(image)) == Analysis("white", 3, "purple")


@pytest.mark.parametrize(("rgb", "name"), [
    ((250, 10, 10), "red"), ((0, 255, 0), "green"), ((20, 20, 240), "blue"),
    ((250, 250, 20), "yellow"), ((250, 160, 0), "orange"), ((120, 0, 130), "purple"),
    ((5, 5, 5), "black"), ((250, 250, 250), "white"), ((128, 128, 128), "gray"),
])
def test_palette_names(rgb, name):
    assert nearest_name(rgb) == name


def test_sentences_and_several_images():
    assert Analysis("white", 3, "red").sentence() == \
        "I see 3 (three) red shapes on a white background."
    assert Analysis("black", 1, "blue").sentence() == \
        "I see 1 (one) blue shape on a black background."
    text = describe([encode(shapes_image(2)), encode(shapes_image(21, "orange", "gray"))])
    assert text == ("Image 1: I see 2 (two) red shapes on a white background. "
                    "Image 2: I see 21 (twenty-one) orange shapes on a gray background.")


def test_number_words():
    assert [number_word(n) for n in (0, 13, 40, 99, 105)] == [
        "zero", "thirteen", "forty", "ninety-nine", "one hundred five"]


def test_large_pictures_are_scaled():
    image = Image.new("RGB", (3000, 1500), "white")
    ImageDraw.Draw(image).rectangle([100, 100, 900, 900], fill="red")
    assert analyse(encode(image)) == Analysis("white", 1, "red")


def test_undecodable():
    with pytest.raises(VisionError, match="image: unknown format"):
        analyse(b"fake-image-data")
