"""``--ollama-model`` read into a :class:`ModelSelector` (kept apart from the naming rules of
``names.py``, which load only when a model name has to be checked)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelSelector", "parse_model_selector"]


@dataclass(frozen=True)
class ModelSelector:
    """What ``--ollama-model`` asked for.

    ``kind``: ``"discover"`` (option absent: first completion model, no parametrization),
    ``"all"``, ``"vision"``, ``"name"`` (``value`` is the model) or ``"registry"``
    (``value`` is the registry file path, given as ``@PATH``).
    """

    kind: str
    value: str = ""

    @property
    def is_matrix(self) -> bool:
        """True when tests using ``ollama_model`` are parametrized over models."""
        return self.kind != "discover"


def parse_model_selector(value: str | None) -> ModelSelector:
    """Parse ``--ollama-model``: ``all``, ``vision``, ``@registry.json`` or a model name.

    Raises ``ValueError`` with a one-line message for an empty name or ``@`` without a path.
    """
    if value is None:
        return ModelSelector("discover")
    text = value.strip()
    if not text:
        raise ValueError("--ollama-model is empty: give all, vision, @REGISTRY.json or a model name")
    if text.lower() in ("all", "vision"):
        return ModelSelector(text.lower())
    if text.startswith("@"):
        path = text[1:].strip()
        if not path:
            raise ValueError("--ollama-model @ needs a registry file path, e.g. @models.json")
        return ModelSelector("registry", path)
    from pytest_ollama_regress.catalogue.names import parse_model_name

    try:
        parse_model_name(text)
    except ValueError as exc:
        raise ValueError(
            f"--ollama-model: {exc}; give all, vision, @REGISTRY.json or a model name"
        ) from None
    return ModelSelector("name", text)
