"""OllamaClient against the simulator over real HTTP: endpoints, results and stream timing."""

from __future__ import annotations

import base64
import io
import socket
import sys
import threading
from collections.abc import Iterator

import pytest
from PIL import Image, ImageDraw

from pytest_ollama_regress.dialects.ollama_client import Completion, OllamaClient, OllamaError
from pytest_ollama_regress.sim import DEFAULT_VERSION, SimServer
from pytest_ollama_regress.sim.latency import Latency

TEXT = "llama3.2:3b"
VISION = "llava:7b"
THINKER = "qwen3:4b"
EMBEDDER = "all-minilm:latest"
HELLO = [{"role": "user", "content": "Say hello in a few words."}]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(latency=Latency(load_ms=5, prefill_us=10, decode_ms=1)) as server:
        yield server


@pytest.fixture
def client(sim: SimServer) -> Iterator[OllamaClient]:
    with OllamaClient(sim.url, connect_timeout=2, stall_timeout=10) as c:
        yield c


def _png() -> bytes:
    """Two red squares on white."""
    image = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, 24, 24), fill="red")
    draw.rectangle((40, 40, 56, 56), fill="red")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _content_chunks(result: Completion, key: str = "content") -> int:
    if key == "content":
        return sum(1 for c in result.chunks if c.get("message", {}).get("content"))
    return sum(1 for c in result.chunks if c.get(key))


def test_version_tags_show_ps(client: OllamaClient) -> None:
    assert client.version() == DEFAULT_VERSION
    names = [m["name"] for m in client.tags()]
    assert names[:2] == [TEXT, VISION]
    show = client.show(VISION)
    assert "vision" in show["capabilities"]
    assert show["model_info"]["general.architecture"] == "llama"
    client.generate(TEXT, "hi", options={"num_predict": 2})
    assert TEXT in [m["name"] for m in client.ps()]


def test_show_verbose_is_sent(client: OllamaClient) -> None:
    # without verbose, arrays longer than 5 (the tokenizer's) come back empty
    assert client.show(TEXT)["model_info"]["tokenizer.ggml.tokens"] == []
    assert client.show(TEXT, verbose=True)["model_info"]["tokenizer.ggml.tokens"]


def test_chat_stream_collects_text_metrics_and_timing(client: OllamaClient) -> None:
    result = client.chat(TEXT, HELLO)
    assert result.text
    assert result.done_reason == "stop"
    assert result.final["done"] is True
    assert result.message == {"role": "assistant", "content": result.text}
    assert result.status == 200
    assert result.headers["content-type"].startswith("application/x-ndjson")
    content_chunks = _content_chunks(result)
    assert content_chunks >= 2
    assert result.metrics.eval_count == content_chunks
    assert result.metrics.eval_duration > 0 and result.metrics.eval_rate > 0
    t = result.timing
    assert len(t.chunk_arrivals_ns) == len(result.chunks)
    assert t.request_sent_ns < t.first_byte_ns <= t.first_content_ns <= t.last_token_ns
    assert t.last_token_ns <= t.chunk_arrivals_ns[-1] <= t.end_ns
    assert t.first_thinking_ns is None
    # the kernel's receive stamps (Linux), else the socket read's; never after parsing
    source = "kernel" if sys.platform == "linux" else "read"
    sources = {source, "kernel-batch"} if source == "kernel" else {source}
    assert t.stamp_source == source and t.first_content_source in sources
    assert set(t.chunk_sources) <= sources and len(t.chunk_sources) == len(t.chunk_arrivals_ns)
    assert t.chunk_sources[-1] == source  # the last chunk of a read has its own stamp
    assert t.first_content_ns is not None and t.first_content_read_ns is not None
    assert t.first_content_ns <= t.first_content_read_ns
    assert t.ttft_ns is not None and t.ttft_ns > 0
    gaps = t.inter_token_gaps_ns
    assert len(gaps) == content_chunks - 1
    assert all(g >= 0 for g in gaps)


