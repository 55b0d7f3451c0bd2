"""Report formats: the registry by suffix, and a format a user adds through the
``pytest_ollama_inventory_formats`` hook."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_ollama_regress.inventory.formats import (
    CsvFormat,
    FormatRegistry,
    InventoryReport,
    TextFormat,
    builtin_formats,
)
from pytest_ollama_regress.inventory.table import InventoryError, InventoryRow, MarkerStatus

pytestmark = pytest.mark.usefixtures("no_step_summary")

#: A user's HTML format: one class and the hook, in a conftest.py.
HTML_CONFTEST = '''
import html

from pytest_ollama_regress.inventory.formats import InventoryReport, TextFormat, table


class HtmlFormat(TextFormat):
    name = "html"
    suffixes = (".html", ".htm")

    def render(self, report: InventoryReport) -> str:
        headers, cells = table(report.rows, report.markers)
        rows = [headers, *cells]
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line) + "</tr>\\n"
                       for line in rows)
        lines = report.boundary.lines(report.diff_paths) if report.boundary else []
        notes = "".join(f"<p>{html.escape(line)}</p>\\n" for line in lines)
        return f"<table>\\n{body}</table>\\n{notes}"


def pytest_ollama_inventory_formats(config, formats):
    formats.register(HtmlFormat())
'''

CHECKS = '''
import pytest


@pytest.mark.vision
def test_sees(ollama_target):
    assert ollama_target.id != "sim-vision-ignored"
'''


class Named(TextFormat):
    """A text format with any name and suffixes."""

    def __init__(self, name: str, *suffixes: str) -> None:
        self.name, self.suffixes = name, suffixes

    def render(self, report: InventoryReport) -> str:
        return f"{self.name}: {len(report.rows)} rows\n"


def test_hook_added_html_format_gets_the_report(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HTML_CONFTEST)
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest("--ollama-sim=good", "--ollama-sim=vision-ignored",
                                "--ollama-inventory=out/inv.html", "--ollama-diff-paths=a.go")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["inventory written: out/inv.html"])
    text = (pytester.path / "out" / "inv.html").read_text()
    assert text.startswith("<table>\n<tr><td>Target</td><td>Short ID</td><td>Image ID</td>")
    assert "<td>vision</td></tr>" in text
    assert "<td>sim-good</td>" in text
    assert "<td>FAIL (test_sees[sim-vision-ignored])</td>" in text
    assert "<p>LKG sim-good FKB sim-vision-ignored boundary sim-good..sim-vision-ignored</p>" in text


def test_unknown_suffix_lists_the_hook_added_suffix(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HTML_CONFTEST)
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest_subprocess("--ollama-sim=good", "--ollama-inventory=inv.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line] == [
        "ERROR: --ollama-inventory inv.txt: unknown suffix '.txt' "
        "(use .csv, .json, .md, .png, .svg or .html)"
    ]
    assert "passed" not in result.stdout.str()


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        ("formats.register(Named('mine', '.json'))",
         "ERROR: report format 'mine': suffix .json is already taken by format 'json'"),
        ("formats.register(Needy())",
         "ERROR: --ollama-inventory inv.needy: the needy format needs a thing"),
    ],
)
def test_a_bad_hook_format_is_a_one_line_usage_error(
    pytester: pytest.Pytester, hook: str, message: str
) -> None:
    pytester.makeconftest(f'''
from pytest_ollama_regress.inventory.formats import TextFormat
from pytest_ollama_regress.inventory.table import InventoryError


class Named(TextFormat):
    def __init__(self, name, *suffixes):
        self.name, self.suffixes = name, suffixes

    def render(self, report):
        return ""


class Needy(Named):
    def __init__(self):
        super().__init__("needy", ".needy")

    def requires(self):
        raise InventoryError("--ollama-inventory inv.needy: the needy format needs a thing")


def pytest_ollama_inventory_formats(config, formats):
    {hook}
''')
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest_subprocess("--ollama-sim=good", "--ollama-inventory=inv.needy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line] == [message]


def test_registering_a_taken_suffix_is_a_one_line_error_and_changes_nothing() -> None:
    formats = builtin_formats()
    with pytest.raises(InventoryError) as exc:
        formats.register(Named("tables", ".tsv", ".CSV".lower()))
    assert str(exc.value) == "report format 'tables': suffix .csv is already taken by format 'csv'"
    assert "\n" not in str(exc.value)
    assert ".tsv" not in formats.suffixes  # all or nothing
    with pytest.raises(InventoryError, match=r"suffix 'TSV' is not a lower-case suffix"):
        formats.register(Named("tsv", "TSV"))


def test_format_for_picks_by_suffix_case_insensitively() -> None:
    formats = FormatRegistry([CsvFormat(), Named("html", ".html", ".htm")])
    assert formats.format_for("a/b.CSV").name == "csv"
    assert formats.format_for("page.htm").name == "html"
    assert formats.suffixes == [".csv", ".html"]
    with pytest.raises(InventoryError) as exc:
        formats.format_for("inv", option="-o")
    assert str(exc.value) == "-o inv: unknown suffix '(none)' (use .csv or .html)"


def test_registry_write_creates_the_folder_and_passes_the_report(tmp_path: Path) -> None:
    formats = FormatRegistry([Named("txt", ".txt")])
    report = InventoryReport([InventoryRow("a", statuses={"vision": MarkerStatus("OK")})],
                             ["vision"])
    path = tmp_path / "deep" / "inv.txt"
    assert formats.write(report, path) == [path]
    assert path.read_text() == "txt: 1 rows\n"
