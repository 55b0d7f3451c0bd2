"""Request bodies of Ollama's chat and generate endpoints, and base-URL checking (shared by
the sync and async clients)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

__all__ = ["ImageInput", "chat_payload", "check_base_url", "encode_image", "encode_messages",
           "generate_payload", "put"]

ImageInput = bytes | bytearray | memoryview | str


def encode_image(image: ImageInput) -> str:
    """Base64-encode raw image bytes; a ``str`` is taken as already encoded and sent as is."""
    if isinstance(image, str):
        return image
    if isinstance(image, (bytes, bytearray, memoryview)):
        return base64.b64encode(image).decode("ascii")
    raise TypeError(f"image must be bytes or a base64 str, not {type(image).__name__}")


def encode_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for message in messages:
        msg = dict(message)
        if msg.get("images"):
            msg["images"] = [encode_image(img) for img in msg["images"]]
        out.append(msg)
    return out


def put(payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Add the fields that are not None (so ``keep_alive=0`` and ``think=False`` are sent)."""
    for key, value in fields.items():
        if value is not None:
            payload[key] = value
    return payload


def check_base_url(base_url: str) -> str:
    base = base_url.strip().rstrip("/")
    try:
        url = httpx.URL(base)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"invalid Ollama URL {base_url!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"invalid Ollama URL {base_url!r}: "
            "expected http://HOST:PORT (e.g. http://127.0.0.1:11434)"
        )
    return base




def chat_payload(model: str, messages: Iterable[Mapping[str, Any]], *, stream: bool,
                 options: Mapping[str, Any] | None = None,
                 keep_alive: float | str | None = None, think: bool | str | None = None,
                 truncate: bool | None = None, format: str | Mapping[str, Any] | None = None,
                 tools: Sequence[Mapping[str, Any]] | None = None,
                 **extra: Any) -> dict[str, Any]:
    """The ``POST /api/chat`` body; images inside messages may be bytes."""
    payload = put({"model": model, "messages": encode_messages(messages), "stream": stream},
                  options=options, keep_alive=keep_alive, think=think, truncate=truncate,
                  format=format, tools=tools)
    payload.update(extra)
    return payload


def generate_payload(model: str, prompt: str = "", *,
                     images: Sequence[ImageInput] | None = None, system: str | None = None,
                     stream: bool, options: Mapping[str, Any] | None = None,
                     keep_alive: float | str | None = None, raw: bool | None = None,
                     truncate: bool | None = None, think: bool | str | None = None,
                     **extra: Any) -> dict[str, Any]:
    """The ``POST /api/generate`` body; ``images`` are bytes or base64 str."""
    payload = put({"model": model, "prompt": prompt, "stream": stream},
                  images=[encode_image(i) for i in images] if images is not None else None,
                  system=system, options=options, keep_alive=keep_alive, raw=raw,
                  truncate=truncate, think=think)
    payload.update(extra)
    return payload
