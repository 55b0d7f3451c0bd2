"""Listing parsers: the ``ollama list`` corpus in both formats, sizes, errors, docker exec."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_ollama_regress.catalogue.listing import (
    SEED_LINE_RE,
    ListingError,
    docker_list_command,
    docker_listing,
    human_bytes,
    parse_listing,
    parse_size,
    parse_tags,
    parse_text,
    read_listing_file,
    read_listing_stream,
)
from pytest_ollama_regress.catalogue.names import variant_name

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "ollama-list"
GB = 1000**3


def rows(path: str) -> list[tuple[int | None, str, str | None, int | None]]:
    listing = read_listing_file(CORPUS / path)
    assert listing.errors == []
    return [(m.line, m.name, m.digest, m.size) for m in listing.models]


# --- text corpus -----------------------------------------------------------------------------


def test_basic_text_listing() -> None:
    assert rows("text/basic.txt") == [
        (2, "llama3.2:3b", "a80c4f17acd5", 2 * GB),
        (3, "llava:7b", "8dd30f6b0cb1", 4_700_000_000),
        (4, "gemma3:4b", "a2af6cc3eb7f", 3_300_000_000),
        (5, "qwen3:4b", "e55aed6fe643", 2_500_000_000),
        (6, "all-minilm:latest", "1b226e2802db", 45_000_000),
    ]
    listing = read_listing_file(CORPUS / "text/basic.txt")
    assert listing.format == "text"
    assert [m.modified for m in listing.models][3] == "About an hour ago"


def test_odd_spacing_tabs_crlf_bom_blank_lines_and_repeated_header() -> None:
    assert rows("text/odd-spacing.txt") == [
        (2, "llama3.2:3b", "a80c4f17acd5", 2 * GB),
        (4, "llava:7b", "8dd30f6b0cb1", 4_700_000_000),  # "4.7GB": no space before the unit
        (5, "gemma3:4b", "2af6cc3eb7f0", 3_300_000_000),
        (8, "qwen3:4b", "e55aed6fe643", 2_500_000_000),
        (9, "all-minilm:latest", "1b226e2802db", 45_000_000),
    ]
    listing = read_listing_file(CORPUS / "text/odd-spacing.txt")
    assert listing.models[0].modified == "2 weeks ago"  # trailing blanks and \r stripped


def test_every_size_unit() -> None:
    sizes = {name: size for _, name, _, size in rows("text/all-units.txt")}
    assert sizes == {
        "user/empty:latest": 512,
        "user/tiny-stories:260k": 923_000,
        "smollm:135m": 91_000_000,
        "nomic-embed-text:latest": 274_000_000,
        "llama3.1:405b-instruct-fp16": 812 * GB,
        "deepseek-v3:671b-fp16": 1_300_000_000_000,
        "deepseek-r1:671b": 404 * GB,
        "tinyllama:latest": 637_000_000,
    }


def test_namespaced_names_in_text() -> None:
    got = {name: variant_name(name) for _, name, _, _ in rows("text/namespaced.txt")}
    assert got == {
        "hf.co/unsloth/Mistral-Small-3.1-24B-Instruct-2503-GGUF:Q3_K_XL":
            "hf.co-unsloth-mistral-small-3.1-24b-instruct-2503-gguf-ollama-gguf-q3_k_xl",
        "hf.co/unsloth/gemma-3-27b-it-GGUF:UD-Q4_K_XL":
            "hf.co-unsloth-gemma-3-27b-it-gguf-ud-ollama-gguf-q4_k_xl",
        "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:IQ4_XS":
            "hf.co-bartowski-llama-3.2-1b-instruct-gguf-ollama-gguf-iq4_xs",
        "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:latest":
            "hf.co-bartowski-llama-3.2-1b-instruct-gguf-ollama-gguf",
        "user/model:tag": "user-model-tag-ollama-gguf",
        "myorg/llava-ft:7b-q4_K_M": "myorg-llava-ft-7b-ollama-gguf-q4_k_m",
        "registry.example.com:5000/team/coder:v2":
            "registry.example.com-5000-team-coder-v2-ollama-gguf",
        "huihui_ai/qwen2.5-vl-abliterated:7b": "huihui_ai-qwen2.5-vl-abliterated-7b-ollama-gguf",
    }


def test_quant_tags_corpus() -> None:
    got = {name: variant_name(name) for _, name, _, _ in rows("text/quant-tags.txt")}
    assert got["llama3.1:8b-instruct-q4_K_M"] == "llama3.1-8b-instruct-ollama-gguf-q4_k_m"
    assert got["mistral:q4_1"] == "mistral-ollama-gguf-q4_1"
    assert got["gemma3:4b-it-qat"] == "gemma3-4b-it-qat-ollama-gguf"
    assert got["gpt-oss:20b"] == "gpt-oss-20b-ollama-gguf"
    assert got["llama3.2:latest"] == "llama3.2-ollama-gguf"
    quants = [v.rsplit("-ollama-gguf", 1)[1] for v in got.values()]
    assert quants == [
        "-q4_k_m", "-q8_0", "-fp16", "-q4_0", "-q4_1", "-q5_k_s", "-q5_k_m", "-q6_k", "-q3_k_l",
        "-q2_k", "-q5_1", "-q5_0", "-q4_k_s", "", "-bf16", "", "-nvfp4", "",
    ]


def test_remote_cloud_models_have_no_size() -> None:
    listing = read_listing_file(CORPUS / "text/remote-cloud.txt")
    assert [(m.name, m.size, m.remote) for m in listing.models] == [
        ("gpt-oss:120b-cloud", None, True),
        ("deepseek-v3.1:671b-cloud", None, True),
        ("llama3.2:3b", 2 * GB, False),
    ]


def test_bad_lines_are_reported_with_line_numbers_never_dropped() -> None:
    listing = read_listing_file(CORPUS / "text/bad-lines.txt")
    assert [m.name for m in listing.models] == ["llama3.2:3b", "all-minilm:latest"]
    assert not listing.ok
    got = [(e.line, e.reason) for e in listing.errors]
    assert got == [
        (3, "size unit not one of B, KB, MB, GB, TB (or a remote '-')"),
        (4, "ID 'not-a-digest' is not a hex digest"),
        (5, "expected NAME ID SIZE MODIFIED columns"),
        (6, "an error message, not a model row (did `ollama list` fail?)"),
        (8, got[4][1]),
        (9, "size 'lots' is not a number"),
    ]
    assert "invalid model 'bad:'" in got[4][1]
    text = str(listing.errors[0])
    assert text.startswith("line 3: ") and "4.7 XB" in text and "\n" not in text
    # every non-blank, non-header line is either a model or an error
    lines = (CORPUS / "text/bad-lines.txt").read_text().splitlines()
    assert len(listing.models) + len(listing.errors) == len(lines) - 1


def test_every_seed_accepted_line_is_accepted_with_the_same_fields() -> None:
    """Only difference: we refuse names Ollama itself refuses (``bad::name``)."""
    for path in sorted((CORPUS / "text").glob("*.txt")):
        listing = read_listing_file(path)
        by_line = {m.line: m for m in listing.models}
        refused = {e.line: e.reason for e in listing.errors}
        for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            m = SEED_LINE_RE.match(line.rstrip("\r"))
            if m and number in refused:
                assert refused[number].startswith("model name ")
            elif m and not line.startswith("NAME"):
                ours = by_line[number]
                assert ours.name == m.group("name") and ours.digest == m.group("id")
                assert ours.size == parse_size(f"{m.group('size_val')} {m.group('size_unit')}")


def test_seed_regex_misses_what_we_accept() -> None:
    for line in ("user/empty:latest  5f1e7d2c0a11  512 B  now", "  x:1  abcdef  1 GB  now",
                 "x:1  abcdef  4.7GB  now", "gpt-oss:120b-cloud  569662207105  -  now"):
        assert not SEED_LINE_RE.match(line)
        assert parse_text(line).ok, line


# --- JSON corpus -----------------------------------------------------------------------------


def test_api_tags_json_has_exact_sizes_and_full_digests() -> None:
    listing = read_listing_file(CORPUS / "json/api-tags.json")
    assert listing.format == "json" and listing.ok
    first = listing.models[0]
    assert (first.name, first.size, len(first.digest or "")) == ("llama3.2:3b", 2019393189, 64)
    assert first.details["quantization_level"] == "Q4_K_M" and first.size_text is None
    assert [m.name for m in listing.models] == [
        "llama3.2:3b", "llava:7b",
        "hf.co/unsloth/Mistral-Small-3.1-24B-Instruct-2503-GGUF:Q3_K_XL", "all-minilm:latest",
    ]


def test_json_rows_with_human_sizes() -> None:
    listing = read_listing_file(CORPUS / "json/list-rows.json")
    assert [(m.name, m.digest, m.size, m.remote) for m in listing.models] == [
        ("llama3.2:3b", "a80c4f17acd5", 2 * GB, False),
        ("user/model:tag", "0123456789ab", 3_800_000_000, False),
        ("deepseek-v3:671b-fp16", "72c4a8d1e9b3", 1_300_000_000_000, False),
        ("user/tiny-stories:260k", "0e4c1b7a9d2f", 923_000, False),
        ("gpt-oss:120b-cloud", "569662207105", None, True),
    ]


def test_bad_json_items_are_reported_by_json_path() -> None:
    listing = read_listing_file(CORPUS / "json/bad-items.json")
    assert [m.name for m in listing.models] == ["llama3.2:3b"]
    assert [(e.where, e.reason.split(" (")[0]) for e in listing.errors] == [
        ("$.models[1]", "no 'name' or 'model' string"),
        ("$.models[2]", "expected an object"),
        ("$.models[3]", "size '3.3 XB' is not NUMBER UNIT"),
        ("$.models[4]", "size True is neither bytes nor text"),
    ]
    assert str(listing.errors[0]).startswith("$.models[1]: ")


def test_truncated_json_says_line_and_column() -> None:
    with pytest.raises(ListingError, match=r"^invalid JSON at line 4 column 1: "):
        read_listing_file(CORPUS / "json/truncated.json")


def test_json_of_the_wrong_shape() -> None:
    with pytest.raises(ListingError, match="must be"):
        parse_listing('{"items": []}')


def test_parse_tags_wraps_api_tags_models() -> None:
    listing = parse_tags([{"name": "llava:7b", "size": 5, "digest": "ab" * 32,
                           "capabilities": ["completion", "vision"]}])
    assert listing.format == "tags"
    assert listing.models[0].capabilities == ("completion", "vision")
    assert listing.models[0].capabilities_source == "tags"


def test_stdin_and_format_detection() -> None:
    text = (CORPUS / "text/basic.txt").read_text()
    assert read_listing_stream(io.StringIO(text)).format == "text"
    assert read_listing_stream(io.StringIO("\n  [ ]")).format == "json"
    assert parse_listing("").models == [] and parse_listing("").ok


def test_unreadable_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ListingError, match=r"cannot read listing .*missing\.txt"):
        read_listing_file(tmp_path / "missing.txt")


# --- sizes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"), (999, "999 B"), (1000, "1 KB"), (1500, "1.5 KB"), (923_000, "923 KB"),
        (45_960_996, "45 MB"), (2_019_393_189, "2.0 GB"), (4_733_363_377, "4.7 GB"),
        (9_960_000_000, "10.0 GB"), (12_023_456_789, "12 GB"), (1_000_000_000_000, "1 TB"),
        (1_300_000_000_000, "1.3 TB"),
    ],
)
def test_human_bytes_prints_as_ollama(size: int, text: str) -> None:
    assert human_bytes(size) == text


@given(st.integers(min_value=0, max_value=10**16))
def test_listed_size_is_within_the_printing_error(size: int) -> None:
    text = human_bytes(size)
    parsed = parse_size(text)
    value, unit = text.split()
    scale = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}[unit]
    if "." in value:  # one decimal, rounded: off by at most half a tenth
        assert abs(parsed - size) <= 0.05 * scale + 1
    else:  # an integer >= 10 is truncated: the real size is at most one unit above
        assert parsed <= size < parsed + scale


@pytest.mark.parametrize(
    ("text", "size"),
    [("1 KiB", 1024), ("1.5 MiB", 1_572_864), ("2 GiB", 2 * 1024**3), ("1 PB", 1000**5),
     ("3 kb", 3000)],
)
def test_binary_and_lower_case_units(text: str, size: int) -> None:
    assert parse_size(text) == size


# --- docker exec -----------------------------------------------------------------------------


def test_docker_command_argv() -> None:
    assert docker_list_command("ollama-4beecd8") == ["docker", "exec", "ollama-4beecd8", "ollama", "list"]
    assert docker_list_command("4beecd8", docker="/usr/bin/docker")[0] == "/usr/bin/docker"


@pytest.mark.parametrize("name", ["--privileged", "-it", "", "a b", "x;rm", "/abs"])
def test_docker_container_names_that_look_like_flags_are_refused(name: str) -> None:
    with pytest.raises(ListingError, match="invalid container name"):
        docker_list_command(name)


def test_docker_cli_missing(tmp_path: Path) -> None:
    with pytest.raises(ListingError, match="docker CLI .* not found"):
        docker_listing("c1", docker=str(tmp_path / "no-docker"))


def _engine_up() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def test_docker_engine_unreachable_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on PATH")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    with pytest.raises(ListingError) as info:
        docker_listing("c1", timeout=30)
    message = str(info.value)
    assert message.startswith("`docker exec c1 ollama list` failed: ") and "\n" not in message
    assert "no-such.sock" in message


@pytest.mark.docker
def test_docker_exec_into_a_missing_container_is_one_line() -> None:
    if not _engine_up():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Docker engine answers `docker info`")
        pytest.skip("no Docker engine answers `docker info`")
    name = f"ollama-regress-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ListingError) as info:
        docker_listing(name, timeout=30)
    message = str(info.value)
    assert "\n" not in message and name in message and "No such container" in message
