"""Proof of detection: the built-in suite against every simulator profile.

One run of ``pytest --pyargs pytest_ollama_regress.suite`` against all profiles at once (each
is its own target): ``good`` passes everything, and each regressed profile fails exactly the
checks for its bug, each with a message that names the regression and the rule. A second
run adds ``--ollama-baseline`` and the TTFT gate; a third shows snapshot records and
comparisons in a fresh directory.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_ollama_regress.sim import PROFILES
from pytest_ollama_regress.targets.providers import sim_targets

RUN_OPTIONS = ("-p", "no:cacheprovider", "--ollama-ttft-rounds=3", "--ollama-ttft-warmup=0")
COUNTS = ("1-image", "2-image", "3-image")
PS_CASES = ("floor", "small", "medium", "beyond-model", "default")

# For each profile: the failing checks (test name, parameter after the target id) and the
# phrase that names the regression in every one of their messages.
EXPECTED: dict[str, tuple[set[tuple[str, str]], str]] = {
    "good": (set(), ""),
    # healthy builds whose version string is not a release: nothing may fail
    "source-build": (set(), ""),
    "describe-build": (set(), ""),
    "hash-build": (set(), ""),
    "images-first-only": (
        {("test_prompt_eval_grows_per_image", ""), ("test_multi_image_answer", "")},
        "the runner embedded 1 of 3 images|did not see every image",
    ),
    "vision-ignored": (
        {("test_chat_image_count", n) for n in COUNTS}
        | {("test_generate_image_count", n) for n in COUNTS}
        | {("test_literal_img_placeholder", ""), ("test_history_images", ""),
           ("test_model_sees_picture", "chat"), ("test_model_sees_picture", "generate"),
           ("test_images_to_non_vision_model", ""), ("test_prompt_eval_grows_per_image", ""),
           ("test_multi_image_answer", "")},
        "images were dropped before rendering|did not see the picture|did not see every image"
        "|the runner embedded 0 of",
    ),
    "vision-miscount": (
        {("test_chat_image_count", n) for n in COUNTS[1:]}
        | {("test_generate_image_count", n) for n in COUNTS[1:]}
        | {("test_literal_img_placeholder", ""), ("test_history_images", ""),
           ("test_prompt_eval_grows_per_image", ""), ("test_multi_image_answer", "")},
        "the last image is missing|did not grow with image 2|did not see every image",
    ),
    "images-unvalidated": (
        {("test_broken_image_is_rejected", f"{kind}-{endpoint}")
         for kind in ("data-uri", "invalid-base64") for endpoint in ("chat", "generate")},
        "image was accepted (200): it must be a 400",
    ),
    "numctx-scaled": (
        {("test_ps_context_length_num_parallel_4", case) for case in PS_CASES}
        | {("test_ps_context_length_vision_floor_num_parallel_4", "")},
        "scaled by numParallel",
    ),
    "ps-configured": (
        {("test_ps_context_length", "floor"), ("test_ps_context_length_num_parallel_4", "floor"),
         ("test_ps_context_length_vision_floor", ""),
         ("test_ps_context_length_vision_floor_num_parallel_4", "")},
        "/api/ps shows the num_ctx as requested, not the runner's context after the floors",
    ),
    "numctx-sticky": (
        {("test_num_ctx_change_reloads", ""), ("test_truncation_keeps_system_and_last", "")},
        "the runner kept its old context instead of reloading",
    ),
    "reload-thrash": (
        {("test_same_request_does_not_reload", ""),
         ("test_sampling_change_does_not_reload", "")},
        "was reloaded",
    ),
    "silent-truncation": (
        {("test_truncation_keeps_system_and_last", ""), ("test_truncate_false_rejected", "")},
        "cut in the middle|truncate:false was ignored",
    ),
    # without a baseline only the answer checks see the drift (the numerics check compares
    # with --ollama-baseline: test_numerics_drift_is_caught_against_the_baseline)
    "numerics-drift": (
        {("test_model_sees_picture", "chat"), ("test_model_sees_picture", "generate"),
         ("test_multi_image_answer", "")},
        "did not see the picture|did not see every image",
    ),
    "slow-ttft": (
        # the long prompt spans several prefill batches: the server's prompt_eval_duration
        # cannot be trusted there, so only the baseline gate judges it
        {("test_ttft", f"short-{c}") for c in ("warm", "cold")},
        "first token is held back after prefill",
    ),
}


@pytest.fixture(autouse=True)
def _not_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs are sessions of their own, even when this one runs under pytest-xdist."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@dataclass(frozen=True)
class Outcome:
    test: str
    target: str
    param: str
    status: str  # passed, failed, skipped, error
    message: str


def _outcomes(xml_path: Path, targets: list[str]) -> list[Outcome]:
    """Every test case of a junit XML report, split into (test, target id, parameter)."""
    outcomes = []
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        name = case.get("name", "")
        test, _, params = name.partition("[")
        params = params.rstrip("]")
        target = max((t for t in targets if params == t or params.startswith(t + "-")),
                     key=len, default="")
        param = params[len(target) + 1:] if target else params
        status, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                status = {"failure": "failed", "error": "error"}.get(tag, "skipped")
                message = (element.get("message") or "") + "\n" + (element.text or "")
                break
        outcomes.append(Outcome(test, target, param, status, message))
    return outcomes


def run_suite(pytester: pytest.Pytester, *args: str) -> list[Outcome]:
    """Run the built-in suite in a subprocess; return every test's outcome."""
    xml = pytester.path / "report.xml"
    result = pytester.runpytest_subprocess(
        "--pyargs", "pytest_ollama_regress.suite", f"--junitxml={xml}", *RUN_OPTIONS, *args,
        timeout=600,
    )
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout.str()
    specs = [(a.split("=", 1)[1], "--ollama-sim") for a in args if a.startswith("--ollama-sim=")]
    ids = [target.id for target in sim_targets(specs)]
    return _outcomes(xml, ids)


