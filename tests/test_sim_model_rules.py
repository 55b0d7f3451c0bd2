"""Section 16 models: what each one does on both sides of its version boundaries.

Every server here installs the whole catalogue (``OLLAMA_SIM_MODELS=all``).
"""

from __future__ import annotations

import base64
import io
import json
import re

import httpx
import pytest
from PIL import Image

from pytest_ollama_regress.sim import Latency, SimServer

FAST = Latency(load_ms=1, prefill_us=1, decode_ms=0.05)
IMG = "aGVsbG8="  # base64 of "hello": fine for renders, never decoded there
MARKER_RE = re.compile(r"<__ollama_media_[0-9a-f]{32}__>")
NEW_MODELS = ("qwen3-vl:2b", "gpt-oss:20b", "gemma3:1b", "llama3.2-vision:11b",
              "smollm2-8k:135m", "smolvlm:256m")


@pytest.fixture(scope="module")
def sims():
    """``sims(version, **env)``: one started simulator with every model, per key."""
    started: dict[tuple, SimServer] = {}

    def get(version: str, **env: str) -> SimServer:
        key = (version, tuple(sorted(env.items())))
        if key not in started:
            started[key] = SimServer(
                version=version, env={"OLLAMA_SIM_MODELS": "all", **env}, latency=FAST,
                log_stream=io.StringIO()).start()
        return started[key]

    yield get
    for sim in started.values():
        sim.stop()


def post(sim: SimServer, path: str, body: dict) -> httpx.Response:
    return httpx.post(sim.url + path, json=body, timeout=10)


def chat_render(sim: SimServer, model: str, messages: list[dict], **extra) -> httpx.Response:
    return post(sim, "/api/chat", {"model": model, "messages": messages,
                                   "_debug_render_only": True, **extra})


def _png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "white").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


PNG = _png()  # a picture the simulated vision can decode (for answers)


def user(content: str, images: int = 0, picture: str = IMG) -> dict:
    return {"role": "user", "content": content, "images": [picture] * images}


def ps(sim: SimServer) -> dict[str, int]:
    return {m["name"]: m["context_length"]
            for m in httpx.get(sim.url + "/api/ps").json()["models"]}


def load(sim: SimServer, model: str, **options) -> httpx.Response:
    return post(sim, "/api/generate", {"model": model, "prompt": "hi", "stream": False,
                                       "options": {"num_predict": 1, **options}})


# -- /api/show ----------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "arch", "capabilities", "template"), [
    ("qwen3-vl:2b", "qwen3vl", ["completion", "vision", "thinking", "tools"], "{{ .Prompt }}"),
    ("gpt-oss:20b", "gptoss", ["completion", "tools", "thinking"], "<|start|>system"),
    ("gemma3:1b", "gemma3", ["completion"], "<start_of_turn>"),
    ("llama3.2-vision:11b", "mllama", ["completion", "vision"], "<|start_header_id|>"),
    ("smollm2-8k:135m", "llama", ["completion"], "<|im_start|>"),
    ("smolvlm:256m", "llama", ["completion", "vision"], "{{ .Prompt }}"),
])
def test_show(sims, model, arch, capabilities, template):
    body = post(sims("0.12.6"), "/api/show", {"model": model}).json()
    assert body["capabilities"] == capabilities
    assert body["model_info"]["general.architecture"] == arch
    assert f"{arch}.context_length" in body["model_info"]
    assert template in body["template"]
    assert "renderer" not in body and "parser" not in body  # never in the JSON (Modelfile only)
    renderer_lines = [line for line in body["modelfile"].splitlines()
                      if line.startswith(("RENDERER ", "PARSER "))]
    if model == "qwen3-vl:2b":
        assert renderer_lines == ["RENDERER qwen3-vl-thinking", "PARSER qwen3-vl-thinking"]
    else:
        assert renderer_lines == []


def test_renderer_lines_only_from_0_12_0(sims):
    old = post(sims("0.11.11"), "/api/show", {"model": "qwen3-vl:2b"}).json()
    assert "RENDERER" not in old["modelfile"] and "PARSER" not in old["modelfile"]
    assert "RENDERER qwen3-vl-thinking" in post(sims("0.12.0"), "/api/show",
                                                 {"model": "qwen3-vl:2b"}).json()["modelfile"]


