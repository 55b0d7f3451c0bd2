"""The inventory against real containers of the locally built simulator images.

An older good image and a newer regressed one (revision labels set), and a six-image history
(good, good, good, vision-ignored x3) for bisection. Containers started are counted from the
engine's own event log, filtered by the pid label every container of a run carries.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest

from pytest_ollama_regress.containers.compose_file import LABEL_PID
from pytest_ollama_regress.inventory.boundary import DEFAULT_DIFF_PATHS

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_step_summary")]

CHECKS = """
import os
import pytest
from pytest_ollama_regress.suite.pictures import make_picture


@pytest.fixture(scope="session", autouse=True)
def _pid(pytestconfig):
    (pytestconfig.rootpath / "pid.txt").write_text(str(os.getpid()))


@pytest.mark.vision
def test_sees_the_picture(ollama):
    picture = make_picture(3, "red")
    answer = ollama.chat(
        "llava:7b",
        [{"role": "user", "content": "What do you see?", "images": [picture.png]}],
        stream=False,
    )
    assert "red" in answer.text.lower() and "3" in answer.text


@pytest.mark.numctx
def test_version(ollama):
    assert ollama.version()
"""


def started_containers(pid: str, since: float, until: float) -> int:
    """How many containers the engine started for the pytest process ``pid``."""
    out = subprocess.run(
        ["docker", "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
         "--filter", "type=container", "--filter", "event=start",
         "--filter", f"label={LABEL_PID}={pid}", "--format", "{{.Actor.ID}}"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return len(out.stdout.split())


def run_inner(pytester, *args: str):
    """A subprocess pytest run; returns (result, containers it started)."""
    pytester.makepyfile(test_checks=CHECKS)
    since = time.time() - 1
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=600)
    until = time.time() + 1
    pid = (pytester.path / "pid.txt").read_text()
    return result, started_containers(pid, since, until)


def section(result) -> list[str]:
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "ollama inventory" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("=")), len(lines))
    return lines[start + 1 : end]


def test_inventory_rows_boundary_and_git_diff(pytester, sim_images):
    good, bad = sim_images["good"], sim_images["regressed"]
    # given newest first: the boundary orders by created time
    result, started = run_inner(
        pytester, f"--ollama-image={bad['id']}", f"--ollama-image={good['tag']}",
        "--ollama-inventory=inv.json",
    )
    result.assert_outcomes(passed=3, failed=1)
    assert started == 2
    data = json.loads((pytester.path / "inv.json").read_text())
    rows = [{k: r[k] for k in ("target", "short_id", "image_id", "repo_tags", "created_utc",
                                "revision", "source", "version", "server_version")}
            for r in data["rows"]]
    expected = []
    for image in (good, bad):
        labels = image["labels"]
        expected.append({
            "target": image["short_id"], "short_id": image["short_id"], "image_id": image["id"],
            "repo_tags": image["repo_tags"], "created_utc": image["created"][:19] + "Z",
            "revision": image["revision"],
            "source": labels["org.opencontainers.image.source"],
            "version": image["version"], "server_version": image["version"],
        })
    assert rows == expected
    assert [r["statuses"] for r in data["rows"]] == [
        {"vision": {"status": "OK", "first_failure": None},
         "numctx": {"status": "OK", "first_failure": None}},
        {"vision": {"status": "FAIL", "first_failure":
                    f"test_checks.py::test_sees_the_picture[{bad['short_id']}]"},
         "numctx": {"status": "OK", "first_failure": None}},
    ]
    diff = (f"git diff {good['revision']}..{bad['revision']} -- "
            + " ".join(DEFAULT_DIFF_PATHS))
    assert section(result)[-4:] == [
        "order: created time, oldest first",
        f"LKG {good['short_id']} FKB {bad['short_id']} boundary "
        f"{good['short_id']}..{bad['short_id']}",
        diff,
        "inventory written: inv.json",
    ]
    assert data["boundary"]["git_diff"] == diff


def test_bisect_starts_ceil_log2_plus_one_containers_at_most(pytester, sim_images):
    history = [sim_images[f"hist-{n}"] for n in range(1, 7)]
    refs = [f"--ollama-image={image['id']}" for image in reversed(history)]
    result, started = run_inner(pytester, *refs, "--ollama-bisect", "-m", "vision",
                                "--ollama-diff-paths", "server/images.go")
    short = [image["short_id"] for image in history]
    # good good good | bad bad bad: probes hist-3 (good), hist-5 (bad), hist-4 (bad)
    assert started == 3 <= math.ceil(math.log2(6)) + 1
    result.assert_outcomes(passed=1, failed=2, skipped=3, deselected=6)
    lines = section(result)
    assert [line.split()[0] for line in lines[2:8]] == short
    assert [line.endswith("not tested (bisect)") for line in lines[2:8]] == [
        True, True, False, False, False, True
    ]
    assert lines[-3:] == [
        f"LKG {short[2]} FKB {short[3]} boundary {short[2]}..{short[3]}",
        f"git diff {history[2]['revision']}..{history[3]['revision']} -- server/images.go",
        f"bisect: tested 3 of 6 images ({short[2]} {short[4]} {short[3]}); "
        f"not tested: {short[0]} {short[1]} {short[5]}",
    ]


def test_full_run_of_the_history_finds_the_same_boundary(pytester, sim_images):
    history = [sim_images[f"hist-{n}"] for n in range(1, 7)]
    result, started = run_inner(pytester, *(f"--ollama-image={i['id']}" for i in history),
                                "-m", "vision", "--ollama-diff-paths", "server/images.go")
    assert started == 6
    result.assert_outcomes(passed=3, failed=3, deselected=6)
    short = [image["short_id"] for image in history]
    assert section(result)[-2:] == [
        f"LKG {short[2]} FKB {short[3]} boundary {short[2]}..{short[3]}",
        f"git diff {history[2]['revision']}..{history[3]['revision']} -- server/images.go",
    ]


def test_inventory_command_inspects_without_starting_containers(sim_images, tmp_path):
    good, bad = sim_images["good"], sim_images["regressed"]
    since = time.time() - 1
    out = subprocess.run(
        [sys.executable, "-m", "pytest_ollama_regress.cli", "inventory", bad["tag"], good["id"],
         "--format", "csv"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("target,ref,kind,short_id,image_id,repo_tags")
    assert lines[1] == (
        f"{bad['short_id']},{bad['tag']},image,{bad['short_id']},{bad['id']},{bad['tag']},,"
        f"{bad['created'][:19]}Z,{bad['revision']},"
        f"{bad['labels']['org.opencontainers.image.source']},{bad['version']},,,,"
    )
    assert lines[2].startswith(f"{good['short_id']},{good['id']},image,")
    probe = subprocess.run(
        ["docker", "events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
         "--filter", "type=container", "--filter", "event=start",
         "--filter", f"image={good['id']}", "--format", "{{.Actor.ID}}"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert probe.stdout.split() == []
    md = tmp_path / "inv.md"
    out = subprocess.run(
        [sys.executable, "-m", "pytest_ollama_regress.cli", "inventory", good["tag"], "-o",
         str(md)], capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert f"| {good['short_id']} | {good['short_id']} | {good['id']} |" in md.read_text()



def test_inventory_command_on_an_unknown_tag_suggests_what_this_command_accepts(
    docker_engine_info,
):
    out = subprocess.run(
        [sys.executable, "-m", "pytest_ollama_regress.cli", "inventory", "nosuch:tag"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode != 0 and out.stdout == ""
    assert out.stderr.count("\n") == 1
    assert "no such image" in out.stderr and "docker pull nosuch:tag" in out.stderr
    assert "--ollama-pull" not in out.stderr  # an option of pytest, not of this command
