"""Each profile differs from ``good`` in exactly its advertised way, and nothing else."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image, ImageDraw

from pytest_ollama_regress.sim import PROFILES, Latency, SimServer
from pytest_ollama_regress.sim.profiles import Profile, get_profile

LOAD_MS = 30
LAT = Latency(load_ms=LOAD_MS, prefill_us=1, decode_ms=0.2)
ENV = {"OLLAMA_NUM_PARALLEL": "4", "OLLAMA_SIM_TTFT_DELAY_MS": "120"}

# what each profile is allowed (and required) to change in the fingerprint below
CHANGES = {
    "good": set(),
    "vision-ignored": {"image_count_1", "image_count_2", "tags_2", "answer_1", "answer_2",
                       "image_tokens", "image_tokens_2"},
    "vision-miscount": {"image_count_2", "tags_2", "answer_2", "image_tokens_2"},
    "images-unvalidated": {"bad_image_status"},
    # the render shows both images; the runner embeds only the first
    "images-first-only": {"answer_2", "image_tokens_2"},
    "numctx-scaled": {"ps_context_length", "ps_vision_floored"},
    "ps-configured": {"ps_vision_floored"},
    # the runner keeps its old (default 4096) context, so a truncate:false prompt over the
    # requested num_ctx 300 still fits it and is accepted
    "numctx-sticky": {"ctx_change_reloads", "ps_kept_old_ctx", "truncate_false_status"},
    "reload-thrash": {"reloads_on_repeat"},
    "silent-truncation": {"truncated_render", "truncate_false_status"},
    "slow-ttft": {"first_token_late"},
    # noisy logits: greedy answers part from the healthy ones (nothing else changes)
    "numerics-drift": {"answer_2", "text_answer"},
    # healthy builds: only the version string differs
    "source-build": {"reported_version"},
    "describe-build": {"reported_version"},
    "hash-build": {"reported_version"},
}


def png(shapes: int, colour: str) -> str:
    image = Image.new("RGB", (100, 40), "white")
    draw = ImageDraw.Draw(image)
    for index in range(shapes):
        draw.rectangle([4 + 24 * index, 10, 20 + 24 * index, 30], fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def history() -> list[dict]:
    messages = [{"role": "system", "content": "SYSTEM keep me"}]
    for index in range(8):
        messages += [{"role": "user", "content": f"q{index} " + "w " * 40},
                     {"role": "assistant", "content": f"a{index} " + "x " * 40}]
    return messages + [{"role": "user", "content": "LAST"}]


def fingerprint(profile: str) -> dict[str, object]:
    """Observable behaviour of a profile on the checks every regression touches."""
    out: dict[str, object] = {}
    with SimServer(profile=profile, env=ENV, latency=LAT, log_stream=io.StringIO()) as sim, \
            httpx.Client(base_url=sim.url, timeout=10) as http:
        def chat(**body) -> httpx.Response:
            return http.post("/api/chat", json={"model": "llava:7b", "stream": False,
                                                "options": {"num_predict": 40}, **body})

        one = [{"role": "user", "content": "what?", "images": [png(3, "red")]}]
        two = [{"role": "user", "content": "what?",
                "images": [png(3, "red"), png(2, "blue")]}]
        for key, messages in (("1", one), ("2", two)):
            info = chat(messages=messages, _debug_render_only=True).json()["_debug_info"]
            out[f"image_count_{key}"] = info.get("image_count", 0)
            out[f"answer_{key}"] = chat(messages=messages).json()["message"]["content"]
        out["tags_2"] = chat(messages=two, _debug_render_only=True).json()[
            "_debug_info"]["rendered_template"].count("[img-")
        text = [{"role": "user", "content": "what?"}]
        text_count = chat(messages=text).json()["prompt_eval_count"]
        out["image_tokens"] = chat(messages=one).json()["prompt_eval_count"] - text_count
        out["image_tokens_2"] = chat(messages=two).json()["prompt_eval_count"] - text_count
        out["reported_version"] = http.get("/api/version").json()["version"]
        out["text_answer"] = chat(messages=text).json()["message"]["content"]

        http.post("/api/generate", json={"model": "llama3.2:3b", "prompt": "hi",
                                         "stream": False, "options": {"num_predict": 1}})
        out["ps_context_length"] = {m["name"]: m["context_length"] for m in
                                    http.get("/api/ps").json()["models"]}["llama3.2:3b"]
        repeat = http.post("/api/generate", json={"model": "llama3.2:3b", "prompt": "hi",
                                                  "stream": False,
                                                  "options": {"num_predict": 1}}).json()
        out["reloads_on_repeat"] = repeat["load_duration"] >= LOAD_MS * 1_000_000

        render = http.post("/api/chat", json={
            "model": "llama3.2:3b", "messages": history(), "_debug_render_only": True,
            "options": {"num_ctx": 300}}).json()["_debug_info"]["rendered_template"]
        out["truncated_render"] = render
        out["truncate_false_status"] = http.post("/api/chat", json={
            "model": "llama3.2:3b", "messages": history(), "stream": False, "truncate": False,
            "options": {"num_ctx": 300, "num_predict": 1}}).status_code

        with http.stream("POST", "/api/chat", json={
                "model": "llama3.2:3b", "messages": text,
                "options": {"num_predict": 5}}) as response:
            response.read()
            rid = response.headers["x-sim-request-id"]
        flushes = sim.flush_times(rid)
        started = sim.request_record(rid).started_ns
        out["first_token_late"] = flushes[0] - started > 100_000_000
        gaps = [b - a for a, b in zip(flushes, flushes[1:-1], strict=False)]
        out["later_gaps_on_time"] = all(gap < 60_000_000 for gap in gaps)

        bad = {"invalid": "this is not base64!",
               "data-uri": "data:image/png;base64," + png(1, "blue")}
        out["bad_image_status"] = tuple(
            chat(messages=[{"role": "user", "content": "what?", "images": [image]}]).status_code
            for image in bad.values())

        def unload(model: str) -> None:
            http.post("/api/chat", json={"model": model, "messages": [], "keep_alive": 0})

        def ps_ctx(model: str) -> int:
            return {m["name"]: m["context_length"] for m in
                    http.get("/api/ps").json()["models"]}[model]

        unload("llava:7b")
        chat(messages=text, options={"num_ctx": 1000, "num_predict": 1})
        out["ps_vision_floored"] = ps_ctx("llava:7b")

        unload("llama3.2:3b")
        loads = []
        for num_ctx in (2048, 8192):
            loads.append(http.post("/api/generate", json={
                "model": "llama3.2:3b", "prompt": "hi", "stream": False,
                "options": {"num_ctx": num_ctx, "num_predict": 1}}).json()["load_duration"])
            if num_ctx == 2048:
                before = ps_ctx("llama3.2:3b")
        out["ctx_change_reloads"] = loads[1] >= LOAD_MS * 1_000_000
        out["ps_kept_old_ctx"] = ps_ctx("llama3.2:3b") == before
    return out


@pytest.fixture(scope="module")
def fingerprints():
    cache: dict[str, dict[str, object]] = {}

    def get(profile: str) -> dict[str, object]:
        if profile not in cache:
            cache[profile] = fingerprint(profile)
        return cache[profile]

    return get


@pytest.fixture(scope="module")
def good(fingerprints) -> dict[str, object]:
    return fingerprints("good")


def test_good_fingerprint_is_correct(good):
    assert good["image_count_1"] == 1 and good["image_count_2"] == 2 and good["tags_2"] == 2
    assert good["answer_1"] == "I see 3 (three) red shapes on a white background."
    assert good["answer_2"] == ("Image 1: I see 3 (three) red shapes on a white background. "
                                "Image 2: I see 2 (two) blue shapes on a white background.")
    assert good["image_tokens"] == 576 and good["image_tokens_2"] == 2 * 576
    assert good["reported_version"] == "0.12.6"
    assert good["ps_context_length"] == 4096 and good["reloads_on_repeat"] is False
    assert "SYSTEM keep me" in good["truncated_render"]
    assert good["truncate_false_status"] == 400
    assert good["first_token_late"] is False and good["later_gaps_on_time"] is True
    assert good["bad_image_status"] == (400, 400)
    assert good["ps_vision_floored"] == 2048
    assert good["ctx_change_reloads"] is True and good["ps_kept_old_ctx"] is False


@pytest.mark.parametrize("name", [p for p in PROFILES if p != "good"])
def test_profile_differs_exactly_as_advertised(good, fingerprints, name):
    observed = fingerprints(name)
    differing = {key for key in good if observed[key] != good[key]}
    assert differing == CHANGES[name]


def test_profile_details(fingerprints):
    ignored = fingerprints("vision-ignored")
    assert "red" not in ignored["answer_1"] and "shape" not in ignored["answer_1"]
    assert ignored["image_count_1"] == 0 and ignored["image_tokens"] == 0
    miscount = fingerprints("vision-miscount")
    assert miscount["image_count_2"] == 1 and miscount["tags_2"] == 1
    assert miscount["answer_2"] == "I see 3 (three) red shapes on a white background."
    first_only = fingerprints("images-first-only")
    assert first_only["image_count_2"] == 2 and first_only["tags_2"] == 2
    assert first_only["image_tokens_2"] == 576
    assert first_only["answer_2"] == "I see 3 (three) red shapes on a white background."
    assert fingerprints("numctx-scaled")["ps_context_length"] == 1024
    assert fingerprints("ps-configured")["ps_vision_floored"] == 1000
    assert fingerprints("images-unvalidated")["bad_image_status"] == (200, 200)
    sticky = fingerprints("numctx-sticky")
    assert sticky["ctx_change_reloads"] is False and sticky["ps_kept_old_ctx"] is True
    assert sticky["truncate_false_status"] == 200 and \
        sticky["truncated_render"] == fingerprints("good")["truncated_render"]
    silent = fingerprints("silent-truncation")
    assert "SYSTEM keep me" not in silent["truncated_render"]
    assert silent["truncate_false_status"] == 200
    assert "LAST" in silent["truncated_render"]


def test_silent_truncation_cuts_mid_message():
    with SimServer(profile="silent-truncation", latency=LAT, log_stream=io.StringIO()) as sim:
        render = httpx.post(sim.url + "/api/chat", json={
            "model": "llama3.2:3b", "messages": history(), "_debug_render_only": True,
            "options": {"num_ctx": 300}}).json()["_debug_info"]["rendered_template"]
    user_header = "<|start_header_id|>user<|end_header_id|>\n\n"
    first_turn = render.split("<|eot_id|>")[1]
    assert first_turn.startswith(("<|start_header_id|>user", "<|start_header_id|>assistant"))
    body = first_turn.split("\n\n", 1)[1]
    # the oldest kept message starts mid-way: it is a tail of w/x words, without its q/a label
    assert body.split()[0] in ("w", "x"), body[:40]
    assert user_header + "LAST" in render


def test_images_unvalidated_strips_data_uri_and_ignores_garbage():
    with SimServer(profile="images-unvalidated", latency=LAT, log_stream=io.StringIO()) as sim, \
            httpx.Client(base_url=sim.url, timeout=10) as http:
        def answer(image: str) -> str:
            response = http.post("/api/generate", json={
                "model": "llava:7b", "prompt": "what?", "images": [image], "stream": False})
            assert response.status_code == 200, response.text
            return response.json()["response"]

        seen = answer("data:image/png;base64," + png(2, "blue"))
        ignored = answer("this is not base64!")
    assert seen == "I see 2 (two) blue shapes on a white background."
    assert "blue" not in ignored and "shape" not in ignored
    assert get_profile("good").decode_image(png(1, "red")) == \
        get_profile("images-unvalidated").decode_image(png(1, "red"))


def test_slow_ttft_default_delay_and_bad_value():
    assert get_profile("slow-ttft").first_token_delay_ns({}) == 250_000_000
    with pytest.raises(ValueError, match="OLLAMA_SIM_TTFT_DELAY_MS"):
        SimServer(profile="slow-ttft", env={"OLLAMA_SIM_TTFT_DELAY_MS": "soon"})


def test_unknown_profile_lists_profiles():
    with pytest.raises(ValueError) as info:
        SimServer(profile="nope")
    message = str(info.value)
    assert "\n" not in message and all(name in message for name in PROFILES)


def test_profiles_registry_is_extensible():
    class Custom(Profile):
        name = "custom"

    assert Custom().filter_images([1, 2]) == [1, 2]
    assert set(PROFILES) == {"good", "vision-ignored", "vision-miscount", "images-unvalidated",
                             "images-first-only", "numctx-scaled", "ps-configured",
                             "numctx-sticky", "reload-thrash", "silent-truncation", "slow-ttft",
                             "numerics-drift", "source-build", "describe-build", "hash-build"}
    healthy = {name for name, profile in PROFILES.items() if profile.healthy}
    assert healthy == {"good", "source-build", "describe-build", "hash-build"}