def test_modelfile_num_ctx_parameter_shown(sims):
    body = post(sims("0.12.6"), "/api/show", {"model": "smollm2-8k:135m"}).json()
    assert body["parameters"].splitlines()[0] == "num_ctx" + " " * 24 + "8192"
    assert "PARAMETER num_ctx 8192" in body["modelfile"]
    assert body["model_info"]["llama.context_length"] == 8192


# -- renderer model image tags ------------------------------------------------------------

@pytest.mark.parametrize(("version", "plain", "literal"), [
    # before renderers: the default {{ .Prompt }} Go template
    ("0.11.11", "[img-0][img-1]Describe", "compare [img-0] and [img-1]"),
    # the server tags, then the renderer adds a literal [img] per image
    ("0.12.7", "[img][img][img-0][img-1]Describe", "[img][img]compare [img-0] and [img-1]"),
    ("0.17.1-rc0", "[img][img][img-0][img-1]Describe", "[img][img]compare [img-0] and [img-1]"),
    # the renderer tags: in front, a literal [img] left alone (upstream bug)
    ("0.17.1", "[img-0][img-1]Describe", "[img-0][img-1]compare [img] and [img]"),
    ("0.23.3", "[img-0][img-1]Describe", "[img-0][img-1]compare [img] and [img]"),
    # image_tags.go: [img] replaced, a space after leading tags
    ("0.23.4-rc0", "[img-0][img-1] Describe", "compare [img-0] and [img-1]"),
    ("0.30.0", "[img-0][img-1] Describe", "compare [img-0] and [img-1]"),
])
def test_renderer_image_tags_by_version(sims, version, plain, literal):
    sim = sims(version)
    for content, expected in (("Describe", plain), ("compare [img] and [img]", literal)):
        info = chat_render(sim, "qwen3-vl:2b", [user(content, 2)]).json()["_debug_info"]
        assert info["image_count"] == 2
        rendered = info["rendered_template"]
        if version == "0.11.11":
            assert rendered == expected
        else:
            assert f"<|im_start|>user\n{expected}<|im_end|>\n" in rendered


def test_renderer_space_only_before_non_space(sims):
    sim = sims("0.23.4")
    for content, expected in (("Hi", "[img-0] Hi"), (" Hi", "[img-0] Hi"), ("", "[img-0]"),
                              ("\nHi", "[img-0]\nHi"), ("see [img-7]", "see [img-7]")):
        rendered = chat_render(sim, "qwen3-vl:2b", [user(content, 1)]).json()[
            "_debug_info"]["rendered_template"]
        assert f"<|im_start|>user\n{expected}<|im_end|>" in rendered


def test_renderer_generate_follows_chat_from_0_12_6(sims):
    info = post(sims("0.23.4"), "/api/generate", {
        "model": "qwen3-vl:2b", "prompt": "Describe", "images": [IMG, IMG],
        "_debug_render_only": True}).json()["_debug_info"]
    assert "<|im_start|>user\n[img-0][img-1] Describe<|im_end|>" in info["rendered_template"]


# -- native Jinja chat (v0.30.0+) -----------------------------------------------------------

def test_native_chat_media_markers_from_0_30(sims):
    messages = [user("Describe [img] here", 2)]
    old = chat_render(sims("0.29.0"), "smolvlm:256m", messages).json()["_debug_info"]
    assert old == {"rendered_template": "[img-1]Describe [img-0] here", "image_count": 2}
    sim = sims("0.30.0")
    info = chat_render(sim, "smolvlm:256m", messages).json()["_debug_info"]
    rendered = info["rendered_template"]
    markers = MARKER_RE.findall(rendered)
    assert info["image_count"] == 2 and len(markers) == 2 and markers[0] == markers[1]
    assert "[img-" not in rendered and "Describe [img] here" + markers[0] in rendered
    assert rendered == f"<|im_start|>User: Describe [img] here{markers[0] * 2}" \
                       "<end_of_utterance>\nAssistant:"
    again = chat_render(sim, "smolvlm:256m", messages).json()["_debug_info"]
    assert again == info  # one marker per process


