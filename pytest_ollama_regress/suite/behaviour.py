"""Which release a server behaves as: stated by the user, or probed from the server itself.

A source build reports ``0.0.0`` and a ``git describe`` build sits between two releases, so the
version string alone cannot say which rules hold (reference §16.1). Two ways to know more:

- **stated**: ``--ollama-behaves-as [TARGET=]X.Y.Z`` (repeatable; without ``TARGET=`` it is
  every target's) or the image label ``org.ollama-regress.behaves-as=X.Y.Z``;
- **probed**: behaviour whose every form is healthy is asked of the server once per target
  (:func:`probe`) — today the debug render (absent, minimal or full shape).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pytest_ollama_regress.suite.expectations import BEHAVES_AS_LABEL, Expectations
from pytest_ollama_regress.versions import parse_version

ALL_TARGETS = ""
"""The key of a ``--ollama-behaves-as`` value that names no target."""
PROBE_MESSAGES = ({"role": "user", "content": "Hello."},)


def parse_behaves_as(values: Iterable[str], source: str = "--ollama-behaves-as") -> dict[str, str]:
    """``["img=0.12.6", "0.11.5"]`` -> ``{"img": "0.12.6", "": "0.11.5"}``; one-line
    ``ValueError`` naming the fix for anything else."""
    stated: dict[str, str] = {}
    for raw in values:
        text = raw.strip()
        if not text:
            continue
        target, _, release = text.rpartition("=")
        try:
            parse_version(release)
        except ValueError:
            where = f"{source} {raw!r}: " if source else ""
            raise ValueError(
                f"{where}give [TARGET=]X.Y.Z, e.g. --ollama-behaves-as=mybuild=0.12.6"
            ) from None
        stated[target.strip()] = release.strip()
    return stated


def stated_release(stated: Mapping[str, str], target_id: str,
                   labels: Mapping[str, str] | None = None) -> str | None:
    """The release stated for ``target_id``: its own entry, the image label, then the
    entry for every target."""
    if target_id in stated:
        return stated[target_id]
    label = (labels or {}).get(BEHAVES_AS_LABEL, "").strip()
    if label:
        return label
    return stated.get(ALL_TARGETS)


def probe(client: Any, model: str | None) -> dict[str, str]:
    """What the server does where every form is healthy, asked once with ``model``.

    ``{"debug render": "absent" | "minimal" | "full"}``; nothing when there is no model or
    the server fails the request for another reason (then the release decides).
    """
    if not model:
        return {}
    from pytest_ollama_regress.dialects.ollama_client import OllamaError  # the client's own

    try:
        render = client.render_chat(model, list(PROBE_MESSAGES))
    except OllamaError as exc:
        if exc.status == 200 and "_debug_info" in exc.message:
            return {"debug render": "absent"}
        return {}
    return {"debug render": render.shape}


def behaviour_note(expect: Expectations) -> str:
    """``source build (0.0.0): release unknown; may be any of 10 releases; probed: debug
    render full``: the inventory's note and the summary line's body."""
    probes = ", ".join(f"{k} {v}" for k, v in sorted(expect.probes.items())) or "nothing"
    described = expect.describe()
    releases = ("judged as " + str(expect.version) if expect.known else
                f"may be any of {len(expect.releases)} releases")
    if releases in described:  # "release candidate, judged as 0.33.0" says it already
        return f"{described}; probed: {probes}"
    return f"{described}; {releases}; probed: {probes}"


def summary_line(target_id: str, expect: Expectations) -> str:
    """``img: 0.0.0 (source build (0.0.0): release unknown; may be any of …)``."""
    return f"{target_id}: {expect.server_version} ({behaviour_note(expect)})"
