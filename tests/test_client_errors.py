"""Every OllamaClient error path, against the simulator (and closed or silent local ports)."""

from __future__ import annotations

import pickle
import socket
import time
from collections.abc import Iterator

import pytest

from pytest_ollama_regress.dialects.ollama_client import OllamaClient, OllamaError
from pytest_ollama_regress.sim import SimServer
from pytest_ollama_regress.sim.latency import Latency

TEXT = "llama3.2:3b"
HELLO = [{"role": "user", "content": "Tell me a story about a fox."}]
FAST = Latency(load_ms=0, prefill_us=0, decode_ms=0.5)


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, SimServer]]:
    """One simulator per version whose behaviour differs: 0.11.5 (old) and 0.12.6 (new)."""
    with (
        SimServer(version="0.11.5", latency=FAST) as old,
        SimServer(version="0.12.6", latency=FAST) as new,
    ):
        yield {"0.11.5": old, "0.12.6": new}


@pytest.fixture
def new(sims: dict[str, SimServer]) -> Iterator[OllamaClient]:
    with OllamaClient(sims["0.12.6"].url, stall_timeout=10) as c:
        yield c


@pytest.fixture
def old(sims: dict[str, SimServer]) -> Iterator[OllamaClient]:
    with OllamaClient(sims["0.11.5"].url, stall_timeout=10) as c:
        yield c


# --- HTTP errors ---------------------------------------------------------------------------


def test_unknown_model_is_404_with_server_message(new: OllamaClient, old: OllamaClient) -> None:
    with pytest.raises(OllamaError) as info:
        new.chat("nope:1b", HELLO)
    err = info.value
    assert (err.status, err.message, err.in_stream) == (404, "model 'nope:1b' not found", False)
    assert err.url == new.base_url + "/api/chat"
    assert "model 'nope:1b' not found (status 404" in str(err)
    with pytest.raises(OllamaError) as info:
        old.chat("nope:1b", HELLO)  # v0.11.x wording
    assert info.value.message == 'model "nope:1b" not found, try pulling it first'


@pytest.mark.parametrize("stream", [True, False])
def test_missing_model_is_400(new: OllamaClient, stream: bool) -> None:
    with pytest.raises(OllamaError) as info:
        new.chat("", HELLO, stream=stream)
    assert (info.value.status, info.value.message) == (400, "model is required")


def test_invalid_base64_image_is_400(new: OllamaClient) -> None:
    with pytest.raises(OllamaError) as info:
        new.generate("llava:7b", "what is it?", images=["not base64!"])
    assert info.value.status == 400
    assert info.value.message.startswith("illegal base64 data at input byte")


def test_bad_option_type_is_500(new: OllamaClient) -> None:
    with pytest.raises(OllamaError) as info:
        new.generate(TEXT, "hi", options={"num_ctx": "x"})
    assert (info.value.status, info.value.message) == (
        500,
        'option "num_ctx" must be of type integer',
    )


def test_plain_text_404_and_405(new: OllamaClient) -> None:
    with pytest.raises(OllamaError) as info:
        new.request("GET", "/api/nothing-here", check=True)
    assert (info.value.status, info.value.message) == (404, "404 page not found")
    with pytest.raises(OllamaError) as info:
        new.request("GET", "/api/chat", check=True)
    assert (info.value.status, info.value.message) == (405, "405 method not allowed")


# --- errors inside a 200 stream ------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.11.5", "0.12.6"])
def test_runner_error_mid_stream(sims: dict[str, SimServer], version: str) -> None:
    with OllamaClient(sims[version].url) as c, pytest.raises(OllamaError) as info:
        c.chat(TEXT, HELLO, options={"sim_error_after": 3})
    err = info.value
    assert (err.status, err.in_stream) == (200, True)
    assert err.message
    assert err.partial is not None
    assert sum(1 for ch in err.partial.chunks if ch.get("message", {}).get("content")) == 3
    assert err.partial.timing.first_content_ns is not None
    assert "error" in err.partial.chunks[-1]


def test_runner_error_first_line_old_server_is_200_ndjson(old: OllamaClient) -> None:
    """<= 0.12.5 sends a runner error as the first NDJSON line with HTTP 200."""
    with pytest.raises(OllamaError) as info:
        old.generate(TEXT, "hi", options={"sim_error_after": 0})
    err = info.value
    assert (err.status, err.in_stream) == (200, True)
    assert err.partial is not None and err.partial.text == ""
    assert err.partial.timing.first_content_ns is None


def test_runner_error_first_line_new_server_is_http_error(new: OllamaClient) -> None:
    """>= 0.12.6 turns a first-line runner error into a real HTTP error."""
    with pytest.raises(OllamaError) as info:
        new.generate(TEXT, "hi", options={"sim_error_after": 0})
    err = info.value
    assert err.status >= 400
    assert err.in_stream is False
    assert err.message