def test_native_generate_keeps_image_tags(sims):
    info = post(sims("0.30.0"), "/api/generate", {
        "model": "smolvlm:256m", "prompt": "Describe", "images": [IMG, IMG],
        "_debug_render_only": True}).json()["_debug_info"]
    assert info == {"rendered_template": "<|im_start|>User: [img-0][img-1]Describe"
                                         "<end_of_utterance>\nAssistant:", "image_count": 2}


def test_native_image_count_is_before_truncation(sims):
    messages = [user("old pictures", 3), {"role": "assistant", "content": "ok"},
                user("new question", 1)]
    options = {"num_ctx": 2048}  # 3 x 768 image tokens do not fit: the old message goes
    native = chat_render(sims("0.30.0"), "smolvlm:256m", messages, options=options).json()
    go = chat_render(sims("0.30.0"), "llava:7b", messages, options=options).json()
    assert "old pictures" not in native["_debug_info"]["rendered_template"]
    assert len(MARKER_RE.findall(native["_debug_info"]["rendered_template"])) == 1
    assert native["_debug_info"]["image_count"] == 4  # countChatImages: every message
    assert go["_debug_info"]["image_count"] == 1  # the kept images


@pytest.mark.parametrize(("version", "native"), [("0.29.0", False), ("0.30.0", True)])
def test_go_template_off_sends_template_models_native(sims, version, native):
    sim = sims(version, OLLAMA_GO_TEMPLATE="0")
    rendered = chat_render(sim, "gemma3:4b", [user("Describe", 1)]).json()[
        "_debug_info"]["rendered_template"]
    assert bool(MARKER_RE.search(rendered)) is native and ("[img-0]" in rendered) is not native
    # renderer and harmony models are rendered by Ollama whatever OLLAMA_GO_TEMPLATE says
    qwen = chat_render(sim, "qwen3-vl:2b", [user("Describe", 1)]).json()["_debug_info"]
    assert "[img-0]" in qwen["rendered_template"]
    harmony = chat_render(sim, "gpt-oss:20b", [user("Hi")]).json()["_debug_info"]
    assert harmony["rendered_template"].endswith("<|start|>user<|message|>Hi<|end|>"
                                                 "<|start|>assistant")


def test_native_prompt_eval_counts_each_image(sims):
    sim = sims("0.30.0")
    counts = [post(sim, "/api/chat", {
        "model": "smolvlm:256m", "messages": [user("What is this?", n, PNG)], "stream": False,
        "options": {"num_predict": 1}}).json()["prompt_eval_count"] for n in range(3)]
    assert [b - a for a, b in zip(counts, counts[1:], strict=False)] == [64, 64]


# -- images sent to models that cannot take them ------------------------------------------

def _chat(sim: SimServer, model: str, images: int, stream: bool) -> httpx.Response:
    return post(sim, "/api/chat", {"model": model, "stream": stream,
                                   "messages": [user("What is this?", images, PNG)],
                                   "options": {"num_predict": 3}})


@pytest.mark.parametrize("stream", [False, True])
def test_text_gemma3_rejects_images_before_0_30(sims, stream):
    message = ("Failed to create new sequence: failed to process inputs: this model is "
               "missing data required for image input")
    old = _chat(sims("0.12.5"), "gemma3:1b", 1, stream)
    if stream:  # a 200 stream whose only line is the error
        assert old.status_code == 200
        assert [json.loads(line) for line in old.text.splitlines()] == [{"error": message}]
    else:
        assert (old.status_code, old.json()) == (500, {"error": message})
    new = _chat(sims("0.12.6"), "gemma3:1b", 1, stream)
    assert (new.status_code, new.json()) == (500, {"error": message})
    generate = post(sims("0.12.6"), "/api/generate", {
        "model": "gemma3:1b", "prompt": "hi", "images": [IMG], "stream": False})
    assert (generate.status_code, generate.json()) == (500, {"error": message})
    # the render still shows the image, without images the model works, other text models
    # ignore images
    info = chat_render(sims("0.12.6"), "gemma3:1b", [user("hi", 1)]).json()["_debug_info"]
    assert info["image_count"] == 1 and "[img-0]hi" in info["rendered_template"]
    assert _chat(sims("0.12.6"), "gemma3:1b", 0, stream).status_code == 200
    assert _chat(sims("0.12.6"), "llama3.2:3b", 1, stream).status_code == 200


