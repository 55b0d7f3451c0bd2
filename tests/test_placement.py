"""xdist placement: the scheduler on simulated workers, test id parsing, and real ``-n 2`` runs.

The simulated workers behave like xdist's: a worker runs a test only once it knows the next one
(two queued) or was told to shut down, so a scheduler that leaves one test queued without a
shutdown hangs the run; the simulation fails instead.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_ollama_regress.placement.plugin import worker_count
from pytest_ollama_regress.placement.scheduling import TargetScheduling, group_scope, target_scope


class FakeWorker:
    def __init__(self, name: str) -> None:
        self.name = name
        self.queue: list[int] = []
        self.ran: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        assert not self.shutting_down, f"{self.name}: work sent after shutdown"
        self.queue.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True

    def can_run(self) -> bool:
        return len(self.queue) >= 2 or (self.shutting_down and bool(self.queue))

    def __repr__(self) -> str:
        return self.name


def collection(targets: dict[str, int], free: int) -> list[str]:
    """Test ids: ``count`` tests per target (grouped, as pytest orders them), then free ones."""
    ids = [f"test_a.py::test_x[{t}-{n}]" for t, count in targets.items() for n in range(count)]
    return ids + [f"test_b.py::test_free[{n}]" for n in range(free)]


def start(ids: list[str], targets: list[str], workers: int) -> tuple[TargetScheduling, list]:
    sched = TargetScheduling(workers, lambda nodeid: target_scope(nodeid, targets))
    nodes = [FakeWorker(f"gw{k}") for k in range(workers)]
    for node in nodes:
        sched.add_node(node)
    for node in nodes:
        assert not sched.collection_is_completed
        sched.add_node_collection(node, ids)
    assert sched.collection_is_completed
    sched.schedule()
    return sched, nodes


def drain(sched: TargetScheduling, nodes: list[FakeWorker], seed: int = 0) -> None:
    """Run the workers in a random interleaving until every one is done; fail on a hang."""
    rng = random.Random(seed)
    running = list(nodes)
    for _ in range(100_000):
        for node in [n for n in running if n.shutting_down and not n.queue]:
            running.remove(node)  # the worker finished its session: xdist removes it
            assert sched.remove_node(node) is None
        runnable = [n for n in running if n.can_run()]
        if not runnable:
            break
        node = rng.choice(runnable)
        index = node.queue.pop(0)
        node.ran.append(index)
        sched.mark_test_complete(node, index)
    assert not running, f"workers left waiting: {[(n, n.queue, n.shutting_down) for n in running]}"
    assert sched.tests_finished and not sched.has_pending  # else xdist's loop never ends


def placement(sched: TargetScheduling, nodes: list[FakeWorker]) -> dict[str, set[str]]:
    """Target id -> the workers that ran its tests."""
    where: dict[str, set[str]] = {}
    for node in nodes:
        for index in node.ran:
            scope = sched.scope_of(sched.collection[index])
            if scope is not None:
                where.setdefault(scope, set()).add(node.name)
    return where


# test ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("t.py::test_x[4beecd8]", "4beecd8"),
        ("t.py::test_x[4beecd8-short-warm]", "4beecd8"),
        ("t.py::Test::test_x[sim-good-3]", "sim-good"),
        ("t.py::test_x[sim-good-x-3]", "sim-good-x"),  # the longer id wins
        ("t.py::test_x[3-sim-good]", "sim-good"),  # another plugin parametrized first
        ("t.py::test_x[3-sim-good-warm]", "sim-good"),
        ("t.py::test_x[sim-good]@mygroup", "sim-good"),  # loadgroup suffix (pytest < 9.2)
        ("t.py::test_x[good]", None),
        ("t.py::test_x[sim-goodness]", None),
        ("t.py::test_x", None),
        ("t.py::test_x[lab\\xe9l]", "labél".encode("unicode_escape").decode()),
        ("a[1]/t-sim-good-x.py::test_x[3]", None),  # a path is not a parameter
        ("t.py::test_x[[::1]:11434-short]", "[::1]:11434"),  # an IPv6 URL target
    ],
)
def test_target_scope_reads_the_target_id(nodeid: str, expected: str | None) -> None:
    targets = ["sim-good", "sim-good-x", "4beecd8", "labél", "[::1]:11434"]
    assert target_scope(nodeid, targets) == expected


def test_group_scope_reads_the_loadgroup_suffix() -> None:
    assert group_scope("t.py::test_x[1]@db") == "@db"
    assert group_scope("t.py::test_x[a@b]") is None
    assert group_scope("t.py::test_x") is None


def test_worker_count_from_tx_specs() -> None:
    assert worker_count(["4*popen"]) == 4
    assert worker_count(["popen", "2*popen//python=python3.12", "ssh=host"]) == 4
    assert worker_count([]) == 0


# the scheduler -------------------------------------------------------------------------------


def test_two_images_over_two_workers_one_each() -> None:
    targets = {"aaaaaaa": 6, "bbbbbbb": 6}
    sched, nodes = start(collection(targets, free=0), list(targets), 2)
    drain(sched, nodes)
    assert placement(sched, nodes) == {"aaaaaaa": {"gw0"}, "bbbbbbb": {"gw1"}}


def test_one_image_with_two_workers_stays_on_one_and_free_tests_use_the_other() -> None:
    sched, nodes = start(collection({"aaaaaaa": 5}, free=8), ["aaaaaaa"], 2)
    drain(sched, nodes)
    assert len(placement(sched, nodes)["aaaaaaa"]) == 1
    assert all(node.ran for node in nodes)  # the other worker got the free tests


def test_a_single_test_per_worker_does_not_hang() -> None:
    sched, nodes = start(collection({"aaaaaaa": 1, "bbbbbbb": 1}, free=1), ["aaaaaaa", "bbbbbbb"], 3)
    drain(sched, nodes)
    assert sorted(i for n in nodes for i in n.ran) == [0, 1, 2]


def test_no_tests_at_all() -> None:
    sched, nodes = start([], ["aaaaaaa"], 2)
    drain(sched, nodes)
    assert all(node.shutting_down for node in nodes)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 7), min_size=1, max_size=7),
    free=st.integers(0, 30),
    workers=st.integers(1, 5),
    seed=st.integers(0, 10_000),
)
def test_every_test_runs_once_each_target_on_one_worker_spread_evenly(
    counts: list[int], free: int, workers: int, seed: int
) -> None:
    targets = {f"t{k}abcde": count for k, count in enumerate(counts)}
    ids = collection(targets, free)
    sched, nodes = start(ids, list(targets), workers)
    drain(sched, nodes, seed)
    ran = Counter(i for node in nodes for i in node.ran)
    assert ran == Counter(range(len(ids)))
    where = placement(sched, nodes)
    assert all(len(on) == 1 for on in where.values()), where
    per_worker = Counter(next(iter(on)) for on in where.values())
    units = [per_worker.get(node.name, 0) for node in nodes]
    assert max(units) - min(units) <= 1, units  # N images over W workers: N//W or N//W + 1


def test_a_crashed_workers_target_moves_whole_to_another_worker() -> None:
    targets = {"aaaaaaa": 4, "bbbbbbb": 4, "ccccccc": 4}
    ids = collection(targets, free=0)  # aaaaaaa's tests are ids[0:4]
    sched, nodes = start(ids, list(targets), 3)
    victim = next(n for n in nodes if 0 in n.queue)
    assert victim.queue == [0, 1, 2, 3]
    victim.queue.pop(0)
    sched.mark_test_complete(victim, 0)  # the first test passed, the second one crashes
    assert sched.remove_node(victim) == ids[1]
    nodes.remove(victim)
    assert sched.has_pending and not sched.tests_finished  # the others are shutting down
    replacement = FakeWorker("gw3")  # xdist restarts a crashed worker
    sched.add_node(replacement)
    sched.add_node_collection(replacement, ids)
    sched.schedule()
    assert replacement.queue == [2, 3]  # the rest of aaaaaaa went whole to it
    drain(sched, [*nodes, replacement])
    assert replacement.ran == [2, 3]  # the crashed test is reported by xdist, not run again


def test_a_worker_with_a_different_collection_gets_no_work() -> None:
    ids = collection({"aaaaaaa": 3}, free=2)
    mismatches: list[tuple[str, str]] = []
    sched = TargetScheduling(
        2, lambda n: target_scope(n, ["aaaaaaa"]), on_mismatch=lambda *a: mismatches.append(a)
    )
    one, two = FakeWorker("gw0"), FakeWorker("gw1")
    sched.add_node(one)
    sched.add_node(two)
    sched.add_node_collection(one, ids)
    sched.add_node_collection(two, ids[:-1])
    sched.schedule()
    assert mismatches and mismatches[0][0] == "gw1"
    assert not one.queue and not two.queue


# real runs: pytest-xdist with simulators (every worker starts its own in-process simulators) --

WHERE = """
import json, os, pytest

