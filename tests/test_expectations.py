"""Version rules (``pytest_ollama_regress.suite.expectations``)."""

from __future__ import annotations

import pytest

from pytest_ollama_regress.suite.expectations import (
    BEHAVES_AS_LABEL,
    RULES,
    Expectations,
    ReleaseRules,
    canonical_render,
    explain_image_count,
    found_image_tags,
    found_media_markers,
    image_tag_forms,
    is_context_limit_error,
    rule,
)


def test_failure_message_names_regression_and_rule() -> None:
    message = rule("debug-render image_count").fail(
        f"image_count 0 != 2: {explain_image_count(0, 2)}")
    assert message == ("image_count 0 != 2: images were dropped before rendering "
                       "(rule: debug-render image_count, >= 0.11.5)")


@pytest.mark.parametrize(
    ("version", "shape"),
    [("0.11.4", None), ("0.11.5-rc0", "minimal"), ("0.11.11", "minimal"),
     ("0.12.0-rc0", "full"), ("0.12.0", "full"), ("0.33.0", "full")],
)
def test_debug_shape_by_release(version: str, shape: str | None) -> None:
    """An -rcN carries its release's changes (§16.1): 0.12.0-rc0 already has the full shape."""
    expect = Expectations.for_version(version)
    assert expect.debug_shape == shape
    assert expect.debug_render is (shape is not None)


def test_probed_debug_render_wins_over_the_release() -> None:
    expect = Expectations.for_version("0.0.0")
    assert expect.debug_shape is None
    assert expect.healthy_debug_shapes() == ("full", "minimal")
    probed = expect.with_probes({"debug render": "minimal"})
    assert (probed.debug_render, probed.debug_shape) == (True, "minimal")
    assert not expect.with_probes({"debug render": "absent"}).debug_render


def test_image_tag_forms() -> None:
    assert image_tag_forms("What?", 2) == ("[img-0][img-1]What?", "[img-0][img-1] What?")
    assert image_tag_forms("a [img] b [img]", 2, start=3) == ("a [img-3] b [img-4]",)
    assert image_tag_forms(" x", 1) == ("[img-0] x",)


def test_canonical_render_makes_healthy_forms_one() -> None:
    forms = ["[INST] [img-0]\n\n[img-1]\n\nDescribe [/INST]",
             "[INST] [img-0][img-1]Describe [/INST]", "[INST] [img-0] [img-1] Describe [/INST]"]
    assert {canonical_render(f) for f in forms} == {"[INST] [img-0][img-1]Describe [/INST]"}
    assert canonical_render("Hi <__ollama_media_ab12__>") == "Hi <media>"
    assert found_media_markers("a <__ollama_media_0f__> b <__ollama_media_1e__>") == [
        "<__ollama_media_0f__>", "<__ollama_media_1e__>"]


@pytest.mark.parametrize(
    ("version", "truncate", "clamped", "floor", "vram", "quoted"),
    [("0.10.0", False, False, 4, False, False), ("0.11.5", False, False, 2048, False, False),
     ("0.11.5-rc0", False, False, 2048, False, False),
     ("0.12.0", False, False, 2048, False, True), ("0.12.6", True, False, 2048, False, True),
     ("0.12.6-rc0", True, False, 2048, False, True),
     ("0.15.5", True, True, 2048, True, True), ("0.15.5-rc0", True, True, 2048, True, True)],
)
def test_version_gates(version: str, truncate: bool, clamped: bool, floor: int, vram: bool,
                       quoted: bool) -> None:
    release = ReleaseRules.of(version)
    assert release.truncate_field is truncate
    assert release.ps_context_clamped is clamped
    assert release.vision_floor == floor
    assert release.vram_tier_default is vram
    assert release.promises("chat unknown model") is quoted


def test_chat_unknown_model_message() -> None:
    assert ReleaseRules.of("0.11.11").chat_unknown_model_message("x") == \
        'model "x" not found, try pulling it first'
    assert ReleaseRules.of("0.12.0").chat_unknown_model_message("x") == "model 'x' not found"


def test_non_vision_images_rule() -> None:
    assert ReleaseRules.of("0.29.9").non_vision_images_accepted
    assert not ReleaseRules.of("0.30.0").non_vision_images_accepted