def test_every_profile_has_expectations() -> None:
    assert set(EXPECTED) == set(PROFILES)


def test_each_profile_fails_exactly_its_checks(pytester: pytest.Pytester,
                                                subtests: pytest.Subtests) -> None:
    outcomes = run_suite(pytester, *(f"--ollama-sim={name}" for name in PROFILES))
    for profile, (wanted, phrase) in EXPECTED.items():
        with subtests.test(profile=profile):
            mine = [o for o in outcomes if o.target == f"sim-{profile}"]
            assert len(mine) > 40, f"the suite ran only {len(mine)} checks against {profile}"
            assert not [o for o in mine if o.status == "error"]
            assert {(o.test, o.param) for o in mine if o.status == "failed"} == wanted
            for outcome in (o for o in mine if o.status == "failed"):
                assert any(p in outcome.message for p in phrase.split("|")), outcome.message
                assert "(rule: " in outcome.message, outcome.message
    with subtests.test(msg="every check fails on some profile"):
        # the render checks compare with snapshots and baselines: shown by the runs below
        caught_by_other_runs = {"test_render_snapshot", "test_render_matches_baseline",
                                "test_golden_outputs", "test_divergence_from_baseline"}
        # the checks of another server family (llama.cpp) skip on simulators: shown elsewhere
        ran = {o.test for o in outcomes
               if not (o.status == "skipped" and "dialect; this test needs" in o.message)}
        caught = {o.test for o in outcomes if o.status == "failed"}
        assert ran - caught == caught_by_other_runs


def test_baseline_diffs_renders_and_gates_ttft(pytester: pytest.Pytester) -> None:
    outcomes = run_suite(
        pytester, "--ollama-sim=good", "--ollama-sim=vision-ignored", "--ollama-sim=slow-ttft",
        "--ollama-baseline=sim-good", "--ollama-ttft-max-regression=50%",
        "-m", "debug_render or ttft",
    )
    failed = {(o.target, o.test, o.param): o.message for o in outcomes if o.status == "failed"}
    assert set(failed) == {
        ("sim-vision-ignored", "test_render_matches_baseline", "chat-images"),
        ("sim-vision-ignored", "test_render_matches_baseline", "generate-images"),
        *{("sim-slow-ttft", "test_ttft", f"{p}-{c}") for p in ("short", "long")
          for c in ("warm", "cold")},
    }
    diff = failed[("sim-vision-ignored", "test_render_matches_baseline", "generate-images")]
    assert "image_count 0 != baseline's 2" in diff
    assert "--- baseline sim-good (0.12.6)" in diff
    assert "-[INST] [img-0][img-1]Describe the pictures. [/INST]" in diff
    assert "+[INST] Describe the pictures. [/INST]" in diff
    gate = failed[("sim-slow-ttft", "test_ttft", "short-warm")]
    assert "vs baseline sim-good" in gate and "TTFT regressed (rule: ttft gate" in gate
    skipped = {(o.target, o.test) for o in outcomes if o.status == "skipped"}
    assert ("sim-good", "test_render_matches_baseline") in skipped


