"""Target-to-worker placement under pytest-xdist: every test of one target runs on one worker.

pytest-xdist schedules test ids (strings) in its controller process; the items themselves live
in the workers. :func:`target_scope` reads the target back from a test id (the target plugin
parametrizes first, so its id opens the brackets: ``test_x[4beecd8-short]``), and
:class:`TargetScheduling` implements xdist's ``Scheduling`` protocol:

- each target's tests form one unit, sent whole to one worker, so a container starts once;
- units are spread evenly: every worker gets ``N // W`` or ``N // W + 1`` of the N targets
  (the bigger units first, each to the worker with the fewest units, then the fewest tests);
- tests without a target are handed out in small chunks to whichever worker runs low, as
  xdist's ``load`` scheduling does;
- a crashed worker's unfinished units move whole to another worker (or to its replacement).

Nothing here depends on how pytest builds node ids internally (pytest 9.2 ignores xdist's
``--dist loadgroup`` suffix trick); only on the public test id text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

__all__ = ["TargetScheduling", "Worker", "target_scope"]


class Worker(Protocol):
    """What the scheduler uses of xdist's ``WorkerController``."""

    shutting_down: bool

    def send_runtest_some(self, indices: Sequence[int]) -> None: ...

    def shutdown(self) -> None: ...


def _escaped(text: str) -> str:
    """``text`` as pytest writes it into a test id (non-ASCII escaped)."""
    return text if text.isascii() else text.encode("unicode_escape").decode("ascii")


def target_scope(nodeid: str, target_ids: Iterable[str]) -> str | None:
    """The target whose parameter id is in ``nodeid``'s brackets, or ``None``.

    The target's id is the first parameter id (``[T]`` or ``[T-...]``); when another plugin
    parametrized first it is a later one (``-T-`` or ``-T]``). Longer ids are tried first, so
    ``sim-good-x`` wins over ``sim-good``.
    """
    names = nodeid.partition("::")[2]  # after the file's path, which may hold "[" itself
    start = names.find("[")  # function and class names cannot
    if start < 0 or not names.endswith("]") and "]@" not in names:
        return None
    params = names[start:]
    ids = sorted({_escaped(t) for t in target_ids}, key=len, reverse=True)
    for target in ids:
        if params.startswith((f"[{target}]", f"[{target}-")):
            return target
    for target in ids:
        if f"-{target}-" in params or f"-{target}]" in params:
            return target
    return None


def group_scope(nodeid: str) -> str | None:
    """xdist's ``@group`` suffix (``--dist loadgroup`` on pytest before 9.2), or ``None``."""
    _, sep, group = nodeid.rpartition("@")
    return f"@{group}" if sep and group and "]" not in group and "::" not in group else None


