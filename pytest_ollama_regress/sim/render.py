"""Prompt rendering: chat templates, ``[img-N]`` tags and history truncation (``chatPrompt``).

Mirrors ``server/prompt.go``: messages are collated (consecutive same-role messages joined
with a blank line), images become ``[img-N]`` tags (prefixed, or replacing a literal
``[img]``), and the oldest non-system messages are dropped until the prompt fits ``num_ctx``
(each image counted as 768 tokens).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pytest_ollama_regress.sim import tokens
from pytest_ollama_regress.sim.catalogue import ModelSpec

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


def _llama3(system: str, msgs: list[Msg], think: bool | None, tools: bool) -> str:
    parts = ["<|start_header_id|>system<|end_header_id|>\n\n", system]
    if tools:
        parts.append("When you receive a tool call response, use the output to format an "
                     "answer to the orginal user question.")
    parts.append("<|eot_id|>")
    turns = [m for m in msgs if m.role != "system"]
    for index, msg in enumerate(turns):
        role = "ipython" if msg.role == "tool" else msg.role
        parts.append(f"<|start_header_id|>{role}<|end_header_id|>\n\n{msg.content}<|eot_id|>")
        if index == len(turns) - 1 and msg.role != "assistant":
            parts.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(parts)


def _gemma3(system: str, msgs: list[Msg], think: bool | None, tools: bool) -> str:
    parts = []
    for index, msg in enumerate(msgs):
        last = index == len(msgs) - 1
        if msg.role in ("user", "system", "tool"):
            parts.append(f"<start_of_turn>user\n{msg.content}<end_of_turn>\n")
            if last:
                parts.append("<start_of_turn>model\n")
        elif msg.role == "assistant":
            parts.append(f"<start_of_turn>model\n{msg.content}")
            if not last:
                parts.append("<end_of_turn>\n")
    return "".join(parts)


def _qwen3(system: str, msgs: list[Msg], think: bool | None, tools: bool) -> str:
    parts = []
    if system:
        parts.append(f"<|im_start|>system\n{system}<|im_end|>\n")
    if tools:
        parts.append("<|im_start|>system\n# Tools\n<tools></tools><|im_end|>\n")
    turns = [m for m in msgs if m.role != "system"]
    for index, msg in enumerate(turns):
        parts.append(f"<|im_start|>{msg.role}\n{msg.content}<|im_end|>\n")
        if index == len(turns) - 1 and msg.role != "assistant":
            parts.append("<|im_start|>assistant\n")
            if think is False:
                parts.append("<think>\n\n</think>\n\n")
    return "".join(parts)


def _legacy(fmt: Callable[[str, str, str, bool], str]) -> Callable[..., str]:
    """Templates using ``.Prompt``: one render per (user, assistant) pair, concatenated."""

    def render(system: str, msgs: list[Msg], think: bool | None, tools: bool) -> str:
        out = []
        prompt = ""
        first = True
        for msg in msgs:
            if msg.role == "system":
                continue
            if msg.role in ("user", "tool"):
                prompt = msg.content
                continue
            out.append(fmt(system if first else "", prompt, msg.content, True))
            first = False
            prompt = ""
        out.append(fmt(system if first else "", prompt, "", False))
        return "".join(out)

    return render


def _llava_pair(system: str, prompt: str, response: str, done: bool) -> str:
    sys_part = f"{system} " if system else ""
    return f"[INST] {sys_part}{prompt} [/INST]" + (f" {response}</s>" if done else "")


def _tinyllama_pair(system: str, prompt: str, response: str, done: bool) -> str:
    text = f"<|system|>\n{system}</s>\n<|user|>\n{prompt}</s>\n<|assistant|>\n"
    return text + (f"{response}</s>\n" if done else "")


def _plain(system: str, msgs: list[Msg], think: bool | None, tools: bool) -> str:
    return "\n\n".join(m.content for m in msgs if m.role != "system")


RENDERERS: dict[str, Callable[[str, list[Msg], bool | None, bool], str]] = {
    "llama3": _llama3,
    "gemma3": _gemma3,
    "qwen3": _qwen3,
    "llava": _legacy(_llava_pair),
    "tinyllama": _legacy(_tinyllama_pair),
    "plain": _plain,
}


def render(spec: ModelSpec, msgs: list[Msg], *, think: bool | None = None,
           tools: bool = False) -> str:
    """Render messages with the model's template (after collation)."""
    system, collated = collate(msgs)
    return RENDERERS[spec.template_kind](system, collated, think, tools)


