"""The built-in suite over the model matrix (``--ollama-model all|vision``) on a good simulator.

Every check that takes ``ollama_model`` (or, without it, ``ollama_vision_model``) runs once per
model, its id ending in the model's Strategy A variant name, and a correct server passes all of
them: checks size their requests from each model's effective context (the vision floor), a
thinking model's TTFT is its first answer token, and the non-vision check picks a model
without vision whatever the matrix holds.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

import pytest

from pytest_ollama_regress.catalogue.names import variant_name

RUN = ("--pyargs", "pytest_ollama_regress.suite", "-p", "no:cacheprovider",
       "--ollama-sim=good", "--ollama-ttft-rounds=2", "--ollama-ttft-warmup=0")
COMPLETION = ("llama3.2:3b", "llava:7b", "gemma3:4b", "qwen3:4b")
VISION = ("llava:7b", "gemma3:4b")
# checks whose model comes from ollama_model, and those that only take ollama_vision_model
MODEL_CHECKS = {"test_ps_context_length", "test_ps_context_length_num_parallel_4",
                "test_same_request_does_not_reload", "test_sampling_change_does_not_reload",
                "test_num_ctx_change_reloads", "test_truncation_keeps_system_and_last",
                "test_truncate_false_rejected", "test_ttft"}
VISION_CHECKS = {"test_ps_context_length_vision_floor",
                 "test_ps_context_length_vision_floor_num_parallel_4", "test_chat_image_count",
                 "test_generate_image_count", "test_literal_img_placeholder",
                 "test_history_images", "test_model_sees_picture",
                 "test_broken_image_is_rejected"}


@pytest.fixture(autouse=True)
def _not_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner run is a session of its own, even when this one runs under pytest-xdist."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


def run_matrix(pytester: pytest.Pytester, selector: str) -> dict[str, dict[str, set[str]]]:
    """Run the suite with ``--ollama-model selector``: test -> status -> the ids' variants."""
    xml = pytester.path / "report.xml"
    result = pytester.runpytest_subprocess(*RUN, f"--ollama-model={selector}",
                                           f"--junitxml={xml}", timeout=300)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    variants = {variant_name(name) for name in COMPLETION}
    outcomes: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for case in ET.parse(xml).getroot().iter("testcase"):
        test, _, params = case.get("name", "").partition("[")
        params = params.rstrip("]")
        variant = next((v for v in variants if params.endswith("-" + v)), "")
        status = next((tag for tag in ("failure", "error", "skipped")
                       if case.find(tag) is not None), "passed")
        outcomes[test][status].add(variant)
    return outcomes


def test_all_models_pass_on_a_good_server(pytester: pytest.Pytester) -> None:
    outcomes = run_matrix(pytester, "all")
    assert variant_name("llava:7b") == "llava-7b-ollama-gguf"
    every = {variant_name(m) for m in COMPLETION}
    vision = {variant_name(m) for m in VISION}
    for test in MODEL_CHECKS:
        assert outcomes[test].keys() == {"passed"}, (test, outcomes[test])
        assert outcomes[test]["passed"] == every, test
    for test in VISION_CHECKS:
        assert outcomes[test].keys() == {"passed"}, (test, outcomes[test])
        assert outcomes[test]["passed"] == vision, test
    # one run per target, on a model without vision, whatever the matrix
    assert outcomes["test_images_to_non_vision_model"] == {"passed": {""}}


def test_vision_models_pass_on_a_good_server(pytester: pytest.Pytester) -> None:
    outcomes = run_matrix(pytester, "vision")
    vision = {variant_name(m) for m in VISION}
    for test in MODEL_CHECKS | VISION_CHECKS:
        assert outcomes[test].keys() == {"passed"}, (test, outcomes[test])
        assert outcomes[test]["passed"] == vision, test
    assert outcomes["test_images_to_non_vision_model"] == {"passed": {""}}
