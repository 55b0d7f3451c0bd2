"""The error catalogue (reference section 3): status codes and messages per version."""

from __future__ import annotations

from pytest_ollama_regress.sim.catalogue import ModelSpec
from pytest_ollama_regress.sim.features import Features


class ApiError(Exception):
    """An error response ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RunnerError(ApiError):
    """An error raised by the runner (arrives through the stream channel)."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(status, message)


RUNNER_FAILURE = "an error was encountered while running the model: unexpected EOF"
SERVER_BUSY = "server busy, please try again.  maximum pending requests exceeded"


def missing_body() -> ApiError:
    return ApiError(400, "missing request body")


def model_required() -> ApiError:
    return ApiError(400, "model is required")


def not_found(route: str, name: str, features: Features) -> ApiError:
    """Unknown model: the wording depends on the route and, for chat, the version."""
    if route in ("embed", "embeddings") or (route == "chat" and
                                             not features.chat_not_found_quoted):
        return ApiError(404, f'model "{name}" not found, try pulling it first')
    return ApiError(404, f"model '{name}' not found")


def unsupported(route: str, spec: ModelSpec, name: str) -> ApiError:
    """An embedding model asked to chat or generate."""
    return ApiError(400, f'"{name}" does not support {route}')


def no_tools(spec: ModelSpec) -> ApiError:
    return ApiError(400, f"{spec.full_name} does not support tools")


def no_insert(spec: ModelSpec) -> ApiError:
    return ApiError(400, f"{spec.full_name} does not support insert")


def no_thinking(spec: ModelSpec, name: str, features: Features) -> ApiError:
    if features.think_quoted_error:
        return ApiError(400, f'"{name}" does not support thinking')
    return ApiError(400, f"{spec.full_name} does not support thinking")


def invalid_think(value: str, features: Features) -> ApiError:
    levels = '"high", "medium", "low", true, or false'
    if features.think_max_level:
        levels = '"max", "high", "medium", "low", true, or false'
    return ApiError(400, f'invalid think value: "{value}" (must be {levels})')


def think_level_unsupported(value: str) -> ApiError:
    return ApiError(400, f'think value "{value}" is not supported for this model')


def raw_conflict() -> ApiError:
    return ApiError(400, "raw mode does not support template, system, or context")


def option_type(name: str, kind: str) -> ApiError:
    return ApiError(500, f'option "{name}" must be of type {kind}')


def context_exceeded(features: Features) -> ApiError:
    return ApiError(400, features.context_error)


def invalid_model_name() -> ApiError:
    return ApiError(400, "invalid model name")


def busy() -> ApiError:
    return ApiError(503, SERVER_BUSY)
