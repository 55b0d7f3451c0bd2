"""The built-in suite's options (one row each) and their typed settings."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import pytest

from pytest_ollama_regress.options import Option, OptionError, read_all
from pytest_ollama_regress.suite.numerics_gate import Thresholds

DEFAULT_ROUNDS = 5
DEFAULT_WARMUP = 1
#: the num_ctx policy unless one is chosen (``context_policy.STOCK``)
DEFAULT_POLICY = "stock"
#: numerics defaults, from measured pairs (docs/benchmarks.md, "Numerics")
DEFAULT_NUMERICS_TOKENS = 32
DEFAULT_MAX_KL = 0.01
DEFAULT_MIN_SAME_TOP = 0.9
DEFAULT_MIN_EXACT = 0.5
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")


def parse_max_regression(text: str) -> float:
    """``15%`` (or ``15``) -> 0.15."""
    match = _PERCENT_RE.match(text)
    if match is None:
        raise OptionError("is not a percentage: write e.g. --ollama-ttft-max-regression=15%")
    return float(match.group(1)) / 100


def _whole(minimum: int):  # noqa: ANN202 - a parser factory
    def parse(text: str | int) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise OptionError(f"give a whole number >= {minimum}")
        return value
    return parse


def _number(flag: str, example: str, *, rate: bool = False):  # noqa: ANN202 - a parser factory
    """A non-negative number (``rate``: a fraction 0..1, ``95%`` accepted) for ``flag``."""
    def parse(text: str | float) -> float:
        raw = str(text).strip()
        match = _PERCENT_RE.match(raw)
        value = float(match.group(1)) if match else -1.0
        if rate and match and (raw.endswith("%") or value > 1):
            value /= 100
        if not match or (rate and value > 1):
            what = "a rate between 0 and 1 (or a percentage)" if rate else "a number >= 0"
            raise OptionError(f"is not {what}: write e.g. {flag}={example}")
        return value
    return parse


def _policy(text: str) -> str:
    name = (text or DEFAULT_POLICY).strip().lower()
    if name == DEFAULT_POLICY:
        return name  # the default is known: no need to load the policies to check it
    from pytest_ollama_regress.suite.context_policy import get_policy

    return get_policy(name).name


def _words(text: str) -> tuple[str, ...] | None:
    return tuple(w.strip().lower() for w in text.split(",") if w.strip()) or None


def _behaves_as(values: list[str]) -> dict[str, str]:
    from pytest_ollama_regress.suite.behaviour import parse_behaves_as

    stated = parse_behaves_as(values, "")
    return stated


OPTIONS = (
    Option("ollama_baseline", "the target (id, label, image ref or short ID) the others are "
           "compared with: debug renders are diffed, TTFT medians gated", metavar="REF"),
    Option("ollama_numctx_policy", "num_ctx policy the numctx checks expect: stock or dynamic "
           "(default stock)", metavar="POLICY", default=DEFAULT_POLICY, parse=_policy),
    Option("ollama_ttft_max_regression", "fail a candidate whose median TTFT exceeds the "
           "baseline's by more than PCT, e.g. 15%", metavar="PCT", parse=parse_max_regression),
    Option("ollama_ttft_rounds", f"measured rounds per TTFT case (default {DEFAULT_ROUNDS})",
           metavar="N", default=DEFAULT_ROUNDS, parse=_whole(1)),
    Option("ollama_ttft_warmup", f"unmeasured warm-up rounds per TTFT case (default "
           f"{DEFAULT_WARMUP})", metavar="N", default=DEFAULT_WARMUP, parse=_whole(0)),
    Option("ollama_vision_words", "words an answer about the test picture may contain (any of "
           "them), for real models; default: its colour and count", metavar="W1,W2",
           parse=_words),
    Option("ollama_snapshot_dir", "root of the per-image render snapshots (default "
           "__ollama_snapshots__ beside the tests, or in the rootdir for the built-in suite)",
           metavar="DIR"),
    Option("ollama_numerics_tokens", "greedy tokens per prompt of the numerics check "
           f"(default {DEFAULT_NUMERICS_TOKENS})", metavar="N",
           default=DEFAULT_NUMERICS_TOKENS, parse=_whole(1)),
    Option("ollama_numerics_max_kl", "numerics: fail a candidate whose mean per-token KL "
           f"divergence from the baseline exceeds KL nats (default {DEFAULT_MAX_KL})",
           metavar="KL", default=DEFAULT_MAX_KL,
           parse=_number("--ollama-numerics-max-kl", "0.01")),
    Option("ollama_numerics_min_same_top", "numerics: fail a candidate whose top token agrees "
           f"with the baseline's at fewer positions (default {DEFAULT_MIN_SAME_TOP:.0%})",
           metavar="RATE", default=DEFAULT_MIN_SAME_TOP,
           parse=_number("--ollama-numerics-min-same-top", "90%", rate=True)),
    Option("ollama_numerics_min_exact", "numerics without log-probabilities: fail a candidate "
           "whose greedy outputs equal the baseline's for fewer prompts (default "
           f"{DEFAULT_MIN_EXACT:.0%})", metavar="RATE", default=DEFAULT_MIN_EXACT,
           parse=_number("--ollama-numerics-min-exact", "50%", rate=True)),
    Option("ollama_behaves_as", "the release a build behaves as (source builds report 0.0.0, "
           "git describe builds sit between releases); without TARGET= for every target; the "
           "image label org.ollama-regress.behaves-as does the same", kind="list",
           metavar="[TARGET=]X.Y.Z", parse=_behaves_as),
)


@dataclass(frozen=True)
class SuiteSettings:
    """The suite's options, validated (command line over env over ini)."""

    baseline_ref: str | None
    numctx_policy: str
    max_regression: float | None
    ttft_rounds: int
    ttft_warmup: int
    vision_words: tuple[str, ...] | None
    snapshot_dir: str | None
    baseline_id: str | None = None
    behaves_as: dict[str, str] = dataclasses.field(default_factory=dict)
    numerics_tokens: int = DEFAULT_NUMERICS_TOKENS
    numerics: Thresholds = Thresholds(DEFAULT_MAX_KL, DEFAULT_MIN_SAME_TOP, DEFAULT_MIN_EXACT)


def read_settings(config: pytest.Config) -> SuiteSettings:
    """The suite's settings; bad values raise a one-line ``pytest.UsageError``."""
    v = read_all(config, OPTIONS)
    return SuiteSettings(
        baseline_ref=v["ollama_baseline"].value or None,
        numctx_policy=v["ollama_numctx_policy"].value,
        max_regression=v["ollama_ttft_max_regression"].value,
        ttft_rounds=v["ollama_ttft_rounds"].value,
        ttft_warmup=v["ollama_ttft_warmup"].value,
        vision_words=v["ollama_vision_words"].value,
        snapshot_dir=v["ollama_snapshot_dir"].value or None,
        behaves_as=v["ollama_behaves_as"].value or {},
        numerics_tokens=v["ollama_numerics_tokens"].value,
        numerics=Thresholds(v["ollama_numerics_max_kl"].value,
                            v["ollama_numerics_min_same_top"].value,
                            v["ollama_numerics_min_exact"].value),
    )
