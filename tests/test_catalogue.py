"""Strategy A naming, quant tokens and capability rules (catalogue.py)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_ollama_regress.catalogue.names import (
    QUANT_RE,
    SEED_QUANT_RE,
    ModelEntry,
    assign_variant_names,
    canonical_name,
    capabilities_from_model_info,
    entry_from,
    find_model,
    first_with,
    heuristic_capabilities,
    is_quant_token,
    parse_model_name,
    parse_model_selector,
    strategy_a,
    variant_name,
)

# --- the seed's rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "family", "quant", "variant"),
    [
        # tag is a quant token: family = base, quant = tag
        ("mistral:q4_0", "mistral", "q4_0", "mistral-ollama-gguf-q4_0"),
        ("llama3:q4", "llama3", "q4", "llama3-ollama-gguf-q4"),
        ("llama3:q4_k", "llama3", "q4_k", "llama3-ollama-gguf-q4_k"),
        ("llama3:Q4_K_M", "llama3", "q4_k_m", "llama3-ollama-gguf-q4_k_m"),
        ("phi3:int4", "phi3", "int4", "phi3-ollama-gguf-int4"),
        ("phi3:int8", "phi3", "int8", "phi3-ollama-gguf-int8"),
        ("phi3:fp16", "phi3", "fp16", "phi3-ollama-gguf-fp16"),
        ("phi3:F16", "phi3", "f16", "phi3-ollama-gguf-f16"),
        # tag is not a quant token: family = base-tag, no quant
        ("llava:7b", "llava-7b", None, "llava-7b-ollama-gguf"),
        ("llama3.2:3b", "llama3.2-3b", None, "llama3.2-3b-ollama-gguf"),
        ("qwen3:4b", "qwen3-4b", None, "qwen3-4b-ollama-gguf"),
    ],
)
def test_seed_strategy_a(name: str, family: str, quant: str | None, variant: str) -> None:
    result = strategy_a(name)
    assert (result.family, result.quant, result.variant) == (family, quant, variant)
    assert result.served_model_id == name


@pytest.mark.parametrize("tag", ["7b", "latest", "3b", "instruct", "v2", "qat", "q", "k_m", "int16"])
def test_seed_non_quant_tags_are_not_quant(tag: str) -> None:
    assert not is_quant_token(tag)
    assert not SEED_QUANT_RE.match(tag)


@given(st.from_regex(SEED_QUANT_RE, fullmatch=True))
def test_every_seed_quant_token_is_still_a_quant_token(token: str) -> None:
    assert is_quant_token(token)
    assert is_quant_token(token.upper())


# --- the deliberate extensions, one test each ----------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "Q4_0", "Q8_0"],
)
def test_legacy_block_quants(token: str) -> None:
    assert is_quant_token(token) and not SEED_QUANT_RE.match(token)


@pytest.mark.parametrize(
    "token",
    ["q4_K_S", "q5_K_S", "q3_K_S", "q3_K_L", "q3_K_XL", "Q4_K_XL", "q8_K_XL"],
)
def test_k_quant_sizes_beyond_m(token: str) -> None:
    assert is_quant_token(token) and not SEED_QUANT_RE.match(token)


@pytest.mark.parametrize("token", ["q5_K_M", "q6_K", "q2_K", "q3_K_M"])
def test_k_quants_the_seed_already_accepted(token: str) -> None:
    assert is_quant_token(token) and SEED_QUANT_RE.match(token)


@pytest.mark.parametrize(
    "token",
    ["iq1_s", "iq1_m", "iq2_xxs", "iq2_xs", "iq2_s", "iq2_m", "iq3_xxs", "iq3_xs", "iq3_s",
     "iq3_m", "iq4_xs", "iq4_nl", "IQ4_XS"],
)
def test_i_quants(token: str) -> None:
    assert is_quant_token(token) and not SEED_QUANT_RE.match(token)


@pytest.mark.parametrize("token", ["tq1_0", "TQ2_0"])
def test_ternary_quants(token: str) -> None:
    assert is_quant_token(token)


@pytest.mark.parametrize("token", ["bf16", "BF16", "fp32", "f32"])
def test_float_weights(token: str) -> None:
    assert is_quant_token(token) and not SEED_QUANT_RE.match(token)


@pytest.mark.parametrize("token", ["mxfp4", "nvfp4"])
def test_fp4_formats(token: str) -> None:
    assert is_quant_token(token)


@pytest.mark.parametrize("token", ["q4_k_xxl", "iq5_xs", "iq4_s", "iq1_xs", "q4_2", "iq4", "tq3_0", "fp8x", "qat", "it", "b16"])
def test_lookalikes_are_not_quant(token: str) -> None:
    assert not QUANT_RE.match(token)


@pytest.mark.parametrize(
    ("name", "family", "quant"),
    [
        ("llama3.1:8b-instruct-q4_K_M", "llama3.1-8b-instruct", "q4_k_m"),
        ("llama3.1:8b-instruct-fp16", "llama3.1-8b-instruct", "fp16"),
        ("mistral:7b-instruct-v0.3-q4_0", "mistral-7b-instruct-v0.3", "q4_0"),
        ("qwen2.5:0.5b-instruct-q2_K", "qwen2.5-0.5b-instruct", "q2_k"),
        ("gemma3:12b-it-bf16", "gemma3-12b-it", "bf16"),
        ("qwen3.5:2b-nvfp4", "qwen3.5-2b", "nvfp4"),
        # the quant must be the LAST dash token: qat / it / instruct stay in the family
        ("gemma3:4b-it-qat", "gemma3-4b-it-qat", None),
        ("codellama:7b-q4_0-python", "codellama-7b-q4_0-python", None),
    ],
)
def test_compound_tags_quant_is_last_dash_token(name: str, family: str, quant: str | None) -> None:
    result = strategy_a(name)
    assert (result.family, result.quant) == (family, quant)


# --- missing tag, latest, namespaces, case, collisions -------------------------------------


def test_missing_tag_and_latest_give_the_same_name() -> None:
    assert variant_name("llama3") == variant_name("llama3:latest") == "llama3-ollama-gguf"
    assert variant_name("all-minilm:latest") == "all-minilm-ollama-gguf"
    assert variant_name("llama3:LATEST") == "llama3-ollama-gguf"
    # 'latest' only vanishes as the whole tag
    assert variant_name("foo:latest-q4_0") == "foo-latest-ollama-gguf-q4_0"


def test_default_registry_and_library_namespace_are_dropped() -> None:
    assert variant_name("registry.ollama.ai/library/llama3.2:3b") == "llama3.2-3b-ollama-gguf"
    assert variant_name("library/llama3.2:3b") == "llama3.2-3b-ollama-gguf"


@pytest.mark.parametrize(
    ("name", "variant"),
    [
        ("user/model:tag", "user-model-tag-ollama-gguf"),
        ("user/model", "user-model-ollama-gguf"),
        ("myorg/llava-ft:7b-q4_K_M", "myorg-llava-ft-7b-ollama-gguf-q4_k_m"),
        (
            "hf.co/unsloth/Mistral-Small-3.1-24B-Instruct-2503-GGUF:Q3_K_XL",
            "hf.co-unsloth-mistral-small-3.1-24b-instruct-2503-gguf-ollama-gguf-q3_k_xl",
        ),
        (
            "hf.co/unsloth/gemma-3-27b-it-GGUF:UD-Q4_K_XL",
            "hf.co-unsloth-gemma-3-27b-it-gguf-ud-ollama-gguf-q4_k_xl",
        ),
        (
            "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF",
            "hf.co-bartowski-llama-3.2-1b-instruct-gguf-ollama-gguf",
        ),
        ("registry.example.com:5000/team/coder:v2", "registry.example.com-5000-team-coder-v2-ollama-gguf"),
    ],
)
def test_namespaced_names(name: str, variant: str) -> None:
    assert variant_name(name) == variant


def test_names_are_lower_case_and_case_insensitive() -> None:
    assert variant_name("Llama3.2:3B") == variant_name("llama3.2:3b") == "llama3.2-3b-ollama-gguf"


def test_digest_suffix_is_ignored_for_naming() -> None:
    assert variant_name("llava:7b@sha256:" + "a" * 64) == "llava-7b-ollama-gguf"


def test_collisions_get_stable_hash_suffixes() -> None:
    names = assign_variant_names(["a-b:c", "a:b-c", "llama3", "llama3:latest", "llava:7b"])
    assert names["llava:7b"] == "llava-7b-ollama-gguf"
    assert names["llama3"] == names["llama3:latest"] == "llama3-ollama-gguf"
    assert names["a-b:c"] != names["a:b-c"]
    assert names["a-b:c"].startswith("a-b-c-ollama-gguf-h") and len(names["a-b:c"]) == 27
    # independent of order
    again = assign_variant_names(["llava:7b", "a:b-c", "a-b:c"])
    assert again["a-b:c"] == names["a-b:c"] and again["a:b-c"] == names["a:b-c"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty model name"),
        ("llava:", "empty tag"),
        ("a//b", "empty path part"),
        ("a/b/c/d", "more than host/namespace/model"),
        ("bad::name", "invalid model 'bad:'"),
        ("-rm", "invalid model '-rm'"),
        ("my.org/model", "invalid namespace 'my.org'"),
    ],
)
def test_invalid_names_are_one_line_errors(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_model_name(name)
    assert "\n" not in str(info.value)


def test_parse_and_canonical_name() -> None:
    n = parse_model_name("hf.co/unsloth/X-GGUF:Q3_K_XL")
    assert (n.host, n.namespace, n.model, n.tag, n.tag_given) == (
        "hf.co", "unsloth", "X-GGUF", "Q3_K_XL", True,
    )
    assert canonical_name("llama3") == "llama3:latest"
    assert canonical_name("registry.ollama.ai/library/Llama3") == "llama3:latest"
    assert canonical_name("user/m") == "user/m:latest"
    assert parse_model_name("localhost:5000/foo/bar").tag == "latest"


_PART = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_NAMES = st.builds(
    lambda ns, model, tag: (f"{ns}/" if ns else "") + model + (f":{tag}" if tag else ""),
    st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,10}", fullmatch=True)),
    _PART,
    st.one_of(st.none(), _PART),
)


@given(_NAMES)
def test_variant_names_are_stable_slugs(name: str) -> None:
    variant = variant_name(name)
    assert variant == variant_name(name) == variant_name(name.upper())
    assert re.fullmatch(r"[a-z0-9._-]+", variant)
    assert "-ollama-gguf" in variant and "--" not in variant
    assert variant_name(canonical_name(name)) == variant  # name == name:latest
    result = strategy_a(name)
    assert result.quant is None or is_quant_token(result.quant)


# --- capabilities ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "caps"),
    [
        ("llava:7b", ("completion", "vision")),
        ("bakllava:latest", ("completion", "vision")),
        ("qwen2.5vl:7b", ("completion", "vision")),
        ("qwen2-vl:7b", ("completion", "vision")),
        ("llama3.2-vision:11b", ("completion", "vision")),
        ("moondream:latest", ("completion", "vision")),
        ("llama3.2:3b", ("completion",)),
        ("devlin:7b", ("completion",)),
        ("nomic-embed-text:latest", ("embedding",)),
        ("all-minilm:latest", ("embedding",)),
    ],
)
def test_name_heuristic(name: str, caps: tuple[str, ...]) -> None:
    assert heuristic_capabilities(name) == caps


def test_capabilities_from_model_info_follow_the_server_rules() -> None:
    vision = {
        "model_info": {"general.architecture": "llama", "llama.vision.block_count": 24},
        "template": "{{ if .Tools }}{{ end }}<think>",
    }
    assert capabilities_from_model_info(vision) == ("completion", "vision", "tools", "thinking")
    embed = {"model_info": {"general.architecture": "bert", "bert.pooling_type": 1}}
    assert capabilities_from_model_info(embed) == ("embedding",)
    projector = {"model_info": {"general.architecture": "llama"}, "projector_info": {"clip.x": 1}}
    assert "vision" in capabilities_from_model_info(projector)


def test_entry_prefers_show_then_model_info_then_tags_then_heuristic() -> None:
    tag = {"name": "llava:7b", "size": 4733363377, "digest": "8dd3", "details": {"family": "llama"}}
    show = {"capabilities": ["completion", "vision"], "model_info": {
        "general.architecture": "llama", "llama.context_length": 32768}}
    e = entry_from(tag, show)
    assert (e.capabilities_source, e.capabilities, e.context_length) == (
        "show", ("completion", "vision"), 32768,
    )
    assert e.variant == "llava-7b-ollama-gguf" and e.is_vision and not e.heuristic
    old = entry_from(tag, {"model_info": {"general.architecture": "llama"}})
    assert old.capabilities_source == "show-model-info" and old.capabilities == ("completion",)
    tagged = entry_from({**tag, "capabilities": ["completion", "tools"]}, None)
    assert tagged.capabilities_source == "tags" and tagged.capabilities == ("completion", "tools")
    guessed = entry_from(tag, None)
    assert guessed.capabilities_source == "name-heuristic" and guessed.heuristic
    assert guessed.capabilities == ("completion", "vision") and guessed.size == 4733363377


def _entry(name: str, *caps: str) -> ModelEntry:
    return entry_from({"name": name}, {"capabilities": list(caps)})


def test_find_model_by_served_name_latest_or_variant() -> None:
    entries = [_entry("llama3.2:3b", "completion"), _entry("all-minilm:latest", "embedding")]
    assert find_model(entries, "llama3.2:3b") is entries[0]
    assert find_model(entries, "LLAMA3.2:3B") is entries[0]
    assert find_model(entries, "llama3.2-3b-ollama-gguf") is entries[0]
    assert find_model(entries, "all-minilm") is entries[1]
    assert find_model(entries, "llava:7b") is None
    assert find_model(entries, "bad::") is None
    assert first_with(entries, "embedding") is entries[1]
    assert first_with(entries, "vision") is None


@pytest.mark.parametrize(
    ("value", "kind", "arg"),
    [
        (None, "discover", ""),
        ("all", "all", ""),
        ("ALL", "all", ""),
        ("vision", "vision", ""),
        ("@models.json", "registry", "models.json"),
        ("llava:7b", "name", "llava:7b"),
    ],
)
def test_model_selector(value: str | None, kind: str, arg: str) -> None:
    sel = parse_model_selector(value)
    assert (sel.kind, sel.value) == (kind, arg)
    assert sel.is_matrix == (kind != "discover")


@pytest.mark.parametrize(("value", "message"), [("", "is empty"), ("@", "needs a registry"),
                                                 ("bad::x", "--ollama-model: .*invalid model 'bad:'")])
def test_model_selector_errors(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_model_selector(value)
