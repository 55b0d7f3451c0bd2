"""OpenAI-compatible routes: ``/v1/chat/completions`` (JSON and SSE) and ``/v1/models``.

Requests are converted to a native chat request and run through the same pipeline, as the
real middleware does; errors are wrapped as ``{"error":{"message","type","param","code"}}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import TYPE_CHECKING, Any

from pytest_ollama_regress.sim.decode import parse_body
from pytest_ollama_regress.sim.errors import ApiError, RunnerError
from pytest_ollama_regress.sim.inference import DebugRender, Plan, Special, Step, prepare_chat
from pytest_ollama_regress.sim.wire import go_json

if TYPE_CHECKING:
    from pytest_ollama_regress.sim.app import App, Exchange

SSE = "text/event-stream"
_IMAGE_PREFIXES = ("data:image/jpeg;base64,", "data:image/jpg;base64,",
                   "data:image/png;base64,", "data:image/webp;base64,", "data:;base64,")
_EFFORT = {"none": False, "minimal": "low", "low": "low", "medium": "medium", "high": "high"}


def wrap_error(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def models(app: App, ex: Exchange) -> None:
    data = [{"id": spec.name, "object": "model", "created": mtime // 1_000_000_000,
             "owned_by": "library"} for spec, mtime in app.store.installed()]
    ex.json(200, {"object": "list", "data": data})


def model(app: App, ex: Exchange, name: str) -> None:
    for spec, mtime in app.store.installed():
        if spec.name == name or spec.name == f"{name}:latest":
            ex.json(200, {"id": spec.name, "object": "model",
                          "created": mtime // 1_000_000_000, "owned_by": "library"})
            return
    ex.json(404, wrap_error(404, f"model '{name}' not found"))


def _convert_messages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "[] is too short - 'messages'")
    out: list[dict[str, Any]] = []
    for item in raw:
        if not isinstance(item, dict):
            raise ApiError(400, "invalid message format")
        role = str(item.get("role") or "").lower()
        content = item.get("content")
        extra: dict[str, Any] = {}
        if item.get("reasoning"):
            extra["thinking"] = str(item["reasoning"])
        if isinstance(item.get("tool_calls"), list):
            extra["tool_calls"] = item["tool_calls"]
        if item.get("name"):
            extra["tool_name"] = str(item["name"])
        if content is None or isinstance(content, str):
            out.append({"role": role, "content": content or "", **extra})
            continue
        if not isinstance(content, list):
            raise ApiError(400, "invalid message content type")
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                out.append({"role": role, "content": str(part.get("text") or ""), **extra})
            elif kind == "image_url":
                url = part.get("image_url")
                if isinstance(url, dict):
                    url = url.get("url")
                out.append({"role": role, "content": "", "images": [_image(url)]})
            else:
                raise ApiError(400, "invalid message format")
    return out


def _image(url: Any) -> bytes:
    text = str(url or "")
    if text.startswith(("http://", "https://")):
        raise ApiError(400, "image URLs are not currently supported, please use base64 "
                            "encoded data instead")
    for prefix in _IMAGE_PREFIXES:
        if text.startswith(prefix):
            try:
                return base64.b64decode(text[len(prefix):], validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, "invalid image input") from None
    raise ApiError(400, "invalid image input")


def _to_native(app: App, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "json: cannot unmarshal array into Go value of type "
                            "openai.ChatCompletionRequest")
    options: dict[str, Any] = {
        "temperature": body.get("temperature", 1.0) if body.get("temperature") is not None
        else 1.0,
        "top_p": body.get("top_p") if body.get("top_p") is not None else 1.0,
    }
    if body.get("max_tokens") is not None:
        options["num_predict"] = body["max_tokens"]
    if body.get("seed") is not None:
        options["seed"] = body["seed"]
    stop = body.get("stop")
    if isinstance(stop, str):
        options["stop"] = [stop]
    elif isinstance(stop, list):
        options["stop"] = stop
    for key in ("frequency_penalty", "presence_penalty"):
        if body.get(key) is not None:
            options[key] = body[key]
    req: dict[str, Any] = {
        "model": body.get("model") or "",
        "messages": _convert_messages(body.get("messages")),
        "options": options,
        "stream": bool(body.get("stream", False)),
    }
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_object":
            req["format"] = "json"
        elif fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema")
            req["format"] = schema if schema is not None else "json"
    if body.get("tools"):
        req["tools"] = body["tools"]
    reasoning = body.get("reasoning")
    effort = body.get("reasoning_effort")
    if effort is None and isinstance(reasoning, dict):
        effort = reasoning.get("effort")
    if effort is not None:
        if effort not in _EFFORT:
            raise ApiError(400, f"invalid reasoning value: '{effort}' (must be \"high\", "
                                "\"medium\", \"low\", or \"none\")")
        req["think"] = _EFFORT[effort]
    if body.get("_debug_render_only") and app.features.openai_debug_render:
        req["_debug_render_only"] = True
    return req


def chat_completions(app: App, ex: Exchange) -> None:
    started = time.perf_counter_ns()
    record = app.new_record("openai", started)
    ex.attach(record)
    try:
        body = parse_body(ex.body)
        req = _to_native(app, body)
        result = prepare_chat(app, req, started)
    except ApiError as exc:
        ex.json(exc.status, wrap_error(exc.status, exc.message))
        return
    ident = f"chatcmpl-{int(record.request_id) % 999}"
    created = int(time.time())
    name = req["model"]
    if isinstance(result, (Special, DebugRender)):
        payload = _completion(ident, created, name, "", "", [], "stop", 0, 0)
        if isinstance(result, DebugRender):
            info: dict[str, Any] = {"rendered_template": result.rendered}
            if result.image_count:
                info["image_count"] = result.image_count
            if req["stream"]:
                ex.chunk(_sse(_chunk(ident, created, name, {"role": "assistant",
                                                             "content": ""}, None)), SSE)
                ex.chunk(b"data: [DONE]\n\n", SSE)
                ex.end()
                return
            payload["_debug_info"] = info
        ex.json(200, payload)
        return
    record.loaded = result.assignment.loaded
    if req["stream"]:
        _stream(app, ex, result, record, ident, created, name,
                bool((body.get("stream_options") or {}).get("include_usage")))
    else:
        _collect(app, ex, result, record, ident, created, name)


def _completion(ident: str, created: int, name: str, content: str, reasoning: str,
                calls: list[dict[str, Any]], finish: str, prompt_tokens: int,
                completion_tokens: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning:
        message["reasoning"] = reasoning
    if calls:
        message["tool_calls"] = [_openai_call(c, i) for i, c in enumerate(calls)]
        finish = "tool_calls"
    return {
        "id": ident, "object": "chat.completion", "created": created, "model": name,
        "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _openai_call(call: dict[str, Any], index: int) -> dict[str, Any]:
    function = call.get("function", {})
    return {"id": f"call_{index}", "index": index, "type": "function",
            "function": {"name": function.get("name", ""),
                         "arguments": json.dumps(function.get("arguments", {}))}}


def _finish(plan: Plan) -> str:
    return "length" if plan.done_reason == "length" else "stop"


def _collect(app: App, ex: Exchange, plan: Plan, record: Any, ident: str, created: int,
             name: str) -> None:
    try:
        metrics = plan.run(lambda step: None,
                           lambda ns: setattr(record, "scheduled_first_token_ns", ns))
    except RunnerError as exc:
        ex.json(500, wrap_error(500, exc.message))
        return
    content = "".join(s.text for s in plan.steps if s.kind == "content")
    reasoning = "".join(s.text for s in plan.steps if s.kind == "thinking")
    calls = [s.tool_call for s in plan.steps if s.tool_call is not None]
    ex.json(200, _completion(ident, created, name, content, reasoning, calls, _finish(plan),
                             metrics["prompt_eval_count"], metrics["eval_count"]))


def _chunk(ident: str, created: int, name: str, delta: dict[str, Any],
           finish: str | None) -> dict[str, Any]:
    return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": name,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + go_json(obj) + b"\n\n"


def _stream(app: App, ex: Exchange, plan: Plan, record: Any, ident: str, created: int,
            name: str, usage: bool) -> None:
    head = app.features.openai_head_stream
    sent_role = False
    saw_call = False

    def stamp() -> int:
        return created if head else int(time.time())

    def emit(step: Step) -> None:
        nonlocal sent_role, saw_call
        delta: dict[str, Any] = {}
        if not head or not sent_role:
            delta["role"] = "assistant"
            sent_role = True
        if step.kind == "content":
            delta["content"] = step.text
        elif step.kind == "thinking":
            delta["content"] = ""
            delta["reasoning"] = step.text
        elif step.tool_call is not None:
            saw_call = True
            delta["content"] = ""
            delta["tool_calls"] = [_openai_call(step.tool_call, 0)]
        ex.chunk(_sse(_chunk(ident, stamp(), name, delta, None)), SSE)

    try:
        metrics = plan.run(emit, lambda ns: setattr(record, "scheduled_first_token_ns", ns))
    except RunnerError as exc:
        if not ex.started and app.features.truncate_field:
            ex.json(exc.status, wrap_error(exc.status, exc.message))
        else:
            ex.chunk(_sse(wrap_error(500, exc.message)), SSE)
            ex.end()
        return
    finish = "tool_calls" if saw_call else _finish(plan)
    if head:
        ex.chunk(_sse(_chunk(ident, created, name, {}, finish)), SSE)
    else:
        ex.chunk(_sse(_chunk(ident, stamp(), name, {"role": "assistant", "content": ""},
                             finish)), SSE)
    if usage:
        prompt, completion = metrics["prompt_eval_count"], metrics["eval_count"]
        ex.chunk(_sse({"id": ident, "object": "chat.completion.chunk", "created": stamp(),
                       "model": name, "system_fingerprint": "fp_ollama", "choices": [],
                       "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}}), SSE)
    ex.chunk(b"data: [DONE]\n\n", SSE)
    ex.end()