@pytest.fixture(autouse=True)
def _where(request, pytestconfig):
    yield
    param = getattr(request.node, "callspec", None)
    target = param.params.get("ollama_target") if param else None
    line = {"test": request.node.name, "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
            "target": str(target) if target is not None else None}
    with open(pytestconfig.rootpath / "where.jsonl", "a") as fh:
        fh.write(json.dumps(line) + "\\n")
"""

TESTS = """
import pytest

@pytest.mark.parametrize("n", range(4))
def test_x(ollama, ollama_target, n):
    assert ollama.version() == ollama_target.server_version

@pytest.mark.ollama_env(OLLAMA_NUM_PARALLEL="2")
def test_env(ollama_target):
    assert ollama_target.env == {"OLLAMA_NUM_PARALLEL": "2"}

@pytest.mark.parametrize("n", range(6))
def test_free(n):
    pass
"""


def where(pytester: pytest.Pytester) -> dict[str, set[str]]:
    lines = (pytester.path / "where.jsonl").read_text().splitlines()
    found: dict[str, set[str]] = {}
    for line in map(json.loads, lines):
        found.setdefault(line["target"] or "-", set()).add(line["worker"])
    return found


@pytest.mark.parametrize(
    ("dist", "sims", "per_worker"),
    [
        ([], ["good", "vision-miscount", "slow-ttft", "numctx-sticky"], [2, 2]),
        (["--dist", "loadgroup"], ["good", "vision-miscount"], [1, 1]),
        ([], ["good"], [1, 0]),
    ],
    ids=["4-targets-default-dist", "2-targets-loadgroup", "1-target"],
)
def test_each_target_runs_on_one_worker(
    pytester: pytest.Pytester, dist: list[str], sims: list[str], per_worker: list[int]
) -> None:
    pytester.makeconftest(WHERE)
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", *dist, *(f"--ollama-sim={s}" for s in sims), "-v",
        timeout=180,
    )
    result.assert_outcomes(passed=5 * len(sims) + 6)
    result.stdout.fnmatch_lines([
        f"ollama xdist: each target's tests run on one worker ({len(sims)} target(s), --dist "
        f"{dist[1] if dist else 'load'})",
        "scheduling tests via TargetScheduling",
    ])
    found = where(pytester)
    assert set(found) == {f"sim-{s}" for s in sims} | {"-"}
    assert all(len(found[f"sim-{s}"]) == 1 for s in sims), found
    spread = Counter(next(iter(found[f"sim-{s}"])) for s in sims)
    assert sorted((spread.get(w, 0) for w in ("gw0", "gw1")), reverse=True) == per_worker


@pytest.mark.parametrize(
    ("args", "scheduler", "header"),
    [
        (["--dist", "load", "--ollama-sim=good"], "TargetScheduling",
         "ollama xdist: each target's tests run on one worker (1 target(s), --dist load)"),
        (["--dist", "loadgroup", "--ollama-sim=good", "--ollama-sim=slow-ttft"],
         "TargetScheduling",
         "ollama xdist: each target's tests run on one worker (2 target(s), --dist loadgroup)"),
        (["--dist", "loadfile", "--ollama-sim=good"], "LoadFileScheduling",
         "ollama xdist: --dist loadfile may run a target's tests on several workers, each "
         "starting its own container; use --dist load (the default) to keep each target on one "
         "worker"),
        # the implicit simulator must not take over the scheduling of unrelated test suites
        (["--dist", "load"], "LoadScheduling", None),
    ],
    ids=["load", "loadgroup", "loadfile", "no-named-target"],
)
def test_which_scheduler_and_what_the_header_says(
    pytester: pytest.Pytester, args: list[str], scheduler: str, header: str | None
) -> None:
    # what ``-n 2`` turns into (xdist does it in pytest_cmdline_main, which parseconfigure skips)
    config = pytester.parseconfigure("--tx", "2*popen", *args)
    made = config.hook.pytest_xdist_make_scheduler(config=config, log=None)
    assert type(made).__name__ == scheduler
    lines = [
        line
        for group in config.hook.pytest_report_header(config=config, start_path=pytester.path)
        for line in group
        if line.startswith("ollama xdist")
    ]
    assert lines == ([header] if header else [])


def test_the_target_parametrization_comes_first(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_generate_tests(metafunc):
            if "extra" in metafunc.fixturenames:
                metafunc.parametrize("extra", ["e1"])
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", [1])
        def test_x(ollama_target, extra, n):
            pass
        """
    )
    result = pytester.runpytest("--collect-only", "-q", "--ollama-sim=good")
    result.stdout.fnmatch_lines(["test_*.py::test_x[[]sim-good-*]"])


