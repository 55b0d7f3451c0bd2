"""Where a request's images show up in the prompt: ``[img-N]`` tags or media markers.

N runs over all images of the kept messages. The styles (chosen per model and version in
``modelrules.py``):

- ``go``: ``chatPrompt`` for Go templates: each ``[img]`` in the content is replaced in order,
  the other tags go in front with no separator.
- ``doubled``: renderer models v0.12.0-v0.17.1-rc0: the server tags as ``go``, then the
  renderer puts a literal ``[img]`` per image in front (``[img][img-0]Describe``).
- ``prefix``: renderer models v0.17.1-rc1-v0.23.3: only the renderer tags, all in front; a
  literal ``[img]`` stays as it is.
- ``spaced``: renderer models v0.23.4+ (``image_tags.go``): as ``go``, plus a space after the
  tags when the content starts with a non-space; content already holding ``[img-`` is kept.
- ``native``: native-Jinja chat v0.30.0+: no tags, the images travel as ``image_url`` parts
  and llama-server renders its media marker after the text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol, TypeVar

STYLES = ("go", "doubled", "prefix", "spaced", "native")
PLACEHOLDER_RE = re.compile(r"\[img-\d+\]|<__ollama_media_[0-9a-f]+__>")


class _Message(Protocol):
    content: str
    images: list[bytes]


M = TypeVar("M", bound=_Message)


def tag(msgs: Sequence[M], style: str = "go", marker: str = "") -> tuple[list[M], list[bytes]]:
    """Messages with their images placed in the content; the images in prompt order."""
    out: list[M] = []
    images: list[bytes] = []
    for msg in msgs:
        content = _place(msg.content, len(msg.images), len(images), style, marker)
        images.extend(msg.images)
        out.append(replace(msg, content=content))  # type: ignore[type-var]
    return out, images


def _place(content: str, count: int, offset: int, style: str, marker: str) -> str:
    if not count:
        return content
    tags = [f"[img-{offset + i}]" for i in range(count)]
    if style == "native":
        return content + marker * count
    if style == "prefix":
        return "".join(tags) + content
    if style == "spaced" and "[img-" in content:
        return content
    prefix = ""
    for item in tags:
        if "[img]" in content:
            content = content.replace("[img]", item, 1)
        else:
            prefix += item
    if style == "doubled":
        return "[img]" * count + prefix + content
    if style == "spaced" and prefix and content and not content[0].isspace():
        prefix += " "
    return prefix + content


def strip_placeholders(text: str) -> str:
    """The prompt without image tags and media markers (what the runner tokenizes as text)."""
    return PLACEHOLDER_RE.sub("", text)
