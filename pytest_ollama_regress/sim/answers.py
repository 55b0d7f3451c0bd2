"""Deterministic model output: text seeded by ``options.seed`` and the prompt, vision answers,
thinking, JSON for ``format``, tool calls."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

_SUBJECTS = ("The model", "This answer", "A simulator", "The server", "Every token",
             "The context", "A request", "The runner")
_VERBS = ("describes", "explains", "returns", "streams", "considers", "summarises",
          "measures", "keeps")
_OBJECTS = ("the question", "a short answer", "each token in order", "the prompt you sent",
            "a deterministic reply", "the requested details", "the conversation so far",
            "a simple example")
_TAILS = ("carefully", "in plain words", "without surprises", "as expected", "step by step",
          "for testing", "quickly", "once more")


def _rng(seed: int | None, prompt: str, salt: str = "") -> random.Random:
    digest = hashlib.sha256(f"{seed}|{salt}|{prompt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def text(seed: int | None, prompt: str) -> str:
    """A deterministic answer of a few sentences."""
    rng = _rng(seed, prompt)
    sentences = []
    for _ in range(rng.randint(2, 4)):
        sentences.append(
            f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
            f"{rng.choice(_TAILS)}."
        )
    return " ".join(sentences)


def thinking(seed: int | None, prompt: str, sentences: int = 1) -> str:
    """Deterministic reasoning: an opening and ``sentences`` considerations."""
    rng = _rng(seed, prompt, "think")
    parts = ["Okay, the user wants an answer."]
    for index in range(max(sentences, 1)):
        lead = "so I will answer" if index == sentences - 1 else "and next I check"
        parts.append(f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}, "
                     f"{lead} {rng.choice(_TAILS)}.")
    return " ".join(parts)


def json_answer(seed: int | None, prompt: str, fmt: Any) -> str:
    """A JSON document for ``format: "json"`` or a JSON schema."""
    rng = _rng(seed, prompt, "json")
    if isinstance(fmt, dict):
        return json.dumps(_from_schema(fmt, rng), separators=(", ", ": "))
    return json.dumps({"answer": text(seed, prompt)})


def _from_schema(schema: dict, rng: random.Random, depth: int = 0) -> Any:
    kind = schema.get("type")
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {key: _from_schema(sub if isinstance(sub, dict) else {}, rng, depth + 1)
                for key, sub in props.items()} if depth < 5 else {}
    if kind == "array":
        item = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return [_from_schema(item, rng, depth + 1)] if depth < 5 else []
    if kind == "integer":
        return rng.randint(1, 9)
    if kind == "number":
        return rng.randint(10, 99) / 10
    if kind == "boolean":
        return True
    return rng.choice(_OBJECTS)


def _argument(spec: Any) -> Any:
    kind = spec.get("type") if isinstance(spec, dict) else None
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [],
            "object": {}}.get(kind, "sim")


def tool_call(tools: list[Any], last_user: str) -> dict[str, Any] | None:
    """Call the first tool whose name the last user message mentions."""
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict):
            continue
        name = str(function.get("name", ""))
        if name and name in last_user:
            params = function.get("parameters") or {}
            props = params.get("properties") if isinstance(params, dict) else {}
            args = {key: _argument(spec) for key, spec in (props or {}).items()}
            return {"function": {"index": index, "name": name, "arguments": args}}
    return None
