"""Bisection order and state: few probes, the same boundary as a full run."""

from __future__ import annotations

import math

import pytest

from pytest_ollama_regress.inventory.bisection import BisectState, search_order, simulate
from pytest_ollama_regress.inventory.boundary import BAD, GOOD, UNKNOWN, find_boundary
from pytest_ollama_regress.inventory.table import InventoryError, InventoryRow, MarkerStatus

STATUS = {GOOD: "OK", BAD: "FAIL", UNKNOWN: "ERROR"}


def rows_for(verdicts, tested=None):
    """Inventory rows for verdicts; rows not in ``tested`` are 'not tested (bisect)'."""
    out = []
    for i, v in enumerate(verdicts):
        status = STATUS[v] if tested is None or str(i) in tested else "UNTESTED"
        out.append(InventoryRow(str(i), statuses={"vision": MarkerStatus(status)}))
    return out


def monotonic_histories(n):
    for good in range(n + 1):
        yield [GOOD] * good + [BAD] * (n - good)


def test_search_order_is_breadth_first_middle_first():
    assert search_order(2) == [0, 1]
    assert search_order(6) == [2, 0, 4, 1, 3, 5]
    assert search_order(9) == [4, 1, 6, 0, 2, 5, 7, 3, 8]
    for n in range(1, 40):
        assert sorted(search_order(n)) == list(range(n))


@pytest.mark.parametrize("n", range(2, 10))
def test_bisect_probes_few_images_and_finds_the_full_runs_boundary(n):
    bound = math.ceil(math.log2(n)) + 1
    for verdicts in monotonic_histories(n):
        state = simulate(verdicts)
        assert len(state.probed) <= bound, (verdicts, state.probed)
        assert len(state.probed) + len(state.skipped) == n
        assert state.done
        full = find_boundary(rows_for(verdicts))
        partial = find_boundary(rows_for(verdicts, set(state.probed)))
        assert (partial.lkg and partial.lkg.target) == (full.lkg and full.lkg.target)
        assert (partial.fkb and partial.fkb.target) == (full.fkb and full.fkb.target)


def test_probes_follow_the_search_order():
    state = simulate([GOOD, GOOD, GOOD, BAD, BAD, BAD])
    assert state.probed == ["2", "4", "3"]
    assert (state.lo, state.hi) == (2, 3)
    state = simulate([GOOD] * 6)
    assert state.probed == ["2", "4", "5"]
    assert (state.lo, state.hi) == (5, 6)
    state = simulate([BAD] * 6)
    assert state.probed == ["2", "0"]
    assert (state.lo, state.hi) == (-1, 0)


def test_an_unknown_probe_searches_both_halves_and_keeps_the_exact_boundary():
    verdicts = [GOOD, GOOD, UNKNOWN, GOOD, BAD, BAD]
    state = simulate(verdicts)
    assert state.probed == ["2", "0", "4", "1", "3"]
    assert state.skipped == ["5"]
    assert state.unknown == {2}
    found = find_boundary(rows_for(verdicts, set(state.probed)))
    assert (found.lkg.target, found.fkb.target) == ("3", "4")


@pytest.mark.parametrize("n", range(2, 10))
def test_with_unknown_images_the_boundary_still_equals_the_full_runs(n):
    for verdicts in monotonic_histories(n):
        for hole in range(n):
            history = list(verdicts)
            history[hole] = UNKNOWN
            state = simulate(history)
            full = find_boundary(rows_for(history))
            partial = find_boundary(rows_for(history, set(state.probed)))
            assert (partial.lkg and partial.lkg.target) == (full.lkg and full.lkg.target)
            assert (partial.fkb and partial.fkb.target) == (full.fkb and full.fkb.target)


def test_decide_once_per_target_and_unknown_targets_run():
    state = BisectState(["a", "b", "c"])
    assert state.order == ["b", "a", "c"]
    assert state.decide("b") is True
    assert state.decide("b") is True  # later tests of the same image run too
    state.record("b", BAD)
    assert state.decide("a") is True
    assert state.decide("c") is False
    assert state.decide("c") is False
    assert state.decide("not-in-bisection") is True
    assert state.skipped == ["c"]


@pytest.mark.parametrize("ids", [[], ["only"]])
def test_fewer_than_two_images_is_a_one_line_error(ids):
    with pytest.raises(InventoryError) as exc:
        BisectState(ids)
    assert str(exc.value) == (
        f"--ollama-bisect needs at least 2 images, got {len(ids)}: add --ollama-image"
    )
    assert "\n" not in str(exc.value)


def test_duplicate_images_are_an_error():
    with pytest.raises(InventoryError, match="same image twice"):
        BisectState(["a", "a"])
