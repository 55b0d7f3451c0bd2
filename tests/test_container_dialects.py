"""Containers per server family, without an engine: the ``DIALECT+REF`` syntax, which family an
image runs (stated, labelled, by entrypoint), llama-server's launch (address variables, model
from the mounted folder, its startup line) and the errors refused at configure time."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_ollama_regress.containers.compose_file import ComposeSpec
from pytest_ollama_regress.containers.engine import ImageInfo, parse_image_ref
from pytest_ollama_regress.containers.images import LABEL_DIALECT, image_dialect
from pytest_ollama_regress.containers.provider import (
    ContainerSettings,
    ContainerStartError,
    models_env,
)
from pytest_ollama_regress.containers.readiness import NotReady, wait_ready
from pytest_ollama_regress.dialects import DialectError, get
from pytest_ollama_regress.targets.registry import TargetError

ID = "sha256:" + "a" * 64
LLAMA = get("llama-server")
LAUNCH = LLAMA.launch
#: what llama-server 11434 logs once it listens (tools/server/server.cpp)
LLAMA_LINE = "srv          main: listening on http://127.0.0.1:40123\n"


def _image(entrypoint=(), cmd=(), labels=None, env=()) -> ImageInfo:
    return ImageInfo(id=ID, ref="x", labels=dict(labels or {}), entrypoint=list(entrypoint),
                     cmd=list(cmd), env=list(env))


@pytest.mark.parametrize(
    ("value", "dialect", "label", "text"),
    [
        ("llama-server+" + ID, "llama-server", None, ID),
        ("good=llama-server+ghcr.io/ggml-org/llama.cpp:server", "llama-server", "good",
         "ghcr.io/ggml-org/llama.cpp:server"),
        ("ollama+4beecd8", "ollama", None, "4beecd8"),
        ("ollama/ollama:0.11.4", None, None, "ollama/ollama:0.11.4"),
    ],
)
def test_dialect_prefix_on_image_refs(value, dialect, label, text) -> None:
    ref = parse_image_ref(value)
    assert (ref.dialect, ref.label, ref.text, ref.given) == (dialect, label, text, value)


def test_unknown_dialect_prefix_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(ValueError) as info:
        parse_image_ref("vllm+" + ID)
    assert str(info.value) == (
        f"--ollama-image 'vllm+{ID}': unknown server dialect 'vllm'; write ollama+REF or "
        "llama-server+REF")


@pytest.mark.parametrize(
    ("value", "image", "expected"),
    [
        ("ollama+" + ID, _image(entrypoint=["/app/llama-server"]), "ollama"),  # stated wins
        (ID, _image(entrypoint=["/bin/sh"], labels={LABEL_DIALECT: "llama-server"}),
         "llama-server"),
        (ID, _image(entrypoint=["/app/llama-server"]), "llama-server"),  # official images
        (ID, _image(entrypoint=["tini", "--"], cmd=["llama-server", "-m", "x"]), "llama-server"),
        (ID, _image(entrypoint=["/bin/ollama"], cmd=["serve"]), "ollama"),
        (ID, _image(entrypoint=["ollama-regress", "sim"]), "ollama"),  # the default
    ],
)
def test_which_family_an_image_runs(value, image, expected) -> None:
    assert image_dialect(parse_image_ref(value), image) == expected


def test_a_label_naming_no_dialect_is_refused() -> None:
    with pytest.raises(TargetError, match="names no known server dialect"):
        image_dialect(parse_image_ref(ID), _image(labels={LABEL_DIALECT: "vllm"}))


def test_llama_server_compose_file_sets_its_address_variables(tmp_path: Path) -> None:
    (tmp_path / "SmolLM2.gguf").write_bytes(b"GGUF")
    host = ComposeSpec(project="p", image_id=ID, network="host", launch=LAUNCH,
                       command=("-c", "4096"), models_dir=tmp_path)
    service = yaml.safe_load(host.write(tmp_path).read_text())["services"]["ollama"]
    assert service["environment"] == {"LLAMA_ARG_MODEL": "/models/SmolLM2.gguf",
                                      "LLAMA_ARG_HOST": "127.0.0.1", "LLAMA_ARG_PORT": "0"}
    assert service["command"] == ["-c", "4096"] and "OLLAMA_HOST" not in service["environment"]
    bridge = ComposeSpec(project="q", image_id=ID, network="bridge", launch=LAUNCH)
    service = yaml.safe_load(bridge.write(tmp_path).read_text())["services"]["ollama"]
    assert service["ports"] == ["127.0.0.1::8080"] and "command" not in service
    assert service["environment"] == {"LLAMA_ARG_HOST": "0.0.0.0", "LLAMA_ARG_PORT": "8080"}


def test_model_from_the_folder_unless_named(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    (tmp_path / "mmproj-model-f16.gguf").write_bytes(b"GGUF")
    (tmp_path / "notes.txt").write_text("x")
    settings = ContainerSettings(models_dir=tmp_path)
    assert models_env(LLAMA, settings, _image(), {}) == {
        "LLAMA_ARG_MODEL": "/models/model.gguf", "LLAMA_ARG_MMPROJ": "/models/mmproj-model-f16.gguf"}
    # named by the user, by the image's CMD or ENV, or by --ollama-server-args: left alone
    assert models_env(LLAMA, settings, _image(), {"LLAMA_ARG_MODEL": "/models/x.gguf"}) == {}
    assert models_env(LLAMA, settings, _image(cmd=["-m", "/models/model.gguf"]), {}) == {}
    assert models_env(LLAMA, settings, _image(env=["LLAMA_ARG_MODEL=/m.gguf"]), {}) == {}
    with_args = ContainerSettings(models_dir=tmp_path, command=("--model=/models/model.gguf",))
    assert models_env(LLAMA, with_args, _image(), {}) == {}
    assert models_env(LLAMA, ContainerSettings(), _image(), {}) == {}  # no folder mounted


@pytest.mark.parametrize("files", [(), ("a.gguf", "b.gguf")], ids=["none", "two"])
def test_a_folder_without_exactly_one_model_names_the_fix(tmp_path: Path, files) -> None:
    for name in files:
        (tmp_path / name).write_bytes(b"GGUF")
    with pytest.raises(ContainerStartError) as info:
        models_env(LLAMA, ContainerSettings(models_dir=tmp_path), _image(), {})
    message = str(info.value)
    assert "\n" not in message and "llama-server needs one model" in message
    assert "--ollama-env LLAMA_ARG_MODEL=/models/<file>.gguf" in message
    assert ("a.gguf, b.gguf" if files else "no .gguf model") in message


def test_address_arguments_are_the_plugins() -> None:
    LAUNCH.check_command(["-c", "4096", "-np", "4", "-kvu"])
    with pytest.raises(DialectError, match="--host and --port are set by the plugin"):
        LAUNCH.check_command(["--port=8080", "--host", "0.0.0.0"])


@pytest.mark.parametrize(
    ("log", "host", "port"),
    [
        (LLAMA_LINE, "127.0.0.1", 40123),
        ("main: server is listening on http://0.0.0.0:8080 - starting the main loop", "0.0.0.0",
         8080),  # older builds
        ("srv main: listening on http://[::1]:8081", "::1", 8081),
        ("srv load_model: loading model '/models/x.gguf'", None, None),
    ],
)
def test_llama_server_startup_line(log, host, port) -> None:
    found = LAUNCH.find_listening(log)
    assert (found.host, found.port, found.version) == (host, port, None) if host else found is None


class _Project:
    """A started project as readiness sees it: a log, a running follower."""

    def __init__(self, log: str) -> None:
        self.log = log

    def log_text(self) -> str:
        return self.log

    def follower_running(self) -> bool:
        return True

    def state(self) -> dict:
        return {"Running": True}

    def published_port(self) -> int | None:
        return None


def test_readiness_reads_the_llama_server_line_and_probes_that_port() -> None:
    asked = []

    def probe(url: str) -> str | None:
        asked.append(url)
        return "b11434-abc"

    ready = wait_ready(_Project("loading\n" + LLAMA_LINE), network="host", timeout=1,
                       interval=0.01, probe=probe, launch=LAUNCH)
    assert (ready.url, ready.version, asked) == (
        "http://127.0.0.1:40123", "b11434-abc", ["http://127.0.0.1:40123"])


def test_readiness_names_the_llama_server_line_it_waited_for() -> None:
    with pytest.raises(NotReady) as info:
        wait_ready(_Project("srv load_model: loading model\n"), network="host", timeout=0.05,
                   interval=0.01, probe=lambda url: None, launch=LAUNCH)
    assert str(info.value) == ("the server never logged 'listening on http://127.0.0.1:<port>' "
                               "within 0.05s")