NUMERICS_HEALTHY = ("good@0.13.0", "source-build@0.12.11", "describe-build@0.12.11",
                    "good@0.30.0", "good@0.12.6")


def test_numerics_drift_is_caught_against_the_baseline(pytester: pytest.Pytester) -> None:
    """numerics-drift fails the numerics gate naming the divergence, by log-probabilities
    from 0.12.11 and by greedy outputs alone before; healthy builds and releases pass; an
    image whose greedy outputs changed fails its snapshot."""
    outcomes = run_suite(
        pytester, "--ollama-sim=good@0.12.11", "--ollama-sim=numerics-drift@0.12.11",
        "--ollama-sim=numerics-drift@0.12.6", *(f"--ollama-sim={h}" for h in NUMERICS_HEALTHY),
        "--ollama-baseline=good@0.12.11", "-m", "numerics")
    failed = {(o.target, o.test, o.param): o.message for o in outcomes if o.status == "failed"}
    assert set(failed) == {
        (f"sim-numerics-drift-{v}", "test_divergence_from_baseline", group)
        for v in ("0.12.11", "0.12.6") for group in ("text", "image")}, failed
    by_logprobs = failed[("sim-numerics-drift-0.12.11", "test_divergence_from_baseline", "text")]
    assert "numerics regressed against baseline sim-good-0.12.11 (0.12.11): mean KL" in by_logprobs
    assert "> 0.01 allowed" in by_logprobs and "(worst: " in by_logprobs
    assert "first divergent token: " in by_logprobs and "rule: numerics gate" in by_logprobs
    assert "--- baseline sim-good-0.12.11 system-prompt" in by_logprobs
    by_tokens = failed[("sim-numerics-drift-0.12.6", "test_divergence_from_baseline", "text")]
    assert "no log-probabilities to compare" in by_tokens
    assert "exact-match rate 25% < 50% allowed" in by_tokens
    passed = {(o.target, o.test) for o in outcomes if o.status == "passed"}
    for healthy in NUMERICS_HEALTHY:
        target = "sim-" + healthy.replace("@", "-")
        assert (target, "test_divergence_from_baseline") in passed, target
    # the same image key decoding differently: good's outputs recorded under drift's key
    root = pytester.path / "__ollama_snapshots__"
    shutil.copytree(root / "sim-good-0.12.11@0.12.11", root / "sim-numerics-drift@0.12.11")
    again = run_suite(pytester, "--ollama-sim=numerics-drift@0.12.11", "-m", "numerics")
    changed = {o.param: o.message for o in again if o.status == "failed"}
    assert set(changed) == {"system-prompt", "chat-turns", "arithmetic", "image"}, changed
    assert "greedy output of 'arithmetic' changed since this image's snapshot" in changed[
        "arithmetic"] and "rule: numerics snapshot" in changed["arithmetic"]


def test_renders_compare_across_versions(pytester: pytest.Pytester) -> None:
    """v0.12.6 changed generate's image tags: documented, so not a baseline difference."""
    outcomes = run_suite(pytester, "--ollama-sim=good@0.12.5", "--ollama-sim=good@0.12.6",
                         "--ollama-baseline=good@0.12.5", "-m", "debug_render")
    assert {o.status for o in outcomes} == {"passed", "skipped"}
    assert len([o for o in outcomes if o.status == "passed"]) == 15


