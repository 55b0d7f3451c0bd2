"""Fidelity proof: the official ``ollama`` Python client, unchanged, against the simulator."""

from __future__ import annotations

import io

import ollama
import pytest
from PIL import Image, ImageDraw

from pytest_ollama_regress.sim import Latency, SimServer

FAST = Latency(load_ms=1, prefill_us=1, decode_ms=0.1)


@pytest.fixture(scope="module")
def client():
    with SimServer(latency=FAST, log_stream=io.StringIO()) as sim:
        yield ollama.Client(host=sim.url)


def picture(shapes: int, colour: str = "red") -> bytes:
    image = Image.new("RGB", (120, 60), "white")
    draw = ImageDraw.Draw(image)
    for index in range(shapes):
        draw.rectangle([5 + 30 * index, 20, 25 + 30 * index, 40], fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_list(client):
    models = client.list().models
    assert [m.model for m in models][:2] == ["llama3.2:3b", "llava:7b"]
    assert models[0].details.family == "llama" and models[0].size > 0


def test_show(client):
    shown = client.show("qwen3:4b")
    assert shown.capabilities == ["completion", "tools", "thinking"]
    assert shown.modelinfo["qwen3.context_length"] == 40960


def test_ps(client):
    client.generate("llama3.2:3b", "")  # load
    running = client.ps().models
    assert [m.model for m in running] == ["llama3.2:3b"]
    assert running[0].context_length == 4096 and running[0].size_vram == running[0].size


def test_chat_not_streaming(client):
    response = client.chat("llama3.2:3b", messages=[{"role": "user", "content": "hi"}])
    assert response.message.role == "assistant" and response.message.content
    assert response.done and response.eval_count > 0 and response.total_duration > 0


def test_chat_streaming_with_thinking(client):
    parts = list(client.chat("qwen3:4b", messages=[{"role": "user", "content": "hi"}],
                             stream=True))
    thinking = "".join(p.message.thinking or "" for p in parts)
    content = "".join(p.message.content for p in parts)
    first_content = next(i for i, p in enumerate(parts) if p.message.content)
    last_thinking = max(i for i, p in enumerate(parts) if p.message.thinking)
    assert thinking and content and last_thinking < first_content
    assert parts[-1].done and parts[-1].done_reason == "stop"
    no_think = client.chat("qwen3:4b", messages=[{"role": "user", "content": "hi"}],
                           think=False)
    assert no_think.message.thinking is None and no_think.message.content


def test_generate_with_images(client):
    response = client.generate("llava:7b", "How many shapes?", images=[picture(3)])
    assert "3 (three) red shapes" in response.response
    streamed = list(client.generate("gemma3:4b", "and these?",
                                    images=[picture(1, "blue"), picture(2, "green")],
                                    stream=True))
    text = "".join(p.response for p in streamed)
    assert text == ("Image 1: I see 1 (one) blue shape on a white background. "
                    "Image 2: I see 2 (two) green shapes on a white background.")


def test_generate_options_num_predict_and_seed(client):
    short = client.generate("llama3.2:3b", "tell me", options={"num_predict": 3, "seed": 7})
    assert short.done_reason == "length" and short.eval_count == 3
    again = client.generate("llama3.2:3b", "tell me", options={"num_predict": 3, "seed": 7})
    other = client.generate("llama3.2:3b", "tell me", options={"seed": 8})
    assert short.response == again.response and not other.response.startswith(short.response)


def test_generate_stop(client):
    full = client.generate("llama3.2:3b", "x", options={"seed": 1}).response
    word = full.split()[3]
    stopped = client.generate("llama3.2:3b", "x", options={"seed": 1, "stop": [word]})
    assert stopped.response == full[:full.index(word)] and stopped.done_reason == "stop"


def test_embed(client):
    response = client.embed("all-minilm", input=["a", "b"])
    assert len(response.embeddings) == 2 and len(response.embeddings[0]) == 384
    assert len(client.embeddings("all-minilm", "a").embedding) == 384


def test_pull_and_delete(client):
    progress = list(client.pull("tinyllama", stream=True))
    assert progress[0].status == "pulling manifest" and progress[-1].status == "success"
    assert client.pull("tinyllama").status == "success"
    assert client.delete("tinyllama").status == "success"
    assert "tinyllama:latest" not in [m.model for m in client.list().models]


@pytest.mark.parametrize(("call", "status", "message"), [
    (lambda c: c.chat("nope", messages=[{"role": "user", "content": "x"}]), 404,
     "model 'nope' not found"),
    (lambda c: c.generate("all-minilm", "x"), 400, '"all-minilm" does not support generate'),
    (lambda c: c.show("nope"), 404, "model 'nope' not found"),
    (lambda c: c.delete("nope"), 404, "model 'nope' not found"),
    (lambda c: c.pull("nope"), 500, "pull model manifest: file does not exist"),
    (lambda c: c.embed("nope", input="x"), 404, 'model "nope" not found, try pulling it first'),
    (lambda c: c.chat("llama3.2:3b", messages=[{"role": "user", "content": "x"}],
                      think=True), 400, '"llama3.2:3b" does not support thinking'),
    (lambda c: c.generate("llama3.2:3b", "x", options={"num_ctx": "big"}), 500,
     'option "num_ctx" must be of type integer'),
])
def test_errors_are_response_errors(client, call, status, message):
    with pytest.raises(ollama.ResponseError) as info:
        call(client)
    assert info.value.status_code == status and info.value.error == message


def test_in_stream_errors(client):
    with pytest.raises(ollama.ResponseError) as info:
        list(client.pull("nope", stream=True))
    assert info.value.status_code == -1
    with pytest.raises(ollama.ResponseError) as info:
        list(client.chat("llama3.2:3b", messages=[{"role": "user", "content": "x"}],
                         stream=True, options={"sim_error_after": 2}))
    assert info.value.status_code == -1 and "unexpected EOF" in info.value.error
