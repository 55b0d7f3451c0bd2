"""Per-image render snapshots (``snapshots.py``) and the fixtures users write checks with."""

from __future__ import annotations

from pathlib import Path

import pytest

import pytest_ollama_regress.suite.snapshots as snapshots
from pytest_ollama_regress.suite.snapshots import (
    extension_for,
    normalise_render,
    render_record,
    snapshot_key,
    snapshot_root,
    unified_diff,
)


@pytest.fixture(autouse=True)
def _not_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs are sessions of their own, even when this one runs under pytest-xdist."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Today Date: 26 Jul 2024\n", "Today Date: <date>\n"),
        ("at 2025-01-02T03:04:05.123456Z.", "at <timestamp>."),
        ("at 2025-01-02T03:04:05-07:00", "at <timestamp>"),
        ("on 2025-01-02 we", "on <date> we"),
        ("July 4, 2025", "<date>"),
        ("x <__ollama_media_0123456789abcdef0123456789abcdef__> y", "x <__ollama_media__> y"),
        ("Cutting Knowledge Date: December 2023", "Cutting Knowledge Date: December 2023"),
        ("[img-0]What is 2+2?", "[img-0]What is 2+2?"),
    ],
)
def test_normalise_render(text: str, expected: str) -> None:
    assert normalise_render(text) == expected


def test_render_record() -> None:
    class Render:
        rendered_template = "on 2025-01-02 [img-0]"
        image_count = 1
        shape = "full"

    assert render_record(Render()) == {"image_count": 1, "rendered_template": "on <date> [img-0]",
                                       "shape": "full"}


def test_snapshot_key() -> None:
    assert snapshot_key("4beecd8", "0.11.10") == "4beecd8@0.11.10"
    assert snapshot_key("127.0.0.1:11434", "0.12.6") == "127.0.0.1_11434@0.12.6"
    assert snapshot_key("my/label:v1", "0.0.0") == "my_label_v1@0.0.0"


def test_snapshot_root(tmp_path: Path) -> None:
    suite_file = Path(snapshots.__file__).parent / "suite" / "test_vision.py"
    user_file = tmp_path / "tests" / "test_mine.py"
    assert snapshot_root(tmp_path, user_file) == tmp_path / "tests" / "__ollama_snapshots__"
    assert snapshot_root(tmp_path, suite_file) == tmp_path / "__ollama_snapshots__"
    assert snapshot_root(tmp_path, Path("/elsewhere/test_x.py")) == \
        tmp_path / "__ollama_snapshots__"
    assert snapshot_root(tmp_path, user_file, "snaps") == tmp_path / "snaps"
    assert snapshot_root(tmp_path, user_file, "/abs") == Path("/abs")


def test_extension_per_key() -> None:
    first = extension_for("/root", "a@0.12.6", "sim-good")
    assert extension_for("/root", "a@0.12.6", "sim-good") is first
    assert extension_for("/root", "b@0.12.6", "sim-good") is not first
    assert first.dirname(test_location=None) == "/root/a@0.12.6"  # type: ignore[arg-type]
    assert not list(first().discover_snapshots(test_location=None))  # type: ignore[arg-type]


def test_unified_diff() -> None:
    assert unified_diff("a\nb", "a\nb", expected_label="x", actual_label="y") == ""
    diff = unified_diff("a\nb", "a\nc", expected_label="base", actual_label="cand")
    assert diff.splitlines()[:2] == ["--- base", "+++ cand"]
    assert "-b" in diff and "+c" in diff


USER_CHECK = '''
from pytest_ollama_regress.suite.pictures import Picture


def test_my_render(ollama, ollama_vision_model, ollama_expect, ollama_picture, render_snapshot):
    picture = ollama_picture(2, "blue")
    assert isinstance(picture, Picture)
    if not ollama_expect.debug_render:
        return
    render = ollama.render_chat(ollama_vision_model, [
        {"role": "user", "content": "What is this?", "images": [picture.png]}])
    assert render.image_count == 1
    assert render_snapshot == render


def test_my_baseline(ollama_target, ollama_baseline):
    if ollama_target.id == "sim-good":
        assert ollama_baseline.is_current
    else:
        assert not ollama_baseline.is_current and ollama_baseline.id == "sim-good"
        assert ollama_baseline.client.version() == ollama_baseline.info.server_version
'''


def test_user_checks_record_then_compare(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_CHECK)
    args = ("-p", "no:cacheprovider", "--ollama-sim=good", "--ollama-sim=vision-miscount",
            "--ollama-baseline=sim-good")
    first = pytester.runpytest_subprocess(*args)
    first.assert_outcomes(passed=4)
    first.stdout.fnmatch_lines(["*2 snapshots generated*"])
    store = pytester.path / "__ollama_snapshots__"
    files = sorted(p.relative_to(store).as_posix() for p in store.rglob("*.ambr"))
    assert files == ["sim-good@0.12.6/test_user.ambr", "sim-vision-miscount@0.12.6/test_user.ambr"]
    assert "# name: test_my_render\n" in (store / files[0]).read_text()
    # a second run compares; an image absent from the run is not "unused" (no failure)
    second = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ollama-sim=good",
                                         "--ollama-baseline=sim-good")
    second.assert_outcomes(passed=2)
    assert second.ret == pytest.ExitCode.OK
    second.stdout.fnmatch_lines(["*1 snapshot passed*"])
    # an edited snapshot fails with syrupy's diff; --snapshot-update records the new render
    path = store / files[0]
    path.write_text(path.read_text().replace("What is this?", "What was this?"))
    third = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ollama-sim=good",
                                          "--ollama-baseline=sim-good")
    third.assert_outcomes(passed=1, failed=1)
    third.stdout.fnmatch_lines(["*What was this?*"])
    update = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ollama-sim=good",
                                           "--ollama-baseline=sim-good", "--snapshot-update")
    update.assert_outcomes(passed=2)
    assert "What is this?" in path.read_text()
    assert (store / files[1]).is_file()  # --snapshot-update left the other image alone
