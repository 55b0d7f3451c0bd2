"""pytest hooks for the built-in suite: markers, options, fixtures, benchmark percentiles.

Markers ``vision``, ``debug_render``, ``numctx``, ``ttft``, ``numerics`` select the suite's
parts. The fixtures let users write their own checks the way the suite does: ``ollama_expect``
(the version rules of the current target), ``ollama_picture`` (pictures with known content),
``render_snapshot`` (per-image syrupy snapshots of debug renders), ``ollama_baseline`` (the
``--ollama-baseline`` target with the current test's env), ``ollama_numctx_policy``,
``ollama_ttft`` (TTFT through pytest-benchmark, with the baseline gate) and ``ollama_numerics``
(greedy outputs and log-probability divergence against the baseline).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ollama_regress.options import add_options, no_session
from pytest_ollama_regress.session import SessionState, session_of
from pytest_ollama_regress.suite.checks import CHECKS
from pytest_ollama_regress.suite.settings import OPTIONS, SuiteSettings, read_settings
from pytest_ollama_regress.targets.registry import (
    TargetError,
    TargetInfo,
    registry_of,
    target_id_of,
)

if TYPE_CHECKING:  # the rest loads when a fixture or a report needs it (a lighter start-up)
    from pytest_ollama_regress.suite.context_policy import Policy
    from pytest_ollama_regress.suite.expectations import Expectations
    from pytest_ollama_regress.suite.numerics_probe import NumericsProbe
    from pytest_ollama_regress.suite.ttft_probe import TtftProbe, TtftStore

NOTE_PROPERTY = "ollama_note"


@dataclass(frozen=True)
class Baseline:
    """The baseline target, reached with the env of the test that asks for it."""

    info: TargetInfo
    client: Any
    is_current: bool
    config: pytest.Config

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def expect(self) -> Expectations:
        """What the baseline promises (Ollama releases; built on first use)."""
        return expectations_for(self.config, self.info, self.client)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser, OPTIONS)


def suite_settings(config: pytest.Config) -> SuiteSettings:
    """The session's suite settings (read on first use)."""
    state = session_of(config)
    if not state.has(SuiteSettings):
        state.put(read_settings(config))
    return state.get(SuiteSettings)


def _ttft_store(state: SessionState) -> TtftStore:
    from pytest_ollama_regress.suite.ttft_probe import TtftStore

    if state.ttft_results is None:
        state.ttft_results = TtftStore()
    return state.ttft_results


def pytest_configure(config: pytest.Config) -> None:
    for check in CHECKS.values():
        config.addinivalue_line("markers", f"{check.name}: {check.help}")
    if no_session(config):
        return
    session_of(config).put(read_settings(config))


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
    state = session_of(config)
    if not state.has(SuiteSettings):
        return
    settings = state.get(SuiteSettings)
    targets = registry_of(config).targets
    if settings.behaves_as:
        settings = dataclasses.replace(
            settings, behaves_as=resolve_stated(settings.behaves_as, targets))
    if settings.baseline_ref is not None:
        settings = dataclasses.replace(
            settings, baseline_id=resolve_baseline(settings.baseline_ref, targets))
    state.put(settings)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """How each target's version string is read, for the targets whose version is known
    before tests run (probed URLs, simulators); probes come in the summary."""
    state = session_of(config)
    registry = registry_of(config)
    if not state.has(SuiteSettings) or registry is None:
        return []
    settings = state.get(SuiteSettings)
    known = [(target, version) for target in registry.targets
             if (version := registry.server_version(target.id)) is not None]
    if not known:
        return []
    from pytest_ollama_regress.suite.behaviour import ALL_TARGETS
    from pytest_ollama_regress.suite.expectations import Expectations

    lines = []
    for target, version in known:
        stated = settings.behaves_as.get(target.id) or settings.behaves_as.get(ALL_TARGETS)
        try:
            expect = Expectations.for_version(version, stated)
        except ValueError:
            continue
        lines.append(f"  {target.id}: {version}: {expect.describe()}")
    return ["ollama releases (--ollama-behaves-as states one):", *lines] if lines else []