def test_text_gemma3_ignores_images_from_0_30(sims):
    sim = sims("0.30.0")
    with_image = _chat(sim, "gemma3:1b", 1, False)
    assert with_image.status_code == 200
    assert "shape" not in with_image.json()["message"]["content"]
    without = _chat(sim, "gemma3:1b", 0, False).json()["prompt_eval_count"]
    # "[img-0]" is read as five text tokens; no image tokens
    assert with_image.json()["prompt_eval_count"] == without + 5


def test_mllama_takes_one_image(sims):
    sim = sims("0.12.6")
    one = _chat(sim, "llama3.2-vision:11b", 1, False)
    assert one.status_code == 200
    error = {"error": "this model only supports one image while more than one image requested"}
    two = _chat(sim, "llama3.2-vision:11b", 2, False)
    assert (two.status_code, two.json()) == (500, error)
    render = chat_render(sim, "llama3.2-vision:11b", [user("x", 2)])
    assert (render.status_code, render.json()) == (500, error)
    # one image in each of two messages passes the per-message check
    split = chat_render(sim, "llama3.2-vision:11b", [
        user("a", 1), {"role": "assistant", "content": "ok"}, user("b", 1)]).json()
    assert split["_debug_info"]["image_count"] == 2
    for images, status in (([PNG], 200), ([PNG, PNG], 400)):
        for debug in (False, True):
            response = post(sim, "/api/generate", {
                "model": "llama3.2-vision:11b", "prompt": "x", "images": images,
                "stream": False, "_debug_render_only": debug})
            assert response.status_code == status
            if status == 400:
                assert response.json() == error
    no_image = _chat(sim, "llama3.2-vision:11b", 0, False).json()["prompt_eval_count"]
    assert one.json()["prompt_eval_count"] == no_image + 1  # a single <|image|> token


def test_mllama_cannot_run_from_0_30(sims):
    old = _chat(sims("0.29.0"), "llama3.2-vision:11b", 0, False)
    assert old.status_code == 200
    sim = sims("0.30.0")
    response = _chat(sim, "llama3.2-vision:11b", 0, False)
    assert response.status_code == 500 and "mllama" in response.json()["error"]
    assert post(sim, "/api/show", {"model": "llama3.2-vision:11b"}).status_code == 200


# -- context floors and defaults ------------------------------------------------------------

@pytest.mark.parametrize(("model", "version", "vram", "expected"), [
    ("gpt-oss:20b", "0.10.0", "20", 2048),  # no gpt-oss yet
    ("gpt-oss:20b", "0.11.0", "20", 8192),
    ("gpt-oss:20b", "0.11.0", "16", 8192),  # low-VRAM mode arrived in 0.11.4
    ("gpt-oss:20b", "0.11.4-rc0", "16", 8192),
    ("gpt-oss:20b", "0.11.4", "16", 2048),
    ("gpt-oss:20b", "0.11.4", "20", 8192),
    ("gpt-oss:20b", "0.12.6", "0", 2048),  # CPU: low-VRAM mode
    ("gpt-oss:20b", "0.15.4", "20", 8192),
    ("gpt-oss:20b", "0.15.5", "20", 2048),
    ("qwen3-vl:2b", "0.12.6", "20", 2048),  # the vision floor only
    ("qwen3-vl:2b", "0.12.7", "20", 8192),
    ("qwen3-vl:2b", "0.12.7", "19.9", 2048),
    ("qwen3-vl:2b", "0.15.4", "20", 8192),
    ("qwen3-vl:2b", "0.15.5", "20", 2048),
])
def test_8192_floor(sims, model, version, vram, expected):
    sim = sims(version, OLLAMA_SIM_VRAM_GIB=vram)
    load(sim, model, num_ctx=2048)
    assert ps(sim)[model] == expected


def test_floor_makes_small_contexts_equal_no_reload(sims):
    sim = sims("0.12.6")
    post(sim, "/api/generate", {"model": "gpt-oss:20b", "keep_alive": 0})
    load(sim, "gpt-oss:20b", num_ctx=2048)
    again = load(sim, "gpt-oss:20b", num_ctx=4096).json()
    assert again["load_duration"] < 1_000_000  # 4096 -> 8192 = 8192: no reload
    assert ps(sim)["gpt-oss:20b"] == 8192


