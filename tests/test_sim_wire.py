"""Simulator wire format: Go JSON bytes, times, base64, NDJSON framing, gin's 404/405."""

from __future__ import annotations

import base64
import io
import json
import re
import socket

import httpx
import pytest

from pytest_ollama_regress.sim import Latency, SimServer
from pytest_ollama_regress.sim.wire import (
    Base64Error,
    Float32,
    go_b64decode,
    go_json,
    go_json_error,
    rfc3339nano,
)

FAST = Latency(load_ms=2, prefill_us=1, decode_ms=0.2)
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
RFC3339_LOCAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


@pytest.fixture(scope="module")
def sim():
    with SimServer(latency=FAST, log_stream=io.StringIO()) as server:
        yield server


@pytest.fixture
def http(sim):
    with httpx.Client(base_url=sim.url, timeout=10) as client:
        yield client


def test_go_json_is_compact_and_html_escaped():
    assert go_json({"a": "<b>&", "n": [1, 2]}) == b'{"a":"\\u003cb\\u003e\\u0026","n":[1,2]}'
    assert go_json("\u2028é") == '"\\u2028é"'.encode()


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (0.5, "0.5"), (1e-7, "1e-7"), (2.5e21, "2.5e+21"), (123456.789, "123456.789"),
     (1e20, "100000000000000000000"), (-0.000001, "-0.000001"), (Float32(0.1), "0.1")],
)
def test_go_json_floats_like_go(value, text):
    assert go_json(value) == text.encode()


def test_rfc3339nano_trims_zeros_and_uses_z():
    assert rfc3339nano(1_700_000_000_123_400_000) == "2023-11-14T22:13:20.1234Z"
    assert rfc3339nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


@pytest.mark.parametrize(
    ("text", "offset"),
    [("aGVsbG8", 4), ("data:image/png;base64,AAAA", 4), ("aGVs bG8=", 4), ("a", 0),
     ("ab==x", 4), ("a===", 1), ("ab=", 3)],
)
def test_go_base64_error_offsets(text, offset):
    with pytest.raises(Base64Error, match=rf"^illegal base64 data at input byte {offset}$"):
        go_b64decode(text)


def test_go_base64_decodes_like_stdlib():
    for raw in (b"", b"h", b"he", b"hel", b"hello world", bytes(range(256))):
        encoded = base64.b64encode(raw).decode()
        assert go_b64decode(encoded) == raw
        assert go_b64decode(encoded[:4] + "\r\n" + encoded[4:]) == raw


@pytest.mark.parametrize(
    ("doc", "message"),
    [("{x", "invalid character 'x' looking for beginning of object key string"),
     ("[1 2]", "invalid character '2' after array element"),
     ('{"a" 1}', "invalid character '1' after object key"),
     ("{} x", "invalid character 'x' after top-level value"),
     ('{"model":', "unexpected EOF")],
)
def test_go_json_syntax_errors(doc, message):
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads(doc)
    assert go_json_error(doc, info.value) == message


def test_root_get_and_head(http):
    get = http.get("/")
    assert (get.status_code, get.text) == (200, "Ollama is running")
    assert get.headers["content-type"] == "text/plain; charset=utf-8"
    head = http.head("/")
    assert head.status_code == 200 and head.content == b""
    assert http.head("/api/version").status_code == 200
    assert http.head("/api/tags").status_code == 200


def test_version_bytes(http):
    response = http.get("/api/version")
    assert response.content == b'{"version":"0.12.6"}'
    assert response.headers["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/nope", 404), ("POST", "/v1/nothing", 404), ("GET", "/api/chat", 405),
    ("POST", "/api/tags", 405), ("GET", "/api/delete", 405), ("DELETE", "/api/show", 405),
])
def test_gin_plain_text_404_405(http, method, path, status):
    response = http.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == {404: "404 page not found", 405: "405 method not allowed"}[status]


def test_stream_is_ndjson_chunked_without_blank_lines(http):
    body = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hi"}]}
    with http.stream("POST", "/api/chat", json=body) as response:
        raw = response.read()
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["x-sim-request-id"]
    assert raw.endswith(b"\n") and b"\n\n" not in raw
    lines = raw.split(b"\n")[:-1]
    chunks = [json.loads(line) for line in lines]
    for line, chunk in zip(lines, chunks, strict=True):
        assert line == go_json(chunk)  # compact, Go key order kept
    for chunk in chunks[:-1]:
        assert list(chunk) == ["model", "created_at", "message", "done"]
        assert chunk["message"]["role"] == "assistant" and chunk["done"] is False
        assert RFC3339_UTC.match(chunk["created_at"])
    final = chunks[-1]
    assert list(final)[:5] == ["model", "created_at", "message", "done_reason", "done"]
    assert final["done"] is True and final["done_reason"] == "stop"
    for key in ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
                "eval_count", "eval_duration"):
        assert isinstance(final[key], int) and final[key] > 0
    assert final["eval_count"] == len(chunks) - 1
    assert final["total_duration"] >= final["eval_duration"]


def test_non_stream_is_one_json_object(http):
    body = {"model": "llama3.2:3b", "prompt": "hi", "stream": False}
    response = http.post("/api/generate", json=body)
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert "content-length" in response.headers
    data = response.json()
    assert data["done"] is True and data["response"] and isinstance(data["context"], list)
    assert response.content == go_json(data)


def test_raw_bytes_escape_html(http):
    body = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "a<b & c>d"}],
            "_debug_render_only": True}
    raw = http.post("/api/chat", json=body).content
    assert b"\\u003c|start_header_id|\\u003e" in raw
    assert b"a\\u003cb \\u0026 c\\u003ed" in raw
    assert b"<" not in raw and b">" not in raw and b"&" not in raw


def test_tags_show_ps_time_formats(http):
    models = http.get("/api/tags").json()["models"]
    assert all(RFC3339_LOCAL.match(m["modified_at"]) for m in models)
    show = http.post("/api/show", json={"model": "llama3.2:3b"}).json()
    assert RFC3339_LOCAL.match(show["modified_at"])
    http.post("/api/generate", json={"model": "llama3.2:3b"})
    ps = http.get("/api/ps").json()["models"]
    assert ps and all(RFC3339_LOCAL.match(m["expires_at"]) for m in ps)


def test_keep_alive_connection_reused(sim):
    """HTTP/1.1 keep-alive: two requests on one socket."""
    host, port = sim.url.rsplit("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        request = f"GET /api/version HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        sock.sendall(request + request)
        data = b""
        for _ in range(50):
            data += sock.recv(65536)
            if data.count(b'{"version"') == 2:
                break
    assert data.count(b"HTTP/1.1 200 OK") == 2


def test_non_local_host_header_is_forbidden_on_loopback(http):
    assert http.get("/api/version", headers={"Host": "attacker.example"}).status_code == 403
    assert http.get("/api/version", headers={"Host": "localhost:11434"}).status_code == 200
