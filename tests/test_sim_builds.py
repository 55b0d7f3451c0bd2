"""Reported version vs behaviour: healthy source/describe/hash builds and release candidates.

A healthy build reports ``0.0.0``, a ``git describe`` string or a bare hash and behaves
exactly as the release it was built from; a release candidate behaves as its release (16.1).
``behaviour`` probes what changed across releases, so comparing it across servers shows
which release a server behaves as, whatever it reports.
"""

from __future__ import annotations

import io

import httpx
import pytest

from pytest_ollama_regress.sim import PROFILES, Latency, SimServer

FAST = Latency(load_ms=1, prefill_us=1, decode_ms=0.05)
IMG = "aGVsbG8="  # base64 of "hello": renders fine, never decoded by a debug render
ERAS = ("0.11.4", "0.11.5", "0.12.5", "0.12.6", "0.15.4", "0.15.5", "0.30.0")
HEALTHY_VARIANTS = ("source-build", "describe-build", "hash-build")


def start(profile: str, version: str) -> SimServer:
    return SimServer(profile=profile, version=version, latency=FAST,
                     log_stream=io.StringIO()).start()


def behaviour(sim: SimServer) -> dict[str, object]:
    """What a client sees of the version-dependent rules (never the version string)."""
    out: dict[str, object] = {}
    with httpx.Client(base_url=sim.url, timeout=10) as http:
        render = http.post("/api/generate", json={
            "model": "llava:7b", "prompt": "Describe", "images": [IMG],
            "_debug_render_only": True, "stream": False, "options": {"num_predict": 1}})
        body = render.json()
        info = body.get("_debug_info")
        out["debug_render"] = info is not None
        out["debug_shape_full"] = "done" in body if info else None
        out["generate_tags"] = info["rendered_template"] if info else None
        history = [{"role": "user", "content": "word " * 400}, {"role": "user",
                                                                "content": "last"}]
        out["truncate_false"] = http.post("/api/chat", json={
            "model": "llama3.2:3b", "messages": history, "truncate": False, "stream": False,
            "options": {"num_ctx": 64, "num_predict": 1}}).status_code
        for model, num_ctx in (("llava:7b", 1000), ("llama3.2:3b", 200_000)):
            http.post("/api/generate", json={"model": model, "prompt": "hi", "stream": False,
                                             "options": {"num_ctx": num_ctx, "num_predict": 1}})
        ps = {m["name"]: m.get("context_length") for m in http.get("/api/ps").json()["models"]}
        out["ps_vision_floor"] = ps["llava:7b"]
        out["ps_clamped"] = ps["llama3.2:3b"]
        out["chat_not_found"] = http.post("/api/chat", json={
            "model": "nosuch", "messages": [{"role": "user", "content": "hi"}]}).json()["error"]
        out["top_logprobs_checked"] = http.post("/api/generate", json={
            "model": "llama3.2:3b", "prompt": "hi", "stream": False, "top_logprobs": 50,
            "options": {"num_predict": 1}}).status_code
        out["tags_capabilities"] = "capabilities" in http.get("/api/tags").json()["models"][0]
    return out


@pytest.fixture(scope="module")
def observed():
    """``observed(profile, version)``: (reported version, behaviour), one server each."""
    cache: dict[tuple[str, str], tuple[str, dict[str, object]]] = {}

    def get(profile: str, version: str) -> tuple[str, dict[str, object]]:
        if (profile, version) not in cache:
            with start(profile, version) as sim:
                reported = httpx.get(sim.url + "/api/version").json()["version"]
                cache[(profile, version)] = (reported, behaviour(sim))
        return cache[(profile, version)]

    return get


def test_eras_are_told_apart(observed):
    """The probe separates every era, so 'behaves as' comparisons below can fail."""
    seen = [observed("good", version)[1] for version in ERAS]
    assert all(a != b for i, a in enumerate(seen) for b in seen[i + 1:])
    assert observed("good", "0.11.4")[1]["debug_render"] is False
    assert observed("good", "0.15.5")[1]["ps_clamped"] == 131072


@pytest.mark.parametrize(("profile", "version", "reported"), [
    ("source-build", "0.11.5", "0.0.0"),
    ("source-build", "0.30.0", "0.0.0"),
    ("describe-build", "0.12.5", "0.12.5-11-g6db8da9"),
    ("describe-build", "0.15.5-rc0", "0.15.5-rc0-11-g6db8da9"),
    ("hash-build", "0.12.6", "6db8da9"),
    ("good", "0.12.6-rc0", "0.12.6-rc0"),
])
def test_reported_version(profile, version, reported):
    with start(profile, version) as sim:
        assert httpx.get(sim.url + "/api/version").json() == {"version": reported}
        assert any(f"(version {reported})" in line for line in sim.log_lines())


@pytest.mark.parametrize("profile", HEALTHY_VARIANTS)
@pytest.mark.parametrize("version", ERAS)
def test_healthy_build_behaves_as_its_release(observed, profile, version):
    reported, seen = observed(profile, version)
    assert reported != version
    assert seen == observed("good", version)[1]


def test_source_build_of_an_old_release_is_not_newest(observed):
    """``0.0.0`` as a simulated *version* still means newest; the profile does not."""
    newest_reported, newest = observed("good", "0.0.0")
    assert newest_reported == "0.0.0" and newest == observed("good", "0.33.0")[1]
    reported, old = observed("source-build", "0.11.5")
    assert reported == "0.0.0" and old != newest and old == observed("good", "0.11.5")[1]


@pytest.mark.parametrize(("rc", "release", "previous"), [
    ("0.11.5-rc0", "0.11.5", "0.11.4"),
    ("0.12.0-rc0", "0.12.0", "0.11.11"),
    ("0.12.6-rc0", "0.12.6", "0.12.5"),
    ("0.15.5-rc0", "0.15.5", "0.15.4"),
])
def test_release_candidate_behaves_as_its_release(observed, rc, release, previous):
    reported, seen = observed("good", rc)
    expected = dict(observed("good", release)[1])
    assert reported == rc
    if rc == "0.11.5-rc0":
        # the 2048 vision floor is the rc0 tag itself, but _debug_render_only first shipped
        # in v0.11.5-rc3 (api/types.go has no DebugRenderOnly at rc0-rc2)
        assert seen["ps_vision_floor"] == 2048 and seen["debug_render"] is False
        assert observed("good", "0.11.5-rc3")[1] == expected
        expected.update(debug_render=False, debug_shape_full=None, generate_tags=None)
    assert seen == expected
    assert seen != observed("good", previous)[1]


def test_healthy_profiles_are_listed_and_marked():
    for name in HEALTHY_VARIANTS:
        assert PROFILES[name].healthy and "healthy" in PROFILES[name].description
    assert PROFILES["images-first-only"].healthy is False
