"""``--ollama-image`` against a real engine and the locally built simulator images.

Every inner run is a pytest subprocess whose test writes its pid to ``pid.txt``; the containers
it owns are found by its pid and the pid's start time (see ``containers_support``).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter

import pytest
from containers_support import RECORD, inner_pid, inner_pids, ours, records, run

from pytest_ollama_regress.containers.compose_file import LABEL_KEEP, LABEL_PID

pytestmark = pytest.mark.docker

def test_ids_and_metadata_by_full_id_short_id_tag_and_label(pytester, sim_images,
                                                             docker_engine_info) -> None:
    good, bad, hist = sim_images["good"], sim_images["regressed"], sim_images["hist-2"]
    pytester.makepyfile(test_inner=RECORD)
    result, basetemp = run(
        pytester, "-v", f"--ollama-image={good['id']}", f"--ollama-image={bad['short_id']}",
        f"--ollama-image=h2={hist['tag']}",
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines_random([
        f"*test_record?{good['short_id']}? PASSED*",
        f"*test_record?{bad['short_id']}? PASSED*",
        "*test_record?h2? PASSED*",
        f"  {good['short_id']}: image {good['id'][:19]}… (ollama-regress-sim:good), created "
        f"{good['created']}, revision {good['revision'][:12]}, Ollama, starts on first use",
        # the private CI engine has no bridge network; a GitHub runner's engine has one
        "ollama containers: Docker * compose *, network bridge (auto: the engine has a bridge "
        "network)" if docker_engine_info.has_bridge else
        "ollama containers: Docker * compose *, network host (auto: the engine has no bridge "
        "network)",
        "ollama containers: GPUs none (auto: no NVIDIA runtime on the engine*",
        "ollama containers: reaped * container(s) of dead runs*",
    ])
    recs = records(basetemp)
    assert set(recs) == {good["short_id"], bad["short_id"], "h2"}
    for image, rec in ((good, recs[good["short_id"]]), (bad, recs[bad["short_id"]]),
                       (hist, recs["h2"])):
        meta = rec["metadata"]
        assert meta["image_id"] == image["id"] and meta["short_id"] == image["short_id"]
        assert meta["repo_tags"] == [image["tag"]] and meta["repo_digests"] == []
        assert meta["created"] == image["created"]
        assert meta["revision"] == image["revision"] and meta["version"] == image["version"]
        assert meta["source"] and meta["oci_created"] == image["labels"][
            "org.opencontainers.image.created"]
        assert rec["server_version"] == rec["version"] == image["version"]
        assert rec["url"].startswith("http://127.0.0.1:") and rec["running"] >= 1
    assert recs["h2"]["metadata"]["ref"] == f"h2={hist['tag']}"
    assert len({rec["url"] for rec in recs.values()}) == 3
    assert ours(inner_pid(pytester)) == []


def test_failing_test_gets_the_container_log_and_everything_is_removed(pytester, sim_images):
    good = sim_images["good"]
    pytester.makepyfile(test_inner=RECORD + """

def test_fails(ollama):
    ollama.version()
    assert False, "deliberate"
""")
    result, _ = run(pytester, f"--ollama-image={good['tag']}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        f"*- ollama log: {good['short_id']} (last lines) -*",
        f"*Listening on 127.0.0.1:* (version {good['version']})*",
    ])
    assert ours(inner_pid(pytester)) == []


def test_an_image_that_never_answers_costs_the_start_timeout_once(pytester, sim_images) -> None:
    """Two environments of one hanging image: one start timeout, not two."""
    hangs = sim_images["hang"]
    pytester.makepyfile(test_inner=RECORD + """

@pytest.mark.ollama_env(OLLAMA_NUM_PARALLEL="2")
def test_other_env(ollama):
    pass
