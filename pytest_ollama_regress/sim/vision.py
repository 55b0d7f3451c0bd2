"""Deterministic "vision": background, shape count and dominant colour of a picture.

Background is the colour of the corner pixels; shapes are 4-connected components of
non-background pixels larger than 20 px; the dominant colour is the most common
non-background colour, named by the nearest colour of a fixed palette.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass

from PIL import Image, ImageChops, UnidentifiedImageError

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "orange": (255, 165, 0),
    "purple": (128, 0, 128),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
}
MIN_SHAPE_PX = 20
BACKGROUND_TOLERANCE = 48  # max per-channel difference still counted as background
MAX_SIDE = 1024

_WORDS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


class VisionError(ValueError):
    """The picture cannot be decoded (the runner's ``image: unknown format``)."""


@dataclass(frozen=True)
class Analysis:
    background: str
    shapes: int
    colour: str | None  # None when there is nothing but background

    def sentence(self) -> str:
        """``I see 3 (three) red shapes on a white background.``"""
        noun = "shape" if self.shapes == 1 else "shapes"
        colour = f"{self.colour} " if self.colour and self.shapes else ""
        return (
            f"I see {self.shapes} ({number_word(self.shapes)}) {colour}{noun} "
            f"on a {self.background} background."
        )


def number_word(n: int) -> str:
    """English word for ``n`` (0..999; digits beyond)."""
    if n < 20:
        return _WORDS[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens - 2] + (f"-{_WORDS[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_WORDS[hundreds]} hundred" + (f" {number_word(rest)}" if rest else "")
    return str(n)


def nearest_name(rgb: tuple[int, int, int]) -> str:
    def distance(name: str) -> int:
        return sum((a - b) ** 2 for a, b in zip(PALETTE[name], rgb, strict=True))

    return min(PALETTE, key=distance)


def analyse(data: bytes) -> Analysis:
    """Analyse encoded picture bytes (PNG, JPEG, WebP, ...)."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise VisionError("image: unknown format") from exc
    rgb = image.convert("RGB")
    scale = 1.0
    if max(rgb.size) > MAX_SIDE:
        factor = MAX_SIDE / max(rgb.size)
        new_size = (max(int(rgb.width * factor), 1), max(int(rgb.height * factor), 1))
        rgb = rgb.resize(new_size, Image.Resampling.NEAREST)
        scale = factor * factor
    width, height = rgb.size
    corners = [rgb.getpixel(xy) for xy in ((0, 0), (width - 1, 0), (0, height - 1),
                                           (width - 1, height - 1))]
    bg = Counter(corners).most_common(1)[0][0]
    diff = ImageChops.difference(rgb, Image.new("RGB", rgb.size, bg))
    r, g, b = diff.split()
    spread = ImageChops.lighter(ImageChops.lighter(r, g), b)
    mask = spread.point(lambda v: 255 if v > BACKGROUND_TOLERANCE else 0).tobytes()
    min_px = max(int(MIN_SHAPE_PX * scale), 1)
    shapes = _count_components(mask, width, height, min_px)
    names: Counter[str] = Counter()
    for count, colour in rgb.getcolors(maxcolors=width * height) or []:
        if max(abs(a - c) for a, c in zip(colour, bg, strict=True)) > BACKGROUND_TOLERANCE:
            names[nearest_name(colour)] += count
    colour = names.most_common(1)[0][0] if names else None
    return Analysis(background=nearest_name(bg), shapes=shapes, colour=colour)


def _count_components(mask: bytes, width: int, height: int, min_px: int) -> int:
    """4-connected components of set pixels with more than ``min_px`` pixels (run labelling)."""
    parent: list[int] = []
    sizes: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    previous: list[tuple[int, int, int]] = []  # (start, end, label) runs of the row above
    for y in range(height):
        row = mask[y * width:(y + 1) * width]
        runs: list[tuple[int, int, int]] = []
        x = row.find(255)
        while x != -1:
            end = row.find(0, x)
            if end == -1:
                end = width
            label = len(parent)
            parent.append(label)
            sizes.append(end - x)
            for start0, end0, label0 in previous:
                if start0 < end and x < end0:
                    a, b = find(label), find(label0)
                    if a != b:
                        parent[a] = b
                        sizes[b] += sizes[a]
            runs.append((x, end, label))
            x = row.find(255, end) if end < width else -1
        previous = runs
    roots = {find(i) for i in range(len(parent))}
    return sum(1 for root in roots if sizes[root] > min_px)


def describe(pictures: list[bytes]) -> str:
    """The answer about one or more pictures (``Image 1: ...`` for several)."""
    sentences = [analyse(data).sentence() for data in pictures]
    if len(sentences) == 1:
        return sentences[0]
    return " ".join(f"Image {i}: {s}" for i, s in enumerate(sentences, 1))
