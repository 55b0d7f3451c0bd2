"""Inventory rows: created times, statuses, docker inspect, hand-filled tables (seed form, CSV)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pytest_ollama_regress.containers.engine import ImageInfo
from pytest_ollama_regress.inventory.boundary import find_boundary
from pytest_ollama_regress.inventory.table import (
    ERROR,
    FAIL,
    OK,
    SKIP,
    UNKNOWN,
    UNTESTED,
    InventoryError,
    MarkerStatus,
    format_created,
    load_inventory,
    parse_created,
    parse_status,
    row_from_target,
    short_id,
)
from pytest_ollama_regress.targets.registry import Target

# Section 3.3 of the seed, verbatim: the hand-filled table users keep today.
SEED_TABLE = """\
#### 3.3 Table (fill VisionStatus after testing)

| Digest (short) | Full Digest | Created (UTC) | Tag(s) | Revision | VisionStatus | Notes |
|----------------|-------------|---------------|--------|----------|-------------|-------|
| 4beecd8 | sha256:4beecd86698d97d7ccd7ef3e343d2b568dc5821904f00785044080524deff715 | (auto) | (auto) | (auto) | OK? | Labeled funciona |
| 90f0909 | sha256:90f09096f883f0c48e3a1e5c30a2d0b8d7b2616426e5c4d086d53246cc3c5815 | (auto) | (auto) | (auto) | FAIL? | Labeled nofunciona |
| 903c367 | sha256:903c3672849e32832c5d14ba896b8226cd87acc3bd50492d271057db0e48411e | (auto) | (auto) | (auto) | ? | Duda / retest |
| 2a28ab5 | sha256:2a28ab5e9c7a569535813cedf7a20aebe62d3dfb2a1e173fd3bfe2b82aa38ae5 | (auto) | (auto) | (auto) | ? | Duda / retest |

