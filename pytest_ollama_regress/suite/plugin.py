"""pytest hooks for the built-in suite: markers, options, fixtures, benchmark percentiles.

Markers ``vision``, ``debug_render``, ``numctx``, ``ttft`` select the suite's parts. The
fixtures let users write their own checks the way the suite does: ``ollama_expect`` (the
version rules of the current target), ``ollama_picture`` (pictures with known content),
``render_snapshot`` (per-image syrupy snapshots of debug renders), ``ollama_baseline`` (the
``--ollama-baseline`` target with the current test's env), ``ollama_numctx_policy`` and
``ollama_ttft`` (TTFT through pytest-benchmark, with the baseline gate).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_ollama_regress.catalogue.names import first_with
from pytest_ollama_regress.dialects.timing import percentiles
from pytest_ollama_regress.suite.behaviour import (
    ALL_TARGETS,
    parse_behaves_as,
    probe,
    stated_release,
    summary_line,
)
from pytest_ollama_regress.suite.context_policy import POLICIES, Policy, get_policy
from pytest_ollama_regress.suite.expectations import Expectations
from pytest_ollama_regress.suite.pictures import make_picture
from pytest_ollama_regress.suite.snapshots import extension_for, snapshot_key, snapshot_root
from pytest_ollama_regress.suite.ttft_probe import (
    PERCENTILES,
    TtftClock,
    TtftProbe,
    TtftStore,
    summary_lines,
)
from pytest_ollama_regress.targets.registry import (
    REGISTRY_KEY,
    TargetError,
    TargetInfo,
    registry_of,
    target_id_of,
)

MARKERS = {
    "vision": "image counting via the debug render, [img-N] tags, history images, the model "
              "saw the picture, invalid images -> 400, images to a non-vision model",
    "debug_render": "rendered templates snapshotted per image; --ollama-baseline diffs them "
                    "against the baseline image",
    "numctx": "/api/ps context_length against the num_ctx policy, OLLAMA_NUM_PARALLEL, reloads, "
              "truncation, truncate:false",
    "ttft": "time to first token (short/long prompts, warm/cold) through pytest-benchmark; "
            "--ollama-ttft-max-regression gates candidates against the baseline",
}
DEFAULT_ROUNDS = 5
DEFAULT_WARMUP = 1
NOTE_PROPERTY = "ollama_note"
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")


@dataclass(frozen=True)
class SuiteSettings:
    """The suite's options, validated (command line over ini)."""

    baseline_ref: str | None
    numctx_policy: str
    max_regression: float | None
    ttft_rounds: int
    ttft_warmup: int
    vision_words: tuple[str, ...] | None
    snapshot_dir: str | None
    baseline_id: str | None = None
    behaves_as: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Baseline:
    """The baseline target, reached with the env of the test that asks for it."""

    info: TargetInfo
    client: Any
    is_current: bool
    expect: Expectations

    @property
    def id(self) -> str:
        return self.info.id


