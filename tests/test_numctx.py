"""Unit and property tests of the num_ctx policies (``pytest_ollama_regress.suite.context_policy``)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_ollama_regress.suite.context_policy import (
    DYNAMIC,
    STOCK,
    ContextRequest,
    DynamicPolicy,
    ModelLimits,
    StockPolicy,
    dynamic_num_ctx,
    get_policy,
    message_length,
    stock_defaults,
    vram_tier,
)
from pytest_ollama_regress.suite.expectations import ReleaseRules

LLAMA = ModelLimits("llama3.2:3b", context_length=131072)
LLAVA = ModelLimits("llava:7b", context_length=32768, vision=True)


@pytest.mark.parametrize(
    ("length", "expected"),
    [(0, 4096), (1, 4096), (2048, 4096), (2049, 5120), (3000, 6144), (10_000, 20480),
     (65_536, 131072), (10**6, 131072)],
)
def test_dynamic_formula_examples(length: int, expected: int) -> None:
    assert dynamic_num_ctx(length, 131072) == expected


def test_dynamic_without_model_maximum_is_uncapped() -> None:
    assert dynamic_num_ctx(10**6) == 1954 * 1024


def test_dynamic_rejects_negative_length() -> None:
    with pytest.raises(ValueError, match="length must be >= 0"):
        dynamic_num_ctx(-1)


@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=1, max_value=2**20))
def test_dynamic_properties(length: int, model_max: int) -> None:
    value = dynamic_num_ctx(length, model_max)
    uncapped = max(4096, math.ceil(length * 2 / 1024) * 1024)
    assert value == min(uncapped, model_max)
    assert value <= model_max
    if value < model_max:
        assert value % 1024 == 0 and value >= 4096 and value >= 2 * length


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6))
def test_dynamic_is_monotonic(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert dynamic_num_ctx(lo, 131072) <= dynamic_num_ctx(hi, 131072)


def test_message_length_counts_utf8_bytes_of_contents_only() -> None:
    messages = [
        {"role": "system", "content": "abc"},
        {"role": "user", "content": "é", "images": ["AAAA"]},
        {"role": "assistant", "content": None},
    ]
    assert message_length(messages) == 3 + 2
    assert message_length(prompt="hello", system="sys") == 8
    assert message_length() == 0


@given(st.lists(st.text(max_size=50), max_size=8))
def test_message_length_is_additive(texts: list[str]) -> None:
    messages = [{"role": "user", "content": t} for t in texts]
    assert message_length(messages) == sum(len(t.encode()) for t in texts)


@pytest.mark.parametrize(
    ("gib", "expected"), [(0, 4096), (8, 4096), (22.9, 4096), (23, 32768), (46.9, 32768),
                          (47, 262144), (80, 262144)],
)
def test_vram_tiers(gib: float, expected: int) -> None:
    assert vram_tier(gib) == expected


def test_stock_defaults_by_version() -> None:
    assert stock_defaults(ReleaseRules.of("0.12.6")) == (4096,)
    assert stock_defaults(ReleaseRules.of("0.15.5"), vram_gib=80) == (262144,)
    assert stock_defaults(ReleaseRules.of("0.15.5")) == (4096, 32768, 262144)
    assert stock_defaults(ReleaseRules.of("0.15.5"),
                          env={"OLLAMA_CONTEXT_LENGTH": "8192"}) == (8192,)
    assert stock_defaults(ReleaseRules.of("0.11.4"),
                          env={"OLLAMA_CONTEXT_LENGTH": "0"}) == (4096,)


@pytest.mark.parametrize(
    ("version", "model", "num_ctx", "ps"),
    [
        ("0.12.6", LLAMA, 2, 4),            # floor 4
        ("0.12.6", LLAMA, 8192, 8192),
        ("0.12.6", LLAMA, 262144, 262144),  # ps shows the request before the clamp
        ("0.15.5", LLAMA, 262144, 131072),  # ps shows the clamped context
        ("0.33.0", LLAMA, 262144, 131072),
        ("0.12.6", LLAVA, 512, 2048),       # vision floor from 0.11.5
        ("0.11.4", LLAVA, 512, 512),        # no vision floor before
        ("0.11.4", LLAMA, 2, 4),
        ("0.12.6", LLAMA, None, 4096),      # default
        ("0.12.6", LLAVA, None, 4096),
    ],
)
def test_stock_ps_context_length(version: str, model: ModelLimits, num_ctx: int | None,
                                 ps: int) -> None:
    expect = ReleaseRules.of(version)
    assert StockPolicy().ps_context_length(ContextRequest(num_ctx=num_ctx), model,
                                           expect) == (ps,)


def test_stock_effective_is_always_clamped() -> None:
    expect = ReleaseRules.of("0.12.6")
    assert StockPolicy().effective(ContextRequest(num_ctx=10**6), LLAMA, expect) == (131072,)


@given(st.integers(min_value=1, max_value=2**20), st.sampled_from(["0.10.0", "0.11.4",
       "0.11.5", "0.12.6", "0.15.4", "0.15.5", "0.33.1", "0.0.0"]), st.booleans())
def test_stock_properties(num_ctx: int, version: str, vision: bool) -> None:
    expect = ReleaseRules.of(version)
    model = ModelLimits("m", context_length=32768, vision=vision)
    (ps,) = StockPolicy().ps_context_length(ContextRequest(num_ctx=num_ctx), model, expect)
    (eff,) = StockPolicy().effective(ContextRequest(num_ctx=num_ctx), model, expect)
    assert ps >= min(max(num_ctx, 4), 32768)
    assert eff <= 32768
    assert eff == min(ps, 32768)
    if vision and expect.promises("vision num_ctx floor"):
        assert ps >= 2048
    if expect.ps_context_clamped:
        assert ps == eff


def test_dynamic_policy_ignores_num_ctx() -> None:
    expect = ReleaseRules.of("0.12.6")
    policy = DynamicPolicy()
    assert policy.ps_context_length(ContextRequest(num_ctx=512, length=3000), LLAMA,
                                    expect) == (6144,)
    assert policy.describe(ContextRequest(), expect) == "dynamic num_ctx"


def test_get_policy() -> None:
    assert get_policy("stock").name == STOCK
    assert get_policy(" Dynamic ").name == DYNAMIC
    with pytest.raises(ValueError, match="--ollama-numctx-policy=stock or =dynamic"):
        get_policy("fancy")


def test_model_limits_from_show() -> None:
    show = {"capabilities": ["completion", "vision"],
            "model_info": {"general.architecture": "llama", "llama.context_length": 32768}}
    limits = ModelLimits.from_show("llava:7b", show)
    assert (limits.name, limits.context_length, limits.vision) == ("llava:7b", 32768, True)
    empty = ModelLimits.from_show("x", {})
    assert (empty.context_length, empty.vision, empty.default_num_ctx) == (None, False, None)


GPT_OSS_SHOW = {"capabilities": ["completion", "thinking"],
                "details": {"family": "gptoss", "families": ["gptoss"]},
                "model_info": {"general.architecture": "gptoss", "gptoss.context_length": 131072}}


@pytest.mark.parametrize(("version", "ps"), [("0.10.0", (1000,)), ("0.11.0", (1000, 8192)),
                                             ("0.15.4", (1000, 8192)), ("0.15.5", (1000,))])
def test_gpt_oss_floor_or_low_vram(version: str, ps: tuple[int, ...]) -> None:
    """8192 from v0.11.0 through v0.15.4, unless low-VRAM mode (then the request stands)."""
    gpt_oss = ModelLimits.from_show("gpt-oss:20b", GPT_OSS_SHOW)
    assert StockPolicy().ps_context_length(ContextRequest(num_ctx=1000), gpt_oss,
                                           ReleaseRules.of(version)) == ps


def test_modelfile_num_ctx_is_the_default() -> None:
    show = {"parameters": 'num_ctx                        8192\nstop "<|im_end|>"',
            "model_info": {"general.architecture": "llama", "llama.context_length": 8192}}
    model = ModelLimits.from_show("smollm2-8k", show)
    assert model.default_num_ctx == 8192
    for version in ("0.12.6", "0.15.5"):
        assert StockPolicy().ps_context_length(ContextRequest(), model,
                                               ReleaseRules.of(version)) == (8192,)
