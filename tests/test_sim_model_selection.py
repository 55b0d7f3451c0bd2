"""``OLLAMA_SIM_MODELS``: which models a fresh simulator has (the default set is unchanged)."""

from __future__ import annotations

import io

import httpx
import pytest

from pytest_ollama_regress.sim import Latency, SimServer
from pytest_ollama_regress.sim.catalogue import by_name
from pytest_ollama_regress.sim.store import chosen_models

FAST = Latency(load_ms=1, prefill_us=1, decode_ms=0.05)
DEFAULT = ["llama3.2:3b", "llava:7b", "gemma3:4b", "qwen3:4b", "all-minilm:latest"]
ADDED = ["qwen3-vl:2b", "gpt-oss:20b", "gemma3:1b", "llama3.2-vision:11b", "smollm2-8k:135m",
         "smolvlm:256m"]


def tags(**env: str) -> list[dict]:
    with SimServer(env=env, latency=FAST, log_stream=io.StringIO()) as sim:
        return httpx.get(sim.url + "/api/tags").json()["models"]


def first_with(models: list[dict], capability: str) -> str:
    specs = by_name()
    return next(m["name"] for m in models if capability in specs[m["name"]].capabilities)


@pytest.mark.parametrize(("selection", "expected"), [
    ("", DEFAULT),
    ("all", [*DEFAULT, "tinyllama:latest", *ADDED]),
    ("default,gpt-oss:20b", [*DEFAULT, "gpt-oss:20b"]),
    ("smolvlm:256m, qwen3-vl:2b ,qwen3-vl:2b", ["qwen3-vl:2b", "smolvlm:256m"]),
    ("library/gemma3:1b", ["gemma3:1b"]),
])
def test_selection_in_tags_order(selection, expected):
    models = tags(OLLAMA_SIM_MODELS=selection) if selection else tags()
    assert [m["name"] for m in models] == expected


def test_all_keeps_the_default_first_choices():
    """The suite picks the first completion and first vision model in ``/api/tags`` order."""
    everything = tags(OLLAMA_SIM_MODELS="all")
    assert first_with(everything, "completion") == first_with(tags(), "completion") == \
        "llama3.2:3b"
    assert first_with(everything, "vision") == first_with(tags(), "vision") == "llava:7b"


def test_unknown_model_is_refused_with_the_choices():
    with pytest.raises(ValueError) as info:
        SimServer(env={"OLLAMA_SIM_MODELS": "default,nosuch:1b"})
    message = str(info.value)
    assert "'nosuch:1b'" in message and "gpt-oss:20b" in message and "\n" not in message
    assert [s.name for s in chosen_models("")] == DEFAULT


def test_section_16_models_are_pullable(tmp_path):
    with SimServer(env={"OLLAMA_MODELS": str(tmp_path)}, latency=FAST,
                   log_stream=io.StringIO()) as sim, \
            httpx.Client(base_url=sim.url, timeout=10) as http:
        assert http.post("/api/show", json={"model": "gpt-oss:20b"}).status_code == 404
        pulled = http.post("/api/pull", json={"model": "gpt-oss:20b", "stream": False})
        assert pulled.json() == {"status": "success"}
        assert http.post("/api/show", json={"model": "gpt-oss:20b"}).status_code == 200
    # an existing models folder is read back, OLLAMA_SIM_MODELS or not
    with SimServer(env={"OLLAMA_MODELS": str(tmp_path), "OLLAMA_SIM_MODELS": "all"},
                   latency=FAST, log_stream=io.StringIO()) as sim:
        names = [m["name"] for m in httpx.get(sim.url + "/api/tags").json()["models"]]
    assert names[0] == "gpt-oss:20b" and sorted(names) == sorted([*DEFAULT, "gpt-oss:20b"])


def test_fresh_models_folder_gets_the_selection(tmp_path):
    with SimServer(env={"OLLAMA_MODELS": str(tmp_path), "OLLAMA_SIM_MODELS": "qwen3-vl:2b"},
                   latency=FAST, log_stream=io.StringIO()):
        pass
    manifests = tmp_path / "manifests" / "registry.ollama.ai" / "library"
    assert sorted(p.name for p in manifests.iterdir()) == ["qwen3-vl"]
