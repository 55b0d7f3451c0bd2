"""Version rules (``pytest_ollama_regress.expectations``)."""

from __future__ import annotations

import pytest

from pytest_ollama_regress.expectations import (
    RULES,
    Expectations,
    explain_image_count,
    found_image_tags,
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
    [("0.11.4", None), ("0.11.5-rc2", None), ("0.11.5-rc3", "minimal"), ("0.11.11", "minimal"),
     ("0.12.0-rc1", "minimal"), ("0.12.0", "full"), ("0.33.0", "full"), ("0.0.0", "full")],
)
def test_debug_shape(version: str, shape: str | None) -> None:
    expect = Expectations.for_version(version)
    assert expect.debug_shape == shape
    assert expect.debug_render is (shape is not None)


def test_generate_image_tag_form() -> None:
    old, new = Expectations.for_version("0.12.5"), Expectations.for_version("0.12.6")
    assert old.generate_render_prefix(2) == "[img-0]\n\n[img-1]\n\n"
    assert new.generate_render_prefix(2) == "[img-0][img-1]"
    assert old.generate_image_rule.name == "generate image tags separate"
    assert new.generate_image_rule.name == "generate image tags attached"
    render = "[INST] [img-0]\n\n[img-1]\n\nDescribe [/INST]"
    assert old.canonical_render(render, "generate") == "[INST] [img-0][img-1]Describe [/INST]"
    assert old.canonical_render(render, "chat") == render
    assert new.canonical_render(render, "generate") == render


def test_chat_content_render() -> None:
    expect = Expectations.for_version("0.12.6")
    assert expect.chat_content_render("What?", 2) == "[img-0][img-1]What?"
    assert expect.chat_content_render("a [img] b [img]", 2, start=3) == "a [img-3] b [img-4]"


@pytest.mark.parametrize(
    ("version", "truncate", "clamped", "floor", "vram", "quoted"),
    [("0.10.0", False, False, 4, False, False), ("0.11.5", False, False, 2048, False, False),
     ("0.12.0", False, False, 2048, False, True), ("0.12.6", True, False, 2048, False, True),
     ("0.15.5", True, True, 2048, True, True), ("0.0.0", True, True, 2048, True, True)],
)
def test_version_gates(version: str, truncate: bool, clamped: bool, floor: int, vram: bool,
                       quoted: bool) -> None:
    expect = Expectations.for_version(version)
    assert expect.truncate_field is truncate
    assert expect.ps_context_clamped is clamped
    assert expect.vision_floor == floor
    assert expect.vram_tier_default is vram
    assert expect.promises("chat unknown model") is quoted


def test_chat_unknown_model_message() -> None:
    assert Expectations.for_version("0.11.11").chat_unknown_model_message("x") == \
        'model "x" not found, try pulling it first'
    assert Expectations.for_version("0.12.0").chat_unknown_model_message("x") == \
        "model 'x' not found"


def test_non_vision_images_rule() -> None:
    assert Expectations.for_version("0.29.9").non_vision_images_accepted
    assert not Expectations.for_version("0.30.0").non_vision_images_accepted


def test_rule_spans_and_skip_reason() -> None:
    assert rule("generate image tags separate").span == "0.11.5 - 0.12.6 excluded"
    assert rule("chat unknown model quoted").span == "< 0.12.0"
    assert rule("image base64").span == "all versions"
    assert "does not promise it (rule: truncate:false rejected, >= 0.12.6)" in \
        Expectations.for_version("0.12.5").skip_reason("truncate:false rejected")
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
