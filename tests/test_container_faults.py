"""No container and no helper process outlives a run, however it ends (real engine).

Each test ends an inner run in one way (signals, interrupts at the worst moments, a failing
plugin hook, SIGKILL) and counts what the run leaves: containers labelled with its pid and
processes working for it (its watchdog, log followers, compose commands). Where the run itself
must have cleaned up, its watchdog's log must show it had nothing to do.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from containers_support import (
    RECORD,
    children,
    container_names,
    inner_pid,
    inner_pids,
    ours,
    run,
    settle,
    start_inner,
    start_sleeper,
    wait_for,
    watchdog_of,
)

pytestmark = pytest.mark.docker

HANDED_OVER = "ended without removing its containers"


def watchdog_log(pytester: pytest.Pytester) -> str:
    logs = list((pytester.path / "bt").glob("ollama-containers*/watchdog.log"))
    return "".join(p.read_text() for p in logs)


def assert_cleaned_by_the_run(pytester: pytest.Pytester, pid: str, names: list[str]) -> None:
    assert ours(pid) == []  # at once, not after the watchdog
    left, procs = settle(pid, names)
    assert left == [] and procs == {}
    assert HANDED_OVER not in watchdog_log(pytester)


def test_sigint_brings_containers_down(pytester, sim_images) -> None:
    proc, pid = start_sleeper(pytester, sim_images["good"]["tag"])
    names = container_names(pid)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, (out, err)
    assert b"KeyboardInterrupt" in out
    assert_cleaned_by_the_run(pytester, pid, names)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_sigterm_and_sighup_end_the_run_like_ctrl_c(pytester, sim_images, sig) -> None:
    proc, pid = start_sleeper(pytester, sim_images["good"]["tag"])
    names = container_names(pid)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, (out, err)
    assert f"KeyboardInterrupt: {sig.name}".encode() in out
    assert_cleaned_by_the_run(pytester, pid, names)


def test_ctrl_c_during_compose_up_lets_it_finish_before_down(pytester, sim_images) -> None:
    """A terminal's Ctrl-C (the whole process group) 0.3 s into `compose up`."""
    pytester.makepyfile(test_inner=RECORD)
    proc = start_inner(pytester, sim_images["good"]["tag"], start_new_session=True)
    up = wait_for(lambda: children(proc.pid, " up -d"), 120, "compose up", proc)
    time.sleep(0.3)
    assert children(proc.pid, " up -d") == up, "compose up ended too soon for this test"
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, (out, err)
    assert_cleaned_by_the_run(pytester, str(proc.pid), [])


def test_second_ctrl_c_during_down_is_absorbed(pytester, sim_images) -> None:
    proc, pid = start_sleeper(pytester, sim_images["good"]["tag"], start_new_session=True)
    names = container_names(pid)
    os.killpg(proc.pid, signal.SIGINT)
    wait_for(lambda: children(pid, " down -v"), 60, "compose down", proc)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, (out, err)
    assert b"SIGINT received while" in err and b"finishing it first" in err
    assert_cleaned_by_the_run(pytester, pid, names)


def test_third_ctrl_c_hands_the_rest_to_the_watchdog(pytester, sim_images) -> None:
    proc, pid = start_sleeper(pytester, sim_images["good"]["tag"], start_new_session=True)
    names = container_names(pid)
    os.killpg(proc.pid, signal.SIGINT)
    wait_for(lambda: children(pid, " down -v"), 60, "compose down", proc)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert b"leaving the rest of the clean-up to the watchdog" in err, err
    left, procs = settle(pid, names)
    assert left == [] and procs == {}


@pytest.mark.parametrize("order", ["", "@pytest.hookimpl(tryfirst=True)"], ids=["plain", "tryfirst"])
def test_a_failing_unconfigure_elsewhere_does_not_skip_the_clean_up(pytester, sim_images,
                                                                    order) -> None:
    pytester.makeconftest(f"""
import pytest

{order}
def pytest_unconfigure(config):
    raise RuntimeError("a user's pytest_unconfigure failed")
""")
    pytester.makepyfile(test_inner=RECORD)
    result, _ = run(pytester, f"--ollama-image={sim_images['good']['tag']}")
    assert "a user's pytest_unconfigure failed" in result.stdout.str() + result.stderr.str()
    pid = inner_pid(pytester)
    assert_cleaned_by_the_run(pytester, pid, [])


def test_sigkill_is_cleaned_up_by_the_watchdog(pytester, sim_images) -> None:
    proc, pid = start_sleeper(pytester, sim_images["good"]["tag"])
    names = container_names(pid)
    proc.kill()
    proc.communicate(timeout=60)
    left, procs = settle(pid, names)
    assert left == [] and procs == {}
    assert HANDED_OVER in watchdog_log(pytester)


def test_sigkilled_run_without_its_watchdog_is_reaped_by_the_next(pytester, sim_images) -> None:
    proc, pid = start_sleeper(pytester, sim_images["good"]["tag"])
    dog = watchdog_of(pid)
    assert dog is not None
    os.kill(dog, signal.SIGKILL)
    proc.kill()
    proc.communicate(timeout=60)
    assert len(ours(pid)) == 1
    (pytester.path / "test_inner.py").unlink()
    pytester.makepyfile(test_other="def test_nothing(): pass")
    result, _ = run(pytester, f"--ollama-image={sim_images['regressed']['tag']}")
    result.assert_outcomes(passed=1)
    # other dead runs' leftovers may be reaped too; ours must be among them
    result.stdout.fnmatch_lines(["ollama containers: reaped * container(s) of dead runs (*olr-*)"])
    assert ours(pid) == []


@pytest.mark.parametrize("name", ['bt$(touch PWNED)x', 'bt"q`touch PWNED`'],
                         ids=["command-substitution", "quote-and-backquote"])
def test_the_compose_file_path_never_reaches_a_shell(pytester, sim_images, name) -> None:
    pytester.makepyfile(test_inner=RECORD)
    basetemp = pytester.path / name
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--basetemp={basetemp}",
        f"--ollama-image={sim_images['good']['tag']}", timeout=300,
    )
    assert not list(Path(pytester.path).rglob("PWNED")), "a shell ran a command from the path"
    result.assert_outcomes(passed=1)
    assert list(basetemp.glob("ollama-containers*/*/compose.yaml"))
    assert ours(inner_pid(pytester)) == []


CRASH = RECORD + """
import signal


def test_crash(ollama, ollama_target):
    me = os.getpid()
    for entry in os.listdir("/proc"):  # its watchdog first: only the controller is left to help
        try:
            cmd = open("/proc/%s/cmdline" % entry, "rb").read().replace(b"\\\\0", b" ").decode()
        except OSError:
            continue
        if ("pytest_ollama_regress.containers.watchdog --pid %d " % me) in cmd + " ":
            os.kill(int(entry), signal.SIGKILL)
    os.kill(me, signal.SIGKILL)
"""


def test_a_crashed_xdist_workers_containers_are_removed_by_the_controller(pytester,
                                                                         sim_images) -> None:
    pytester.makepyfile(test_inner=CRASH)
    result, _ = run(pytester, "-n", "2", f"--ollama-image={sim_images['good']['tag']}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*ollama containers of crashed xdist workers*",
        "removed 1 container(s) of dead worker gw?: olr-*-gw?-*-ollama",
    ])
    pids = inner_pids(pytester)
    assert pids  # the plugin's scheduler keeps the image's tests on one worker: one pid or two
    assert all(ours(pid) == [] for pid in pids)
