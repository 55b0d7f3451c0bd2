"""pytest-xdist hooks: keep every target's tests on one worker (see ``placement.py``).

Active under ``-n`` with ``--dist load`` (xdist's default) or ``--dist loadgroup`` whenever the
run names a target (``--ollama-image``, ``--ollama-url``, ``--ollama-sim`` or their ini keys):
each image then starts once, in one worker. Other ``--dist`` modes are left to xdist, and the
header says that an image may then start in several workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_ollama_regress.session import close_session
from pytest_ollama_regress.targets.registry import registry_of

if TYPE_CHECKING:  # loaded by the xdist controller only
    from pytest_ollama_regress.placement.scheduling import TargetScheduling

#: --dist modes the plugin schedules itself
PLACED_MODES = ("load", "loadgroup")


def explicit_target_ids(config: pytest.Config) -> list[str]:
    """Ids of the targets the user named (not the implicit default simulator)."""
    registry = registry_of(config)
    return [t.id for t in registry.targets if not t.metadata.get("default")]


def worker_count(specs: list[str]) -> int:
    """Workers the ``--tx`` specs start (``-n 4`` is ``4*popen``)."""
    count = 0
    for spec in specs:
        number, star, _ = spec.partition("*")
        count += int(number) if star and number.isdigit() else 1
    return count


def _distributing(config: pytest.Config) -> bool:
    """True in an xdist controller that hands tests to workers."""
    return config.pluginmanager.hasplugin("dsession")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> TargetScheduling | None:
    dist = config.getoption("dist", None)
    target_ids = explicit_target_ids(config)
    if dist not in PLACED_MODES or not target_ids:
        return None
    from xdist.report import report_collection_diff

    from pytest_ollama_regress.placement.scheduling import (
        TargetScheduling,
        group_scope,
        target_scope,
    )

    def scope_of(nodeid: str) -> str | None:
        target = target_scope(nodeid, target_ids)
        if target is not None:
            return target
        return group_scope(nodeid) if dist == "loadgroup" else None

    def on_mismatch(node: str, message: str) -> None:
        report = pytest.CollectReport(nodeid=node, outcome="failed", longrepr=message, result=[])
        config.hook.pytest_collectreport(report=report)

    return TargetScheduling(
        worker_count(config.getoption("tx", None) or []),
        scope_of,
        log=log.ollamasched if log is not None else None,
        report_diff=report_collection_diff,
        on_mismatch=on_mismatch,
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not _distributing(config):
        return []
    target_ids = explicit_target_ids(config)
    if not target_ids:
        return []
    dist = config.getoption("dist", None)
    if dist in PLACED_MODES:
        return [
            f"ollama xdist: each target's tests run on one worker ({len(target_ids)} target(s), "
            f"--dist {dist})"
        ]
    return [
        f"ollama xdist: --dist {dist} may run a target's tests on several workers, each starting "
        "its own container; use --dist load (the default) to keep each target on one worker"
    ]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """In an xdist worker, stop its targets before the worker reports itself finished.

    Once every worker has reported, the controller ends them (execnet interrupts a worker 5 s
    later), which would cut a ``compose down`` in ``pytest_unconfigure`` short and leave
    containers behind. ``trylast``: the other plugins' session-finish hooks still see them.
    """
    if hasattr(session.config, "workerinput"):
        close_session(session.config)
