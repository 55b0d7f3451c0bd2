"""pytest hooks for the model catalogue: fixtures ``ollama_models``, ``ollama_model``,
``ollama_vision_model`` and the model matrix of ``--ollama-model all|vision|NAME|@FILE``.

Options: ``catalogue/settings.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ollama_regress.catalogue.selector import ModelSelector
from pytest_ollama_regress.catalogue.settings import OPTIONS, CatalogueSettings, read_settings
from pytest_ollama_regress.options import add_options, no_session
from pytest_ollama_regress.session import session_of
from pytest_ollama_regress.targets.registry import TargetError, registry_of
from pytest_ollama_regress.targets.settings import TargetSettings

if TYPE_CHECKING:  # the naming rules and discovery load when a model is first looked up
    from pytest_ollama_regress.catalogue.names import ModelEntry

MODEL_OPT = "--ollama-model"
VISION_OPT = "--ollama-vision-model"


@dataclass(frozen=True)
class MatrixModel:
    """One model of the matrix: the id it gives tests and, when deprecated, why."""

    name: str
    variant: str
    vision: bool = True
    completion: bool = True
    deprecated_reason: str | None = None


@dataclass
class CatalogueState:
    """Per-session state: the selector and the collection-time matrix."""

    selector: ModelSelector
    registry_models: list[MatrixModel] | None = None
    union: list[MatrixModel] | None = None


def _state(config: pytest.Config) -> CatalogueState | None:
    session = session_of(config)
    return session.get(CatalogueState) if session.has(CatalogueState) else None


def _vision_model(config: pytest.Config) -> str | None:
    return session_of(config).get(CatalogueSettings).vision_model


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser, OPTIONS)


def _load_registry_matrix(config: pytest.Config, path: str) -> list[MatrixModel]:
    from pytest_ollama_regress.catalogue.model_registry import RegistryError, load_registry

    try:
        reg = load_registry(config.invocation_params.dir / path, missing_ok=False)
    except RegistryError as exc:
        raise pytest.UsageError(f"--ollama-model @{path}: {exc}") from None
    models = []
    for entry in reg.entries():
        caps = entry.get("capabilities") or []
        served = entry.get("served_model_id") or entry["name"]
        reason = None
        if entry.get("deprecated"):
            reason = entry.get("deprecated_reason") or "deprecated in the registry"
            reason = f"{entry['name']} is deprecated: {reason}"
        models.append(
            MatrixModel(
                name=served,
                variant=entry["name"],
                vision="vision" in caps if caps else True,
                completion="completion" in caps if caps else True,
                deprecated_reason=reason,
            )
        )
    if not models:
        raise pytest.UsageError(
            f"--ollama-model @{path}: the registry holds no models; "
            "fill it with `ollama-regress models import`"
        )
    return models


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """Keep ``--ollama-model @FILE`` from being read as a pytest arguments file.

    pytest's parser expands ``@FILE`` arguments (``fromfile_prefix_chars``); joining the
    value to its option (``--ollama-model=@FILE``) keeps it a value.
    """
    i = 0
    while i < len(args) - 1:
        if args[i] == MODEL_OPT and args[i + 1].startswith("@"):
            args[i : i + 2] = [f"{MODEL_OPT}={args[i + 1]}"]
        i += 1


def pytest_configure(config: pytest.Config) -> None:
    if no_session(config):
        return
    settings = read_settings(config)
    state = CatalogueState(settings.selector)
    if settings.selector.kind == "registry":
        state.registry_models = _load_registry_matrix(config, settings.selector.value)
    session_of(config).put(settings)
    session_of(config).put(state)


def _missing(config: pytest.Config, message: str) -> None:
    """Skip with ``message``, or fail with it under ``--ollama-strict``."""
    if session_of(config).get(TargetSettings).strict:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _lacks(
    target: str, wanted: str, entries: Sequence[ModelEntry], option: str = MODEL_OPT
) -> str:
    have = ", ".join(e.name for e in entries) or "no models"
    return (
        f"target {target} has no model {wanted!r} (it has: {have}); "
        f"pull it or choose another {option}"
    )


def _matrix_entry(
    param: MatrixModel, entries: Sequence[ModelEntry], target: str, *, fail_if_absent: bool
) -> str:
    """The served name of a matrix model on ``target``; skip (or fail) when it is not there."""
    from pytest_ollama_regress.catalogue.names import find_model

    if param.deprecated_reason:
        pytest.skip(param.deprecated_reason)
    entry = find_model(entries, param.name)
    if entry is None:
        if fail_if_absent:
            pytest.fail(_lacks(target, param.name, entries), pytrace=False)
        pytest.skip(f"target {target} has no model {param.name!r}")
    return entry.name


@pytest.fixture
def ollama_models(request: pytest.FixtureRequest, ollama: Any,
                  ollama_target: Any) -> list[ModelEntry]:
    """The discovered catalogue of the current target (Ollama: ``/api/tags`` + ``/api/show``)."""
    from pytest_ollama_regress.catalogue.discovery import discovered

    return discovered(request.config, ollama, ollama_target.dialect)


@pytest.fixture
def ollama_model(
    request: pytest.FixtureRequest, ollama_models: list[ModelEntry], ollama_target: Any
) -> str:
    """The completion model for this test: the matrix entry, ``--ollama-model``, or discovery."""
    from pytest_ollama_regress.catalogue.names import first_with

    config = request.config
    target = ollama_target.id
    param: MatrixModel | None = getattr(request, "param", None)
    if param is not None:
        # A discovered matrix (all / vision) varies per target; a named model must be there.
        named = session_of(config).get(CatalogueState).selector.kind not in ("all", "vision")
        return _matrix_entry(param, ollama_models, target, fail_if_absent=named)
    entry = first_with(ollama_models, "completion")
    if entry is None:
        _missing(config, f"target {target} has no completion model; pull one (e.g. llama3.2)")
    assert entry is not None
    return entry.name


@pytest.fixture
def ollama_vision_model(
    request: pytest.FixtureRequest, ollama_models: list[ModelEntry], ollama_target: Any
) -> str:
    """The vision model for this test: ``--ollama-vision-model``, the matrix, or discovery."""
    from pytest_ollama_regress.catalogue.names import find_model, first_with

    config = request.config
    target = ollama_target.id
    param: MatrixModel | None = getattr(request, "param", None)
    if param is not None:
        return _matrix_entry(param, ollama_models, target, fail_if_absent=False)
    named = _vision_model(config)
    if named:
        entry = find_model(ollama_models, named)
        if entry is None:
            pytest.fail(_lacks(target, named, ollama_models, VISION_OPT), pytrace=False)
        return entry.name
    entry = first_with(ollama_models, "vision")
    if entry is None:
        _missing(
            config,
            f"target {target} has no vision model; pull one (e.g. llava) "
            f"or name it with {VISION_OPT}",
        )
    assert entry is not None
    return entry.name


# --- the model matrix ------------------------------------------------------------------------


def _target_catalogues(config: pytest.Config) -> list[tuple[str, list[ModelEntry]]]:
    """Discover every target's default server at collection (for ``all`` / ``vision``)."""
    registry = registry_of(config)
    return [(t.id, _catalogue_of(config, t.id)) for t in registry.targets]