SETTINGS_KEY = pytest.StashKey[SuiteSettings]()
TTFT_KEY = pytest.StashKey[TtftStore]()
NOTES_KEY = pytest.StashKey[list[str]]()
EXPECT_KEY = pytest.StashKey[dict[str, Expectations]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ollama", "Ollama regression testing")
    group.addoption("--ollama-baseline", dest="ollama_baseline", metavar="REF",
                    help="the target (id, label, image ref or short ID) the others are compared "
                         "with: debug renders are diffed, TTFT medians gated")
    group.addoption("--ollama-numctx-policy", dest="ollama_numctx_policy", metavar="POLICY",
                    help=f"num_ctx policy the numctx checks expect: {' or '.join(POLICIES)} "
                         "(default stock)")
    group.addoption("--ollama-ttft-max-regression", dest="ollama_ttft_max_regression",
                    metavar="PCT", help="fail a candidate whose median TTFT exceeds the "
                                        "baseline's by more than PCT, e.g. 15%%")
    group.addoption("--ollama-ttft-rounds", dest="ollama_ttft_rounds", metavar="N",
                    help=f"measured rounds per TTFT case (default {DEFAULT_ROUNDS})")
    group.addoption("--ollama-ttft-warmup", dest="ollama_ttft_warmup", metavar="N",
                    help=f"unmeasured warm-up rounds per TTFT case (default {DEFAULT_WARMUP})")
    group.addoption("--ollama-vision-words", dest="ollama_vision_words", metavar="W1,W2",
                    help="words an answer about the test picture may contain (any of them), "
                         "for real models; default: its colour and count")
    group.addoption("--ollama-snapshot-dir", dest="ollama_snapshot_dir", metavar="DIR",
                    help="root of the per-image render snapshots (default "
                         "__ollama_snapshots__ beside the tests, or in the rootdir for the "
                         "built-in suite)")
    group.addoption("--ollama-behaves-as", dest="ollama_behaves_as", action="append",
                    metavar="[TARGET=]X.Y.Z",
                    help="the release a build behaves as (source builds report 0.0.0, git "
                         "describe builds sit between releases); without TARGET= for every "
                         "target; the image label org.ollama-regress.behaves-as does the same")
    parser.addini("ollama_behaves_as", "[TARGET=]X.Y.Z per line (see --ollama-behaves-as)",
                  type="linelist", default=[])
    parser.addini("ollama_baseline", "baseline target (see --ollama-baseline)", default="")
    parser.addini("ollama_numctx_policy", "num_ctx policy: stock or dynamic", default="stock")
    parser.addini("ollama_ttft_max_regression", "TTFT gate, e.g. 15%", default="")
    parser.addini("ollama_ttft_rounds", "measured TTFT rounds", default=str(DEFAULT_ROUNDS))
    parser.addini("ollama_ttft_warmup", "TTFT warm-up rounds", default=str(DEFAULT_WARMUP))
    parser.addini("ollama_vision_words", "expected words for real models (comma-separated)",
                  default="")
    parser.addini("ollama_snapshot_dir", "root of the per-image render snapshots", default="")


def _value(config: pytest.Config, name: str) -> tuple[str, str]:
    """(raw value, where it came from) for an option that is also an ini key."""
    value = config.getoption(name)
    if value is not None:
        return str(value), "--" + name.replace("_", "-")
    return str(config.getini(name)).strip(), f"ini {name}"


def parse_max_regression(text: str, source: str = "--ollama-ttft-max-regression") -> float:
    """``15%`` (or ``15``) -> 0.15; a one-line UsageError for anything else."""
    match = _PERCENT_RE.match(text)
    if match is None:
        raise pytest.UsageError(
            f"{source}={text!r} is not a percentage: write e.g. --ollama-ttft-max-regression=15%"
        )
    return float(match.group(1)) / 100


def _count(text: str, source: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise pytest.UsageError(f"{source}={text!r}: give a whole number >= {minimum}")
    return value


def read_settings(config: pytest.Config) -> SuiteSettings:
    """The suite's options; bad values raise a one-line ``pytest.UsageError``."""
    policy, source = _value(config, "ollama_numctx_policy")
    try:
        policy = get_policy(policy or "stock").name
    except ValueError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from None
    gate_text, gate_source = _value(config, "ollama_ttft_max_regression")
    gate = parse_max_regression(gate_text, gate_source) if gate_text else None
    rounds = _count(*_value(config, "ollama_ttft_rounds"), minimum=1)
    warmup = _count(*_value(config, "ollama_ttft_warmup"), minimum=0)
    words_text, _ = _value(config, "ollama_vision_words")
    words = tuple(w.strip().lower() for w in words_text.split(",") if w.strip()) or None
    baseline, _ = _value(config, "ollama_baseline")
    snapshot_dir, _ = _value(config, "ollama_snapshot_dir")
    stated_values = config.getoption("ollama_behaves_as")
    stated_source = "--ollama-behaves-as" if stated_values else "ini ollama_behaves_as"
    try:
        stated = parse_behaves_as(stated_values or config.getini("ollama_behaves_as"),
                                  stated_source)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    return SuiteSettings(baseline or None, policy, gate, rounds, warmup, words,
                         snapshot_dir or None, behaves_as=stated)


def suite_settings(config: pytest.Config) -> SuiteSettings:
    """The session's suite settings (read on first use)."""
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        settings = config.stash[SETTINGS_KEY] = read_settings(config)
    return settings


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    if getattr(config.option, "help", False):
        return
    config.stash[SETTINGS_KEY] = read_settings(config)
    config.stash[TTFT_KEY] = TtftStore()
    config.stash[NOTES_KEY] = []
    config.stash[EXPECT_KEY] = {}


def resolve_baseline(ref: str, targets: list[Any]) -> str:
    """The id of the target ``ref`` names: its id, its ref, or its image ID (>= 7 hex)."""
    for target in targets:
        if ref in (target.id, target.ref):
            return target.id
    wanted = ref.removeprefix("sha256:").lower()
    if len(wanted) >= 7:
        for target in targets:
            image_id = str(getattr(target.image, "id", "") or "").removeprefix("sha256:")
            if image_id and image_id.lower().startswith(wanted):
                return target.id
    ids = ", ".join(t.id for t in targets) or "none"
    raise pytest.UsageError(
        f"--ollama-baseline {ref!r} is not among the targets ({ids}); name one of them "
        "(its id, the ref given on the command line, or its image ID)"
    )


def resolve_stated(stated: dict[str, str], targets: list[Any]) -> dict[str, str]:
    """``--ollama-behaves-as`` keyed by target id (a name no target has is a UsageError)."""
    resolved: dict[str, str] = {}
    for name, release in stated.items():
        if not name:
            resolved[name] = release
            continue
        try:
            resolved[resolve_baseline(name, targets)] = release
        except pytest.UsageError:
            ids = ", ".join(t.id for t in targets) or "none"
            raise pytest.UsageError(
                f"--ollama-behaves-as {name}={release}: {name!r} is not among the targets "
                f"({ids}); name one of them (its id, the ref given, or its image ID)") from None
    return resolved


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Check ``--ollama-baseline`` and ``--ollama-behaves-as`` against the targets before any
    test runs."""
    config = session.config
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return
    targets = registry_of(config).targets
    if settings.behaves_as:
        settings = dataclasses.replace(
            settings, behaves_as=resolve_stated(settings.behaves_as, targets))
    if settings.baseline_ref is not None:
        settings = dataclasses.replace(
            settings, baseline_id=resolve_baseline(settings.baseline_ref, targets))
    config.stash[SETTINGS_KEY] = settings


def pytest_report_header(config: pytest.Config) -> list[str]:
    """How each started target's version string is read (probes come in the summary)."""
    settings = config.stash.get(SETTINGS_KEY, None)
    registry = config.stash.get(REGISTRY_KEY, None)
    if settings is None or registry is None:
        return []
    lines = []
    for target in registry.targets:
        endpoint = registry.started_endpoint(target.id)
        if endpoint is None:
            continue
        stated = settings.behaves_as.get(target.id) or settings.behaves_as.get(ALL_TARGETS)
        try:
            expect = Expectations.for_version(endpoint.server_version, stated)
        except ValueError:
            continue
        lines.append(f"  {target.id}: {endpoint.server_version}: {expect.describe()}")
    return ["ollama releases (--ollama-behaves-as states one):", *lines] if lines else []


def expectations_for(config: pytest.Config, info: TargetInfo, client: Any) -> Expectations:
    """The target's expectations: its version read deliberately, the release stated for it,
    and what probing it showed; built once per target and environment."""
    cache = config.stash[EXPECT_KEY]
    key = f"{info.id}@{info.url}"
    if key not in cache:
        from pytest_ollama_regress.catalogue.plugin import discovered

        labels = info.image.labels if info.image is not None else None
        stated = stated_release(suite_settings(config).behaves_as, info.id, labels)
        try:
            expect = Expectations.for_version(info.server_version, stated)
        except ValueError as exc:
            pytest.fail(f"{info.id}: {exc}", pytrace=False)
        entry = first_with(discovered(config, client), "completion")
        cache[key] = expect.with_probes(probe(client, entry.name if entry else None))
    return cache[key]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every TTFT test its own benchmark timer, and run the baseline's TTFT tests first.

    The order only saves time: a candidate whose baseline result is missing measures the
    baseline itself.
    """
    positions = [i for i, item in enumerate(items)
                 if "ollama_ttft" in getattr(item, "fixturenames", ())]
    for index in positions:
        item = items[index]
        marker = item.get_closest_marker("benchmark")
        kwargs = dict(marker.kwargs) if marker else {}
        kwargs["timer"] = TtftClock()
        item.add_marker(pytest.mark.benchmark(**kwargs), append=False)
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.baseline_ref or not positions:
        return
    baseline = settings.baseline_id
    if baseline is None:
        try:
            baseline = resolve_baseline(settings.baseline_ref, registry_of(config).targets)
        except pytest.UsageError:
            return
    ttft_items = [items[i] for i in positions]
    ordered = sorted(ttft_items, key=lambda item: target_id_of(item) != baseline)
    for index, item in zip(positions, ordered, strict=True):
        items[index] = item


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ollama_suite_settings(pytestconfig: pytest.Config) -> SuiteSettings:
    """The suite's validated options."""
    return suite_settings(pytestconfig)


@pytest.fixture
def ollama_expect(request: pytest.FixtureRequest, ollama_target: TargetInfo,
                  ollama: Any) -> Expectations:
    """What the current target promises (see ``expectations.RULES``): the releases it may
    be (``--ollama-behaves-as`` narrows them to one) and what probing it showed."""
    return expectations_for(request.config, ollama_target, ollama)


@pytest.fixture(autouse=True)
def _ollama_models_run(request: pytest.FixtureRequest) -> None:
    """Skip a test whose model the target's release cannot load at all (mllama from v0.30,
    §16.3), naming the rule, instead of failing it."""
    names = [n for n in ("ollama_model", "ollama_vision_model") if n in request.fixturenames]
    if not names or "ollama_target" not in request.fixturenames:
        return
    from pytest_ollama_regress.suite.expectations import rule
    from pytest_ollama_regress.suite.model_facts import ModelFacts

    client = request.getfixturevalue("ollama")
    expect = expectations_for(request.config, request.getfixturevalue("ollama_target"), client)
    for name in names:
        model = str(request.getfixturevalue(name))
        facts = ModelFacts.from_show(model, client.show(model))
        runs = {facts.runs_on(view) for view in expect.views}
        if runs == {False}:
            pytest.skip(f"{model} ({facts.architecture}) cannot run on "
                        f"{expect.server_version}: {rule('mllama runs').skip_reason(expect.server_version)}")
        if runs == {True, False}:
            pytest.skip(expect.ambiguous_reason(rule("mllama runs")))


@pytest.fixture
def ollama_picture() -> Any:
    """``make_picture(count=3, colour="red", *, shape, word, size)`` -> ``Picture``."""
    return make_picture


@pytest.fixture
def ollama_numctx_policy(ollama_suite_settings: SuiteSettings) -> Policy:
    """The num_ctx policy chosen with ``--ollama-numctx-policy`` / ``ollama_numctx_policy``."""
    return get_policy(ollama_suite_settings.numctx_policy)


@pytest.fixture
def ollama_vision_words(ollama_suite_settings: SuiteSettings) -> tuple[str, ...] | None:
    """``--ollama-vision-words`` as lower-case words, or ``None`` (use the picture's own)."""
    return ollama_suite_settings.vision_words


@pytest.fixture
def render_snapshot(snapshot: Any, ollama_target: TargetInfo,
                    request: pytest.FixtureRequest) -> Any:
    """A syrupy snapshot kept per image (label/short ID + server version).

    ``assert ollama.render_chat(model, messages) == render_snapshot``: a render is
    normalised, compared with this image's recorded one, and recorded when there is none
    yet (``--snapshot-update`` rewrites changed ones).
    """
    settings = suite_settings(request.config)
    root = snapshot_root(request.config.rootpath, request.node.path, settings.snapshot_dir)
    key = snapshot_key(ollama_target.id, ollama_target.server_version)
    extension = extension_for(str(root), key, ollama_target.id)
    return dataclasses.replace(snapshot, extension_class=extension, update_new_snapshots_only=True)


@pytest.fixture
def ollama_baseline(request: pytest.FixtureRequest,
                    ollama_target: TargetInfo) -> Baseline | None:
    """The ``--ollama-baseline`` target with this test's env, or ``None`` without one."""
    from pytest_ollama_regress.targets.plugin import client_for

    settings = suite_settings(request.config)
    if settings.baseline_id is None:
        return None
    registry = registry_of(request.config)
    try:
        endpoint = registry.endpoint(settings.baseline_id, ollama_target.env)
    except TargetError as exc:
        pytest.fail(f"baseline {settings.baseline_id}: {exc}", pytrace=False)
    info = TargetInfo(registry.target(settings.baseline_id), endpoint)
    client = client_for(request.config, endpoint.url)
    return Baseline(info, client, is_current=settings.baseline_id == ollama_target.id,
                    expect=expectations_for(request.config, info, client))


@pytest.fixture
def ollama_ttft(request: pytest.FixtureRequest, benchmark: Any, ollama: Any,
                ollama_target: TargetInfo, ollama_baseline: Baseline | None,
                ollama_suite_settings: SuiteSettings) -> TtftProbe:
    """TTFT through pytest-benchmark: ``result = ollama_ttft.measure(model, "short",
    cold=False)`` then ``ollama_ttft.check(result)`` (first-token overhead and the gate)."""
    marker = request.node.get_closest_marker("benchmark")
    clock = marker.kwargs.get("timer") if marker else None
    if not isinstance(clock, TtftClock):
        pytest.fail("ollama_ttft needs its benchmark timer: request it as a test argument",
                    pytrace=False)
    s = ollama_suite_settings
    return TtftProbe(ollama, ollama_target, benchmark, clock, request.config.stash[TTFT_KEY],
                     s.ttft_rounds, s.ttft_warmup, s.max_regression, ollama_baseline)


# -- reporting ---------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Collect ``record_property("ollama_note", text)`` lines for the terminal summary."""
    report = yield
    if report.when == "call":
        notes = item.config.stash.get(NOTES_KEY, None)
        if notes is not None:
            notes.extend(str(v) for k, v in report.user_properties if k == NOTE_PROPERTY)
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    store = config.stash.get(TTFT_KEY, None)
    if store is not None and store.results:
        terminalreporter.write_sep("-", "ollama ttft (ms)")
        for line in summary_lines(store):
            terminalreporter.write_line(line)
    judged = config.stash.get(EXPECT_KEY, None)
    if judged:
        terminalreporter.write_sep("-", "ollama behaviour")
        lines = [summary_line(key.split("@", 1)[0], expect) for key, expect in judged.items()]
        for line in dict.fromkeys(lines):
            terminalreporter.write_line(line)
    notes = config.stash.get(NOTES_KEY, None)
    if notes:
        terminalreporter.write_sep("-", "ollama notes")
        for line in notes:
            terminalreporter.write_line(line)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list[Any],
                                 output_json: dict[str, Any]) -> None:
    """Add ``p50``/``p95``/``p99`` to every benchmark's stats in pytest-benchmark's JSON."""
    by_name = {getattr(b, "fullname", None): b for b in benchmarks}
    for entry in output_json.get("benchmarks", []):
        bench = by_name.get(entry.get("fullname"))
        stats = entry.get("stats") or {}
        data = list(bench.stats.data) if bench is not None else list(stats.get("data") or [])
        if data:
            stats.update({f"p{int(p)}": v for p, v in percentiles(data, PERCENTILES).items()})