class TargetScheduling:
    """xdist scheduler: units of tests pinned to one worker each, the rest load-balanced.

    ``scope_of(nodeid)`` names a test's unit (a target id), or ``None`` for a free test.
    """

    def __init__(
        self,
        numnodes: int,
        scope_of: Callable[[str], str | None],
        *,
        log: Callable[..., Any] | None = None,
        report_diff: Callable[[list[str], list[str], str, str], str | None] | None = None,
        on_mismatch: Callable[[str, str], None] | None = None,
    ) -> None:
        self.numnodes = numnodes
        self.scope_of = scope_of
        self.log = log or (lambda *args: None)
        self.report_diff = report_diff
        self.on_mismatch = on_mismatch or (lambda node, message: None)
        self.collection: list[str] | None = None
        self.node2collection: dict[Any, list[str]] = {}
        self.node2pending: dict[Any, list[int]] = {}
        self.node2units: dict[Any, list[str]] = {}
        self.free: list[int] = []
        self.unplaced: dict[str, list[int]] = {}

    # the Scheduling protocol -----------------------------------------------------------------

    @property
    def nodes(self) -> list[Any]:
        return list(self.node2pending)

    @property
    def collection_is_completed(self) -> bool:
        return len(self.node2collection) >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        if not self.collection_is_completed or self.free or self.unplaced:
            return False
        return all(len(pending) < 2 for pending in self.node2pending.values())

    @property
    def has_pending(self) -> bool:
        return bool(self.free or self.unplaced or any(self.node2pending.values()))

    def add_node(self, node: Any) -> None:
        assert node not in self.node2pending
        self.node2pending[node] = []
        self.node2units[node] = []

    def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
        assert node in self.node2pending
        if self.collection is not None and list(collection) != self.collection:
            # a replacement worker that collected something else can take no work
            first = next(iter(self.node2collection), None)
            self.log(self._diff(self.collection, list(collection), node, first))
            node.shutdown()
            return
        self.node2collection[node] = list(collection)

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        self.node2pending[node].remove(item_index)
        self._refill(node)

    def mark_test_pending(self, item: str) -> None:
        """Queue ``item`` again (a rerun plugin does this): with its target's unit, else first
        among the free tests."""
        assert self.collection is not None
        self._requeue([self.collection.index(item)])

    def remove_pending_tests_from_node(self, node: Any, indices: Sequence[int]) -> None:
        """Take ``indices`` back from ``node`` (xdist's answer to a steal) and queue them
        again the same way."""
        for index in indices:
            self.node2pending[node].remove(index)
        self._requeue(list(indices))

    def remove_node(self, node: Any) -> str | None:
        """Drop ``node``; when it crashed, its unfinished work moves elsewhere."""
        pending = self.node2pending.pop(node)
        self.node2units.pop(node, None)
        if not pending:
            return None
        assert self.collection is not None
        crashed = self.collection[pending.pop(0)]
        self._requeue(pending)
        return crashed

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is None:
            if not self._same_collections():
                self.log("**Different tests collected, aborting run**")
                return
            self.collection = next(iter(self.node2collection.values()))
            for index, nodeid in enumerate(self.collection):
                scope = self.scope_of(nodeid)
                if scope is None:
                    self.free.append(index)
                else:
                    self.unplaced.setdefault(scope, []).append(index)
        self._place()
        for node in self.nodes:
            self._refill(node)

    # placement ---------------------------------------------------------------------------------

    def _ready(self) -> list[Any]:
        return [n for n in self.node2pending if n in self.node2collection and not n.shutting_down]

    def _place(self) -> None:
        """Send every unplaced unit whole to the worker with the fewest units, then tests."""
        ready = self._ready()
        if not ready:
            return
        for scope, indices in sorted(self.unplaced.items(), key=lambda kv: -len(kv[1])):
            node = min(ready, key=lambda n: (len(self.node2units[n]), len(self.node2pending[n])))
            self.node2units[node].append(scope)
            self._send(node, indices)
            self.log(f"{scope}: {len(indices)} test(s) on {_name(node)}")
        self.unplaced.clear()

    def _requeue(self, indices: list[int]) -> None:
        """Queue tests again: a target's test to the live worker that runs its target, or with
        its unit (placed whole) when none does; free tests first in the free queue."""
        assert self.collection is not None
        free = []
        for index in indices:
            scope = self.scope_of(self.collection[index])
            owner = next((n for n in self._ready() if scope in self.node2units[n]), None)
            if scope is None:
                free.append(index)
            elif owner is not None:
                self._send(owner, [index])
            else:
                self.unplaced.setdefault(scope, []).append(index)
        self.free[:0] = free
        self._place()
        for node in self.nodes:
            self._refill(node)

    def _refill(self, node: Any) -> None:
        """Top ``node`` up with free tests when it runs low; shut it down when none are left."""
        if node.shutting_down or node not in self.node2collection:
            return
        pending = self.node2pending[node]
        if self.free:
            share = len(self.free) // max(1, len(self.node2pending))
            low, high = max(2, share // 4), max(2, share // 2)
            if len(pending) < low:
                count = high - len(pending)
                chunk, self.free[:count] = self.free[:count], []
                self._send(node, chunk)
        if not self.free and not self.unplaced:
            node.shutdown()  # the worker runs what it has, then stops

    def _send(self, node: Any, indices: list[int]) -> None:
        if indices:
            self.node2pending[node].extend(indices)
            node.send_runtest_some(list(indices))

    def _same_collections(self) -> bool:
        (first, reference), *others = self.node2collection.items()
        same = True
        for node, collection in others:
            if collection != reference:
                same = False
                message = self._diff(reference, collection, node, first)
                self.log(message)
                self.on_mismatch(_name(node), message)
        return same

    def _diff(
        self, reference: list[str], collection: list[str], node: Any, first: Any = None
    ) -> str:
        found = None
        if self.report_diff is not None:
            found = self.report_diff(reference, collection, _name(first), _name(node))
        return found or f"{_name(node)} collected different tests than {_name(first)}"


def _name(node: Any) -> str:
    gateway = getattr(node, "gateway", None)
    return str(getattr(gateway, "id", node))
