"""The simulator's error catalogue (reference section 3): status and message per version."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest

from pytest_ollama_regress.sim import Latency, SimServer

FAST = Latency(load_ms=1, prefill_us=1, decode_ms=0.1)
PNG = base64.b64encode(b"\x89PNG not really").decode()
HI = [{"role": "user", "content": "hi"}]




CASES = [
    # (id, version, method, path, body (dict | bytes), status, message)
    ("empty body", "0.12.6", "POST", "/api/chat", b"", 400, "missing request body"),
    ("empty body generate", "0.12.6", "POST", "/api/generate", b"", 400,
     "missing request body"),
    ("malformed json", "0.12.6", "POST", "/api/chat", b"{x", 400,
     "invalid character 'x' looking for beginning of object key string"),
    ("truncated json", "0.12.6", "POST", "/api/generate", b'{"model":', 400, "unexpected EOF"),
    ("wrong type", "0.12.6", "POST", "/api/chat", {"model": 5}, 400,
     "json: cannot unmarshal number into Go struct field ChatRequest.model of type string"),
    ("bad base64 chat", "0.12.6", "POST", "/api/chat",
     {"model": "llava:7b", "messages": [{"role": "user", "content": "x", "images": ["a*b"]}]},
     400, "illegal base64 data at input byte 1"),
    ("data uri prefix", "0.12.6", "POST", "/api/generate",
     {"model": "llava:7b", "prompt": "x", "images": ["data:image/png;base64," + PNG]},
     400, "illegal base64 data at input byte 4"),
    ("invalid think", "0.12.6", "POST", "/api/chat",
     {"model": "qwen3:4b", "messages": HI, "think": "x"}, 400,
     'invalid think value: "x" (must be "high", "medium", "low", true, or false)'),
    ("invalid keep_alive", "0.12.6", "POST", "/api/generate",
     {"model": "llama3.2:3b", "keep_alive": "10x"}, 400, 'time: invalid duration "10x"'),
    ("keep_alive type", "0.12.6", "POST", "/api/generate",
     {"model": "llama3.2:3b", "keep_alive": True}, 400, "Unsupported type: 'bool'"),
    ("chat model missing", "0.12.6", "POST", "/api/chat", {"messages": HI}, 400,
     "model is required"),
    ("generate model missing", "0.12.6", "POST", "/api/generate", {"prompt": "x"}, 404,
     "model '' not found"),
    ("show model missing", "0.12.6", "POST", "/api/show", {}, 400, "model is required"),
    ("pull bad name", "0.12.6", "POST", "/api/pull", {"model": ""}, 400, "invalid model name"),
    ("generate unknown", "0.12.6", "POST", "/api/generate", {"model": "nope", "prompt": "x"},
     404, "model 'nope' not found"),
    ("chat unknown 0.11", "0.11.11", "POST", "/api/chat", {"model": "nope", "messages": HI},
     404, 'model "nope" not found, try pulling it first'),
    ("chat unknown 0.12", "0.12.0", "POST", "/api/chat", {"model": "nope", "messages": HI},
     404, "model 'nope' not found"),
    ("embed unknown", "0.12.6", "POST", "/api/embed", {"model": "nope", "input": "x"}, 404,
     'model "nope" not found, try pulling it first'),
    ("embeddings unknown", "0.12.6", "POST", "/api/embeddings",
     {"model": "nope", "prompt": "x"}, 404, 'model "nope" not found, try pulling it first'),
    ("show unknown", "0.12.6", "POST", "/api/show", {"model": "nope"}, 404,
     "model 'nope' not found"),
    ("delete unknown", "0.12.6", "DELETE", "/api/delete", {"model": "nope"}, 404,
     "model 'nope' not found"),
    ("delete empty 0.12", "0.12.6", "DELETE", "/api/delete", {"model": ""}, 400,
     'name "" is invalid'),
    ("delete empty head", "0.33.0", "DELETE", "/api/delete", {"model": ""}, 400,
     "model is required"),
    ("embedding model chat", "0.12.6", "POST", "/api/chat",
     {"model": "all-minilm", "messages": HI}, 400, '"all-minilm" does not support chat'),
    ("embedding model generate", "0.12.6", "POST", "/api/generate",
     {"model": "all-minilm", "prompt": "x"}, 400, '"all-minilm" does not support generate'),
    ("tools unsupported", "0.12.6", "POST", "/api/chat",
     {"model": "llava:7b", "messages": HI, "tools": [{"type": "function",
                                                       "function": {"name": "f"}}]},
     400, "registry.ollama.ai/library/llava:7b does not support tools"),
    ("insert unsupported", "0.12.6", "POST", "/api/generate",
     {"model": "llama3.2:3b", "prompt": "x", "suffix": "y"}, 400,
     "registry.ollama.ai/library/llama3.2:3b does not support insert"),
    ("thinking unsupported 0.11", "0.11.11", "POST", "/api/chat",
     {"model": "llama3.2:3b", "messages": HI, "think": True}, 400,
     "registry.ollama.ai/library/llama3.2:3b does not support thinking"),
    ("thinking unsupported 0.12.4", "0.12.4", "POST", "/api/chat",
     {"model": "llama3.2:3b", "messages": HI, "think": True}, 400,
     '"llama3.2:3b" does not support thinking'),
    ("think level 0.11", "0.11.11", "POST", "/api/chat",
     {"model": "qwen3:4b", "messages": HI, "think": "high"}, 400,
     'think value "high" is not supported for this model'),
    ("raw conflict", "0.12.6", "POST", "/api/generate",
     {"model": "llama3.2:3b", "prompt": "x", "raw": True, "system": "s"}, 400,
     "raw mode does not support template, system, or context"),
    ("option type", "0.12.6", "POST", "/api/generate",
     {"model": "llama3.2:3b", "prompt": "x", "options": {"num_ctx": "x"}}, 500,
     'option "num_ctx" must be of type integer'),
    ("option bool type", "0.12.6", "POST", "/api/chat",
     {"model": "llama3.2:3b", "messages": HI, "options": {"use_mmap": 1}}, 500,
     'option "use_mmap" must be of type boolean'),
    ("embed input type", "0.12.6", "POST", "/api/embed",
     {"model": "all-minilm", "input": 5}, 400, "invalid input type"),
    ("embed too long 0.12.6", "0.12.6", "POST", "/api/embed",
     {"model": "all-minilm", "input": "word " * 600, "truncate": False}, 400,
     "the input length exceeds the context length"),
    ("embed too long 0.11", "0.11.11", "POST", "/api/embed",
     {"model": "all-minilm", "input": "word " * 600, "truncate": False}, 400,
     "input length exceeds maximum context length"),
    ("top_logprobs range", "0.12.11", "POST", "/api/chat",
     {"model": "llama3.2:3b", "messages": HI, "top_logprobs": 21}, 400,
     "top_logprobs must be between 0 and 20"),
    ("prompt too long", "0.12.6", "POST", "/api/chat",
     {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "w " * 300}],
      "truncate": False, "options": {"num_ctx": 128}}, 400,
     "the input length exceeds the context length"),
]


@pytest.mark.parametrize(("version", "method", "path", "body", "status", "message"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_catalogue(servers, version, method, path, body, status, message):
    sim = servers(version)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.request(method, sim.url + path, content=content, timeout=10)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {"error": message}


def test_options_unknown_key_is_only_logged(servers):
    sim = servers("0.12.6")
    body = {"model": "llama3.2:3b", "prompt": "x", "stream": False,
            "options": {"mirostat": 1, "num_predict": 2}}
    response = httpx.post(sim.url + "/api/generate", json=body, timeout=10)
    assert response.status_code == 200 and response.json()["eval_count"] == 2
    assert any("invalid option provided" in line and "option=mirostat" in line
               for line in sim.log_lines())


def _stream(sim, path, body):
    with httpx.stream("POST", sim.url + path, json=body, timeout=10) as response:
        return response, response.read()


@pytest.mark.parametrize("route", ["/api/chat", "/api/generate"])
def test_runner_error_before_first_token_by_version(servers, route):
    body = {"model": "llama3.2:3b", "options": {"sim_error_after": 0}}
    body.update({"messages": HI} if route == "/api/chat" else {"prompt": "hi"})
    old, old_raw = _stream(servers("0.12.5"), route, body)
    assert old.status_code == 200
    assert old.headers["content-type"] == "application/x-ndjson"
    assert old_raw == b'{"error":"an error was encountered while running the model: '\
                      b'unexpected EOF"}\n'
    new, new_raw = _stream(servers("0.12.6"), route, body)
    assert new.status_code == 500
    assert new.headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(new_raw)["error"].startswith("an error was encountered")


def test_runner_error_mid_stream_is_a_200_ndjson_line(servers):
    body = {"model": "llama3.2:3b", "messages": HI, "options": {"sim_error_after": 3}}
    response, raw = _stream(servers("0.12.6"), "/api/chat", body)
    lines = [json.loads(line) for line in raw.splitlines()]
    assert response.status_code == 200
    assert len(lines) == 4 and all("message" in line for line in lines[:3])
    assert lines[3] == {"error": "an error was encountered while running the model: "
                                 "unexpected EOF"}


def test_runner_error_non_stream_is_500(servers):
    body = {"model": "llama3.2:3b", "messages": HI, "stream": False,
            "options": {"sim_error_after": 1}}
    for version in ("0.11.11", "0.12.6"):
        response = httpx.post(servers(version).url + "/api/chat", json=body, timeout=10)
        assert response.status_code == 500
        assert "unexpected EOF" in response.json()["error"]


def test_undecodable_image_is_a_runner_error(servers):
    body = {"model": "llava:7b", "prompt": "what?",
            "images": [base64.b64encode(b"fake-image-data").decode()]}
    response, raw = _stream(servers("0.11.11"), "/api/generate", body)
    assert response.status_code == 200
    error = json.loads(raw)["error"]
    assert error.startswith("Failed to create new sequence: failed to process inputs")
    response, raw = _stream(servers("0.12.6"), "/api/generate", body)
    assert response.status_code == 500 and "image: unknown format" in json.loads(raw)["error"]


def test_pull_unknown_model_errors_after_pulling_manifest(servers):
    sim = servers("0.12.6")
    response, raw = _stream(sim, "/api/pull", {"model": "does-not-exist"})
    assert response.status_code == 200
    assert [json.loads(line) for line in raw.splitlines()] == [
        {"status": "pulling manifest"},
        {"error": "pull model manifest: file does not exist"},
    ]
    response = httpx.post(sim.url + "/api/pull", json={"model": "does-not-exist",
                                                       "stream": False}, timeout=10)
    assert response.status_code == 500
    assert response.json() == {"error": "pull model manifest: file does not exist"}


def test_openai_errors_are_wrapped(servers):
    sim = servers("0.12.6")
    empty = httpx.post(sim.url + "/v1/chat/completions",
                       json={"model": "llama3.2:3b", "messages": []}, timeout=10)
    assert empty.status_code == 400
    assert empty.json() == {"error": {"message": "[] is too short - 'messages'",
                                      "type": "invalid_request_error", "param": None,
                                      "code": None}}
    missing = httpx.post(sim.url + "/v1/chat/completions",
                         json={"model": "nope", "messages": HI}, timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    url = httpx.post(sim.url + "/v1/chat/completions", json={
        "model": "llava:7b", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}, timeout=10)
    assert url.status_code == 400
    assert url.json()["error"]["message"].startswith("image URLs are not currently supported")
    bad = httpx.post(sim.url + "/v1/chat/completions", json={
        "model": "llava:7b", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": "ftp://nope"}]}]}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "invalid image input"


def test_queue_full_is_503():
    sim = SimServer(env={"OLLAMA_MAX_QUEUE": "1", "OLLAMA_SIM_LOAD_MS": "300"},
                    log_stream=io.StringIO())
    with sim, httpx.Client(base_url=sim.url, timeout=10) as client:
        import threading

        results: list[int] = []
        body = {"model": "llama3.2:3b", "prompt": "x", "stream": False,
                "options": {"num_predict": 1}}
        first = threading.Thread(target=lambda: results.append(
            client.post("/api/generate", json=body).status_code))
        first.start()
        import time

        time.sleep(0.1)
        second = client.post("/api/generate", json={**body, "model": "qwen3:4b"})
        first.join(10)
    assert second.status_code == 503
    assert second.json() == {"error": "server busy, please try again.  maximum pending "
                                      "requests exceeded"}
    assert results == [200]
