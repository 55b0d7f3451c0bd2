"""Prompt rendering: formats, image placement and history truncation (``chatPrompt``).

Mirrors ``server/prompt.go``: messages are collated (consecutive same-role messages joined
with a blank line), the images are placed (``imagetags``: ``[img-N]`` tags, or media
markers in native chat), and the oldest non-system messages are dropped until the prompt
fits ``num_ctx`` (each image counted as 768 tokens). The format and image style come from the
model's ``Mode`` (``modelrules.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pytest_ollama_regress.sim import imagetags, tokens
from pytest_ollama_regress.sim.catalogue import ModelSpec
from pytest_ollama_regress.sim.formats import formatter
from pytest_ollama_regress.sim.modelrules import Mode

IMAGE_TRUNCATION_TOKENS = 768


@dataclass
class Msg:
    """A chat message after decoding (images are raw bytes)."""

    role: str
    content: str = ""
    images: list[bytes] = field(default_factory=list)
    thinking: str = ""
    tool_calls: list[dict] = field(default_factory=list)
    tool_name: str = ""


@dataclass
class Prompt:
    """A rendered prompt and what the runner gets with it."""

    text: str
    images: list[bytes]
    messages: list[Msg]
    truncated: bool = False  # whole messages were dropped (or, for a profile, cut)
    counted: int | None = None  # the debug render's image_count when not len(images)

    @property
    def image_count(self) -> int:
        """``_debug_info.image_count``: the kept images, or (native chat) all of them."""
        return len(self.images) if self.counted is None else self.counted


def collate(msgs: list[Msg]) -> tuple[str, list[Msg]]:
    """Join consecutive same-role messages; return the joined system prompt too."""
    system = [m.content for m in msgs if m.role == "system"]
    out: list[Msg] = []
    for msg in msgs:
        if out and out[-1].role == msg.role:
            out[-1] = replace(out[-1], content=out[-1].content + "\n\n" + msg.content,
                              images=out[-1].images + msg.images)
        else:
            out.append(replace(msg))
    return "\n\n".join(system), out


def render(spec: ModelSpec, msgs: list[Msg], *, think: bool | str | None = None,
           tools: bool = False, mode: Mode | None = None) -> str:
    """Render messages in the model's format (after collation); ``mode`` picks the path."""
    mode = mode or Mode(spec.template_kind, spec.template)
    system, collated = collate(msgs)
    return formatter(mode.kind, mode.template)(system, collated, think, tools)


def tag_images(msgs: list[Msg], style: str = "go", marker: str = ""
               ) -> tuple[list[Msg], list[bytes]]:
    """Place the images (``[img-N]`` tags or media markers, see ``imagetags``); return the
    placed messages and the images in prompt order."""
    return imagetags.tag(msgs, style, marker)


def _length(spec: ModelSpec, msgs: list[Msg], think: bool | str | None, tools: bool,
            mode: Mode | None = None) -> int:
    total = tokens.count(render(spec, msgs, think=think, tools=tools, mode=mode))
    if spec.is_vision:
        total += IMAGE_TRUNCATION_TOKENS * sum(len(m.images) for m in msgs)
    return total


def chat_prompt(
    spec: ModelSpec,
    msgs: list[Msg],
    *,
    num_ctx: int,
    truncate: bool = True,
    mode: str = "messages",
    think: bool | str | None = None,
    tools: bool = False,
    debug: Callable[[str, dict[str, object]], None] | None = None,
    path: Mode | None = None,
) -> Prompt:
    """Fit ``msgs`` into ``num_ctx`` and render them (``server/prompt.go`` ``chatPrompt``;
    ``path`` is the model's ``Mode``, ``mode`` the truncation of the profile)."""
    path = path or Mode(spec.template_kind, spec.template)
    if mode == "tokens":
        kept, cut = _cut_tokens(spec, msgs, num_ctx, think, tools, path)
        truncated = cut
    else:
        n = len(msgs) - 1
        truncated = False
        for i in range(n - 1, -1, -1):
            candidate = [m for m in msgs[:i] if m.role == "system"] + msgs[i:]
            if truncate and _length(spec, candidate, think, tools, path) > num_ctx:
                if debug:
                    debug("truncating input messages which exceed context length",
                          {"truncated": len(msgs[i:])})
                truncated = True
                break
            n = i
        n = max(n, 0)
        kept = [m for m in msgs[:n] if m.role == "system"] + msgs[n:]
    tagged, images = tag_images(kept, path.style, path.marker)
    counted = sum(len(m.images) for m in msgs) if path.native else None  # countChatImages
    return Prompt(render(spec, tagged, think=think, tools=tools, mode=path), images, tagged,
                  truncated, counted)


def _cut_tokens(spec: ModelSpec, msgs: list[Msg], num_ctx: int, think: bool | str | None,
                tools: bool, path: Mode) -> tuple[list[Msg], bool]:
    """The ``silent-truncation`` regression: drop tokens from the front, mid-message."""
    kept = [replace(m) for m in msgs]
    cut = False
    for _ in range(len(msgs) * 4 + 8):
        excess = _length(spec, kept, think, tools, path) - num_ctx
        if excess <= 0 or not kept:
            break
        cut = True
        first = kept[0]
        size = tokens.count(first.content) + (
            IMAGE_TRUNCATION_TOKENS * len(first.images) if spec.is_vision else 0)
        if size <= excess and len(kept) > 1:
            kept.pop(0)
            continue
        keep = max(tokens.count(first.content) - excess, 1)
        kept[0] = replace(first, content=tokens.cut_tail(first.content, keep))
        if len(kept) == 1 or keep == tokens.count(first.content):
            break
    return kept, cut
