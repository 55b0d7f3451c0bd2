"""Debug render shapes, ``[img-N]`` tags and history truncation, per simulated version."""

from __future__ import annotations

import base64
import io

import httpx
import pytest

from pytest_ollama_regress.sim import Latency, SimServer

FAST = Latency(load_ms=1, prefill_us=1, decode_ms=0.1)
IMG = base64.b64encode(b"fake-image-data").decode()




def post(sim: SimServer, path: str, body: dict) -> httpx.Response:
    return httpx.post(sim.url + path, json=body, timeout=10)


def render_chat(sim, messages, model="llava:7b", **extra):
    body = {"model": model, "messages": messages, "_debug_render_only": True, **extra}
    return post(sim, "/api/chat", body)


def test_debug_render_minimal_shape_0_11_5(servers):
    response = render_chat(servers("0.11.5"), [
        {"role": "user", "content": "What's in this image?", "images": [IMG]}])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    data = response.json()
    assert list(data) == ["model", "created_at", "_debug_info"]
    assert data["_debug_info"]["image_count"] == 1
    assert "[img-0]What's in this image?" in data["_debug_info"]["rendered_template"]


def test_debug_render_full_shape_0_12_6_even_when_streaming(servers):
    response = render_chat(servers("0.12.6"), [
        {"role": "user", "content": "hi", "images": [IMG]}], stream=True)
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    data = response.json()
    assert list(data) == ["model", "created_at", "message", "done", "_debug_info"]
    assert data["message"] == {"role": "", "content": ""} and data["done"] is False
    generate = post(servers("0.12.6"), "/api/generate", {
        "model": "llava:7b", "prompt": "hi", "_debug_render_only": True}).json()
    assert list(generate) == ["model", "created_at", "response", "done", "_debug_info"]
    assert "image_count" not in generate["_debug_info"]  # omitempty


def test_debug_render_absent_before_0_11_5(servers):
    """v0.11.4 ignores the unknown field and generates as usual."""
    response = render_chat(servers("0.11.4"), [{"role": "user", "content": "hi"}],
                           model="llama3.2:3b", stream=False)
    assert "_debug_info" not in response.json() and response.json()["done"] is True


def test_debug_render_still_loads_the_model(servers):
    sim = servers("0.12.6")
    post(sim, "/api/generate", {"model": "gemma3:4b", "keep_alive": 0})
    render_chat(sim, [{"role": "user", "content": "hi"}], model="gemma3:4b")
    assert "gemma3:4b" in [m["name"] for m in httpx.get(sim.url + "/api/ps").json()["models"]]


@pytest.mark.parametrize(("version", "expected"), [
    ("0.11.11", "[img-0]\n\n[img-1]\n\nDescribe"),
    ("0.12.5", "[img-0]\n\n[img-1]\n\nDescribe"),
    ("0.12.6", "[img-0][img-1]Describe"),
    ("0.33.0", "[img-0][img-1]Describe"),
])
def test_generate_image_tags_by_version(servers, version, expected):
    data = post(servers(version), "/api/generate", {
        "model": "llava:7b", "prompt": "Describe", "images": [IMG, IMG],
        "_debug_render_only": True}).json()
    assert data["_debug_info"]["rendered_template"] == f"[INST] {expected} [/INST]"
    assert data["_debug_info"]["image_count"] == 2


def test_chat_image_tags_prefix_and_literal_img(servers):
    sim = servers("0.12.6")
    info = render_chat(sim, [
        {"role": "user", "content": "first", "images": [IMG]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "compare [img] and [img]", "images": [IMG, IMG, IMG]},
    ], model="gemma3:4b").json()["_debug_info"]
    rendered = info["rendered_template"]
    assert "<start_of_turn>user\n[img-0]first<end_of_turn>" in rendered
    assert "[img-3]compare [img-1] and [img-2]<end_of_turn>" in rendered
    assert info["image_count"] == 4


