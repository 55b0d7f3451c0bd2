"""Pictures with known content, drawn with pillow: nothing is downloaded.

A picture is ``count`` filled shapes of one colour on a white background, optionally with a
word written under them. Shapes are laid out on a grid with gaps, so each is one
4-connected region of a single colour (what a simple counter, like the simulator's, counts);
a word adds its glyphs as further regions, so pictures meant for counting carry no word.
The PNG bytes depend only on the arguments (and the pillow build), never on time.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from PIL import Image, ImageDraw, ImageFont

from pytest_ollama_regress.suite.expectations import number_word

Shape = Literal["circle", "square", "triangle"]

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 20, 20),
    "green": (20, 160, 40),
    "blue": (20, 40, 220),
    "yellow": (240, 220, 10),
    "orange": (250, 140, 0),
    "purple": (130, 30, 170),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
}
"""Shape colours (white is the background), named as the simulator's palette names them."""

BACKGROUND = (255, 255, 255)
MAX_COUNT = 12


@dataclass(frozen=True)
class Picture:
    """A generated PNG and what it shows."""

    png: bytes
    colour: str
    count: int
    shape: Shape
    word: str | None
    size: tuple[int, int]

    @property
    def b64(self) -> str:
        """The PNG as the standard base64 string Ollama's API carries."""
        return base64.b64encode(self.png).decode("ascii")

    @property
    def label(self) -> str:
        """Short description, e.g. ``3 red circles``."""
        plural = "" if self.count == 1 else "s"
        text = f"{self.count} {self.colour} {self.shape}{plural}"
        return f"{text} and the word {self.word!r}" if self.word else text

    def expected_words(self) -> tuple[str, ...]:
        """Words an answer that saw the picture may use: colour, count (digit and word), word."""
        words = [self.colour, str(self.count), number_word(self.count)]
        if self.word:
            words.append(self.word)
        return tuple(dict.fromkeys(w.lower() for w in words))


def _grid(count: int, width: int, height: int) -> list[tuple[int, int, int]]:
    """Centres and radius of ``count`` cells of a near-square grid over the upper area."""
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    cell_w, cell_h = width // cols, height // rows
    radius = max(6, int(min(cell_w, cell_h) * 0.32))
    return [
        (cell_w * (i % cols) + cell_w // 2, cell_h * (i // cols) + cell_h // 2, radius)
        for i in range(count)
    ]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: Shape, x: int, y: int, r: int,
                fill: tuple[int, int, int]) -> None:
    box = (x - r, y - r, x + r, y + r)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=fill)


@lru_cache(maxsize=64)
def make_picture(
    count: int = 3,
    colour: str = "red",
    *,
    shape: Shape = "circle",
    word: str | None = None,
    size: tuple[int, int] = (256, 256),
) -> Picture:
    """Draw ``count`` ``colour`` shapes (1-12) and an optional ``word`` on white."""
    if colour not in PALETTE:
        raise ValueError(f"unknown colour {colour!r}: use one of {', '.join(PALETTE)}")
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be 1..{MAX_COUNT}, got {count}")
    if shape not in ("circle", "square", "triangle"):
        raise ValueError(f"unknown shape {shape!r}: use circle, square or triangle")
    width, height = size
    if width < 64 or height < 64:
        raise ValueError(f"size must be at least 64x64, got {width}x{height}")
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    shapes_height = height - height // 4 if word else height
    for x, y, r in _grid(count, width, shapes_height):
        _draw_shape(draw, shape, x, y, r, PALETTE[colour])
    if word:
        font = ImageFont.load_default(size=max(12, height // 10))
        draw.text((width // 2, height - height // 8), word, fill=(0, 0, 0), font=font,
                  anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return Picture(buffer.getvalue(), colour, count, shape, word, (width, height))


def picture_set(n: int) -> list[Picture]:
    """``n`` pictures that differ from each other (count and colour), for multi-image tests."""
    colours = ("red", "blue", "green", "orange", "purple", "yellow", "black", "gray")
    return [make_picture(count=i % 5 + 1, colour=colours[i % len(colours)]) for i in range(n)]
