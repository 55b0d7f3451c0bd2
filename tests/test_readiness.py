"""Readiness proves the answering server is the container's own (no engine needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_ollama_regress.containers.readiness import NotReady, find_listening, wait_ready

OLLAMA_LINE = (
    'time=2025-08-14T09:12:01.513Z level=INFO source=routes.go:1331 msg="Listening on '
    '127.0.0.1:43117 (version 0.11.4)"'
)


@dataclass
class FakeProject:
    """A started project as readiness sees it; each call may change what it says next."""

    logs: list[str] = field(default_factory=list)  # log text per poll (last one repeats)
    running: list[bool] = field(default_factory=lambda: [True])
    follower: list[bool] = field(default_factory=lambda: [True])
    ports: list[int | None] = field(default_factory=lambda: [None])
    exit_code: int = 0
    calls: dict[str, int] = field(default_factory=dict)

    def _next(self, name: str, values: list[Any]) -> Any:
        n = self.calls.get(name, 0)
        self.calls[name] = n + 1
        return values[min(n, len(values) - 1)]

    def log_text(self) -> str:
        return self._next("log", self.logs or [""])

    def follower_running(self) -> bool:
        return self._next("follower", self.follower) or self._next("state", self.running)

    def state(self) -> dict[str, Any]:
        running = self._next("state", self.running)
        return {"Running": running, "ExitCode": 0 if running else self.exit_code}

    def published_port(self) -> int | None:
        return self._next("port", self.ports)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.05)


def _wait(project: FakeProject, answers: dict[int, str], network: str = "host",
          timeout: float = 5.0) -> tuple[Any, list[str]]:
    clock = Clock()
    asked: list[str] = []

    def probe(url: str) -> str | None:
        asked.append(url)
        return answers.get(int(url.rsplit(":", 1)[1]))

    ready = wait_ready(project, network=network, timeout=timeout, interval=0.05, probe=probe,
                       clock=clock, sleep=clock.sleep)
    return ready, asked


def test_ollama_and_simulator_lines_are_read() -> None:
    line = find_listening(OLLAMA_LINE)
    assert line is not None and (line.host, line.port, line.version) == ("127.0.0.1", 43117, "0.11.4")
    sim = find_listening("level=INFO source=routes.go msg=\"Listening on 127.0.0.1:20001 "
                         "(version 0.12.6)\"")
    assert sim is not None and sim.port == 20001
    assert find_listening("Error: listen tcp 127.0.0.1:20000: bind: address already in use") is None


def test_the_port_comes_from_the_containers_own_log() -> None:
    project = FakeProject(logs=["", "starting", OLLAMA_LINE])
    ready, asked = _wait(project, {43117: "0.11.4", 11434: "0.12.6"})
    assert ready.url == "http://127.0.0.1:43117" and ready.version == "0.11.4"
    assert asked == ["http://127.0.0.1:43117"]  # nothing was asked before the line appeared


def test_a_server_answering_before_the_container_listens_is_never_asked() -> None:
    project = FakeProject(logs=["server config ..."])
    with pytest.raises(NotReady) as info:
        _wait(project, {11434: "0.12.6", 43117: "0.12.6"}, timeout=1)
    assert info.value.reason == "timeout"
    assert "never logged 'Listening on 127.0.0.1:<port>' within 1s" in str(info.value)


def test_a_version_other_than_the_logged_one_is_a_foreign_server() -> None:
    project = FakeProject(logs=[OLLAMA_LINE])
    with pytest.raises(NotReady) as info:
        _wait(project, {43117: "0.12.6"})
    assert info.value.reason == "foreign"
    assert "answered version '0.12.6' but the container logged version '0.11.4'" in str(info.value)


def test_an_answer_while_the_container_is_not_running_does_not_count() -> None:
    project = FakeProject(logs=[OLLAMA_LINE], running=[False], follower=[False], exit_code=1)
    with pytest.raises(NotReady) as info:
        _wait(project, {43117: "0.11.4"})
    assert info.value.reason == "exited" and info.value.exit_code == 1
    assert "exited during start with exit code 1" in str(info.value)


def test_an_exit_is_reported_at_once() -> None:
    project = FakeProject(logs=["Error: listen tcp: bind: address already in use"],
                          running=[False], follower=[True, True, False], exit_code=3)
    with pytest.raises(NotReady) as info:
        _wait(project, {}, timeout=60)
    assert info.value.reason == "exited" and project.calls["follower"] == 3


def test_a_server_bound_elsewhere_is_refused() -> None:
    project = FakeProject(logs=['msg="Listening on 10.1.2.3:11434 (version 0.11.4)"'])
    with pytest.raises(NotReady, match="must honour OLLAMA_HOST") as info:
        _wait(project, {11434: "0.11.4"})
    assert info.value.reason == "foreign"


def test_bridge_reads_the_port_docker_published() -> None:
    project = FakeProject(ports=[None, None, 49153])
    ready, asked = _wait(project, {49153: "0.11.4"}, network="bridge")
    assert ready.url == "http://127.0.0.1:49153" and asked == ["http://127.0.0.1:49153"]
