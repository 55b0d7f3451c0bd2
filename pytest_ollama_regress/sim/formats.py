"""Prompt formats: what each model's Go template, built-in renderer or Jinja template makes of
collated messages (``system`` is the joined system prompt; system messages stay in ``msgs``).

``legacy(template)`` executes a Go template that has no ``.Messages`` the way
``template.Execute`` does: one execution per (system, prompt, response) group and a last one
cut after ``.Response``, so a template without ``{{ .Response }}`` (llava's) never shows an
assistant turn.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

DEFAULT_TEMPLATE = "{{ .Prompt }}"  # ``template.DefaultTemplate``: a model without TEMPLATE


class _Message(Protocol):
    role: str
    content: str


Formatter = Callable[[str, list, "bool | str | None", bool], str]
"""``(system, collated messages, think, tools) -> prompt``."""


def _llama3(system: str, msgs: list[_Message], think: bool | str | None, tools: bool) -> str:
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


def _gemma3(system: str, msgs: list[_Message], think: bool | str | None, tools: bool) -> str:
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


def _qwen3(system: str, msgs: list[_Message], think: bool | str | None, tools: bool) -> str:
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


def _chatml(system: str, msgs: list[_Message], think: bool | str | None, tools: bool) -> str:
    """SmolLM2's template: ChatML turns, no thinking."""
    parts = [f"<|im_start|>system\n{system}<|im_end|>\n"] if system else []
    turns = [m for m in msgs if m.role != "system"]
    for index, msg in enumerate(turns):
        parts.append(f"<|im_start|>{msg.role}\n{msg.content}<|im_end|>\n")
        if index == len(turns) - 1 and msg.role != "assistant":
            parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def _qwen3vl(system: str, msgs: list[_Message], think: bool | str | None, tools: bool) -> str:
    """The ``qwen3-vl-thinking`` built-in renderer (``model/renderers/qwen3vl.go``)."""
    thinking = True if think is None else bool(think)
    parts = []
    if tools:
        parts.append("<|im_start|>system\n" + (system + "\n\n" if system else "") +
                     "# Tools\n\nYou may call one or more functions to assist with the user "
                     "query.\n\n<tools>\n</tools><|im_end|>\n")
    elif system:
        parts.append(f"<|im_start|>system\n{system}<|im_end|>\n")
    turns = [m for m in msgs if m.role != "system"]
    for index, msg in enumerate(turns):
        last = index == len(turns) - 1
        if msg.role == "assistant":
            parts.append(f"<|im_start|>assistant\n{msg.content}" + ("" if last else
                                                                     "<|im_end|>\n"))
        elif msg.role == "tool":
            parts.append(f"<|im_start|>user\n<tool_response>\n{msg.content}\n"
                         "</tool_response><|im_end|>\n")
        else:
            parts.append(f"<|im_start|>user\n{msg.content}<|im_end|>\n")
        if last and msg.role != "assistant":
            parts.append("<|im_start|>assistant\n" + ("<think>\n" if thinking else ""))
    return "".join(parts)


def _harmony(system: str, msgs: list[_Message], think: bool | str | None, tools: bool) -> str:
    """gpt-oss's harmony format (its Go template); the reasoning level follows ``think``."""
    level = think if isinstance(think, str) and think in ("low", "medium", "high") else "medium"
    parts = ["<|start|>system<|message|>You are ChatGPT, a large language model trained by "
             f"OpenAI.\nKnowledge cutoff: 2024-06\n\nReasoning: {level}\n\n# Valid channels: "
             "analysis, commentary, final. Channel must be included for every message."
             + (" Calls to these tools must go to the commentary channel: 'functions'."
                if tools else "") + "<|end|>"]
    if system:
        parts.append(f"<|start|>developer<|message|># Instructions\n\n{system}<|end|>")
    turns = [m for m in msgs if m.role != "system"]
    for msg in turns:
        if msg.role == "assistant":
            parts.append(f"<|start|>assistant<|channel|>final<|message|>{msg.content}<|end|>")
        elif msg.role == "tool":
            parts.append(f"<|start|>functions to=assistant<|channel|>commentary<|message|>"
                         f"{msg.content}<|end|>")
        else:
            parts.append(f"<|start|>user<|message|>{msg.content}<|end|>")
    if not turns or turns[-1].role != "assistant":
        parts.append("<|start|>assistant")
    return "".join(parts)


def _mllama(system: str, msgs: list[_Message], think: bool | str | None, tools: bool) -> str:
    """llama3.2-vision's template: every message (system included) as a header block."""
    parts = []
    for index, msg in enumerate(msgs):
        parts.append(f"<|start_header_id|>{msg.role}<|end_header_id|>\n\n{msg.content}")
        if index < len(msgs) - 1:
            parts.append("<|eot_id|>")
        elif msg.role != "assistant":
            parts.append("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(parts)


def _smolvlm(system: str, msgs: list[_Message], think: bool | str | None, tools: bool) -> str:
    """SmolVLM's Jinja chat template (``tokenizer.chat_template``), as llama-server applies it."""
    parts = ["<|im_start|>"]
    for msg in msgs:
        parts.append(f"{msg.role.capitalize()}: {msg.content}<end_of_utterance>\n")
    parts.append("Assistant:")
    return "".join(parts)


def _plain(system: str, msgs: list[_Message], think: bool | str | None, tools: bool) -> str:
    return "\n\n".join(m.content for m in msgs if m.role != "system")


FORMATS: dict[str, Formatter] = {
    "llama3": _llama3,
    "gemma3": _gemma3,
    "qwen3": _qwen3,
    "chatml": _chatml,
    "qwen3vl": _qwen3vl,
    "harmony": _harmony,
    "mllama": _mllama,
    "smolvlm": _smolvlm,
    "plain": _plain,
}

_RESPONSE_RE = re.compile(r"\{\{[^}]*\.Response[^}]*\}\}")


def legacy(template: str) -> Formatter:
    """A Go template without ``.Messages``, executed as ``template.Execute`` does."""
    match = _RESPONSE_RE.search(template)
    last = template[:match.end()] if match else template

    def render(system: str, msgs: list[_Message], think: bool | str | None,
               tools: bool) -> str:
        out: list[str] = []
        sys_text = prompt = response = ""
        for msg in msgs:
            if msg.role == "system":
                if prompt or response:
                    out.append(execute(template, prompt, sys_text, response))
                    prompt = response = ""
                sys_text = msg.content
            elif msg.role == "user":
                if response:
                    out.append(execute(template, prompt, sys_text, response))
                    sys_text = prompt = response = ""
                prompt = msg.content
            elif msg.role == "assistant":
                response = msg.content
        out.append(execute(last, prompt, sys_text, response))
        return "".join(out)

    return render


def formatter(kind: str, template: str) -> Formatter:
    """The format called ``kind``; ``legacy`` executes ``template``."""
    if kind == "legacy":
        return legacy(template)
    return FORMATS[kind]


def execute(template: str, prompt: str, system: str, response: str = "") -> str:
    """A Go template over ``.Prompt``/``.System``/``.Response``: flat
    ``{{ if .X }}..{{ else }}..{{ end }}`` blocks evaluated, other actions removed. Enough for
    the simple templates models and clients use."""
    values = {".Prompt": prompt, ".System": system, ".Response": response}

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
