"""OpenAI-compatible ``/v1/chat/completions``: JSON and SSE shapes per version, images."""

from __future__ import annotations

import base64
import io
import json

import httpx
from PIL import Image, ImageDraw

from pytest_ollama_regress.sim import Latency

FAST = Latency(load_ms=1, prefill_us=1, decode_ms=0.1)
HI = [{"role": "user", "content": "hi"}]




def data_uri() -> str:
    image = Image.new("RGB", (80, 40), "white")
    ImageDraw.Draw(image).rectangle([10, 10, 30, 30], fill="orange")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def sse(response: httpx.Response) -> list:
    text = response.text
    assert text.endswith("data: [DONE]\n\n")
    events = [block for block in text.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in events)
    return [json.loads(block[6:]) for block in events[:-1]]


def test_non_stream_completion(servers):
    response = httpx.post(servers("0.12.6").url + "/v1/chat/completions",
                          json={"model": "llama3.2:3b", "messages": HI, "max_tokens": 3})
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["x-sim-request-id"]
    data = response.json()
    assert list(data) == ["id", "object", "created", "model", "system_fingerprint", "choices",
                          "usage"]
    assert data["object"] == "chat.completion" and data["id"].startswith("chatcmpl-")
    choice = data["choices"][0]
    assert choice["finish_reason"] == "length" and choice["message"]["role"] == "assistant"
    assert data["usage"]["completion_tokens"] == 3
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + 3


def test_stream_v0_11_style(servers):
    response = httpx.post(servers("0.12.6").url + "/v1/chat/completions", json={
        "model": "llama3.2:3b", "messages": HI, "stream": True,
        "stream_options": {"include_usage": True}})
    assert response.headers["content-type"] == "text/event-stream"
    chunks = sse(response)
    content = [c for c in chunks if c["choices"]]
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in content)
    assert content[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in content[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_stream_head_style(servers):
    chunks = sse(httpx.post(servers("0.33.0").url + "/v1/chat/completions", json={
        "model": "llama3.2:3b", "messages": HI, "stream": True}))
    assert "role" in chunks[0]["choices"][0]["delta"]
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert len({c["created"] for c in chunks}) == 1


def test_image_parts_render_after_text_and_are_seen(servers):
    sim = servers("0.12.6")
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "What's in this image?"},
        {"type": "image_url", "image_url": {"url": data_uri()}}]}]
    debug = httpx.post(sim.url + "/v1/chat/completions", json={
        "model": "llava:7b", "messages": messages, "_debug_render_only": True}).json()
    assert debug["_debug_info"]["rendered_template"] == \
        "[INST] What's in this image?\n\n[img-0] [/INST]"
    answer = httpx.post(sim.url + "/v1/chat/completions", json={
        "model": "llava:7b", "messages": messages}).json()
    assert answer["choices"][0]["message"]["content"] == \
        "I see 1 (one) orange shape on a white background."


def test_debug_render_from_0_12_0_only(servers):
    body = {"model": "llama3.2:3b", "messages": HI, "_debug_render_only": True}
    assert "_debug_info" not in httpx.post(servers("0.11.11").url + "/v1/chat/completions",
                                           json=body).json()
    assert "_debug_info" in httpx.post(servers("0.12.0").url + "/v1/chat/completions",
                                       json=body).json()


def test_reasoning_and_tools(servers):
    sim = servers("0.12.6")
    thinking = httpx.post(sim.url + "/v1/chat/completions", json={
        "model": "qwen3:4b", "messages": HI, "reasoning_effort": "low"}).json()
    assert thinking["choices"][0]["message"]["reasoning"]
    tools = [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object",
                                              "properties": {"city": {"type": "string"}}}}}]
    called = httpx.post(sim.url + "/v1/chat/completions", json={
        "model": "llama3.2:3b", "tools": tools,
        "messages": [{"role": "user", "content": "call get_weather please"}]}).json()
    choice = called["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "sim"}