@pytest.mark.parametrize("version", ["0.11.5", "0.12.6"])
def test_runner_error_non_streaming(sims: dict[str, SimServer], version: str) -> None:
    with OllamaClient(sims[version].url) as c, pytest.raises(OllamaError) as info:
        c.chat(TEXT, HELLO, stream=False, options={"sim_error_after": 2})
    assert info.value.status == 500
    assert info.value.in_stream is False


# --- transport failures --------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_names_url_and_cause() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with OllamaClient(url, connect_timeout=1) as c, pytest.raises(OllamaError) as info:
        c.version()
    err = info.value
    assert err.status == 0
    assert url + "/api/version" in err.message
    assert "refused" in err.message.lower()


def test_connect_timeout() -> None:
    """A listener whose accept queue is full never completes the handshake."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers: list[socket.socket] = []
        try:
            for _ in range(8):  # fill the accept queue until a handshake stalls
                s = socket.socket()
                s.settimeout(0.2)
                fillers.append(s)
                try:
                    s.connect(("127.0.0.1", port))
                except TimeoutError:
                    break
            else:
                pytest.fail("the accept queue never filled up")
            with OllamaClient(f"http://127.0.0.1:{port}", connect_timeout=0.3) as c:
                start = time.monotonic()
                with pytest.raises(OllamaError) as info:
                    c.tags()
                assert time.monotonic() - start < 5
        finally:
            for s in fillers:
                s.close()
    assert info.value.status == 0
    assert "connect timed out after 0.3s" in info.value.message


def test_stall_between_chunks_raises() -> None:
    slow = Latency(load_ms=0, prefill_us=0, decode_ms=2000)
    with SimServer(latency=slow) as server, OllamaClient(server.url, stall_timeout=0.3) as c:
        url = server.url
        start = time.monotonic()
        with pytest.raises(OllamaError) as info:
            c.chat(TEXT, HELLO)
        elapsed = time.monotonic() - start
    err = info.value
    assert err.status == 0
    assert err.message.startswith("stalled")
    assert url in err.message
    assert elapsed < 2.0


# --- debug render, pull, delete ------------------------------------------------------------


def test_debug_render_minimal_shape_on_0_11_5(old: OllamaClient) -> None:
    rendered = old.render_chat(TEXT, [{"role": "user", "content": "Hello there"}])
    assert rendered.shape == "minimal"
    assert "done" not in rendered.raw and "message" not in rendered.raw
    assert set(rendered.raw) == {"model", "created_at", "_debug_info"}
    assert "Hello there" in rendered.rendered_template
    assert rendered.image_count == 0


def test_debug_render_full_shape_on_0_12_6(new: OllamaClient) -> None:
    rendered = new.render_generate(TEXT, "Hello there")
    assert rendered.shape == "full"
    assert rendered.raw["done"] is False
    assert rendered.raw["response"] == ""
    assert "Hello there" in rendered.rendered_template


def test_debug_render_unsupported_version_raises() -> None:
    with (
        SimServer(version="0.11.4", latency=FAST) as server,
        OllamaClient(server.url) as c,
        pytest.raises(OllamaError) as info,
    ):
        c.render_chat(TEXT, HELLO)
    assert "_debug_render_only" in info.value.message
    assert "0.11.5" in info.value.message


def test_pull_unknown_model_error_line(new: OllamaClient) -> None:
    seen: list[dict] = []
    with pytest.raises(OllamaError) as info:
        new.pull("no-such-model-xyz:latest", on_progress=seen.append)
    err = info.value
    assert (err.status, err.in_stream) == (200, True)
    assert err.message.startswith("pull model manifest")
    assert [p["status"] for p in seen] == ["pulling manifest"]


def test_pull_invalid_name_is_400(new: OllamaClient) -> None:
    with pytest.raises(OllamaError) as info:
        new.pull("")
    assert (info.value.status, info.value.message) == (400, "invalid model name")


def test_delete_unknown_model_is_404(new: OllamaClient) -> None:
    with pytest.raises(OllamaError) as info:
        new.delete("nope:1b")
    assert (info.value.status, info.value.message) == (404, "model 'nope:1b' not found")


# --- the error type itself -----------------------------------------------------------------


def test_error_pickles_and_formats() -> None:
    err = OllamaError(404, "model 'x' not found", url="http://h:1/api/chat", in_stream=False)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.status, copy.message, copy.url, copy.in_stream) == (
        404,
        "model 'x' not found",
        "http://h:1/api/chat",
        False,
    )
    assert str(copy) == "model 'x' not found (status 404, http://h:1/api/chat)"
    streamed = OllamaError(200, "boom\n", url="u", in_stream=True)
    assert str(streamed) == "boom (status 200, u, in stream)"


@pytest.mark.parametrize("bad", ["127.0.0.1:11434", "ftp://h:1", "http://", "not a url"])
def test_invalid_base_url(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid Ollama URL"):
        OllamaClient(bad)