def test_low_vram_mode_is_logged(sims):
    assert any("entering low vram mode" in line for line in
               sims("0.12.6", OLLAMA_SIM_VRAM_GIB="16").log_lines())
    assert not any("entering low vram mode" in line for line in sims("0.12.6").log_lines())


def test_qwen3vl_runs_one_slot_from_0_12_7(sims):
    for version, parallel in (("0.12.6", 4), ("0.12.7", 1)):
        sim = sims(version, OLLAMA_NUM_PARALLEL="4")
        load(sim, "qwen3-vl:2b")
        started = [line for line in sim.log_lines()
                   if "starting llama server" in line and "qwen3-vl:2b" in line]
        assert f"parallel={parallel}" in started[-1]


@pytest.mark.parametrize(("version", "env", "options", "expected", "server_default"), [
    ("0.12.6", {}, {}, 8192, 4096),
    ("0.12.6", {}, {"num_ctx": 2048}, 2048, 4096),
    ("0.12.6", {"OLLAMA_CONTEXT_LENGTH": "2048"}, {}, 8192, 2048),  # the Modelfile wins
    ("0.15.5", {"OLLAMA_SIM_VRAM_GIB": "80"}, {}, 8192, 131072),  # over the VRAM tier too
])
def test_modelfile_num_ctx_is_the_default(sims, version, env, options, expected,
                                          server_default):
    sim = sims(version, **env)
    load(sim, "smollm2-8k:135m", **options)
    assert ps(sim)["smollm2-8k:135m"] == expected
    load(sim, "llama3.2:3b")
    assert ps(sim)["llama3.2:3b"] == server_default  # other models keep the server's


# -- thinking that cannot be switched off -----------------------------------------------------

def test_gpt_oss_thinks_even_with_think_false(sims):
    sim = sims("0.12.6")
    with httpx.stream("POST", sim.url + "/api/chat", json={
            "model": "gpt-oss:20b", "messages": [user("Hi")], "think": False,
            "options": {"num_predict": 200}}, timeout=10) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    kinds = ["thinking" if m["message"].get("thinking") else "content"
             for m in lines[:-1] if m["message"].get("thinking") or m["message"]["content"]]
    assert kinds[0] == "thinking" and "content" in kinds
    assert kinds == sorted(kinds, key=lambda k: k != "thinking")  # all thinking first
    assert lines[-1]["done_reason"] == "stop"


def test_gpt_oss_short_num_predict_is_all_thinking(sims):
    body = post(sims("0.12.6"), "/api/chat", {
        "model": "gpt-oss:20b", "messages": [user("Hi")], "stream": False,
        "options": {"num_predict": 30}}).json()
    assert body["message"]["content"] == "" and body["message"]["thinking"]
    assert body["done_reason"] == "length" and body["eval_count"] == 30


def test_gpt_oss_levels_in_every_version(sims):
    sim = sims("0.11.11")
    low = chat_render(sim, "gpt-oss:20b", [user("Hi")], think="low").json()["_debug_info"]
    assert "Reasoning: low" in low["rendered_template"]
    assert post(sim, "/api/chat", {"model": "qwen3:4b", "messages": [user("Hi")],
                                   "think": "low"}).status_code == 400


# -- legacy templates -----------------------------------------------------------------------

def test_template_without_response_never_renders_assistant_turns(sims):
    messages = [{"role": "system", "content": "Be brief."}, user("first", 1),
                {"role": "assistant", "content": "ANSWER-ONE"}, user("second", 1)]
    llava = chat_render(sims("0.12.6"), "llava:7b", messages).json()["_debug_info"]
    assert llava["rendered_template"] == \
        "[INST] Be brief. [img-0]first [/INST][INST] [img-1]second [/INST]"
    default = chat_render(sims("0.12.6"), "smolvlm:256m", messages).json()["_debug_info"]
    assert default["rendered_template"] == "[img-0]first[img-1]second"
    assert llava["image_count"] == default["image_count"] == 2
