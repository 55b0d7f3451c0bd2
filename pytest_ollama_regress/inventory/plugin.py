"""pytest hooks for the inventory: status per target and marker, LKG / FKB, bisection, outputs.

Every test report of a test that runs against a target carries the target id, its tracked
markers and the server version (``report.ollama_inventory``, so pytest-xdist brings them to
the controller). At the end the terminal summary shows one row per target, the boundary line
and the git diff command; ``--ollama-inventory`` writes the same as CSV / JSON / Markdown (or a
PNG / SVG picture, or a format a ``pytest_ollama_inventory_formats`` hook adds: see
:mod:`pytest_ollama_regress.inventory.formats`), and with ``GITHUB_STEP_SUMMARY`` set the Markdown is appended there.

``--ollama-bisect`` orders the tests by target in the search order of
:mod:`pytest_ollama_regress.inventory.bisection` and skips, before any fixture is set up (so no container
starts), the tests of every target the search does not need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ollama_regress.inventory.boundary import (
    Boundary,
    find_boundary,
    order_rows,
    verdict,
)
from pytest_ollama_regress.inventory.settings import OPTIONS, InventorySettings, read_settings
from pytest_ollama_regress.inventory.table import (
    OTHER,
    UNTESTED_TEXT,
    InventoryError,
    InventoryRow,
    MarkerStatus,
    row_from_target,
)
from pytest_ollama_regress.options import add_options, no_session
from pytest_ollama_regress.session import session_of
from pytest_ollama_regress.targets.registry import TARGET_FIXTURE, registry_of, target_id_of

if TYPE_CHECKING:
    from pytest_ollama_regress.inventory.bisection import BisectState
    from pytest_ollama_regress.inventory.formats import FormatRegistry, InventoryReport

REPORT_ATTR = "ollama_inventory"
PLUGIN_NAME = "ollama-inventory-session"


@dataclass
class InventoryState:
    """What the run collected, per target id."""

    settings: InventorySettings
    #: the report formats, read only when outputs are asked for (a lighter start-up)
    formats: FormatRegistry | None = None
    statuses: dict[str, dict[str, MarkerStatus]] = field(default_factory=dict)
    servers: dict[str, str] = field(default_factory=dict)
    behaviours: dict[str, str] = field(default_factory=dict)
    nodeids: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    #: TTFT seconds by target, then by case (``short-warm``, ...), from ``ttft`` tests
    ttft: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    bisect: BisectState | None = None
    probing: str | None = None
    report: InventoryReport | None = None
    written: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record(self, target: str, markers: Sequence[str], outcome: str, nodeid: str) -> None:
        by_marker = self.statuses.setdefault(target, {})
        for marker in markers:
            by_marker.setdefault(marker, MarkerStatus()).add(outcome, nodeid)
        self.nodeids[nodeid] = (target, list(markers))




def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser, OPTIONS)


def read_formats(config: pytest.Config) -> FormatRegistry:
    """The built-in report formats and those the ``pytest_ollama_inventory_formats`` hook
    adds; a taken suffix raises :class:`InventoryError`."""
    from pytest_ollama_regress.inventory.formats import builtin_formats

    formats = builtin_formats()
    config.hook.pytest_ollama_inventory_formats(config=config, formats=formats)
    return formats


def _xdist_active(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) or (
        getattr(config.option, "dist", "no") not in ("no", None)
    ) or hasattr(config, "workerinput")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if no_session(config):
        return
    try:
        settings = read_settings(config)
        formats = read_formats(config) if settings.outputs else None
        for path in settings.outputs:
            formats.format_for(path).requires()  # type: ignore[union-attr]
        state = InventoryState(settings, formats)
        if state.settings.bisect and _xdist_active(config) and not hasattr(config, "workerinput"):
            raise InventoryError("--ollama-bisect needs one process: drop -n / --dist")
    except InventoryError as exc:
        raise pytest.UsageError(str(exc)) from None
    session_of(config).put(state)
    config.pluginmanager.register(InventoryPlugin(config, state), PLUGIN_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is not None:
        config.pluginmanager.unregister(plugin)


def _verdict(state: InventoryState, target: str) -> str:
    return verdict(InventoryRow(target, statuses=state.statuses.get(target, {})))


def _tracked(item: pytest.Item, markers: Sequence[str]) -> list[str]:
    found = [m for m in markers if item.get_closest_marker(m) is not None]
    return found or [OTHER]


def _outcome(report: pytest.TestReport, bisect_skipped: bool) -> str | None:
    """The inventory outcome of one report phase, or None when the phase says nothing."""
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if report.passed:
            return "xpassed" if xfail else "passed"
        if report.failed:
            return "failed"
        return "xfailed" if xfail else "skipped"
    if report.failed:
        return "error"
    if report.when == "setup" and report.skipped:
        return "untested" if bisect_skipped else "xfailed" if xfail else "skipped"
    return None


def case_of(nodeid: str, target: str) -> str:
    """A test's parameter id without its target's: ``test_ttft[4beecd8-short-warm]`` gives
    ``short-warm``; the test's name when only the target is parametrized."""
    name, _, params = nodeid.rpartition("::")[2].partition("[")
    params = params.removesuffix("]")
    if params.startswith(f"{target}-"):
        return params[len(target) + 1:]
    if params.endswith(f"-{target}"):
        return params[: -len(target) - 1]
    if f"-{target}-" in params:
        return params.replace(f"-{target}-", "-", 1)
    return name if params in ("", target) else params