def expectations_for(config: pytest.Config, info: TargetInfo, client: Any) -> Expectations:
    """The target's expectations: its version read deliberately, the release stated for it,
    and what probing it showed; built once per target and environment."""
    from pytest_ollama_regress.catalogue.discovery import discovered
    from pytest_ollama_regress.catalogue.names import first_with
    from pytest_ollama_regress.suite.behaviour import probe, stated_release
    from pytest_ollama_regress.suite.expectations import Expectations

    cache = session_of(config).expectations
    key = f"{info.id}@{info.url}"
    if key not in cache:
        labels = info.image.labels if info.image is not None else None
        stated = stated_release(suite_settings(config).behaves_as, info.id, labels)
        try:
            expect = Expectations.for_version(info.server_version, stated)
        except ValueError as exc:
            pytest.fail(f"{info.id}: {exc}", pytrace=False)
        entry = first_with(discovered(config, client, info.dialect), "completion")
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
    if positions:
        from pytest_ollama_regress.suite.ttft_probe import TtftClock
    for index in positions:
        item = items[index]
        marker = item.get_closest_marker("benchmark")
        kwargs = dict(marker.kwargs) if marker else {}
        kwargs["timer"] = TtftClock()
        item.add_marker(pytest.mark.benchmark(**kwargs), append=False)
    state = session_of(config)
    settings = state.get(SuiteSettings) if state.has(SuiteSettings) else None
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
    needs = request.node.get_closest_marker("requires_dialect")
    if not names or "ollama_target" not in request.fixturenames or (
            needs is not None and "ollama" not in needs.args):
        return  # the release rules are Ollama's
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
def ollama_record_ttft(request: pytest.FixtureRequest) -> Callable[[Iterable[float]], None]:
    """``ollama_record_ttft(seconds)``: TTFT values (seconds) this test measured, for the
    inventory's TTFT chart (``ollama_ttft`` records its own)."""
    state = session_of(request.config)
    nodeid = request.node.nodeid
    return lambda seconds: state.ttft.add(nodeid, [float(s) for s in seconds])


@pytest.fixture
def ollama_picture() -> Any:
    """``make_picture(count=3, colour="red", *, shape, word, size)`` -> ``Picture``."""
    from pytest_ollama_regress.suite.pictures import make_picture

    return make_picture


@pytest.fixture
def ollama_numctx_policy(ollama_suite_settings: SuiteSettings) -> Policy:
    """The num_ctx policy chosen with ``--ollama-numctx-policy`` / ``ollama_numctx_policy``."""
    from pytest_ollama_regress.suite.context_policy import get_policy

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
    from pytest_ollama_regress.suite.snapshots import extension_for, snapshot_key, snapshot_root

    settings = suite_settings(request.config)
    root = snapshot_root(request.config.rootpath, request.node.path, settings.snapshot_dir)
    key = snapshot_key(ollama_target.id, ollama_target.server_version)
    extension = extension_for(str(root), key, ollama_target.id)
    return dataclasses.replace(snapshot, extension_class=extension, update_new_snapshots_only=True)


@pytest.fixture
def ollama_baseline(request: pytest.FixtureRequest,
                    ollama_target: TargetInfo) -> Baseline | None:
    """The ``--ollama-baseline`` target with this test's env, or ``None`` without one."""
    settings = suite_settings(request.config)
    if settings.baseline_id is None:
        return None
    registry = registry_of(request.config)
    try:
        endpoint = registry.endpoint(settings.baseline_id, ollama_target.env)
    except TargetError as exc:
        pytest.fail(f"baseline {settings.baseline_id}: {exc}", pytrace=False)
    info = TargetInfo(registry.target(settings.baseline_id), endpoint)
    client = session_of(request.config).clients.client(endpoint.url, info.dialect)
    return Baseline(info, client, is_current=settings.baseline_id == ollama_target.id,
                    config=request.config)


