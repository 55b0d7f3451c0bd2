"""Bisection over an ordered image history (``--ollama-bisect``).

Images are indexed oldest first, ``0..n-1``. The search keeps ``lo`` (newest known good, -1
for none) and ``hi`` (oldest known bad, ``n`` for none) and probes the middle image of
``(lo, hi)`` until no image is left between them: ``ceil(log2(n + 1))`` probes, at most
``ceil(log2 n) + 1``, when every probe has a known result.

pytest runs items in a fixed order, so the order is fixed up front: the breadth-first order of
the search tree (the middle image first, then the middles of both halves, ...), and an image
runs when the run reaches it while it still lies between ``lo`` and ``hi``. With known results
the first such image is always the middle of ``(lo, hi)``: a plain binary search. A probe whose
result is unknown (errors, skips) narrows nothing, so the search goes on into both halves
(more probes), and in the end only images with unknown results lie between LKG and FKB.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from pytest_ollama_regress.inventory.boundary import BAD, GOOD
from pytest_ollama_regress.inventory.table import InventoryError


def search_order(n: int) -> list[int]:
    """Breadth-first order of the binary search tree over ``0..n-1``."""
    order: list[int] = []
    queue = deque([(-1, n)])
    while queue:
        lo, hi = queue.popleft()
        if hi - lo < 2:
            continue
        mid = (lo + hi) // 2
        order.append(mid)
        queue.append((lo, mid))
        queue.append((mid, hi))
    return order


class BisectState:
    """The state of one bisection over ``ids`` (oldest first)."""

    def __init__(self, ids: Sequence[str]) -> None:
        if len(ids) < 2:
            raise InventoryError(
                f"--ollama-bisect needs at least 2 images, got {len(ids)}: add --ollama-image"
            )
        if len(set(ids)) != len(ids):
            raise InventoryError(f"--ollama-bisect got the same image twice: {list(ids)}")
        self.ids = list(ids)
        self.index = {t: i for i, t in enumerate(ids)}
        self.order = [self.ids[i] for i in search_order(len(ids))]
        self.lo, self.hi = -1, len(ids)
        self.probed: list[str] = []  # in probe order
        self.skipped: list[str] = []
        self.unknown: set[int] = set()  # probed, result unknown
        self._reached: set[str] = set()

    def decide(self, target: str) -> bool:
        """Called when the run reaches ``target``'s tests: True to run them, False to skip.

        A target runs when it lies strictly between the newest known good and the oldest
        known bad image; the decision is made once. Targets outside the bisection always run.
        """
        if target not in self.index:
            return True
        if target in self._reached:
            return target in self.probed
        self._reached.add(target)
        run = self.lo < self.index[target] < self.hi
        (self.probed if run else self.skipped).append(target)
        return run

    def record(self, target: str, verdict: str) -> None:
        """The result of a probed target: GOOD, BAD or anything else for unknown."""
        i = self.index[target]
        if verdict == GOOD:
            self.lo = max(self.lo, i)
        elif verdict == BAD:
            self.hi = min(self.hi, i)
        else:
            self.unknown.add(i)

    @property
    def done(self) -> bool:
        """True when every image between the known good and bad ones has been probed."""
        return all(self.ids[i] in self._reached for i in range(self.lo + 1, self.hi))


def simulate(verdicts: Sequence[str]) -> BisectState:
    """Run the bisection against known verdicts (oldest first), as the plugin would."""
    ids = [str(i) for i in range(len(verdicts))]
    state = BisectState(ids)
    for target in list(state.order):
        if state.decide(target):
            state.record(target, verdicts[int(target)])
    return state