def test_generate_literal_img_replaced_from_0_12_6_only(servers):
    body = {"model": "llava:7b", "prompt": "see [img] here", "images": [IMG],
            "_debug_render_only": True}
    new = post(servers("0.12.6"), "/api/generate", body).json()["_debug_info"]
    assert new["rendered_template"] == "[INST] see [img-0] here [/INST]"
    old = post(servers("0.12.5"), "/api/generate", body).json()["_debug_info"]
    assert old["rendered_template"] == "[INST] [img-0]\n\nsee [img] here [/INST]"


def test_generate_raw_and_template(servers):
    sim = servers("0.12.6")
    raw = post(sim, "/api/generate", {"model": "llama3.2:3b", "prompt": "<x> verbatim",
                                      "raw": True, "_debug_render_only": True}).json()
    assert raw["_debug_info"]["rendered_template"] == "<x> verbatim"
    custom = post(sim, "/api/generate", {"model": "llama3.2:3b", "prompt": "Hello",
                                         "template": "PROMPT: {{ .Prompt }}",
                                         "_debug_render_only": True}).json()
    assert custom["_debug_info"]["rendered_template"] == "PROMPT: Hello"


def test_chat_template_renders_like_llama3(servers):
    info = render_chat(servers("0.12.6"), [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        model="llama3.2:3b").json()["_debug_info"]
    assert info["rendered_template"] == (
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n")


def history(turns: int, words: int = 40) -> list[dict]:
    messages = [{"role": "system", "content": "SYSTEM-PROMPT stay"}]
    for index in range(turns):
        messages.append({"role": "user", "content": f"question{index} " + "w " * words})
        messages.append({"role": "assistant", "content": f"answer{index} " + "a " * words})
    messages.append({"role": "user", "content": "LAST question"})
    return messages


def test_truncation_drops_oldest_whole_messages(servers):
    sim = servers("0.12.6", debug=True)
    messages = history(10)
    data = render_chat(sim, messages, model="llama3.2:3b", options={"num_ctx": 400}).json()
    rendered = data["_debug_info"]["rendered_template"]
    assert rendered.count("SYSTEM-PROMPT stay") == 1 and "LAST question" in rendered
    assert "question0 " not in rendered and "answer9 " in rendered
    kept = [m for m in messages if m["content"].split(" ")[0] in rendered]
    assert all(m["content"] in rendered for m in kept)  # whole messages only
    assert any("truncating input messages which exceed context length" in line
               for line in sim.log_lines())


def test_truncation_counts_images_as_768_tokens(servers):
    sim = servers("0.12.6")
    messages = [{"role": "user", "content": "old pictures", "images": [IMG, IMG, IMG]},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "new question"}]
    # 3 x 768 = 2304 tokens do not fit the vision floor of 2048: the old message goes
    small = render_chat(sim, messages, options={"num_ctx": 2048}).json()["_debug_info"]
    assert "old pictures" not in small["rendered_template"] and "image_count" not in small
    big = render_chat(sim, messages, options={"num_ctx": 2400}).json()["_debug_info"]
    assert "[img-0][img-1][img-2]old pictures" in big["rendered_template"]
    assert big["image_count"] == 3


def test_prompt_eval_count_is_after_truncation(servers):
    sim = servers("0.12.6")
    body = {"model": "llama3.2:3b", "messages": history(10), "stream": False,
            "options": {"num_ctx": 400, "num_predict": 1}}
    truncated = post(sim, "/api/chat", body).json()["prompt_eval_count"]
    body["options"]["num_ctx"] = 8192
    full = post(sim, "/api/chat", body).json()["prompt_eval_count"]
    assert truncated <= 400 < full


@pytest.mark.parametrize("version", ["0.12.5", "0.12.6"])
def test_truncate_false_by_version(servers, version):
    body = {"model": "llama3.2:3b", "messages": history(10), "stream": False,
            "truncate": False, "options": {"num_ctx": 400, "num_predict": 1}}
    response = post(servers(version), "/api/chat", body)
    if version == "0.12.5":  # no truncate field: silently truncated
        assert response.status_code == 200 and response.json()["prompt_eval_count"] <= 400
    else:
        assert response.status_code == 400
        assert response.json() == {"error": "the input length exceeds the context length"}


def test_truncate_false_renders_whole_history_when_it_fits(servers):
    body = {"model": "llama3.2:3b", "messages": history(2), "stream": False,
            "truncate": False, "options": {"num_ctx": 4096, "num_predict": 1}}
    assert post(servers("0.12.6"), "/api/chat", body).status_code == 200


def test_single_oversized_message_is_cut_to_num_ctx(servers):
    body = {"model": "llama3.2:3b", "stream": False, "options": {"num_ctx": 64,
                                                                 "num_predict": 1},
            "messages": [{"role": "user", "content": "w " * 500}]}
    assert post(servers("0.11.11"), "/api/chat", body).json()["prompt_eval_count"] == 64


def test_vision_num_ctx_floor_and_image_tokens(servers):
    sim = servers("0.12.6")
    png = _png()
    base = {"model": "llava:7b", "stream": False, "options": {"num_ctx": 64, "num_predict": 1}}
    text_only = post(sim, "/api/chat", {**base, "messages": [
        {"role": "user", "content": "what is it"}]}).json()["prompt_eval_count"]
    with_image = post(sim, "/api/chat", {**base, "messages": [
        {"role": "user", "content": "what is it", "images": [png]}]}).json()
    assert with_image["prompt_eval_count"] == text_only + 576  # llava's image tokens
    models = httpx.get(sim.url + "/api/ps").json()["models"]
    assert {m["name"]: m["context_length"] for m in models}["llava:7b"] == 2048


def _png() -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).rectangle([8, 8, 30, 30], fill="blue")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_generate_context_continues_the_conversation(servers):
    sim = servers("0.12.6")
    first = post(sim, "/api/generate", {"model": "llama3.2:3b", "prompt": "first question",
                                        "stream": False, "options": {"num_predict": 3}}).json()
    rendered = post(sim, "/api/generate", {
        "model": "llama3.2:3b", "prompt": "second", "context": first["context"],
        "_debug_render_only": True}).json()["_debug_info"]["rendered_template"]
    assert rendered.index("first question") < rendered.index(first["response"]) \
        < rendered.index("second")
    raw = post(sim, "/api/generate", {"model": "llama3.2:3b", "prompt": "x", "raw": True,
                                      "stream": False}).json()
    assert "context" not in raw


def test_thinking_inline_before_0_12_4_and_separate_after(servers):
    body = {"model": "qwen3:4b", "prompt": "hi", "stream": False}
    old = post(servers("0.12.3"), "/api/generate", body).json()
    assert old["response"].startswith("<think>\n") and "thinking" not in old
    new = post(servers("0.12.6"), "/api/generate", body).json()
    assert new["thinking"] and "<think>" not in new["response"]
    off = post(servers("0.12.6"), "/api/generate", {**body, "think": False}).json()
    assert "thinking" not in off
    rendered = post(servers("0.12.6"), "/api/chat", {
        "model": "qwen3:4b", "messages": [{"role": "user", "content": "hi"}], "think": False,
        "_debug_render_only": True}).json()["_debug_info"]["rendered_template"]
    assert rendered.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


@pytest.mark.parametrize(("version", "has_debug"), [("0.11.5-rc2", False), ("0.11.5-rc3", True),
                                                    ("0.0.0", True)])
def test_debug_render_release_candidates(servers, version, has_debug):
    data = render_chat(servers(version), [{"role": "user", "content": "hi"}],
                       model="llama3.2:3b", stream=False).json()
    assert ("_debug_info" in data) is has_debug
