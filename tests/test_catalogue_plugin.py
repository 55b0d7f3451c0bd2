"""The catalogue plugin end to end: fixtures and the ``--ollama-model`` matrix on the simulator."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pytest_ollama_regress.catalogue import cli as catalogue_cli
from pytest_ollama_regress.catalogue.names import CatalogueWarning, discover
from pytest_ollama_regress.dialects.ollama_client import OllamaClient
from pytest_ollama_regress.sim import SimServer

MATRIX_TESTS = """
def test_cm(ollama_model):
    assert ollama_model

def test_vm(ollama_vision_model):
    assert ollama_vision_model
"""


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(profile="good", host="127.0.0.1", port=0) as server:
        yield server


def import_registry(path: Path, url: str, *extra: str) -> dict:
    import argparse

    parser = argparse.ArgumentParser(prog="ollama-regress")
    catalogue_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["models", "import", "--registry", str(path), "--url", url, *extra])
    assert args.handler(args) == 0
    return json.loads(path.read_text())


def passed_ids(result: pytest.RunResult) -> list[str]:
    return [line.split("::", 1)[1].split(" ")[0] for line in result.outlines
            if " PASSED" in line and "::" in line]


# --- discovery and the default fixtures -------------------------------------------------------


def test_discover_against_the_simulator(sim: SimServer) -> None:
    with OllamaClient(sim.url) as client:
        entries = discover(client)
    assert [(e.name, e.variant, e.capabilities) for e in entries] == [
        ("llama3.2:3b", "llama3.2-3b-ollama-gguf", ("completion", "tools")),
        ("llava:7b", "llava-7b-ollama-gguf", ("completion", "vision")),
        ("gemma3:4b", "gemma3-4b-ollama-gguf", ("completion", "vision")),
        ("qwen3:4b", "qwen3-4b-ollama-gguf", ("completion", "tools", "thinking")),
        ("all-minilm:latest", "all-minilm-ollama-gguf", ("embedding",)),
    ]
    assert {e.capabilities_source for e in entries} == {"show"}
    llava = entries[1]
    assert llava.context_length == 32768 and llava.details["quantization_level"] == "Q4_0"
    assert llava.size and len(llava.digest or "") == 64


class _NoShowHandler(BaseHTTPRequestHandler):
    """A server whose /api/show is gone (404 page not found), as on a broken proxy."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps({"models": [{"name": "llava:7b", "size": 1}, {"name": "mistral:7b"}]})
        self._send(200, body.encode(), "application/json")

    def do_POST(self) -> None:  # noqa: N802
        self._send(404, b"404 page not found", "text/plain")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_discover_falls_back_to_the_name_heuristic_and_says_so() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoShowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with OllamaClient(f"http://127.0.0.1:{server.server_address[1]}") as client, \
                pytest.warns(CatalogueWarning, match="guessed from model names .*llava:7b, mistral:7b"):
            entries = discover(client)
    finally:
        server.shutdown()
        server.server_close()
    assert [(e.name, e.capabilities, e.capabilities_source) for e in entries] == [
        ("llava:7b", ("completion", "vision"), "name-heuristic"),
        ("mistral:7b", ("completion",), "name-heuristic"),
    ]


def test_default_fixtures_discover_the_simulator(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        SEEN = []

        def test_fixtures(ollama_models, ollama_model, ollama_vision_model):
            assert ollama_model == "llama3.2:3b"
            assert ollama_vision_model == "llava:7b"
            assert [e.variant for e in ollama_models] == [
                "llama3.2-3b-ollama-gguf", "llava-7b-ollama-gguf", "gemma3-4b-ollama-gguf",
                "qwen3-4b-ollama-gguf", "all-minilm-ollama-gguf",
            ]
            SEEN.append(ollama_models)

        def test_cached_per_url(ollama_models):
            assert ollama_models is SEEN[0]
    """)
    result = pytester.runpytest("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_fixtures[[]sim-good[]] PASSED*"])


def test_named_vision_model_and_missing_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_v(ollama_vision_model):
            assert ollama_vision_model == "gemma3:4b"
    """)
    # a named vision model is not parametrized over, even with --ollama-model=vision
    result = pytester.runpytest("-v", "--ollama-vision-model", "gemma3:4b", "--ollama-model=vision")
    result.assert_outcomes(passed=1)
    assert passed_ids(result) == ["test_v[sim-good]"]
    result = pytester.runpytest("--ollama-vision-model", "nosuch:7b")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: target sim-good has no model 'nosuch:7b' (it has: llama3.2:3b, llava:7b, *); "
        "pull it or choose another --ollama-vision-model",
    ])