def _catalogue_of(config: pytest.Config, target_id: str) -> list[ModelEntry]:
    from pytest_ollama_regress.catalogue.discovery import discovered

    endpoint = registry_of(config).endpoint(target_id, {})
    target = registry_of(config).target(target_id)
    return discovered(config, session_of(config).clients.client(endpoint.url, target.dialect),
                      target.dialect)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Check named models (``--ollama-model NAME|@FILE``, ``--ollama-vision-model``) on url/sim
    targets before any test runs: a usage error if absent.

    Simulators start here for it (a named model means the run will use them); image targets
    start lazily, so their check happens when their first test runs.
    """
    config = session.config
    state = _state(config)
    if state is None:
        return
    wanted: list[tuple[str, str]] = []
    if state.selector.kind in ("name", "registry"):
        wanted = [(m.name, MODEL_OPT) for m in matrix_models(config) if not m.deprecated_reason]
    vision = _vision_model(config)
    if vision:
        wanted.append((vision, VISION_OPT))
    if not wanted:
        return
    from pytest_ollama_regress.catalogue.names import find_model

    registry = registry_of(config)
    for target in registry.targets:
        quick = getattr(registry.provider(target.kind), "quick_start", False)
        if registry.started_endpoint(target.id) is None and not quick:
            continue  # started on first use (containers): checked when its first test runs
        try:
            entries = _catalogue_of(config, target.id)
        except TargetError:
            continue  # the targets plugin reports unreachable targets itself
        for name, option in wanted:
            if find_model(entries, name) is None:
                raise pytest.UsageError(_lacks(target.id, name, entries, option))


def _union(config: pytest.Config) -> list[MatrixModel]:
    from pytest_ollama_regress.catalogue.names import assign_variant_names, canonical_name

    state = session_of(config).get(CatalogueState)
    if state.union is None:
        seen: dict[str, ModelEntry] = {}
        for _, entries in _target_catalogues(config):
            for e in entries:
                seen.setdefault(canonical_name(e.name), e)
        names = assign_variant_names(e.name for e in seen.values())
        state.union = [
            MatrixModel(e.name, names[e.name], vision=e.is_vision, completion=e.is_completion)
            for e in seen.values()
        ]
    return state.union


def matrix_models(config: pytest.Config) -> list[MatrixModel]:
    """The models ``ollama_model`` is parametrized over (empty when not a matrix run)."""
    sel = session_of(config).get(CatalogueState).selector
    if sel.kind == "name":
        from pytest_ollama_regress.catalogue.names import BACKEND_SUFFIX, variant_name

        given_variant = f"-{BACKEND_SUFFIX}" in sel.value.lower() and ":" not in sel.value
        variant = sel.value.lower() if given_variant else variant_name(sel.value)
        return [MatrixModel(sel.value, variant)]
    if sel.kind == "vision":
        return vision_matrix_models(config)
    return [m for m in _candidates(config) if m.completion]


def vision_matrix_models(config: pytest.Config) -> list[MatrixModel]:
    """The models ``ollama_vision_model`` is parametrized over (``all``, ``vision``, ``@FILE``)."""
    if session_of(config).get(CatalogueState).selector.kind == "name":
        return []
    return [m for m in _candidates(config) if m.vision]


def _candidates(config: pytest.Config) -> list[MatrixModel]:
    state = session_of(config).get(CatalogueState)
    if state.selector.kind == "registry":
        return list(state.registry_models or [])
    if state.selector.kind in ("all", "vision"):
        return _union(config)
    return []


def _param(model: MatrixModel) -> Any:
    marks = [pytest.mark.skip(reason=model.deprecated_reason)] if model.deprecated_reason else []
    return pytest.param(model, id=model.variant, marks=marks)


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``ollama_model`` (else ``ollama_vision_model``) after the targets.

    ``ollama_vision_model`` is left alone when ``--ollama-vision-model`` names the model.
    """
    config = metafunc.config
    state = _state(config)
    if state is None or not state.selector.is_matrix:
        return
    if "ollama_model" in metafunc.fixturenames:
        argname, models = "ollama_model", matrix_models(config)
    elif "ollama_vision_model" in metafunc.fixturenames and state.selector.kind != "name":
        if _vision_model(config):
            return
        argname, models = "ollama_vision_model", vision_matrix_models(config)
    else:
        return
    if models:
        metafunc.parametrize(argname, [_param(m) for m in models], indirect=True)
        return
    reason = f"{MODEL_OPT}={state.selector.kind}: no model for {argname} on any target"
    skip = pytest.param(None, id="no-model", marks=pytest.mark.skip(reason=reason))
    metafunc.parametrize(argname, [skip], indirect=True)