""")
    result, _ = run(pytester, f"--ollama-image={hangs['tag']}", "--ollama-start-timeout=8")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([
        f"*{hangs['short_id']}: not started with this environment: the image failed to start "
        "earlier (env *): * within 8s (raise --ollama-start-timeout)*"
    ])
    seconds = float(re.findall(r" in ([0-9.]+)s", result.stdout.lines[-1])[0])
    assert seconds < 2 * 8, result.stdout.lines[-1]  # one start timeout, not two
    assert ours(inner_pid(pytester)) == []


def test_exit_during_start_and_start_timeout(pytester, sim_images) -> None:
    dies, hangs = sim_images["fail-at-start"], sim_images["hang"]
    pytester.makepyfile(test_inner=RECORD)
    started = time.monotonic()
    result, _ = run(
        pytester, f"--ollama-image={dies['tag']}", f"--ollama-image={hangs['tag']}",
        "--ollama-start-timeout=3",
    )
    elapsed = time.monotonic() - started
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines_random([
        f"{dies['short_id']} ({dies['tag']}): the container exited during start with exit code "
        "3; last log lines:",
        "Error: simulated start failure (OLLAMA_SIM_FAIL_AT_START=3)",
        f"{hangs['short_id']} ({hangs['tag']}): the server never logged 'Listening on "
        "127.0.0.1:<port>' within 3s (raise --ollama-start-timeout); last log lines:",
        "sim-hang: not listening",
    ])
    assert elapsed < 60, elapsed  # the dead one is reported at once, not after a timeout
    assert ours(inner_pid(pytester)) == []


PIN_PORT = """
import os

import pytest_ollama_regress.containers.provider as containers

# Two runs that drew the same port: the allocator the plugin had could be pinned to one; the
# plugin now lets the kernel (or Docker) pick, so there is nothing left to pin.
if hasattr(containers, "PortAllocator"):
    containers.PortAllocator.allocate = lambda self: int(os.environ["FOREIGN_PORT"])
"""


def test_a_server_already_on_the_port_is_never_tested_instead(pytester, sim_images,
                                                              monkeypatch) -> None:
    """Another server on the container's port: the verdict is about the image, or none."""
    from pytest_ollama_regress.sim import SimServer

    bad = sim_images["regressed"]
    with SimServer(profile="good", version="0.12.6", port=0) as foreign:
        monkeypatch.setenv("FOREIGN_PORT", str(foreign.port))
        pytester.makeconftest(PIN_PORT)
        pytester.makepyfile(test_inner=RECORD)
        result, basetemp = run(pytester, f"--ollama-image={bad['tag']}")
    result.assert_outcomes(passed=1)
    rec = records(basetemp)[bad["short_id"]]
    assert rec["url"] != foreign.url
    assert rec["server_version"] == rec["version"] == bad["version"]
    assert ours(inner_pid(pytester)) == []


def test_unknown_malformed_and_duplicate_images(pytester, sim_images) -> None:
    pytester.makepyfile(test_inner=RECORD)
    unknown, _ = run(pytester, "--ollama-image=ollama-regress-sim:no-such-tag")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines([
        "ERROR: --ollama-image ollama-regress-sim:no-such-tag: no such image in the engine at "
        "DOCKER_HOST=*; pull it (docker pull ollama-regress-sim:no-such-tag) or pass "
        "--ollama-pull"
    ])
    no_id, _ = run(pytester, "--ollama-image=sha256:" + "0" * 64)
    assert no_id.ret == pytest.ExitCode.USAGE_ERROR
    no_id.stderr.fnmatch_lines([
        "ERROR: --ollama-image sha256:0000*: no such image in the engine at *; an image ID cannot "
        "be pulled: load or build the image "
        "into this engine (docker load -i FILE), or give repo:tag or repo@sha256:<digest> with "
        "--ollama-pull"
    ])
    good = sim_images["good"]
    twice, _ = run(pytester, f"--ollama-image={good['tag']}", f"--ollama-image={good['id']}")
    assert twice.ret == pytest.ExitCode.USAGE_ERROR
    twice.stderr.fnmatch_lines(["ERROR: --ollama-image * are the same image sha256:*; give it once"])


def test_gpu_request_on_a_gpu_less_engine_quotes_the_daemon(pytester, sim_images,
                                                            docker_engine_info) -> None:
    if docker_engine_info.has_nvidia:
        pytest.skip("this engine has an NVIDIA runtime")
    pytester.makepyfile(test_inner=RECORD)
    result, _ = run(pytester, f"--ollama-image={sim_images['good']['tag']}", "--ollama-gpus=all")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --ollama-gpus all: the Docker engine at * cannot give GPUs: Error response from "
        "daemon: could not select device driver * with capabilities: *gpu* pass "
        "--ollama-gpus none"
    ])
    bridge, _ = run(pytester, f"--ollama-image={sim_images['good']['tag']}",
                    "--ollama-network=bridge")
    if "bridge" not in docker_engine_info.networks:
        bridge.stderr.fnmatch_lines(["ERROR: --ollama-network bridge: the engine has no bridge*"])


