"""Stated and probed releases (``pytest_ollama_regress.suite.behaviour``) and their options."""

from __future__ import annotations

import pytest

from pytest_ollama_regress.dialects.ollama_client import OllamaClient
from pytest_ollama_regress.sim import SimServer
from pytest_ollama_regress.suite.behaviour import (
    ALL_TARGETS,
    behaviour_note,
    parse_behaves_as,
    probe,
    stated_release,
)
from pytest_ollama_regress.suite.expectations import BEHAVES_AS_LABEL, Expectations

SUITE = ("--pyargs", "pytest_ollama_regress.suite", "-p", "no:cacheprovider", "-rs")


def test_parse_behaves_as() -> None:
    assert parse_behaves_as(["img=0.12.6", " 0.11.5 ", ""]) == {"img": "0.12.6",
                                                                ALL_TARGETS: "0.11.5"}
    with pytest.raises(ValueError, match=r"give \[TARGET=\]X.Y.Z"):
        parse_behaves_as(["img=newest"])


def test_stated_release_precedence() -> None:
    stated = {"a": "0.12.6", ALL_TARGETS: "0.11.5"}
    assert stated_release(stated, "a", {BEHAVES_AS_LABEL: "0.15.5"}) == "0.12.6"
    assert stated_release(stated, "b", {BEHAVES_AS_LABEL: "0.15.5"}) == "0.15.5"
    assert stated_release(stated, "b") == "0.11.5"
    assert stated_release({}, "b") is None


@pytest.mark.parametrize(("profile", "seen"), [("good@0.11.4", "absent"),
                                               ("source-build@0.11.5", "minimal"),
                                               ("source-build@0.12.6", "full")])
def test_probe_reads_the_debug_render(profile: str, seen: str) -> None:
    name, _, version = profile.partition("@")
    with SimServer(profile=name, version=version) as server:
        client = OllamaClient(server.url)
        assert probe(client, "llama3.2:3b") == {"debug render": seen}
        assert probe(client, None) == {}
        expect = Expectations.for_version(client.version()).with_probes(
            probe(client, "llama3.2:3b"))
        assert f"probed: debug render {seen}" in behaviour_note(expect)


def test_unknown_target_in_behaves_as_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*SUITE, "--ollama-sim=good", "--ollama-behaves-as=nosuch=0.12.6")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ollama-behaves-as nosuch=0.12.6: 'nosuch' is not among "
                                 "the targets (sim-good)*"])
    bad = pytester.runpytest(*SUITE, "--ollama-sim=good", "--ollama-behaves-as=latest")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--ollama-behaves-as 'latest': give [[]TARGET=[]]X.Y.Z*"])


def _truncate_false(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*SUITE, "-k", "truncate_false", *args)


def test_source_build_skips_what_only_its_release_would_tell(pytester: pytest.Pytester) -> None:
    """A 0.0.0 build that ignores truncate:false may be an old release: skip, naming the way
    out; stated as 0.11.5 it is a plain skip; stated (wrongly) as 0.12.6 it fails."""
    sim = "--ollama-sim=source-build@0.11.5"
    unknown = _truncate_false(pytester, sim)
    unknown.assert_outcomes(skipped=1)
    unknown.stdout.fnmatch_lines(["*depends on the release it behaves as; state it with "
                                  "--ollama-behaves-as*"])
    stated = _truncate_false(pytester, sim, "--ollama-behaves-as=0.11.5")
    stated.assert_outcomes(skipped=1)
    stated.stdout.fnmatch_lines(["*does not promise it (rule: truncate:false rejected*"])
    wrong = _truncate_false(pytester, sim, "--ollama-behaves-as=0.12.6")
    wrong.assert_outcomes(failed=1)
    wrong.stdout.fnmatch_lines(["*truncate:false was ignored*"])


def test_baseline_that_has_it_decides(pytester: pytest.Pytester) -> None:
    """Present in the baseline, absent in the candidate: a regression even at 0.0.0."""
    result = _truncate_false(pytester, "--ollama-sim=source-build@0.11.5",
                             "--ollama-sim=good@0.12.6", "--ollama-baseline=sim-good-0.12.6")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*present in baseline sim-good-0.12.6, absent in the "
                                 "candidate*"])