After you fill the table, the "last working image" is simply the one with VisionStatus=OK.
"""

# The same table once filled: created times, tags and revisions, out of created order.
FILLED_TABLE = """\
| Digest (short) | Full Digest | Created (UTC) | Tag(s) | Revision | VisionStatus | Notes |
|---|---|---|---|---|---|---|
| 90f0909 | sha256:90f09096f883f0c48e3a1e5c30a2d0b8d7b2616426e5c4d086d53246cc3c5815 | 2025-09-02T08:00:00Z | ollama:local-gpu-bbbbbbb | bbbbbbb | FAIL | nofunciona |
| 4beecd8 | sha256:4beecd86698d97d7ccd7ef3e343d2b568dc5821904f00785044080524deff715 | 2025-08-20T08:00:00Z | ollama:local-gpu-aaaaaaa | aaaaaaa | OK | funciona |
| 903c367 | sha256:903c3672849e32832c5d14ba896b8226cd87acc3bd50492d271057db0e48411e | 2025-08-27T08:00:00.5+02:00 | (auto) | ccccccc | OK | |
| 2a28ab5 | sha256:2a28ab5e9c7a569535813cedf7a20aebe62d3dfb2a1e173fd3bfe2b82aa38ae5 | 2025-09-10 | | ddddddd | FAIL | |
"""

# What the seed's PowerShell helper exports (Export-Csv -NoTypeInformation), filled in.
SEED_CSV = """\
"Digest","CreatedUTC","RepoTags","OCI_Revision","OCI_Source","OCI_Version","VisionStatus","Notes"
"sha256:4beecd86698d97d7ccd7ef3e343d2b568dc5821904f00785044080524deff715","2025-08-20T08:00:00.123456789Z","ollama:a;ollama:b","aaaaaaa","https://github.com/ollama/ollama","0.11.4","OK",""
"sha256:90f09096f883f0c48e3a1e5c30a2d0b8d7b2616426e5c4d086d53246cc3c5815","2025-09-02T08:00:00Z","","bbbbbbb","","0.11.5","FAIL","first bad"
"""


def test_short_id_and_created_formats():
    assert short_id("sha256:4beecd86698d97d7ccd7ef3e343d2b568dc5821904f00785044080524deff715") == (
        "4beecd8"
    )
    utc = timezone.utc
    assert parse_created("2025-08-14T10:21:33.123456789Z") == datetime(
        2025, 8, 14, 10, 21, 33, 123456, tzinfo=utc
    )
    assert parse_created("2025-08-14T12:21:33+02:00") == datetime(2025, 8, 14, 10, 21, 33, tzinfo=utc)
    assert parse_created("2025-08-14 10:21") == datetime(2025, 8, 14, 10, 21, tzinfo=utc)
    assert parse_created("2025-08-14") == datetime(2025, 8, 14, tzinfo=utc)
    for blank in ("", "  ", "(auto)", "?", "-", None):
        assert parse_created(blank) is None
    assert format_created(parse_created("2025-08-14T12:21:33.9+02:00")) == "2025-08-14T10:21:33Z"


@pytest.mark.parametrize("text", ["08/14/2025 10:21", "yesterday", "2025-13-01"])
def test_bad_created_time_is_a_one_line_error(text):
    with pytest.raises(InventoryError) as exc:
        parse_created(text)
    assert "\n" not in str(exc.value)
    assert repr(text) in str(exc.value)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("OK", (OK, False)), ("ok", (OK, False)), ("OK?", (OK, True)), ("FAIL?", (FAIL, True)),
        ("FAIL (test_count[4beecd8])", (FAIL, False)), ("?", (UNKNOWN, False)),
        ("", (UNKNOWN, False)), ("SKIP", (SKIP, False)), ("ERROR", (ERROR, False)),
        ("not tested (bisect)", (UNTESTED, False)), ("pass", (OK, False)),
    ],
)
def test_parse_status(cell, expected):
    assert parse_status(cell) == expected


def test_parse_status_rejects_other_words():
    with pytest.raises(InventoryError, match=r"status 'maybe' is not OK, FAIL, SKIP, ERROR or \?"):
        parse_status("maybe")


def test_marker_status_precedence_and_first_failure():
    status = MarkerStatus()
    assert status.text() == "?"
    status.add("skipped", "t.py::a[x]")
    assert status.status == SKIP
    status.add("passed", "t.py::b[x]")
    assert status.text() == "OK"
    status.add("error", "t.py::c[x]")
    assert status.text() == "ERROR (c[x])"
    status.add("failed", "t.py::d[x]")
    status.add("failed", "t.py::e[x]")
    status.add("passed", "t.py::f[x]")
    assert (status.status, status.first_failure) == (FAIL, "t.py::d[x]")
    assert status.text() == "FAIL (d[x])"
    xfail = MarkerStatus()
    xfail.add("xfailed", "t.py::g")
    assert xfail.status == FAIL
    bisect = MarkerStatus()
    bisect.add("untested", "t.py::h")
    assert bisect.text() == "not tested (bisect)"


def test_row_from_an_image_target_and_a_sim_target():
    data = {
        "Id": "sha256:" + "ab" * 32,
        "RepoTags": ["ollama-sim:good"],
        "RepoDigests": [],
        "Created": "2025-08-20T08:00:00.000000001Z",
        "Config": {"Labels": {
            "org.opencontainers.image.revision": "aaaaaaa",
            "org.opencontainers.image.source": "https://example.invalid/ollama",
            "org.opencontainers.image.version": "0.11.4",
        }},
    }
    row = row_from_target(Target("good", "image", "ollama-sim:good",
                                 ImageInfo.from_inspect(data, "ollama-sim:good")))
    assert (row.target, row.short_id, row.repo_tags) == ("good", "abababa", ["ollama-sim:good"])
    assert format_created(row.created) == "2025-08-20T08:00:00Z"
    assert (row.revision, row.source, row.version) == (
        "aaaaaaa", "https://example.invalid/ollama", "0.11.4"
    )
    blank = {"Id": "sha256:" + "0" * 64, "Created": "0001-01-01T00:00:00Z"}
    assert row_from_target(Target("x", "image", "x", ImageInfo.from_inspect(blank, "x"))).created \
        is None
    sim = row_from_target(Target("sim-good", "sim", "good"))
    assert (sim.target, sim.kind, sim.image_id, sim.created) == ("sim-good", "sim", "", None)


def test_seed_table_is_read_as_the_user_filled_it(tmp_path):
    path = tmp_path / "inventory.md"
    path.write_text(SEED_TABLE)
    rows = load_inventory(path)
    assert [r.target for r in rows] == ["4beecd8", "90f0909", "903c367", "2a28ab5"]
    assert rows[0].image_id == (
        "sha256:4beecd86698d97d7ccd7ef3e343d2b568dc5821904f00785044080524deff715"
    )
    assert [r.line for r in rows] == [5, 6, 7, 8]
    assert [(r.statuses["vision"].status, r.tentative) for r in rows] == [
        (OK, True), (FAIL, True), (UNKNOWN, False), (UNKNOWN, False)
    ]
    assert [r.statuses["vision"].text() for r in rows] == ["OK?", "FAIL?", "?", "?"]
    assert all(r.created is None and r.repo_tags == [] and r.revision == "" for r in rows)
    assert rows[1].notes == "Labeled nofunciona"
    found = find_boundary(rows)
    assert found.lines() == [
        "order: as given (not every image has a created time)",
        "LKG 4beecd8 FKB 90f0909 boundary 4beecd8..90f0909",
        "unconfirmed status (marked '?'): 4beecd8 90f0909",
        "no git diff: 4beecd8 and 90f0909 have no org.opencontainers.image.revision label",
    ]


def test_filled_table_orders_by_created_and_gives_the_git_diff(tmp_path):
    path = tmp_path / "filled.md"
    path.write_text(FILLED_TABLE)
    rows = load_inventory(path)
    assert rows[0].repo_tags == ["ollama:local-gpu-bbbbbbb"]
    assert format_created(rows[2].created) == "2025-08-27T06:00:00Z"
    found = find_boundary(rows)
    assert [r.target for r in found.rows] == ["4beecd8", "903c367", "90f0909", "2a28ab5"]
    assert found.lines() == [
        "order: created time, oldest first",
        "LKG 903c367 FKB 90f0909 boundary 903c367..90f0909",
        "git diff ccccccc..bbbbbbb -- server/images.go server/routes.go api/types.go "
        "model/models llm/server.go integration/llm_image_test.go",
    ]


def test_seed_powershell_csv_is_read(tmp_path):
    path = tmp_path / "image_inventory.csv"
    path.write_text(SEED_CSV)
    rows = load_inventory(path)
    assert [r.target for r in rows] == ["4beecd8", "90f0909"]
    assert rows[0].repo_tags == ["ollama:a", "ollama:b"]
    assert (rows[0].source, rows[0].version, rows[1].notes) == (
        "https://github.com/ollama/ollama", "0.11.4", "first bad"
    )
    found = find_boundary(rows)
    assert found.diff_command(["server/images.go"]) == (
        "git diff aaaaaaa..bbbbbbb -- server/images.go"
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("inv.xlsx", "x", r"inv.xlsx: unknown inventory suffix '.xlsx' \(use .md, .csv or .json\)"),
        ("inv.md", "no table here\n", r"inv.md: no Markdown table"),
        ("inv.md", "| Digest | Notes |\n|---|---|\n| 4beecd8 | x |\n",
         r"inv.md: no status column \(name one VisionStatus, <marker> or <marker>_status\)"),
        ("inv.md", "| Digest (short) | VisionStatus |\n|---|---|\n| 4beecd8 | OK |\n| 90f0909 |\n",
         r"inv.md line 4: 1 cells, the header has 2"),
        ("inv.md", "| Digest (short) | VisionStatus |\n|---|---|\n| 4beecd8 | works |\n",
         r"inv.md line 3: status 'works' is not OK, FAIL, SKIP, ERROR or \?"),
        ("inv.md", "| Digest (short) | Created (UTC) | VisionStatus |\n|---|---|---|\n"
         "| 4beecd8 | 14/08/2025 | OK |\n", r"inv.md line 3: created time '14/08/2025' is not ISO"),
        ("inv.md", "| Digest (short) | VisionStatus |\n|---|---|\n| (auto) | OK |\n",
         r"inv.md line 3: no image named"),
        ("inv.md", "| Digest (short) | VisionStatus |\n|---|---|\n\nlater text\n",
         r"inv.md: the table has no rows"),
        ("inv.csv", "", r"inv.csv: empty CSV file"),
        ("inv.csv", 'Digest,VisionStatus\n"4beecd8,OK\n', r"inv.csv line \d+: malformed CSV"),
        ("inv.json", "{\"rows\": 3}", r"inv.json: not an inventory JSON file"),
    ],
)
def test_bad_inventory_files_are_one_line_errors_naming_the_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    assert "\n" not in str(exc.value)
    assert str(exc.value).startswith(str(path))
    assert exc.match(message)


def test_unreadable_inventory_file(tmp_path):
    with pytest.raises(InventoryError, match=r"missing.md: cannot read \(No such file"):
        load_inventory(tmp_path / "missing.md")
    (tmp_path / "dir.md").mkdir()
    with pytest.raises(InventoryError, match=r"dir.md: cannot read"):
        load_inventory(tmp_path / "dir.md")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InventoryError, match=r"bin.csv: not UTF-8 text"):
        load_inventory(tmp_path / "bin.csv")