@pytest.mark.parametrize(
    ("reported", "kind", "releases"),
    [("0.12.6", "release", ("0.12.6",)), ("v0.12.6", "release", ("0.12.6",)),
     ("0.12.6-rc0", "rc", ("0.12.6",)), ("0.12.6-0-g1a2b3c4", "describe", ("0.12.6",)),
     ("0.12.5-11-g6db8da9", "describe", ("0.12.5", "0.12.6")),
     ("0.15.4-2-g0334ffa", "describe", ("0.15.4", "0.15.5")),
     ("0.12.7-3-gabcdef0", "describe", ("0.12.7",)),
     ("0.9.3-dynamic", "fork", ("0.9.3",))],
)
def test_version_strings_are_read_deliberately(reported: str, kind: str,
                                               releases: tuple[str, ...]) -> None:
    expect = Expectations.for_version(reported)
    assert expect.build.kind == kind
    assert tuple(str(v) for v in expect.releases) == releases


@pytest.mark.parametrize("reported", ["0.0.0", "6db8da9", "", "0.0.0-12-gabcdef0"])
def test_unknown_release_is_every_era_not_the_newest(reported: str) -> None:
    expect = Expectations.for_version(reported)
    assert not expect.known and expect.version is None
    assert str(expect.releases[0]) == "0.10.0" and len(expect.releases) > 5
    assert expect.promises("truncate:false rejected") is None
    assert expect.promises("image base64") is True
    reason = expect.skip_reason("truncate:false rejected")
    assert "--ollama-behaves-as" in reason and BEHAVES_AS_LABEL in reason


def test_describe_build_is_ambiguous_only_at_the_next_release() -> None:
    expect = Expectations.for_version("0.12.5-11-g6db8da9")
    assert expect.promises("truncate:false rejected") is None      # 0.12.6 may have landed
    assert expect.promises("ps context_length clamped") is False   # 0.15.5 has not
    assert expect.promises("debug-render shape full") is True       # 0.12.0 had


def test_stated_release_wins() -> None:
    expect = Expectations.for_version("0.0.0", behaves_as="0.11.5")
    assert expect.known and str(expect.version) == "0.11.5"
    assert expect.promises("truncate:false rejected") is False
    assert "stated" in expect.describe()
    with pytest.raises(ValueError, match="X.Y.Z"):
        Expectations.for_version("0.0.0", behaves_as="newest")


def test_judge_pass_fail_ambiguous() -> None:
    def vision_ps(release: ReleaseRules) -> tuple[int, ...]:
        return (max(1000, release.vision_floor),)

    known = Expectations.for_version("0.12.6")
    assert known.judge(2048, vision_ps) == "pass"
    assert known.judge(1000, vision_ps) == "fail"
    unknown = Expectations.for_version("0.0.0")
    assert unknown.judge(2048, vision_ps) == "ambiguous"   # healthy from 0.11.5 only
    assert unknown.judge(250, vision_ps) == "fail"         # healthy for no release
    assert unknown.judge(2048, lambda r: (2048, 1000)) == "pass"


def test_rule_spans_and_skip_reason() -> None:
    assert rule("generate image tags separate").span == "0.11.5 - 0.12.6 excluded"
    assert rule("chat unknown model quoted").span == "< 0.12.0"
    assert rule("image base64").span == "all versions"
    assert "does not promise it (rule: truncate:false rejected, >= 0.12.6)" in \
        Expectations.for_version("0.12.5").skip_reason("truncate:false rejected")
    assert "does not promise it" in \
        Expectations.for_version("0.12.5-rc2").skip_reason("truncate:false rejected")
    with pytest.raises(KeyError, match="unknown rule"):
        rule("nope")


def test_every_rule_has_text() -> None:
    assert all(r.text and r.name == name for name, r in RULES.items())


def test_explain_image_count() -> None:
    assert explain_image_count(0, 3) == "images were dropped before rendering"
    assert "1 of 3 images were lost" in explain_image_count(2, 3)
    assert "not sent" in explain_image_count(3, 2)


def test_helpers() -> None:
    assert found_image_tags("[img-0]a[img-12] [img]") == ["[img-0]", "[img-12]"]
    assert is_context_limit_error("the input length exceeds the context length")
    assert not is_context_limit_error("model not found")
