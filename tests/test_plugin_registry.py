"""Unit tests of ``pytest_ollama_regress.targets.registry``: URL and sim targets, registry, logs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from pytest_ollama_regress.sim import DEFAULT_VERSION, PROFILES
from pytest_ollama_regress.targets.providers import (
    SimProvider,
    UrlProvider,
    probe_version,
    sim_targets,
    url_target,
)
from pytest_ollama_regress.targets.registry import (
    Endpoint,
    Target,
    TargetError,
    TargetInfo,
    TargetRegistry,
    env_key,
)


@pytest.mark.parametrize(
    ("text", "target_id", "url"),
    [
        ("http://127.0.0.1:11434", "127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("http://127.0.0.1:11434/", "127.0.0.1:11434", "http://127.0.0.1:11434"),
        (
            "https://ollama.example:8443/api-proxy/",
            "ollama.example:8443/api-proxy",
            "https://ollama.example:8443/api-proxy",
        ),
        (
            "http://user:secret@localhost:11434",
            "localhost:11434",
            "http://user:secret@localhost:11434",
        ),
        ("http://[::1]:11434", "[::1]:11434", "http://[::1]:11434"),
    ],
)
def test_url_target_ids_and_urls(text: str, target_id: str, url: str) -> None:
    target = url_target(text)
    assert (target.id, target.kind, target.ref, target.metadata["url"]) == (
        target_id,
        "url",
        text,
        url,
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("127.0.0.1:11434", "not an http(s) URL"),
        ("ftp://127.0.0.1:21", "not an http(s) URL"),
        ("http://", "not an http(s) URL"),
        ("http://127.0.0.1:99999", "malformed"),
        ("http://127.0.0.1:11434/?x=1", "query or fragment"),
    ],
)
def test_malformed_url_is_one_line_naming_url_and_fix(text: str, words: str) -> None:
    with pytest.raises(TargetError) as info:
        url_target(text)
    message = str(info.value)
    assert "\n" not in message
    assert repr(text) in message and words in message and "http://HOST:PORT" in message


def test_sim_target_ids_carry_version_only_when_versions_differ() -> None:
    same = sim_targets([("good", "--ollama-sim"), ("slow-ttft", "--ollama-sim")], None)
    assert [t.id for t in same] == ["sim-good", "sim-slow-ttft"]
    assert {t.metadata["sim_version"] for t in same} == {DEFAULT_VERSION}
    mixed = sim_targets([("good@0.11.4", "--ollama-sim"), ("good", "--ollama-sim")], None)
    assert [t.id for t in mixed] == ["sim-good-0.11.4", f"sim-good-{DEFAULT_VERSION}"]
    twice = sim_targets([("good", "x"), ("good", "y")], "0.11.4")
    assert [t.id for t in twice] == ["sim-good"]


def test_unknown_profile_lists_profiles() -> None:
    with pytest.raises(TargetError) as info:
        sim_targets([("nope", "--ollama-sim")], None)
    message = str(info.value)
    assert "\n" not in message and "'nope'" in message
    assert all(name in message for name in PROFILES)


def test_unknown_sim_version_is_refused() -> None:
    with pytest.raises(TargetError, match=r"--ollama-sim 'good@9\.9\.9'"):
        sim_targets([("good@9.9.9", "--ollama-sim")], None)


def test_env_key_is_order_independent() -> None:
    assert env_key({"B": "2", "A": 1}) == env_key({"A": "1", "B": "2"}) == (("A", "1"), ("B", "2"))
    assert env_key(None) == env_key({}) == ()


def test_log_tail_reads_the_end_of_a_file(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(10_000)))
    endpoint = Endpoint(url="http://127.0.0.1:1", server_version="0.12.6", env={}, logs_path=log)
    assert endpoint.log_tail(3) == "line 9997\nline 9998\nline 9999"
    assert Endpoint(url="x", server_version="0", env={}).log_tail() is None


@pytest.mark.parametrize(("version", "renders"), [("0.11.4", False), ("0.12.6", True)])
def test_target_info_expectations_follow_the_server_version(version: str, renders: bool) -> None:
    endpoint = Endpoint(url="http://127.0.0.1:1", server_version=version, env={})
    expect = TargetInfo(Target(id="t", kind="url", ref="x"), endpoint).expect
    assert expect.server_version == version
    assert expect.debug_render is renders


class CountingProvider:
    """A provider over real simulators that counts starts and can be told to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.sims = SimProvider()
        self.starts = 0
        self.fail = fail
        self.closed = 0

    def endpoint(self, target: Target, env: Mapping[str, str]) -> Endpoint:
        self.starts += 1
        if self.fail:
            raise TargetError(f"{target.id} exited during start with code 3")
        return self.sims.endpoint(target, env)

    def close(self) -> None:
        self.closed += 1
        self.sims.close()


