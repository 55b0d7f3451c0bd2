"""Request decoding with the errors gin's JSON binding gives (reference section 3).

Keys match case-insensitively, as Go's ``encoding/json`` does; the first error in document
order wins; ``images`` are decoded as Go ``[]byte`` (standard base64).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pytest_ollama_regress.sim import errors
from pytest_ollama_regress.sim.engine import parse_duration
from pytest_ollama_regress.sim.errors import ApiError
from pytest_ollama_regress.sim.features import Features
from pytest_ollama_regress.sim.wire import Base64Error, go_b64decode, go_json_error, go_json_kind

_GO_TYPES = {
    "string": "string", "bool": "bool", "int": "int", "b64list": "[]api.ImageData",
    "list": "[]interface {}", "intlist": "[]int", "map": "map[string]interface {}",
    "msglist": "[]api.Message", "tools": "api.Tools", "toolcalls": "[]api.ToolCall",
}

MESSAGE = {"role": "string", "content": "string", "thinking": "string", "images": "b64list",
           "tool_calls": "toolcalls", "tool_name": "string", "tool_call_id": "string"}

COMMON = {"model": "string", "stream": "bool", "format": "any", "keep_alive": "duration",
          "options": "map", "think": "think", "_debug_render_only": "bool",
          "logprobs": "bool", "top_logprobs": "int"}

SCHEMAS: dict[str, tuple[str, dict[str, str]]] = {
    "chat": ("ChatRequest", {**COMMON, "messages": "msglist", "tools": "tools",
                             "truncate": "bool", "shift": "bool"}),
    "generate": ("GenerateRequest", {**COMMON, "prompt": "string", "suffix": "string",
                                     "system": "string", "template": "string",
                                     "context": "intlist", "raw": "bool", "images": "b64list",
                                     "truncate": "bool", "shift": "bool"}),
    "embed": ("EmbedRequest", {"model": "string", "input": "any", "truncate": "bool",
                               "dimensions": "int", "keep_alive": "duration",
                               "options": "map"}),
    "embeddings": ("EmbeddingRequest", {"model": "string", "prompt": "string",
                                        "keep_alive": "duration", "options": "map"}),
    "show": ("ShowRequest", {"model": "string", "name": "string", "verbose": "bool",
                             "system": "string", "template": "string", "options": "map"}),
    "pull": ("PullRequest", {"model": "string", "name": "string", "insecure": "bool",
                             "stream": "bool", "username": "string", "password": "string"}),
    "delete": ("DeleteRequest", {"model": "string", "name": "string"}),
}


def _type_error(value: Any, struct: str, field: str, kind: str) -> ApiError:
    shown = go_json_kind(value)
    if shown == "number" and kind == "int":
        shown = f"number {value}"
    return ApiError(400, f"json: cannot unmarshal {shown} into Go struct field {struct}.{field} "
                         f"of type {_GO_TYPES.get(kind, kind)}")


def parse_body(body: bytes) -> Any:
    """JSON text -> Python value, with Go's error texts."""
    if not body.strip():
        raise errors.missing_body()
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, go_json_error(text, exc)) from None


ImageDecoder = Callable[[str], "bytes | None"]
"""One ``images`` entry -> bytes, ``None`` to drop it; raises ``Base64Error`` for a 400."""


def decode(body: bytes, route: str, features: Features,
           image_decoder: ImageDecoder = go_b64decode) -> dict[str, Any]:
    """Decode and type-check a request body for ``route`` (images with ``image_decoder``)."""
    raw = parse_body(body)
    struct, schema = SCHEMAS[route]
    if not isinstance(raw, dict):
        raise ApiError(400, f"json: cannot unmarshal {go_json_kind(raw)} into Go value of type "
                            f"api.{struct}")
    if not features.truncate_field and route in ("chat", "generate"):
        schema = {k: v for k, v in schema.items() if k not in ("truncate", "shift")}
    if not features.debug_render:
        schema = {k: v for k, v in schema.items() if k != "_debug_render_only"}
    if not features.logprobs:
        schema = {k: v for k, v in schema.items() if k not in ("logprobs", "top_logprobs")}
    if route == "embed" and not features.embed_dimensions:
        schema = {k: v for k, v in schema.items() if k != "dimensions"}
    return _decode_object(raw, struct, schema, features, prefix="", images=image_decoder)


def _decode_object(raw: dict, struct: str, schema: dict[str, str], features: Features,
                   prefix: str, images: ImageDecoder) -> dict[str, Any]:
    lowered = {k.lower(): k for k in schema}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = key if key in schema else lowered.get(key.lower())
        if name is None:
            continue  # unknown fields are ignored
        out[name] = _decode_value(value, schema[name], struct, prefix + name, features, images)
    return out


def _decode_value(value: Any, kind: str, struct: str, field: str, features: Features,
                  images: ImageDecoder) -> Any:
    if value is None:
        return None
    if kind == "any":
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise _type_error(value, struct, field, kind)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _type_error(value, struct, field, kind)
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not value.is_integer()):
            raise _type_error(value, struct, field, kind)
        return int(value)
    if kind == "duration":
        return parse_duration(value)
    if kind == "think":
        return _think(value, features)
    if kind == "map":
        if not isinstance(value, dict):
            raise _type_error(value, struct, field, kind)
        return value
    if not isinstance(value, list):
        raise _type_error(value, struct, field, kind)
    if kind == "b64list":
        decoded = []
        for item in value:
            if not isinstance(item, str):
                raise _type_error(item, struct, field, "[]uint8")
            try:
                data = images(item)
            except Base64Error as exc:
                raise ApiError(400, str(exc)) from None
            if data is not None:
                decoded.append(data)
        return decoded
    if kind == "intlist":
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise _type_error(item, struct, field, "int")
        return [int(x) for x in value]
    if kind == "msglist":
        messages = []
        for item in value:
            if not isinstance(item, dict):
                raise _type_error(item, struct, field, kind)
            msg = _decode_object(item, struct, MESSAGE, features, prefix=field + ".",
                                 images=images)
            msg["role"] = (msg.get("role") or "").lower()
            messages.append(msg)
        return messages
    if kind in ("tools", "toolcalls"):
        for item in value:
            if not isinstance(item, dict):
                raise _type_error(item, struct, field, kind)
        return value
    return value


def _think(value: Any, features: Features) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        allowed = ("high", "medium", "low") + (("max",) if features.think_max_level else ())
        if value not in allowed:
            raise errors.invalid_think(value, features)
        return value
    raise ApiError(400, "think must be a boolean or string")