def render_custom(template: str, prompt: str, system: str) -> str:
    """A request ``template``: ``.Prompt``/``.System``/``.Response`` substituted, flat
    ``{{ if .X }}..{{ else }}..{{ end }}`` blocks evaluated, other actions removed. Enough for
    the simple templates clients send."""
    values = {".Prompt": prompt, ".System": system, ".Response": ""}

    def condition(match: re.Match[str]) -> str:
        name, then, otherwise = match.group(1), match.group(2), match.group(3) or ""
        return then if values.get(name) else otherwise

    text = re.sub(
        r"\{\{-?\s*if\s+(\.\w+)\s*-?\}\}(.*?)(?:\{\{-?\s*else\s*-?\}\}(.*?))?"
        r"\{\{-?\s*end\s*-?\}\}",
        condition, template, flags=re.S,
    )

    def action(match: re.Match[str]) -> str:
        body = match.group(1).strip().lstrip("-").rstrip("-").strip()
        return values.get(body, "")

    return re.sub(r"\{\{(.*?)\}\}", action, text, flags=re.S)


def tag_images(msgs: list[Msg]) -> tuple[list[Msg], list[bytes]]:
    """Insert ``[img-N]`` tags (running N over all messages); return tagged msgs and images."""
    out: list[Msg] = []
    images: list[bytes] = []
    for msg in msgs:
        content = msg.content
        prefix = ""
        for data in msg.images:
            tag = f"[img-{len(images)}]"
            images.append(data)
            if "[img]" in content:
                content = content.replace("[img]", tag, 1)
            else:
                prefix += tag
        out.append(replace(msg, content=prefix + content))
    return out, images


def _length(spec: ModelSpec, msgs: list[Msg], think: bool | None, tools: bool) -> int:
    total = tokens.count(render(spec, msgs, think=think, tools=tools))
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
    think: bool | None = None,
    tools: bool = False,
    debug: Callable[[str, dict[str, object]], None] | None = None,
) -> Prompt:
    """Fit ``msgs`` into ``num_ctx`` and render them (``server/prompt.go`` ``chatPrompt``)."""
    if mode == "tokens":
        kept, cut = _cut_tokens(spec, msgs, num_ctx, think, tools)
        truncated = cut
    else:
        n = len(msgs) - 1
        truncated = False
        for i in range(n - 1, -1, -1):
            candidate = [m for m in msgs[:i] if m.role == "system"] + msgs[i:]
            if truncate and _length(spec, candidate, think, tools) > num_ctx:
                if debug:
                    debug("truncating input messages which exceed context length",
                          {"truncated": len(msgs[i:])})
                truncated = True
                break
            n = i
        n = max(n, 0)
        kept = [m for m in msgs[:n] if m.role == "system"] + msgs[n:]
    tagged, images = tag_images(kept)
    return Prompt(render(spec, tagged, think=think, tools=tools), images, tagged, truncated)


def _cut_tokens(spec: ModelSpec, msgs: list[Msg], num_ctx: int, think: bool | None,
                tools: bool) -> tuple[list[Msg], bool]:
    """The ``silent-truncation`` regression: drop tokens from the front, mid-message."""
    kept = [replace(m) for m in msgs]
    cut = False
    for _ in range(len(msgs) * 4 + 8):
        excess = _length(spec, kept, think, tools) - num_ctx
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