def test_env_marker_models_dir_and_ollama_env(pytester, sim_images, tmp_path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    pytester.makepyfile(test_inner=RECORD + """

@pytest.mark.ollama_env(OLLAMA_NUM_PARALLEL="4")
def test_parallel(ollama, ollama_target):
    assert ollama_target.env["OLLAMA_NUM_PARALLEL"] == "4"
    assert ollama_target.env["OLLAMA_DEBUG"] == "1"
    (ollama_target.logs_path.parent.parent.parent / "par.txt").write_text(ollama_target.url)
""")
    good = sim_images["good"]
    result, basetemp = run(pytester, f"--ollama-image={good['id']}", "--ollama-env=OLLAMA_DEBUG=1",
                           f"--ollama-models-dir={models}")
    result.assert_outcomes(passed=2)
    plain = records(basetemp)[good["short_id"]]
    assert (basetemp / "par.txt").read_text() != plain["url"]  # two containers
    logs = sorted(basetemp.glob("ollama-containers[0-9]*/*/ollama.log"))
    assert len(logs) == 2
    texts = [p.read_text() for p in logs]
    assert all("OLLAMA_MODELS:/models" in t and "OLLAMA_DEBUG:" in t for t in texts)
    assert sum("OLLAMA_NUM_PARALLEL:4" in t for t in texts) == 1
    assert ours(inner_pid(pytester)) == []


LITERAL = """
import json, os, subprocess


def test_env_reaches_the_container_literally(ollama, ollama_target, pytestconfig):
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", "label=io.ollama-regress.pid=%d" % os.getpid()],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()
    data = json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True,
                                     text=True, timeout=30, check=True).stdout)[0]
    (pytestconfig.rootpath / "seen.json").write_text(json.dumps({
        "env": dict(item.split("=", 1) for item in data["Config"]["Env"]),
        "mounts": [[m["Source"], m["RW"]] for m in data["Mounts"]],
        "target_env": ollama_target.env,
    }))
"""


def test_env_values_and_models_path_reach_the_container_literally(pytester, sim_images,
                                                                   tmp_path) -> None:
    """No Compose interpolation: ``$HOME``, ``$$`` and ``${X:?msg}`` arrive as written; the
    models folder (a ``,`` in its path is fine) is read-only; secret values stay out of the
    header."""
    models = tmp_path / "models$HOME,x"
    (models / "manifests" / "registry.ollama.ai" / "library").mkdir(parents=True)  # holds models
    pytester.makepyfile(test_inner=RECORD + LITERAL)
    values = {"V": "$HOME", "P": "pa$$word", "X": "${X:?msg}", "D": "${DOCKER_HOST}",
              "HF_TOKEN": "hf_s3cr3t"}
    result, _ = run(pytester, f"--ollama-image={sim_images['good']['tag']}",
                    f"--ollama-models-dir={models}",
                    *(f"--ollama-env={k}={v}" for k, v in values.items()))
    result.assert_outcomes(passed=2)
    seen = json.loads((pytester.path / "seen.json").read_text())
    assert {k: seen["env"][k] for k in values} == values
    assert {k: seen["target_env"][k] for k in values} == values
    assert seen["mounts"] == [[str(models), False]] and seen["env"]["OLLAMA_NOPRUNE"] == "1"
    result.stdout.fnmatch_lines([
        f"ollama containers: GPUs * models dir {models} -> /models (read-only, OLLAMA_NOPRUNE=1 "
        "for Ollama; --ollama-models-rw to pull or delete models); env V=$HOME * HF_TOKEN=***"
    ])
    assert "hf_s3cr3t" not in result.stdout.str() + result.stderr.str()
    assert ours(inner_pid(pytester)) == []


def test_exitfirst_leaves_nothing(pytester, sim_images) -> None:
    pytester.makepyfile(test_inner=RECORD + """

def test_a_fails(ollama):
    assert False

def test_b_never_runs(ollama):
    pass
""")
    result, _ = run(pytester, "-x", f"--ollama-image={sim_images['good']['tag']}",
                    f"--ollama-image={sim_images['regressed']['tag']}")
    result.assert_outcomes(passed=1, failed=1)
    assert ours(inner_pid(pytester)) == []


def test_keep_leaves_containers_and_says_how_to_reach_them(pytester, sim_images) -> None:
    pytester.makepyfile(test_inner=RECORD)
    good = sim_images["good"]
    result, basetemp = run(pytester, f"--ollama-image={good['tag']}", "--ollama-keep")
    pid = inner_pid(pytester)
    try:
        result.assert_outcomes(passed=1)
        url = records(basetemp)[good["short_id"]]["url"]
        result.stdout.fnmatch_lines([
            "*ollama containers kept (--ollama-keep)*",
            f"{good['short_id']}: {url} (container olr-*-ollama; stop it with: docker rm -f olr-*)",
        ])
        kept = ours(pid, running_only=True)
        assert len(kept) == 1
        labels = subprocess.run(
            ["docker", "inspect", "--format", "{{json .Config.Labels}}", kept[0]],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
        assert json.loads(labels)[LABEL_KEEP] == "1"  # the reaper leaves it alone
        import httpx

        assert httpx.get(url + "/api/version", timeout=5).json()["version"] == good["version"]
    finally:
        ids = ours(pid)
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, timeout=60)


def created_containers(since: float, until: float, pids: list[str]) -> Counter:
    """Containers the engine created between two times for these pids, counted per image."""
    out = subprocess.run(
        ["docker", "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--filter",
         "type=container", "--filter", "event=create", "--format", "{{json .Actor.Attributes}}"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    return Counter(e["image"] for e in events if e.get(LABEL_PID) in pids)


@pytest.mark.parametrize("images", [("good", "regressed"), ("good",)], ids=["2-images", "1-image"])
def test_xdist_starts_one_container_per_image_on_distinct_ports(
    pytester, sim_images, images
) -> None:
    """``-n 2`` (xdist's default --dist load): each image's tests on one worker, so the engine
    creates exactly one container per image (counted from docker events); each worker has
    removed its containers before it reports itself finished (after that, the controller ends
    it within seconds, whatever it is doing)."""
    pytester.makeconftest("""
import os, subprocess
import pytest

# innermost: after every session-finish hook, before xdist reports the worker finished
@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session):
    result = yield
    if hasattr(session.config, "workerinput"):
        out = subprocess.run(
            ["docker", "ps", "-aq", "--filter", "label=io.ollama-regress.pid=%d" % os.getpid()],
            capture_output=True, text=True, timeout=30, check=True,
        )
        (session.config.rootpath / ("left-%d.txt" % os.getpid())).write_text(out.stdout)
    return result
""")
    pytester.makepyfile(test_inner=RECORD + """

def test_second(ollama):
    assert ollama.version()
""")
    chosen = [sim_images[name] for name in images]
    since = time.time() - 1
    result, basetemp = run(pytester, "-n", "2", *(f"--ollama-image={i['tag']}" for i in chosen))
    result.assert_outcomes(passed=2 * len(chosen))
    recs = records(basetemp)
    assert set(recs) == {i["short_id"] for i in chosen}
    assert len({rec["url"] for rec in recs.values()}) == len(chosen)
    pids = inner_pids(pytester)
    created = created_containers(since, time.time() + 1, pids)
    assert created == Counter({i["id"]: 1 for i in chosen}), created
    left = {pid: (pytester.path / f"left-{pid}.txt").read_text().split() for pid in pids}
    assert left == {pid: [] for pid in pids}
    assert all(ours(pid) == [] for pid in pids)


def test_compose_v1_only_is_refused_before_any_test(pytester, sim_images, monkeypatch,
                                                     tmp_path) -> None:
    """A PATH whose only Compose is a v1 `docker-compose` (and no CLI plugin): UsageError."""
    import shutil
    import stat

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").symlink_to(shutil.which("docker"))
    script = fake / "docker-compose"
    script.write_text("#!/bin/sh\necho 'docker-compose version 1.29.2, build 5becea4c'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(fake))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-plugins"))
    pytester.makepyfile(test_inner=RECORD)
    result, _ = run(pytester, f"--ollama-image={sim_images['good']['tag']}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        f"ERROR: only Docker Compose v1 found ({fake}/docker-compose 1.29.2); install Compose v2*"
    ])
    assert not (pytester.path / "pid.txt").exists()  # no test ran
