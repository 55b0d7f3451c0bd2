"""Containers left behind by dead runs: found by label, removed at the start of the next run.

Every container (and Compose network) the plugin creates carries the session id, the owning
process id with its start time (so a recycled pid is not mistaken for the owner) and the host
name. A run that was SIGKILLed never ran ``compose down``; the next run removes what it left.
Containers started with ``--ollama-keep`` are labelled to be kept and never reaped.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_ollama_regress.containers.compose_file import (
    LABEL_HOST,
    LABEL_KEEP,
    LABEL_PID,
    LABEL_PID_START,
    LABEL_SESSION,
    LABEL_WORKER,
)
from pytest_ollama_regress.containers.engine import DockerEngine


def process_start(pid: int) -> str:
    """The process start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), or ''."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def _zombie(pid: int) -> bool:
    """True for a process that has exited but was not waited for yet (state Z or X)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return False
    return bool(fields) and fields[0] in ("Z", "X")


def process_alive(pid: int, start: str = "") -> bool:
    """True when ``pid`` runs (a zombie does not) and (when known) started at ``start``."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    if start:
        current = process_start(pid)
        if current and current != start:
            return False  # the pid was recycled
    return not _zombie(pid)


@dataclass(frozen=True)
class Owner:
    """Who owns the containers of this process: session, pid, start time, host, worker."""

    session: str
    pid: int = field(default_factory=os.getpid)
    pid_start: str = field(default_factory=lambda: process_start(os.getpid()))
    host: str = field(default_factory=socket.gethostname)
    worker: str = "main"

    @classmethod
    def new(cls, session: str | None = None, worker: str = "main") -> Owner:
        return cls(session=session or uuid.uuid4().hex[:8], worker=worker)

    def labels(self, keep: bool = False) -> dict[str, str]:
        labels = {
            LABEL_SESSION: self.session,
            LABEL_PID: str(self.pid),
            LABEL_PID_START: self.pid_start,
            LABEL_HOST: self.host,
            LABEL_WORKER: self.worker,
        }
        if keep:
            labels[LABEL_KEEP] = "1"
        return labels


@dataclass
class ReapResult:
    containers: list[str] = field(default_factory=list)  # names
    networks: list[str] = field(default_factory=list)
    kept: int = 0  # containers of dead runs left alone because of --ollama-keep

    @property
    def count(self) -> int:
        return len(self.containers)


def _orphaned(labels: dict[str, str], host: str) -> bool:
    if labels.get(LABEL_HOST) != host:
        return False  # another machine's process: its pid means nothing here
    try:
        pid = int(labels.get(LABEL_PID, ""))
    except ValueError:
        return True
    return not process_alive(pid, labels.get(LABEL_PID_START, ""))


def reap(
    engine: DockerEngine,
    host: str | None = None,
    *,
    filters: Sequence[str] = (),
    check_owner: bool = True,
) -> ReapResult:
    """Remove containers and networks labelled by runs whose process is gone.

    ``filters`` narrow the search (``docker ps --filter`` values, e.g. one session's worker);
    ``check_owner=False`` is for a caller that knows the owner is gone or gave up its clean-up
    (the watchdog): then the owner's liveness is not checked, only its host.
    """
    host = host or socket.gethostname()
    result = ReapResult()
    doomed: list[str] = []

    def doomed_owner(labels: dict[str, str]) -> bool:
        if check_owner:
            return _orphaned(labels, host)
        return labels.get(LABEL_HOST) == host

    for row in engine.containers([f"label={LABEL_SESSION}", *filters]):
        labels = row["Labels"]
        if not doomed_owner(labels):
            continue
        if labels.get(LABEL_KEEP) == "1":
            result.kept += 1
            continue
        doomed.append(row["ID"])
        result.containers.append(str(row.get("Names") or row["ID"][:12]))
    engine.remove_containers(doomed)
    dead_networks = []
    for row in engine.networks_with([f"label={LABEL_SESSION}", *filters]):
        net_labels = engine.json(["network", "inspect", "--format", "{{json .Labels}}", row["ID"]])
        if net_labels and doomed_owner(net_labels) and net_labels.get(LABEL_KEEP) != "1":
            dead_networks.append(row["ID"])
            result.networks.append(str(row.get("Name") or row["ID"][:12]))
    engine.remove_networks(dead_networks)
    return result


def reap_workers(engine: DockerEngine, session: str, worker: str | None = None) -> ReapResult:
    """xdist: remove the containers of one run's dead workers (of ``worker`` only, if given).

    Workers of one run share its session id; the controller calls this when a worker crashed
    and once more at the end, so a dead worker's containers do not wait for the next run.
    """
    filters = [f"label={LABEL_SESSION}={session}"]
    if worker is not None:
        filters.append(f"label={LABEL_WORKER}={worker}")
    return reap(engine, filters=filters)