def test_chat_stream_and_non_stream_agree(client: OllamaClient) -> None:
    streamed = client.chat(TEXT, HELLO, options={"seed": 1})
    whole = client.chat(TEXT, HELLO, stream=False, options={"seed": 1})
    assert whole.text == streamed.text
    assert whole.message is not None and whole.message["content"] == streamed.text
    assert len(whole.chunks) == 1
    assert whole.metrics.eval_count == streamed.metrics.eval_count
    t = whole.timing
    assert t.first_content_ns == t.last_token_ns == t.chunk_arrivals_ns[0]
    assert t.inter_token_gaps_ns == []


def test_generate_stream_and_non_stream(client: OllamaClient) -> None:
    streamed = client.generate(TEXT, "Why is the sky blue?", options={"num_predict": 8})
    assert streamed.message is None
    assert streamed.done_reason == "length"
    assert streamed.metrics.eval_count == 8
    assert len(streamed.timing.inter_token_gaps_ns) == _content_chunks(streamed, "response") - 1
    whole = client.generate(TEXT, "Why is the sky blue?", stream=False, options={"num_predict": 8})
    assert whole.text == streamed.text


def test_thinking_arrives_before_content(client: OllamaClient) -> None:
    result = client.chat(THINKER, HELLO, think=True)
    t = result.timing
    assert result.thinking and result.text
    assert result.message is not None and result.message["thinking"] == result.thinking
    assert t.first_thinking_ns is not None and t.first_content_ns is not None
    assert t.first_thinking_ns < t.first_content_ns
    assert 0 < t.time_to_first_thinking_ns < t.ttft_ns
    # thinking chunks are token chunks too: the gaps span the whole generation
    token_chunks = sum(
        1 for c in result.chunks if c["message"].get("content") or c["message"].get("thinking")
    )
    assert len(t.inter_token_gaps_ns) == token_chunks - 1


def test_ttft_matches_simulator_flush_time(client: OllamaClient, sim: SimServer) -> None:
    """Each chunk is stamped within a tolerance of the simulator's flush of that chunk.

    The simulator stamps a flush right after its write returns, on another thread of this
    process, so the client may stamp a chunk a little *before* that (negative error). Several
    requests share one keep-alive connection, so delayed-ACK/Nagle stalls (40 ms) would show.
    """
    for _ in range(5):
        result = client.chat(TEXT, HELLO)
        request_id = result.headers["x-sim-request-id"]
        record = sim.request_record(request_id)
        assert record is not None and record.wait(5)
        flushes = sim.flush_times(request_id)
        assert len(flushes) == len(result.chunks)
        for arrival, flushed in zip(result.timing.chunk_arrivals_ns, flushes, strict=True):
            # bounds for a loaded 2-core machine; a Nagle/delayed-ACK stall is 40 ms
            assert -10_000_000 < arrival - flushed < 30_000_000
        first = next(i for i, c in enumerate(result.chunks) if c["message"]["content"])
        assert result.timing.first_content_ns == result.timing.chunk_arrivals_ns[first]
        server_ttft = flushes[first] - result.timing.request_sent_ns
        assert abs(result.timing.ttft_ns - server_ttft) < 30_000_000
        assert result.timing.request_sent_ns < flushes[0]


def test_ttft_sees_scheduled_first_token_delay() -> None:
    """The slow-ttft profile delays only the first token: TTFT grows, the gaps do not."""
    latency = Latency(load_ms=0, prefill_us=0, decode_ms=1)
    ttft = {}
    for profile in ("good", "slow-ttft"):
        env = {"OLLAMA_SIM_TTFT_DELAY_MS": "150"}
        with (
            SimServer(profile=profile, env=env, latency=latency) as server,
            OllamaClient(server.url) as c,
        ):
            c.generate(TEXT, "warm", options={"num_predict": 1})
            result = c.generate(TEXT, "Why is the sky blue?", options={"num_predict": 6})
            ttft[profile] = result.timing.ttft_ns
            assert max(result.timing.inter_token_gaps_ns) < 100_000_000
    assert ttft["slow-ttft"] - ttft["good"] > 100_000_000


