"""Inventory writers (exact CSV / JSON / Markdown), terminal table, step summary, pictures."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from pytest_ollama_regress.inventory.boundary import find_boundary
from pytest_ollama_regress.inventory.formats import (
    append_step_summary,
    output_format,
    terminal_lines,
    to_csv,
    to_json,
    to_markdown,
    ttft_series,
    ttft_stats,
    write_inventory,
)
from pytest_ollama_regress.inventory.table import (
    InventoryError,
    InventoryRow,
    MarkerStatus,
    format_created,
    load_inventory,
)

MARKERS = ["vision", "ttft"]
PATHS = ["server/images.go"]


@pytest.fixture
def rows():
    return [
        InventoryRow(
            "good", ref="ollama-sim:good", image_id="sha256:" + "a" * 64,
            repo_tags=["ollama-sim:good"], created=datetime(2025, 8, 1, tzinfo=timezone.utc),
            revision="1111111", source="https://example.invalid/ollama", version="0.11.4",
            server_version="0.11.4",
            statuses={"vision": MarkerStatus("OK"), "ttft": MarkerStatus("SKIP")},
        ),
        InventoryRow(
            "bad", ref="ollama-sim:bad", image_id="sha256:" + "b" * 64,
            repo_tags=["ollama-sim:bad", "ollama-sim:latest"],
            repo_digests=["ollama-sim@sha256:" + "c" * 64],
            created=datetime(2025, 9, 1, tzinfo=timezone.utc), revision="2222222",
            version="0.11.5", server_version="0.11.5",
            statuses={"vision": MarkerStatus("FAIL", "tests/test_v.py::test_count[bad]"),
                      "ttft": MarkerStatus("OK")},
        ),
    ]


def test_csv_exact(rows):
    assert to_csv(rows, MARKERS) == (
        "target,ref,kind,short_id,image_id,repo_tags,repo_digests,created_utc,revision,source,"
        "version,server_version,vision_status,vision_first_failure,ttft_status,ttft_first_failure,"
        "notes\n"
        f"good,ollama-sim:good,image,aaaaaaa,sha256:{'a' * 64},ollama-sim:good,,"
        "2025-08-01T00:00:00Z,1111111,https://example.invalid/ollama,0.11.4,0.11.4,OK,,SKIP,,\n"
        f"bad,ollama-sim:bad,image,bbbbbbb,sha256:{'b' * 64},ollama-sim:bad;ollama-sim:latest,"
        f"ollama-sim@sha256:{'c' * 64},2025-09-01T00:00:00Z,2222222,,0.11.5,0.11.5,FAIL,"
        "tests/test_v.py::test_count[bad],OK,,\n"
    )


def test_markdown_exact(rows):
    found = find_boundary(rows)
    assert to_markdown(rows, MARKERS, found, PATHS) == (
        "### Ollama image inventory\n"
        "\n"
        "| Target | Short ID | Image ID | Tags | Digests | Created (UTC) | Revision | Source | "
        "OCI version | Server version | vision | ttft |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"| good | aaaaaaa | sha256:{'a' * 64} | ollama-sim:good |  | 2025-08-01T00:00:00Z | "
        "1111111 | https://example.invalid/ollama | 0.11.4 | 0.11.4 | OK | SKIP |\n"
        f"| bad | bbbbbbb | sha256:{'b' * 64} | ollama-sim:bad;ollama-sim:latest | "
        f"ollama-sim@sha256:{'c' * 64} | 2025-09-01T00:00:00Z | 2222222 |  | 0.11.5 | 0.11.5 | "
        "FAIL (test_count[bad]) | OK |\n"
        "\n"
        "- order: created time, oldest first\n"
        "- LKG good FKB bad boundary good..bad\n"
        "\n"
        "```sh\n"
        "git diff 1111111..2222222 -- server/images.go\n"
        "```\n"
    )


def test_json_exact(rows):
    found = find_boundary(rows)
    data = json.loads(to_json(rows, MARKERS, found, PATHS))
    assert data == {
        "markers": ["vision", "ttft"],
        "rows": [
            {
                "target": "good", "ref": "ollama-sim:good", "kind": "image",
                "short_id": "aaaaaaa", "image_id": "sha256:" + "a" * 64,
                "repo_tags": ["ollama-sim:good"], "repo_digests": [],
                "created_utc": "2025-08-01T00:00:00Z", "revision": "1111111",
                "source": "https://example.invalid/ollama", "version": "0.11.4",
                "server_version": "0.11.4",
                "statuses": {"vision": {"status": "OK", "first_failure": None},
                             "ttft": {"status": "SKIP", "first_failure": None}},
                "notes": "",
            },
            {
                "target": "bad", "ref": "ollama-sim:bad", "kind": "image",
                "short_id": "bbbbbbb", "image_id": "sha256:" + "b" * 64,
                "repo_tags": ["ollama-sim:bad", "ollama-sim:latest"],
                "repo_digests": ["ollama-sim@sha256:" + "c" * 64],
                "created_utc": "2025-09-01T00:00:00Z", "revision": "2222222", "source": "",
                "version": "0.11.5", "server_version": "0.11.5",
                "statuses": {
                    "vision": {"status": "FAIL",
                               "first_failure": "tests/test_v.py::test_count[bad]"},
                    "ttft": {"status": "OK", "first_failure": None},
                },
                "notes": "",
            },
        ],
        "boundary": {
            "order": "created", "markers": None, "lkg": "good", "fkb": "bad",
            "monotonic": True, "regressions": [["good", "bad"]], "fixes": [],
            "git_diff": "git diff 1111111..2222222 -- server/images.go",
            "summary": ["order: created time, oldest first", "LKG good FKB bad boundary good..bad",
                        "git diff 1111111..2222222 -- server/images.go"],
        },
    }


def test_terminal_table_aligns_and_drops_empty_columns():
    rows = [
        InventoryRow("sim-good", kind="sim", server_version="0.12.6",
                     statuses={"vision": MarkerStatus("OK")}),
        InventoryRow("sim-vision-ignored", kind="sim", server_version="0.12.6",
                     statuses={"vision": MarkerStatus("FAIL", "t.py::test_count[sim-vision-ignored]")}),
    ]
    assert terminal_lines(rows, ["vision"]) == [
        "Target              Server version  vision",
        "------------------  --------------  " + "-" * len("FAIL (test_count[sim-vision-ignored])"),
        "sim-good            0.12.6          OK",
        "sim-vision-ignored  0.12.6          FAIL (test_count[sim-vision-ignored])",
    ]


def test_terminal_table_keeps_short_id_only_where_it_differs_from_the_target():
    full = "sha256:" + "4beecd86" * 8
    unlabelled = InventoryRow("4beecd8", image_id=full, statuses={"vision": MarkerStatus("OK")})
    assert terminal_lines([unlabelled], ["vision"])[0].split() == ["Target", "vision"]
    labelled = InventoryRow("good", image_id=full, statuses={"vision": MarkerStatus("OK")})
    assert terminal_lines([unlabelled, labelled], ["vision"])[2:] == [
        "4beecd8  4beecd8   OK",
        "good     4beecd8   OK",
    ]


def test_terminal_table_uses_short_ids_digests_and_revisions(rows):
    """Full 71-character IDs made the table ~345 columns wide; the files keep them."""
    rows[0].revision = "4beecd86698d97d7ccd7ef3e343d2b568dc5821a"
    lines = terminal_lines(rows, MARKERS)
    text = "\n".join(lines)
    assert "a" * 64 not in text and "c" * 64 not in text and rows[0].revision not in text
    assert "ollama-sim@sha256:cccccccccccc…" in text and "4beecd86698d…" in text
    assert max(map(len, lines)) < 240, max(map(len, lines))  # 362 with the full forms
    assert "a" * 64 in to_csv(rows, MARKERS) and rows[0].revision in to_csv(rows, MARKERS)


@pytest.mark.parametrize("suffix", [".csv", ".json", ".md"])
def test_written_files_read_back_to_the_same_boundary(tmp_path, rows, suffix):
    path = tmp_path / f"inventory{suffix}"
    found = find_boundary(rows)
    assert write_inventory(path, rows, MARKERS, found, PATHS) == [path]
    back = load_inventory(path)
    assert [r.target for r in back] == ["good", "bad"]
    assert [format_created(r.created) for r in back] == [
        "2025-08-01T00:00:00Z", "2025-09-01T00:00:00Z"
    ]
    assert back[1].repo_tags == ["ollama-sim:bad", "ollama-sim:latest"]
    assert {m: s.status for m, s in back[1].statuses.items()} == {"vision": "FAIL", "ttft": "OK"}
    assert find_boundary(back).lines(PATHS) == found.lines(PATHS)


@pytest.mark.parametrize("name", ["inventory.txt", "inventory", "inventory.xlsx"])
def test_unknown_output_suffix_is_a_one_line_error(name):
    with pytest.raises(InventoryError) as exc:
        output_format(name)
    assert str(exc.value).startswith(f"--ollama-inventory {name}: unknown suffix")
    assert str(exc.value).endswith("(use .csv, .json, .md, .png or .svg)")


def test_step_summary_is_appended_only_when_set(tmp_path, rows):
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    markdown = to_markdown(rows, MARKERS)
    assert append_step_summary(markdown, {}) is None
    assert append_step_summary(markdown, {"GITHUB_STEP_SUMMARY": str(summary)}) == summary
    assert summary.read_text() == "# earlier step\n" + markdown


def test_ttft_stats_median_and_p95():
    stats = ttft_stats({"a": [0.1, 0.2, 0.3, 0.4, 1.0], "b": []})
    assert list(stats) == ["a"]
    assert stats["a"][0] == pytest.approx(0.3)
    assert stats["a"][1] == pytest.approx(0.88)


def test_ttft_series_one_per_case_so_a_regression_in_one_case_shows():
    """Pooled, bad's cases average out; per case, long-cold is 4x slower and short-warm not."""
    targets, series = ttft_series({
        "good": {"short-warm": [0.05, 0.05, 0.05], "long-cold": [0.5, 0.5, 0.5]},
        "bad": {"short-warm": [0.05, 0.05, 0.05], "long-cold": [2.0, 2.0, 2.0]},
        "none": {"short-warm": []},
        "partial": {"long-cold": [0.6]},
    })
    assert targets == ["good", "bad", "partial"]
    assert list(series) == ["short-warm", "long-cold"]
    assert series["short-warm"] == [(0.05, 0.05), (0.05, 0.05), None]
    assert [v[0] for v in series["long-cold"]] == [0.5, 2.0, 0.6]


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_pictures_status_matrix_and_ttft(tmp_path, rows, suffix):
    pytest.importorskip("matplotlib")
    path = tmp_path / f"inventory{suffix}"
    written = write_inventory(path, rows, MARKERS, None, PATHS,
                              ttft={"good": {"short": [0.05, 0.06]}, "bad": {"short": [0.4, 0.5]}})
    assert written == [path, tmp_path / f"inventory-ttft{suffix}"]
    for file in written:
        data = file.read_bytes()
        if suffix == ".png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n")
        else:
            assert b"<svg" in data
    assert write_inventory(tmp_path / f"no-ttft{suffix}", rows, MARKERS) == [
        tmp_path / f"no-ttft{suffix}"
    ]