@pytest.fixture
def ollama_ttft(request: pytest.FixtureRequest, benchmark: Any, ollama: Any,
                ollama_target: TargetInfo, ollama_baseline: Baseline | None,
                ollama_suite_settings: SuiteSettings) -> TtftProbe:
    """TTFT through pytest-benchmark: ``result = ollama_ttft.measure(model, "short",
    cold=False)`` then ``ollama_ttft.check(result)`` (first-token overhead and the gate)."""
    from pytest_ollama_regress.suite.ttft_probe import TtftClock, TtftProbe
    from pytest_ollama_regress.suite.ttft_requests import requests_for

    marker = request.node.get_closest_marker("benchmark")
    clock = marker.kwargs.get("timer") if marker else None
    if not isinstance(clock, TtftClock):
        pytest.fail("ollama_ttft needs its benchmark timer: request it as a test argument",
                    pytrace=False)
    s = ollama_suite_settings
    state = session_of(request.config)
    nodeid = request.node.nodeid
    return TtftProbe(ollama, ollama_target, benchmark, clock, _ttft_store(state),
                     s.ttft_rounds, s.ttft_warmup, s.max_regression, ollama_baseline,
                     on_result=lambda result: state.ttft.add(nodeid, result.seconds),
                     requests=requests_for(ollama_target.dialect))


@pytest.fixture
def ollama_numerics(request: pytest.FixtureRequest, ollama: Any, ollama_target: TargetInfo,
                    ollama_baseline: Baseline | None,
                    ollama_suite_settings: SuiteSettings) -> NumericsProbe:
    """Greedy runs of the fixed prompt set (``.run(model, case)``, ``.record(...)`` for
    snapshots) and ``.against_baseline(model, cases)``: the numerics verdict, its numbers in
    the test's ``user_properties`` (JUnit properties, as ``record_property`` gives them)."""
    from pytest_ollama_regress.suite.numerics_probe import NumericsProbe, NumericsStore
    from pytest_ollama_regress.suite.numerics_requests import numerics_requests_for

    state = session_of(request.config)
    if not state.has(NumericsStore):
        state.put(NumericsStore())
    s = ollama_suite_settings
    return NumericsProbe(ollama, ollama_target, ollama_baseline,
                         numerics_requests_for(ollama_target.dialect), state.get(NumericsStore),
                         s.numerics_tokens, s.numerics,
                         lambda name, value: request.node.user_properties.append((name, value)))


# -- reporting ---------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Collect ``record_property("ollama_note", text)`` lines for the terminal summary."""
    report = yield
    if report.when == "call":
        session_of(item.config).notes.extend(
            str(v) for k, v in report.user_properties if k == NOTE_PROPERTY)
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = session_of(config)
    store = state.ttft_results
    if store is not None and store.results:
        from pytest_ollama_regress.suite.ttft_probe import summary_lines

        terminalreporter.write_sep("-", "ollama ttft (ms)")
        for line in summary_lines(store):
            terminalreporter.write_line(line)
    judged = state.expectations
    if judged:
        from pytest_ollama_regress.suite.behaviour import summary_line

        terminalreporter.write_sep("-", "ollama behaviour")
        lines = [summary_line(key.split("@", 1)[0], expect) for key, expect in judged.items()]
        for line in dict.fromkeys(lines):
            terminalreporter.write_line(line)
    notes = state.notes
    if notes:
        terminalreporter.write_sep("-", "ollama notes")
        for line in notes:
            terminalreporter.write_line(line)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list[Any],
                                 output_json: dict[str, Any]) -> None:
    """Add ``p50``/``p95``/``p99`` to every benchmark's stats in pytest-benchmark's JSON."""
    from pytest_ollama_regress.dialects.timing import percentiles
    from pytest_ollama_regress.suite.ttft_probe import PERCENTILES

    by_name = {getattr(b, "fullname", None): b for b in benchmarks}
    for entry in output_json.get("benchmarks", []):
        bench = by_name.get(entry.get("fullname"))
        stats = entry.get("stats") or {}
        data = list(bench.stats.data) if bench is not None else list(stats.get("data") or [])
        if data:
            stats.update({f"p{int(p)}": v for p, v in percentiles(data, PERCENTILES).items()})