def test_a_test_marked_pending_again_runs_with_its_target_or_among_the_free() -> None:
    targets = {"aaaaaaa": 3, "bbbbbbb": 3}
    ids = collection(targets, free=4)
    sched, nodes = start(ids, list(targets), 2)
    owner = next(n for n in nodes if 0 in n.queue)
    sched.mark_test_pending(ids[1])  # e.g. a rerun plugin: aaaaaaa's test goes to its worker
    assert owner.queue.count(1) == 2 and all(n is owner or 1 not in n.queue for n in nodes)
    sched.mark_test_pending(ids[-1])  # a free test is queued again (first in line)
    drain(sched, nodes)
    ran = sorted(i for n in nodes for i in n.ran)
    assert ran == sorted([*range(len(ids)), 1, len(ids) - 1])


def test_tests_taken_back_from_a_worker_are_queued_again() -> None:
    targets = {"aaaaaaa": 4}
    ids = collection(targets, free=40)  # free work left: no worker is shutting down yet
    sched, nodes = start(ids, list(targets), 2)
    owner = next(n for n in nodes if 0 in n.queue)
    owner.queue.remove(3)
    sched.remove_pending_tests_from_node(owner, [3])  # its unit's worker gets it back
    assert owner.queue[-1] == 3
    drain(sched, nodes)
    target_ran = [i for n in nodes for i in n.ran if i < 4]
    assert sorted(target_ran) == [0, 1, 2, 3] and set(target_ran) <= set(owner.ran)