class InventoryPlugin:
    """The per-session hooks (registered from ``pytest_configure``)."""

    def __init__(self, config: pytest.Config, state: InventoryState) -> None:
        self.config = config
        self.state = state

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self) -> None:
        """Order the targets (every plugin has registered its own by now); set up bisection."""
        registry = registry_of(self.config)
        targets = registry.targets if registry is not None else []
        try:
            ordered, _ = order_rows([row_from_target(t) for t in targets], self.state.settings.order)
            if self.state.settings.bisect:
                from pytest_ollama_regress.inventory.bisection import BisectState

                self.state.bisect = BisectState([r.target for r in ordered])
        except InventoryError as exc:
            raise pytest.UsageError(str(exc)) from None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """With --ollama-bisect: tests without a target first, then targets in search order."""
        if self.state.bisect is None:
            return
        rank = {t: i for i, t in enumerate(self.state.bisect.order)}
        items.sort(key=lambda item: rank.get(target_id_of(item) or "", -1))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """With --ollama-bisect: skip unneeded targets before any fixture starts a server."""
        state, target = self.state, target_id_of(item)
        if state.bisect is None or target is None:
            return
        if state.probing is not None and state.probing != target:
            state.bisect.record(state.probing, _verdict(state, state.probing))
            state.probing = None
        if not state.bisect.decide(target):
            pytest.skip(UNTESTED_TEXT)
        state.probing = target

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        target = target_id_of(item)
        if target is not None:
            funcargs = getattr(item, "funcargs", {})
            info = funcargs.get(TARGET_FIXTURE)
            session = session_of(item.config)
            expect = session.expectations.get(f"{info.id}@{info.url}") if info else None
            bisect = self.state.bisect
            markers = _tracked(item, self.state.settings.markers)
            if expect is not None:
                from pytest_ollama_regress.suite.behaviour import behaviour_note
            setattr(report, REPORT_ATTR, {
                "target": target,
                "markers": markers,
                "server": getattr(info, "server_version", "") or "",
                "behaviour": behaviour_note(expect) if expect is not None else "",
                "bisect_skipped": bool(bisect and target in bisect.skipped),
                "ttft": session.ttft.of(item.nodeid) if call.when == "call" else [],
                "case": case_of(item.nodeid, target),
            })
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        info = getattr(report, REPORT_ATTR, None)
        if not isinstance(info, dict):
            return
        if info.get("server"):
            self.state.servers[info["target"]] = info["server"]
        if info.get("behaviour"):
            self.state.behaviours[info["target"]] = info["behaviour"]
        if info.get("ttft"):
            by_case = self.state.ttft.setdefault(info["target"], {})
            by_case.setdefault(str(info.get("case")), []).extend(info["ttft"])
        outcome = _outcome(report, bool(info.get("bisect_skipped")))
        if outcome is not None:
            self.state.record(info["target"], info["markers"], outcome, report.nodeid)

    def _rows(self) -> list[InventoryRow]:
        registry = registry_of(self.config)
        rows = []
        for target in registry.targets if registry is not None else []:
            if target.id not in self.state.statuses:
                continue
            row = row_from_target(target)
            row.statuses = self.state.statuses[target.id]
            row.server_version = (self.state.servers.get(target.id)
                                  or registry.server_version(target.id) or "")
            row.notes = self.state.behaviours.get(target.id, row.notes)
            rows.append(row)
        return rows

    def columns(self) -> list[str]:
        """The status columns: tracked markers that ran, then ``other``."""
        seen = {m for by_marker in self.state.statuses.values() for m in by_marker}
        return [m for m in (*self.state.settings.markers, OTHER) if m in seen]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        """Build the rows and the boundary; write the outputs (the controller only)."""
        state = self.state
        if hasattr(self.config, "workerinput") or not state.statuses:
            return
        if state.bisect is not None and state.probing is not None:
            state.bisect.record(state.probing, _verdict(state, state.probing))
            state.probing = None
        rows = self._rows()
        markers = self.columns()
        try:
            found: Boundary | None = find_boundary(rows, None, state.settings.order)
        except InventoryError as exc:
            state.errors.append(str(exc))
            found = None
        from pytest_ollama_regress.inventory.formats import (
            BisectSummary,
            InventoryReport,
            step_summary,
        )

        bisect = state.bisect
        report = state.report = InventoryReport(
            rows=found.rows if found is not None else rows,
            markers=markers,
            boundary=found if found is not None and len(rows) > 1 else None,
            diff_paths=state.settings.diff_paths,
            bisect=BisectSummary(tuple(bisect.ids), tuple(bisect.probed), tuple(bisect.skipped))
            if bisect is not None else None,
            ttft=state.ttft,
        )
        for path in state.settings.outputs:
            try:
                written = state.formats.write(report, path)  # type: ignore[union-attr]
            except (OSError, InventoryError) as exc:
                state.errors.append(f"--ollama-inventory {path}: {exc}")
            else:
                state.written += [str(p) for p in written]
        try:
            step_summary(report)
        except OSError as exc:
            state.errors.append(f"GITHUB_STEP_SUMMARY: {exc}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        state = self.state
        if state.report is None or not state.report.rows:
            return
        from pytest_ollama_regress.inventory.formats import report_lines

        tr = terminalreporter
        tr.write_sep("=", "ollama inventory")
        for line in report_lines(state.report):
            tr.write_line(line)
        for path in state.written:
            tr.write_line(f"inventory written: {path}")
        for error in state.errors:
            tr.write_line(f"inventory error: {error}", red=True)
