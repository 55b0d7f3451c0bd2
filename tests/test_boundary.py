"""LKG / FKB, ordering, monotonicity and the git diff command (pure logic)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pytest_ollama_regress.inventory.boundary import (
    BAD,
    DEFAULT_DIFF_PATHS,
    GOOD,
    UNKNOWN,
    find_boundary,
    git_diff_command,
    order_rows,
    verdict,
)
from pytest_ollama_regress.inventory.table import InventoryError, InventoryRow, MarkerStatus


def row(target: str, *statuses: str, day: int | None = None, rev: str = "", **named: str):
    """A row; positional statuses go to ``vision``, keyword ones to their marker."""
    marks = dict(named)
    if statuses:
        marks["vision"] = statuses[0]
    created = datetime(2025, 8, day, 12, tzinfo=timezone.utc) if day else None
    return InventoryRow(target, created=created, revision=rev,
                        statuses={m: MarkerStatus(s) for m, s in marks.items()})


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({"vision": "OK", "ttft": "OK"}, GOOD),
        ({"vision": "OK", "ttft": "SKIP"}, GOOD),
        ({"vision": "OK", "ttft": "FAIL"}, BAD),
        ({"vision": "ERROR", "ttft": "FAIL"}, BAD),
        ({"vision": "ERROR", "ttft": "OK"}, UNKNOWN),
        ({"vision": "SKIP"}, UNKNOWN),
        ({"vision": "UNTESTED"}, UNKNOWN),
        ({"vision": "?"}, UNKNOWN),
        ({}, UNKNOWN),
    ],
)
def test_verdict_over_all_markers(statuses, expected):
    assert verdict(row("x", **statuses)) == expected


def test_verdict_over_selected_markers_only():
    r = row("x", "OK", ttft="FAIL")
    assert verdict(r, ["vision"]) == GOOD
    assert verdict(r, ["ttft"]) == BAD
    assert verdict(r, ["numctx"]) == UNKNOWN


def test_created_order_sorts_oldest_first_and_auto_uses_it():
    rows = [row("c", "OK", day=3), row("a", "OK", day=1), row("b", "OK", day=2)]
    ordered, used = order_rows(rows, "created")
    assert [r.target for r in ordered] == ["a", "b", "c"]
    assert used == "created"
    assert [r.target for r in order_rows(rows, "auto")[0]] == ["a", "b", "c"]
    assert [r.target for r in order_rows(rows, "given")[0]] == ["c", "a", "b"]


def test_auto_order_falls_back_to_given_without_created_times():
    rows = [row("c", "OK", day=3), row("a", "OK")]
    ordered, used = order_rows(rows, "auto")
    assert used == "given"
    assert [r.target for r in ordered] == ["c", "a"]


def test_created_order_without_created_time_is_a_one_line_error():
    rows = [row("c", "OK", day=3), row("a", "OK")]
    with pytest.raises(InventoryError) as exc:
        order_rows(rows, "created")
    assert str(exc.value) == "a has no created time: fill it or use --ollama-order given"
    rows[1].line, rows[1].file = 7, "inv.md"
    with pytest.raises(InventoryError, match=r"^inv.md line 7 \(a\) has no created time.*--order"):
        order_rows(rows, "created", option="--order")


def test_unknown_order_is_an_error():
    with pytest.raises(InventoryError, match="use --ollama-order given or --ollama-order created"):
        order_rows([], "newest")


def test_monotonic_history_gives_lkg_fkb_and_git_diff():
    rows = [row("a", "OK", day=1, rev="r1"), row("b", "OK", day=2, rev="r2"),
            row("c", "FAIL", day=3, rev="r3"), row("d", "FAIL", day=4, rev="r4")]
    found = find_boundary(list(reversed(rows)))
    assert (found.lkg.target, found.fkb.target) == ("b", "c")
    assert found.monotonic
    assert found.lines() == [
        "order: created time, oldest first",
        "LKG b FKB c boundary b..c",
        "git diff r2..r3 -- server/images.go server/routes.go api/types.go model/models "
        "llm/server.go integration/llm_image_test.go",
    ]


def test_unknown_images_between_are_listed_and_skipped_over():
    rows = [row("a", "OK"), row("b", "ERROR"), row("c", "SKIP"), row("d", "FAIL")]
    found = find_boundary(rows)
    assert (found.lkg.target, found.fkb.target) == ("a", "d")
    assert [r.target for r in found.unknown_between] == ["b", "c"]
    assert found.lines()[1:] == [
        "LKG a FKB d boundary a..d",
        "untested between LKG and FKB: b c",
        "no git diff: a and d have no org.opencontainers.image.revision label",
    ]


def test_non_monotonic_history_is_reported_with_every_step():
    rows = [row("a", "OK", rev="r1"), row("b", "FAIL", rev="r2"), row("c", "OK", rev="r3"),
            row("d", "FAIL", rev="r4")]
    found = find_boundary(rows)
    assert not found.monotonic
    assert (found.lkg.target, found.fkb.target) == ("c", "d")
    assert found.lines() == [
        "order: as given (not every image has a created time)",
        "LKG c FKB d boundary c..d",
        "not monotonic: c OK after b FAIL; regressions: a..b, c..d",
        "git diff r3..r4 -- " + " ".join(DEFAULT_DIFF_PATHS),
    ]


def test_given_order_reason_names_the_targets_without_created_time():
    sims = [InventoryRow("sim-good", kind="sim"), InventoryRow("sim-bad", kind="sim")]
    assert find_boundary(sims).lines()[0] == "order: as given (sim targets have no created time)"
    mixed = [InventoryRow("a", kind="url"), *sims, row("b", day=1)]
    assert find_boundary(mixed).lines()[0] == (
        "order: as given (sim and url targets have no created time)"
    )
    assert find_boundary([*mixed, row("c")]).lines()[0] == (
        "order: as given (not every image has a created time)"
    )


def test_fix_only_history_is_not_monotonic_and_has_no_boundary():
    found = find_boundary([row("a", "FAIL"), row("b", "OK")])
    assert not found.monotonic
    assert found.lkg is None and found.fkb is None
    assert found.lines()[1:] == [
        "LKG none FKB none: no good -> bad step",
        "not monotonic: b OK after a FAIL",
    ]


def test_all_good_all_bad_and_nothing_known():
    good = find_boundary([row("a", "OK"), row("b", "OK")])
    assert (good.lkg.target, good.fkb) == ("b", None)
    assert good.lines()[1] == "LKG b FKB none: no failing image"
    bad = find_boundary([row("a", "SKIP"), row("b", "FAIL"), row("c", "FAIL")])
    assert (bad.lkg, bad.fkb.target) == (None, "b")
    assert bad.lines()[1] == "LKG none FKB b: no passing image before it"
    nothing = find_boundary([row("a", "?"), row("b", "SKIP")])
    assert nothing.lines()[1] == "LKG none FKB none: no image with a known result"


def test_selected_markers_decide_the_boundary():
    rows = [row("a", "OK", ttft="OK"), row("b", "OK", ttft="FAIL"), row("c", "FAIL", ttft="FAIL")]
    assert find_boundary(rows, ["vision"]).fkb.target == "c"
    assert find_boundary(rows, ["ttft"]).fkb.target == "b"
    assert find_boundary(rows).fkb.target == "b"


def test_git_diff_command_quotes_odd_paths_and_takes_custom_paths():
    assert git_diff_command("abc", "def", ["server/images.go"]) == (
        "git diff abc..def -- server/images.go"
    )
    assert git_diff_command("v0.11.4", "v0.11.5", ["my dir/x.go"]) == (
        "git diff v0.11.4..v0.11.5 -- 'my dir/x.go'"
    )
    assert git_diff_command("a", "b", []) == "git diff a..b"
    found = find_boundary([row("a", "OK", rev="1111"), row("b", "FAIL", rev="2222")])
    assert found.diff_command(["llm"]) == "git diff 1111..2222 -- llm"


def test_missing_revision_on_one_side_names_it():
    found = find_boundary([row("a", "OK", rev="1111"), row("b", "FAIL")])
    assert found.lines()[-1] == "no git diff: b has no org.opencontainers.image.revision label"