def test_images_as_bytes_are_base64_encoded(client: OllamaClient) -> None:
    png = _png()
    for image in (png, base64.b64encode(png).decode()):
        rendered = client.render_generate(VISION, "Describe this image", images=[image])
        assert rendered.image_count == 1
        assert "[img-0]" in rendered.rendered_template
    result = client.chat(VISION, [{"role": "user", "content": "What is it?", "images": [png]}])
    assert "2 (two) red shapes" in result.text


def test_render_chat_full_shape_on_0_12(client: OllamaClient) -> None:
    rendered = client.render_chat(TEXT, [{"role": "user", "content": "Hello there"}])
    assert rendered.shape == "full"
    assert rendered.raw["done"] is False
    assert rendered.raw["message"]["content"] == ""
    assert "Hello there" in rendered.rendered_template
    assert rendered.image_count == 0


def test_embed(client: OllamaClient) -> None:
    result = client.embed(EMBEDDER, ["one", "two"])
    assert len(result["embeddings"]) == 2
    assert sum(x * x for x in result["embeddings"][0]) == pytest.approx(1.0, abs=1e-3)


def test_unload(client: OllamaClient) -> None:
    client.generate(TEXT, "hi", options={"num_predict": 1})
    result = client.unload(TEXT)
    assert result.done_reason == "unload"
    assert TEXT not in [m["name"] for m in client.ps()]


def test_pull_reports_progress_then_delete() -> None:
    seen: list[str] = []
    with SimServer() as server, OllamaClient(server.url) as c:
        model = "tinyllama:latest"
        assert model not in [m["name"] for m in c.tags()]
        progress = c.pull(model, on_progress=lambda p: seen.append(p["status"]))
        assert [p["status"] for p in progress] == seen
        assert seen[0] == "pulling manifest"
        assert seen[-1] == "success"
        assert any(s.startswith("pulling ") and len(s) == len("pulling ") + 12 for s in seen)
        layer = next(p for p in progress if "digest" in p)
        assert layer["total"] > 0
        assert model in [m["name"] for m in c.tags()]
        assert c.delete(model) is None
        assert model not in [m["name"] for m in c.tags()]
        with pytest.raises(OllamaError) as info:
            c.delete(model)
        assert info.value.status == 404
        assert info.value.message == f"model '{model}' not found"


def test_request_escape_hatch(client: OllamaClient) -> None:
    response = client.request("GET", "/api/version")
    assert response.json()["version"] == DEFAULT_VERSION
    assert client.request("GET", "/no/such/route").status_code == 404


@pytest.mark.skipif(sys.platform != "linux", reason="kernel receive stamps are Linux's")
def test_chunks_that_share_a_read_are_marked_batched() -> None:
    """Two NDJSON lines in one packet: one read, one kernel stamp, which is exact only for
    the read's last line; the first is marked ``kernel-batch`` (an upper bound)."""
    body = (b'{"model":"m","response":"a","done":false}\n'
            b'{"model":"m","response":"b","done":true,"done_reason":"stop"}\n')
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))

    def serve(listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            length = int(request.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            while len(request.split(b"\r\n\r\n", 1)[1]) < length:
                request += conn.recv(65536)
            conn.sendall(head + body)

    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = threading.Thread(target=serve, args=(listener,))
        server.start()
        port = listener.getsockname()[1]
        with OllamaClient(f"http://127.0.0.1:{port}", stall_timeout=5) as c:
            result = c.generate("m", "hi")
        server.join(5)
    t = result.timing
    assert result.text == "ab"
    assert t.chunk_sources == ["kernel-batch", "kernel"]
    assert t.first_content_source == "kernel-batch"
    assert t.chunk_arrivals_ns[0] == t.chunk_arrivals_ns[1] == t.first_content_ns
