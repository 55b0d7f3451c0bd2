"""The Ollama simulator: a real HTTP server speaking Ollama's API for a chosen version.

```python
from pytest_ollama_regress.sim import SimServer
with SimServer(profile="good", version="0.12.6", env={"OLLAMA_NUM_PARALLEL": "4"}) as sim:
    sim.url  # "http://127.0.0.1:<port>"
```

The names below are imported on first access (PEP 562), so reading a profile or a version
(``sim.features``, ``sim.profiles``) does not load the server.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_ollama_regress.sim.features import DEFAULT_VERSION, Features, check_version
    from pytest_ollama_regress.sim.latency import Latency
    from pytest_ollama_regress.sim.profiles import PROFILES, Profile, get_profile
    from pytest_ollama_regress.sim.server import SimServer

#: public name -> the module that defines it
_HOMES = {
    "DEFAULT_VERSION": "features",
    "Features": "features",
    "check_version": "features",
    "Latency": "latency",
    "PROFILES": "profiles",
    "Profile": "profiles",
    "get_profile": "profiles",
    "SimServer": "server",
}

__all__ = [
    "DEFAULT_VERSION",
    "PROFILES",
    "Features",
    "Latency",
    "Profile",
    "SimServer",
    "check_version",
    "get_profile",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
