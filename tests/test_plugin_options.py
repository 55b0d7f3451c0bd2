"""Options, ini keys, markers and every bad-input usage error of the targets plugin."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pytest_ollama_regress.sim import DEFAULT_VERSION

OPTIONS = (
    "--ollama-url=URL",
    "--ollama-sim=[PROFILE[@VERSION]]",
    "--ollama-sim-version=VERSION",
    "--ollama-model=NAME",
    "--ollama-vision-model=NAME",
    "--ollama-timeout=SECONDS",
    "--ollama-connect-timeout=SECONDS",
    "--ollama-strict",
)
INI_KEYS = (
    "ollama_url",
    "ollama_sim",
    "ollama_sim_version",
    "ollama_model",
    "ollama_vision_model",
    "ollama_timeout",
    "ollama_connect_timeout",
    "ollama_strict",
)

# A test module that leaves a file behind (in pytester's cwd) when any of its tests runs.
SENTINEL_TESTS = """
import pathlib

def test_runs(ollama_target):
    pathlib.Path("ran").write_text("yes")

def test_plain():
    pass
"""


def test_options_and_ini_keys_are_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == 0
    text = result.stdout.str()
    for option in OPTIONS:
        assert option in text
    for key in INI_KEYS:
        assert f"  {key} " in text


def test_markers_are_registered_with_descriptions(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.ollama_env(**env): run the test against a server started with*",
            "@pytest.mark.requires_capability(name): skip unless a model on the target*",
            "@pytest.mark.min_version(version): skip when the target's Ollama version is lower*",
        ]
    )


SETTINGS_TEST = """
from pytest_ollama_regress.catalogue.settings import CatalogueSettings
from pytest_ollama_regress.session import session_of
from pytest_ollama_regress.targets.settings import TargetSettings

def test_settings(request, ollama, ollama_target):
    s = session_of(request.config).get(TargetSettings)
    c = session_of(request.config).get(CatalogueSettings)
    print("SETTINGS", s.sim_version, c.model, c.vision_model, s.timeout, s.connect_timeout,
          s.strict, ",".join(t for t, _ in s.sims) or "-", ollama_target.id, ollama_target.server_version)
    print("CLIENT", ollama.stall_timeout, ollama.connect_timeout)
"""


def test_ini_keys_configure_the_session(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        ollama_sim = vision-ignored
        ollama_sim_version = 0.11.4
        ollama_model = llava:7b
        ollama_vision_model = gemma3:4b
        ollama_timeout = 7
        ollama_connect_timeout = 3
        ollama_strict = true
        """
    )
    pytester.makepyfile(SETTINGS_TEST)
    result = pytester.runpytest("-s")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*SETTINGS 0.11.4 llava:7b gemma3:4b 7.0 3.0 True vision-ignored "
            "sim-vision-ignored 0.11.4",
            "CLIENT 7.0 3.0",
        ]
    )


def test_command_line_wins_over_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nollama_sim = vision-ignored\nollama_timeout = 7\n")
    pytester.makepyfile(SETTINGS_TEST)
    result = pytester.runpytest(
        "-s", "--ollama-sim=slow-ttft", "--ollama-timeout=9", "--ollama-model=qwen3:4b"
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [f"*SETTINGS None qwen3:4b None 9.0 5.0 False slow-ttft sim-slow-ttft {DEFAULT_VERSION}"]
    )


def test_defaults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SETTINGS_TEST)
    result = pytester.runpytest("-s")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            f"*SETTINGS None None None 120.0 5.0 False - sim-good {DEFAULT_VERSION}",
            "CLIENT 120.0 5.0",
        ]
    )


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _HtmlHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b"<html><body>It works!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def html_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _assert_usage_error(pytester: pytest.Pytester, *args: str) -> str:
    pytester.makepyfile(SENTINEL_TESTS)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.outlines + result.errlines
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: "), errors
    assert not (pytester.path / "ran").exists()
    assert "test_runs" not in result.stdout.str()
    return errors[0]


@pytest.mark.parametrize("url", ["127.0.0.1:11434", "htp://127.0.0.1:11434", "http://h:99999"])
def test_malformed_url(pytester: pytest.Pytester, url: str) -> None:
    line = _assert_usage_error(pytester, f"--ollama-url={url}")
    assert f"--ollama-url '{url}'" in line and "write it as http://HOST:PORT" in line


def test_malformed_url_from_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nollama_url = localhost\n")
    line = _assert_usage_error(pytester)
    assert "ini ollama_url 'localhost'" in line


def test_unreachable_url(pytester: pytest.Pytester, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    line = _assert_usage_error(pytester, "--ollama-url", url)
    assert f"--ollama-url {url}: cannot connect (" in line and "refused" in line.lower()


def test_server_that_is_not_ollama(pytester: pytest.Pytester, html_server: str) -> None:
    line = _assert_usage_error(pytester, f"--ollama-url={html_server}")
    assert f"--ollama-url {html_server}: not an Ollama server" in line
    assert "HTTP 200 text/html" in line


def test_unknown_profile(pytester: pytest.Pytester) -> None:
    line = _assert_usage_error(pytester, "--ollama-sim=bogus")
    assert "unknown simulator profile 'bogus'" in line
    assert "good, vision-ignored, vision-miscount" in line


def test_bare_sim_option_before_a_path_is_explained(pytester: pytest.Pytester) -> None:
    path = pytester.makepyfile(SENTINEL_TESTS)
    result = pytester.runpytest("--ollama-sim", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "write --ollama-sim=VALUE (with '='), and test paths before --ollama-sim" in (
        result.stderr.str()
    )


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["--ollama-sim-version=9.9.9"], "--ollama-sim-version"),
        (["--ollama-sim=good@0.0.1"], "--ollama-sim 'good@0.0.1'"),
        (["--ollama-sim-version=latest"], "--ollama-sim-version"),
    ],
)
def test_unknown_version(pytester: pytest.Pytester, args: list[str], where: str) -> None:
    line = _assert_usage_error(pytester, *args)
    assert where in line


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--ollama-timeout=0"], "--ollama-timeout '0': give a positive number of seconds"),
        (["-o", "ollama_connect_timeout=soon"],
         "ini ollama_connect_timeout 'soon' is not a number of seconds"),
    ],
)
def test_bad_timeouts(pytester: pytest.Pytester, args: list[str], words: str) -> None:
    line = _assert_usage_error(pytester, *args)
    assert words in line


def test_duplicate_target_ids(pytester: pytest.Pytester) -> None:
    line = _assert_usage_error(
        pytester, "--ollama-url=http://127.0.0.1:1/", "--ollama-url=https://127.0.0.1:1"
    )
    assert "share the id '127.0.0.1:1'" in line
