"""Last-known-good / first-known-bad over an ordered image history, and the git diff between.

An image is *good* for the selected markers when none FAILs, none ERRORs and one is OK; *bad*
when one FAILs; *unknown* otherwise (errors, skips, not tested). Images are ordered by their
created time (``created``), as given (``given``), or by created time when every image has one
(``auto``). The boundary is the last good -> bad step between known images; a good image after
a bad one makes the history *not monotonic*, which is reported with every step.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from pytest_ollama_regress.inventory.table import (
    ERROR,
    FAIL,
    OCI_REVISION,
    OK,
    InventoryError,
    InventoryRow,
)

GOOD, BAD, UNKNOWN = "good", "bad", "unknown"
ORDERS = ("auto", "given", "created")
#: The seed's paths for a vision regression in Ollama's source tree.
DEFAULT_DIFF_PATHS: tuple[str, ...] = (
    "server/images.go",
    "server/routes.go",
    "api/types.go",
    "model/models",
    "llm/server.go",
    "integration/llm_image_test.go",
)


def verdict(row: InventoryRow, markers: Sequence[str] | None = None) -> str:
    """GOOD, BAD or UNKNOWN for the row over ``markers`` (all of its markers when None)."""
    names = list(row.statuses) if markers is None else [m for m in markers if m in row.statuses]
    statuses = {row.statuses[m].status for m in names}
    if FAIL in statuses:
        return BAD
    if ERROR in statuses or OK not in statuses:
        return UNKNOWN
    return GOOD


def order_rows(
    rows: Sequence[InventoryRow], order: str = "auto", *, option: str = "--ollama-order"
) -> tuple[list[InventoryRow], str]:
    """Rows oldest first and the order used (``given`` or ``created``).

    ``created`` needs every row's created time (one-line error naming the first without);
    ``auto`` uses it when all have one and the given order otherwise.
    """
    if order not in ORDERS:
        raise InventoryError(f"unknown order {order!r}: use {option} given or {option} created")
    if order == "auto":
        order = "created" if rows and all(r.created for r in rows) else "given"
    if order == "given":
        return list(rows), order
    for row in rows:
        if row.created is None:
            raise InventoryError(
                f"{row.where} has no created time: fill it or use {option} given"
            )
    return sorted(rows, key=lambda r: r.created), order  # type: ignore[arg-type,return-value]


def git_diff_command(lkg_rev: str, fkb_rev: str, paths: Sequence[str] = DEFAULT_DIFF_PATHS) -> str:
    """``git diff <lkg>..<fkb> -- <paths>`` with shell quoting where needed."""
    cmd = f"git diff {shlex.quote(f'{lkg_rev}..{fkb_rev}')}"
    return cmd + (" -- " + " ".join(shlex.quote(p) for p in paths) if paths else "")


@dataclass
class Boundary:
    """The boundary found in an ordered history."""

    order: str
    requested: str
    markers: tuple[str, ...] | None
    rows: list[InventoryRow]
    verdicts: list[str]
    lkg: InventoryRow | None = None
    fkb: InventoryRow | None = None
    regressions: list[tuple[InventoryRow, InventoryRow]] = field(default_factory=list)
    fixes: list[tuple[InventoryRow, InventoryRow]] = field(default_factory=list)

    @property
    def monotonic(self) -> bool:
        """False when a good image follows a bad one."""
        return not self.fixes

    @property
    def unknown_between(self) -> list[InventoryRow]:
        """Rows strictly between LKG and FKB whose verdict is unknown."""
        if not (self.lkg and self.fkb):
            return []
        i, j = self.rows.index(self.lkg), self.rows.index(self.fkb)
        return self.rows[i + 1 : j]

    def why_given(self) -> str:
        """Why ``auto`` fell back to the given order: images or other targets lacking a time."""
        missing = [r for r in self.rows if r.created is None]
        if any(r.kind == "image" for r in missing):
            return "not every image has a created time"
        kinds = " and ".join(sorted({r.kind for r in missing}))
        return f"{kinds} targets have no created time"

    def diff_command(self, paths: Sequence[str] = DEFAULT_DIFF_PATHS) -> str | None:
        """The git diff command when both LKG and FKB carry a revision."""
        if self.lkg and self.fkb and self.lkg.revision and self.fkb.revision:
            return git_diff_command(self.lkg.revision, self.fkb.revision, paths)
        return None

    def lines(self, paths: Sequence[str] = DEFAULT_DIFF_PATHS) -> list[str]:
        """Human-readable report: order, LKG/FKB line, monotonicity, git diff command."""
        how = "created time, oldest first" if self.order == "created" else "as given"
        if self.requested == "auto" and self.order == "given" and self.rows:
            how += f" ({self.why_given()})"
        out = [f"order: {how}"]
        lkg = self.lkg.target if self.lkg else "none"
        fkb = self.fkb.target if self.fkb else "none"
        line = f"LKG {lkg} FKB {fkb}"
        if self.lkg and self.fkb:
            line += f" boundary {lkg}..{fkb}"
        elif self.lkg:
            line += ": no failing image"
        elif self.fkb:
            line += ": no passing image before it"
        elif BAD in self.verdicts and GOOD in self.verdicts:
            line += ": no good -> bad step"
        else:
            line += ": no image with a known result"
        out.append(line)
        unknown = self.unknown_between
        if unknown:
            out.append("untested between LKG and FKB: " + " ".join(r.target for r in unknown))
        if not self.monotonic:
            fixes = ", ".join(f"{g.target} OK after {b.target} FAIL" for b, g in self.fixes)
            steps = ", ".join(f"{g.target}..{b.target}" for g, b in self.regressions)
            out.append(f"not monotonic: {fixes}" + (f"; regressions: {steps}" if steps else ""))
        tentative = [r.target for r in self.rows if r.tentative and r in (self.lkg, self.fkb)]
        if tentative:
            out.append("unconfirmed status (marked '?'): " + " ".join(tentative))
        cmd = self.diff_command(paths)
        if cmd:
            out.append(cmd)
        elif self.lkg and self.fkb and self.lkg.kind == self.fkb.kind == "image":
            missing = [r.target for r in (self.lkg, self.fkb) if not r.revision]
            have = "have" if len(missing) > 1 else "has"
            out.append(f"no git diff: {' and '.join(missing)} {have} no {OCI_REVISION} label")
        return out


def find_boundary(
    rows: Sequence[InventoryRow],
    markers: Sequence[str] | None = None,
    order: str = "auto",
    *,
    option: str = "--ollama-order",
) -> Boundary:
    """Order the rows and find LKG/FKB for ``markers`` (see the module docstring)."""
    ordered, used = order_rows(rows, order, option=option)
    verdicts = [verdict(r, markers) for r in ordered]
    found = Boundary(used, order, tuple(markers) if markers is not None else None, ordered,
                     verdicts)
    known = [(r, v) for r, v in zip(ordered, verdicts, strict=True) if v != UNKNOWN]
    for (prev, pv), (cur, cv) in pairwise(known):
        if pv == GOOD and cv == BAD:
            found.regressions.append((prev, cur))
        elif pv == BAD and cv == GOOD:
            found.fixes.append((prev, cur))
    if found.regressions:
        found.lkg, found.fkb = found.regressions[-1]
    elif known and all(v == GOOD for _, v in known):
        found.lkg = known[-1][0]
    elif known and all(v == BAD for _, v in known):
        found.fkb = known[0][0]
    return found