def test_snapshots_record_first_then_compare(pytester: pytest.Pytester) -> None:
    tmp_path = pytester.path
    first = run_suite(pytester, "--ollama-sim=good", "-m", "debug_render")
    assert {o.status for o in first} == {"passed", "skipped"}
    store = tmp_path / "__ollama_snapshots__" / "sim-good@0.12.6" / "test_debug_render.ambr"
    assert store.is_file()
    assert not (tmp_path / "__snapshots__").exists()
    again = run_suite(pytester, "--ollama-sim=good", "-m", "debug_render")
    assert {o.status for o in again} == {"passed", "skipped"}
    # the same image key rendering differently: move good's renders to vision-ignored's key
    ignored = tmp_path / "__ollama_snapshots__" / "sim-vision-ignored@0.12.6"
    shutil.copytree(store.parent, ignored)
    changed = run_suite(pytester, "--ollama-sim=vision-ignored", "-m", "debug_render")
    failed = {o.param: o.message for o in changed if o.status == "failed"}
    assert set(failed) == {"chat-images", "generate-images"}
    assert "changed since this image's snapshot was recorded" in failed["generate-images"]
    assert "rule: debug-render snapshot" in failed["generate-images"]


@pytest.mark.docker
def test_container_images(pytester: pytest.Pytester, request: pytest.FixtureRequest) -> None:
    """The same proof against simulator container images started by ID."""
    try:
        images = request.getfixturevalue("sim_images")
    except pytest.FixtureLookupError:
        pytest.skip("tests/conftest.py provides no sim_images fixture (the built images)")
    good, bad = images["good"], images["regressed"]  # good 0.11.8, vision-ignored 0.11.9
    xml = pytester.path / "report.xml"
    result = pytester.runpytest_subprocess(
        "--pyargs", "pytest_ollama_regress.suite", f"--junitxml={xml}", *RUN_OPTIONS,
        f"--ollama-image={good['id']}", f"--ollama-image={bad['id']}", "-m", "vision",
        timeout=600,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    outcomes = _outcomes(xml, [good["short_id"], bad["short_id"]])
    assert not [o for o in outcomes if o.target == good["short_id"] and o.status == "failed"]
    failed = {(o.test, o.param) for o in outcomes
              if o.target == bad["short_id"] and o.status == "failed"}
    assert failed == EXPECTED["vision-ignored"][0]


HEALTHY_BUILDS = ("source-build@0.11.5", "good@0.12.6-rc0", "hash-build@0.12.6",
                  "describe-build@0.12.5", "good@0.11.5-rc0", "source-build@0.15.5",
                  "good@0.23.4", "good@0.30.0")


def test_healthy_builds_raise_no_alarm(pytester: pytest.Pytester) -> None:
    """rc, describe, hash-only and 0.0.0 builds of several eras: nothing fails; what only the
    release would tell is skipped naming --ollama-behaves-as."""
    result = pytester.runpytest(*RUN_OPTIONS, "--pyargs", "pytest_ollama_regress.suite",
                                *(f"--ollama-sim={b}" for b in HEALTHY_BUILDS), "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0, \
        result.stdout.str()[-3000:]
    assert outcomes["passed"] > 300
    result.stdout.fnmatch_lines(["*depends on the release it behaves as; state it with "
                                 "--ollama-behaves-as*"])


def test_every_model_family_raises_no_alarm(pytester: pytest.Pytester) -> None:
    """Renderer, native-chat, gpt-oss, gemma3 text, mllama and Modelfile num_ctx models across
    eras: only the real upstream bug of renderer models (0.17.1 - 0.23.3) fails. (The reload
    checks time the simulator's loads; with 7 models x 4 servers they are left to the
    per-profile run above.)"""
    result = pytester.runpytest(
        *RUN_OPTIONS, "--pyargs", "pytest_ollama_regress.suite", "-m", "not ttft",
        "-k", "not reload",
        *(f"--ollama-sim=good@{v}" for v in ("0.12.6", "0.15.4", "0.20.0", "0.33.0")),
        "--ollama-env=OLLAMA_SIM_MODELS=all", "--ollama-model=all")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 1, result.stdout.str()[-3000:]
    # each on its own: whether the summary line carries the message depends on the width
    result.stdout.fnmatch_lines(["*rule: renderer [[]img[]] not replaced, 0.17.1 - 0.23.4 excluded*"])
    result.stdout.fnmatch_lines(["FAILED*test_literal_img_placeholder[[]sim-good-0.20.0-qwen3-vl-2b*"])