def test_registry_caches_endpoints_per_env_and_closes_providers() -> None:
    registry = TargetRegistry()
    provider = CountingProvider()
    registry.add_provider("local", provider)
    registry.add_target(Target(id="loc", kind="local", ref="good"))
    first = registry.endpoint("loc")
    assert registry.endpoint("loc", {}) is first
    with_env = registry.endpoint("loc", {"OLLAMA_NUM_PARALLEL": "4"})
    assert registry.endpoint("loc", {"OLLAMA_NUM_PARALLEL": "4"}) is with_env
    assert with_env.url != first.url and with_env.env == {"OLLAMA_NUM_PARALLEL": "4"}
    assert provider.starts == 2
    assert probe_version(first.url, timeout=5) == DEFAULT_VERSION
    registry.close()
    registry.close()
    assert provider.closed == 1
    with pytest.raises(TargetError):
        probe_version(first.url, timeout=2)


def test_registry_caches_start_failures() -> None:
    registry = TargetRegistry()
    provider = CountingProvider(fail=True)
    registry.add_provider("local", provider)
    registry.add_target(Target(id="loc", kind="local", ref="good"))
    for _ in range(3):
        with pytest.raises(TargetError, match="exited during start"):
            registry.endpoint("loc")
    assert provider.starts == 1
    assert "unavailable: loc exited during start" in registry.describe("loc")
    registry.close()


def test_registry_refuses_conflicting_ids_and_providers() -> None:
    registry = TargetRegistry()
    registry.add_target(Target(id="a", kind="url", ref="http://h:1"))
    registry.add_target(Target(id="a", kind="url", ref="http://h:1"))
    assert registry.ids() == ["a"]
    with pytest.raises(TargetError, match="share the id 'a'"):
        registry.add_target(Target(id="a", kind="sim", ref="good"))
    registry.add_provider("url", url_provider := UrlProvider())
    registry.add_provider("url", url_provider)
    with pytest.raises(ValueError, match="already registered"):
        registry.add_provider("url", UrlProvider())
    with pytest.raises(TargetError, match="unknown target 'b'"):
        registry.endpoint("b")


def test_url_provider_skips_a_test_that_asks_for_env() -> None:
    with pytest.raises(pytest.skip.Exception, match="server's own environment"):
        UrlProvider().endpoint(url_target("http://127.0.0.1:9"), {"OLLAMA_NUM_PARALLEL": "4"})


def test_server_version_is_known_for_sims_before_they_start() -> None:
    """The header and the inventory read it; nothing is started for it."""
    registry = TargetRegistry()
    sim = SimProvider()
    registry.add_provider("sim", sim)
    registry.add_provider("url", UrlProvider())
    pinned, default = sim_targets([("good@0.11.4", "--ollama-sim"), ("good", "--ollama-sim")])
    for target in (pinned, default):
        registry.add_target(target)
    registry.add_target(url_target("http://127.0.0.1:9"))
    try:
        assert registry.server_version(pinned.id) == "0.11.4"
        assert registry.server_version(default.id) == DEFAULT_VERSION
        assert registry.server_version("127.0.0.1:9") is None  # a URL is known once probed
        assert sim.servers == [] and registry.endpoints() == []
        registry.endpoint(pinned.id)
        assert registry.started_endpoint(pinned.id).server_version == "0.11.4"
        assert registry.server_version(pinned.id) == "0.11.4"
    finally:
        registry.close()