NO_VISION_CONFTEST = """
import pytest

@pytest.fixture(scope="session", autouse=True)
def _no_vision_models(ollama):
    for name in ("llava:7b", "gemma3:4b"):
        ollama.delete(name)
"""


def test_no_vision_model_skips_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(NO_VISION_CONFTEST)
    pytester.makepyfile("""
        def test_v(ollama_vision_model):
            pass

        def test_m(ollama_model):
            assert ollama_model == "llama3.2:3b"
    """)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*target sim-good has no vision model; pull one (e.g. llava)*"])


def test_no_vision_model_fails_under_strict(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(NO_VISION_CONFTEST)
    pytester.makepyfile("def test_v(ollama_vision_model):\n    pass\n")
    result = pytester.runpytest("--ollama-strict")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*target sim-good has no vision model*"])


# --- the matrix ------------------------------------------------------------------------------


def test_matrix_all(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MATRIX_TESTS)
    result = pytester.runpytest("-v", "--ollama-model", "all")
    result.assert_outcomes(passed=6)
    assert passed_ids(result) == [
        "test_cm[sim-good-llama3.2-3b-ollama-gguf]",
        "test_cm[sim-good-llava-7b-ollama-gguf]",
        "test_cm[sim-good-gemma3-4b-ollama-gguf]",
        "test_cm[sim-good-qwen3-4b-ollama-gguf]",
        "test_vm[sim-good-llava-7b-ollama-gguf]",
        "test_vm[sim-good-gemma3-4b-ollama-gguf]",
    ]


def test_matrix_vision_gives_the_two_vision_models(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_m(ollama_model, ollama_models):
            entry = next(e for e in ollama_models if e.name == ollama_model)
            assert entry.is_vision
    """)
    result = pytester.runpytest("-v", "--ollama-model", "vision")
    result.assert_outcomes(passed=2)
    assert passed_ids(result) == [
        "test_m[sim-good-llava-7b-ollama-gguf]", "test_m[sim-good-gemma3-4b-ollama-gguf]",
    ]


@pytest.mark.parametrize("name", ["llava:7b", "llava-7b-ollama-gguf", "LLAVA:7B"])
def test_matrix_one_named_model(pytester: pytest.Pytester, name: str) -> None:
    pytester.makepyfile("""
        def test_m(ollama_model):
            assert ollama_model == "llava:7b"

        def test_v(ollama_vision_model):
            assert ollama_vision_model == "llava:7b"
    """)
    result = pytester.runpytest("-v", "--ollama-model", name)
    result.assert_outcomes(passed=2)
    assert passed_ids(result) == ["test_m[sim-good-llava-7b-ollama-gguf]", "test_v[sim-good]"]


def test_matrix_over_two_targets(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MATRIX_TESTS)
    result = pytester.runpytest(
        "-v", "--ollama-sim=good", "--ollama-sim=vision-ignored", "--ollama-model=vision", "-k", "test_cm"
    )
    result.assert_outcomes(passed=4)
    assert sorted(passed_ids(result)) == [
        "test_cm[sim-good-gemma3-4b-ollama-gguf]",
        "test_cm[sim-good-llava-7b-ollama-gguf]",
        "test_cm[sim-vision-ignored-gemma3-4b-ollama-gguf]",
        "test_cm[sim-vision-ignored-llava-7b-ollama-gguf]",
    ]


def test_matrix_all_skips_a_model_one_target_lacks(pytester: pytest.Pytester) -> None:
    with SimServer(profile="good", host="127.0.0.1", port=0) as server:
        url = server.url
        with OllamaClient(url) as client:
            client.delete("gemma3:4b")
        pytester.makepyfile(MATRIX_TESTS)
        result = pytester.runpytest(
            "-rs", "--ollama-url", url, "--ollama-sim=good", "--ollama-model=all", "-k", "test_cm"
        )
    result.assert_outcomes(passed=7, skipped=1)
    host = url.removeprefix("http://")
    result.stdout.fnmatch_lines([f"*target {host} has no model 'gemma3:4b'*"])


def test_named_model_the_target_lacks_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MATRIX_TESTS)
    result = pytester.runpytest("--ollama-model", "nosuch:1b")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: target sim-good has no model 'nosuch:1b' (it has: llama3.2:3b, llava:7b, "
        "gemma3:4b, qwen3:4b, all-minilm:latest); pull it or choose another --ollama-model",
    ])


@pytest.mark.parametrize("value", ["", "bad::x", "@"])
def test_bad_model_option_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(MATRIX_TESTS)
    result = pytester.runpytest(f"--ollama-model={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --ollama-model*"])


# --- @registry.json ----------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["space", "equals"])
def test_registry_matrix_skips_deprecated_entries(
    pytester: pytest.Pytester, sim: SimServer, spelling: str
) -> None:
    path = pytester.path / "registry.json"
    data = import_registry(path, sim.url)
    assert sorted(data["models"]) == [
        "all-minilm-ollama-gguf", "gemma3-4b-ollama-gguf", "llama3.2-3b-ollama-gguf",
        "llava-7b-ollama-gguf", "qwen3-4b-ollama-gguf",
    ]
    assert data["models"]["llava-7b-ollama-gguf"]["capabilities_source"] == "show"
    data["models"]["gemma3-4b-ollama-gguf"].update(
        deprecated=True, deprecated_reason="replaced by gemma3:12b"
    )
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    pytester.makepyfile(MATRIX_TESTS)
    option = ["--ollama-model", "@registry.json"] if spelling == "space" else ["--ollama-model=@registry.json"]
    result = pytester.runpytest("-v", "-rs", *option)
    # completion models: llama3.2, llava, qwen3 pass, gemma3 is skipped; all-minilm is no
    # completion model; test_v runs over the vision entries llava (pass) and gemma3 (skip)
    result.assert_outcomes(passed=4, skipped=2)
    assert passed_ids(result) == [
        "test_cm[sim-good-llama3.2-3b-ollama-gguf]",
        "test_cm[sim-good-llava-7b-ollama-gguf]",
        "test_cm[sim-good-qwen3-4b-ollama-gguf]",
        "test_vm[sim-good-llava-7b-ollama-gguf]",
    ]
    result.stdout.fnmatch_lines([
        "SKIPPED [[]2[]] *gemma3-4b-ollama-gguf is deprecated: replaced by gemma3:12b",
    ])


def test_registry_model_the_target_lacks_is_a_usage_error(
    pytester: pytest.Pytester, sim: SimServer
) -> None:
    path = pytester.path / "registry.json"
    data = import_registry(path, sim.url)
    data["models"]["mistral-7b-ollama-gguf"] = {
        "name": "mistral-7b-ollama-gguf", "served_model_id": "mistral:7b",
        "capabilities": ["completion"],
    }
    path.write_text(json.dumps(data))
    pytester.makepyfile(MATRIX_TESTS)
    result = pytester.runpytest("--ollama-model=@registry.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: target sim-good has no model 'mistral:7b' *"])


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        # file, line and column are promised; the parser's own words (and, for a trailing
        # comma, its position) vary with the Python version
        ('{"models": {\n  "x": {},\n}}',
         r"registry\.json: invalid JSON at line [23] column \d+: \S.*"),
        ('{"models": {\n  "x" {}}}', r"registry\.json: invalid JSON at line 2 column 7: \S.*"),
        ('{"models": {"x": {"deprecated": "no"}}}',
         re.escape('registry.json: $.models["x"].deprecated must be true or false')),
        ('{"models": {}}',
         re.escape("the registry holds no models; fill it with `ollama-regress models import`")),
    ],
)
def test_malformed_registry_is_a_usage_error_saying_where(
    pytester: pytest.Pytester, content: str, pattern: str
) -> None:
    (pytester.path / "registry.json").write_text(content)
    pytester.makepyfile(MATRIX_TESTS)
    result = pytester.runpytest("--ollama-model=@registry.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [ln for ln in result.stderr.lines if ln.strip()]
    assert len(lines) == 1, lines
    assert re.fullmatch(r"ERROR: --ollama-model @registry\.json: (.*/)?" + pattern, lines[0]), lines


def test_missing_registry_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MATRIX_TESTS)
    result = pytester.runpytest("--ollama-model=@nosuch.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --ollama-model @nosuch.json: *nosuch.json: no such registry file"])


def test_import_backfill_from_the_simulators_model_store(tmp_path: Path) -> None:
    store = tmp_path / "models"
    with SimServer(profile="good", host="127.0.0.1", port=0, env={"OLLAMA_MODELS": str(store)}) as server:
        data = import_registry(tmp_path / "reg.json", server.url, "--models-dir", str(store))
    llava = data["models"]["llava-7b-ollama-gguf"]
    assert llava["download_path"] == str(store / "manifests/registry.ollama.ai/library/llava/7b")
    assert Path(llava["download_path"]).is_file()
    assert llava["capabilities"] == ["completion", "vision"]
    assert data["models"]["all-minilm-ollama-gguf"]["download_path"].endswith("all-minilm/latest")
