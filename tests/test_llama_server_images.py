"""llama.cpp server images by digest, as real containers (real inference: SmolLM2-135M).

The images (fixtures/images/build_llama_images.py) hold the ``llama-server`` that
``.ci/build-llama-server.sh`` built, with entrypoint ``/app/llama-server`` as the official
images have, and differ only in their launch arguments (CMD) and labels; the model's folder is
mounted with ``--ollama-models-dir``. The plugin finds the family from the entrypoint, sets
``LLAMA_ARG_HOST``/``LLAMA_ARG_PORT`` (port 0), reads the port from the server's own
``listening on`` line and waits for ``/health`` 200. Skipped without the build or an engine;
failures under ``CI=true``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ollama_regress.containers.compose_file import LABEL_IMAGE
from tests.llama_support import failed, passed, run_suite

if TYPE_CHECKING:
    Images = dict[str, dict[str, Any]]

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_step_summary")]

DIFF_PATHS = "tools/server"


def _left_behind(images: list[dict[str, Any]]) -> list[str]:
    """Containers of these images still known to the engine."""
    names = []
    for image in images:
        out = subprocess.run(
            ["docker", "ps", "-a", "--filter", f"label={LABEL_IMAGE}={image['id']}",
             "--format", "{{.Names}}"], capture_output=True, text=True, timeout=60, check=True)
        names += out.stdout.split()
    return names


def _run_images(pytester: pytest.Pytester, images: list[dict[str, Any]], models: Path,
                *args: str) -> dict[str, tuple[str, str]]:
    """The suite over ``images`` (the first is the baseline), the model folder mounted."""
    _, found = run_suite(pytester, *(f"--ollama-image={image['id']}" for image in images),
                         f"--ollama-models-dir={models.parent}",
                         f"--ollama-baseline={images[0]['short_id']}", *args)
    return found


def _section(result: pytest.RunResult) -> list[str]:
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "ollama inventory" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("=")), len(lines))
    return lines[start + 1:end]


def test_builtin_suite_passes_on_a_llama_server_image_by_digest(
        pytester: pytest.Pytester, llama_images: Images,
        llama_server_files: tuple[Path, Path]) -> None:
    image = llama_images["hist-1"]
    models = llama_server_files[1].parent
    # The long-prompt TTFT cases (~40 s of prefill on one thread) run against the same binary
    # in test_llama_server.py; what is new here is the container path.
    result, found = run_suite(pytester, f"--ollama-image={image['id']}",
                              f"--ollama-models-dir={models}", "-k", "not long")
    assert not failed(found), failed(found)
    ran = passed(found)
    for check in ("test_debug_render_llama_server", "test_numctx_llama_server",
                  "test_ttft_llama_server", "test_numerics_llama_server"):
        assert any(name.startswith(check) for name in ran), (check, sorted(ran))
    short = image["short_id"]
    result.stdout.fnmatch_lines([
        f"*{short}: image {image['id'][:19]}… (ollama-regress-llama:hist-1), created *, revision "
        f"{image['revision'][:12]}, llama.cpp server, starts on first use*",
        f"*models dir {models} -> /models (read-only*",
    ])
    assert not _left_behind([image])


def test_inventory_and_boundary_across_llama_server_images(
        pytester: pytest.Pytester, llama_images: Images,
        llama_server_files: tuple[Path, Path]) -> None:
    """-np 1 | -np 4 -kvu (healthy) | -np 4 -no-kvu (each slot a quarter) x2: numctx fails
    from the third image on, naming the division; the inventory finds the boundary."""
    history = [llama_images[name] for name in ("hist-1", "good", "regressed", "hist-2")]
    short = [image["short_id"] for image in history]
    result, found = run_suite(
        pytester, *(f"--ollama-image={image['id']}" for image in reversed(history)),
        f"--ollama-models-dir={llama_server_files[1].parent}", f"--ollama-baseline={short[0]}",
        "-m", "numctx", "--ollama-inventory=inv.json", f"--ollama-diff-paths={DIFF_PATHS}")
    broken = failed(found)
    assert set(broken) == {
        f"test_numctx_llama_server::test_slot_context_not_below_baseline[{s}]"
        for s in short[2:]}, broken
    assert all("gives each slot 512 tokens of context" in message
               and "-np 4 without -kvu" in message for message in broken.values())
    data = json.loads((pytester.path / "inv.json").read_text())
    assert [(row["short_id"], row["statuses"]["numctx"]["status"]) for row in data["rows"]] == [
        (short[0], "OK"), (short[1], "OK"), (short[2], "FAIL"), (short[3], "FAIL")]
    assert all(row["server_version"].startswith("b") for row in data["rows"])
    lines = _section(result)
    start = next(i for i, line in enumerate(lines) if line.startswith("LKG "))
    assert lines[start:start + 2] == [
        f"LKG {short[1]} FKB {short[2]} boundary {short[1]}..{short[2]}",
        f"git diff {history[1]['revision']}..{history[2]['revision']} -- {DIFF_PATHS}",
    ]
    assert not _left_behind(history)


def test_bisect_across_llama_server_images(
        pytester: pytest.Pytester, llama_images: Images,
        llama_server_files: tuple[Path, Path]) -> None:
    history = [llama_images[name] for name in ("hist-1", "good", "regressed", "hist-2")]
    short = [image["short_id"] for image in history]
    result, found = run_suite(
        pytester, *(f"--ollama-image={image['id']}" for image in history),
        f"--ollama-models-dir={llama_server_files[1].parent}", f"--ollama-baseline={short[0]}",
        "-m", "numctx", "-k", "not_below_baseline", "--ollama-bisect",
        f"--ollama-diff-paths={DIFF_PATHS}")
    lines = _section(result)
    assert f"LKG {short[1]} FKB {short[2]} boundary {short[1]}..{short[2]}" in lines, lines
    assert any(line.startswith("bisect: tested ") for line in lines), lines
    assert set(failed(found)) == {
        f"test_numctx_llama_server::test_slot_context_not_below_baseline[{short[2]}]"}


def test_changed_chat_template_fails_the_render_diff(
        pytester: pytest.Pytester, llama_images: Images,
        llama_server_files: tuple[Path, Path]) -> None:
    base, twin, changed = (llama_images[n] for n in ("hist-1", "twin", "template"))
    found = _run_images(pytester, [base, twin, changed], llama_server_files[1], "-m",
                        "debug_render", f"--ollama-snapshot-dir={pytester.path / 'snaps'}")
    broken = failed(found)
    assert set(broken) == {
        "test_debug_render_llama_server::test_template_render_matches_baseline"
        f"[{changed['short_id']}-{case}]" for case in ("system-user", "multi-turn")}, broken
    message = next(iter(broken.values()))
    assert "renders" in message and "differently from baseline" in message
    assert "\n-<|im_start|>user" in message and "\n+[user] " in message


def test_prompt_cache_disabled_trips_the_ttft_gate_on_cache_hits_only(
        pytester: pytest.Pytester, llama_images: Images,
        llama_server_files: tuple[Path, Path]) -> None:
    base, twin, uncached = (llama_images[n] for n in ("hist-1", "twin", "nocache"))
    found = _run_images(pytester, [base, twin, uncached], llama_server_files[1],
                        "--ollama-ttft-max-regression=200%", "--ollama-ttft-rounds=3", "-m",
                        "ttft", "-k", "short")
    broken = failed(found)
    assert set(broken) == {
        f"test_ttft_llama_server::test_time_to_first_token[{uncached['short_id']}-short-hit]"
    }, broken


def test_launch_mistakes_are_refused_before_any_container_starts(
        pytester: pytest.Pytester, llama_images: Images, tmp_path: Path) -> None:
    image = llama_images["hist-1"]
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a.gguf", "b.gguf"):
        (two / name).write_bytes(b"GGUF")
    pytester.makepyfile("def test_x(ollama): pass")
    cases = {
        ("--ollama-server-args=-c 4096 --port 9000",):
            f"ERROR: --ollama-server-args for {image['short_id']} (llama.cpp server): --port is "
            "set by the plugin (it picks a free port and checks the answer is the container's); "
            "leave it out",
        (f"--ollama-models-dir={two}",):
            f"ERROR: {image['id']}: --ollama-models-dir={two}: llama-server needs one model and "
            "the folder holds a.gguf, b.gguf; name it with --ollama-env "
            "LLAMA_ARG_MODEL=/models/<file>.gguf (or -m in --ollama-server-args)",
        ("--ollama-env", "LLAMA_ARG_PORT=8080"):
            f"ERROR: --ollama-env LLAMA_ARG_PORT: set by the plugin for {image['short_id']} "
            "(llama.cpp server; it picks a free port); leave it out",
    }
    for args, expected in cases.items():
        result = pytester.runpytest_subprocess(f"--ollama-image={image['id']}", *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert [line for line in result.errlines if line.startswith("ERROR:")] == [expected]
    assert not _left_behind([image])
