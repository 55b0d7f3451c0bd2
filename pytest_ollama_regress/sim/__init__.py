"""The Ollama simulator: a real HTTP server speaking Ollama's API for a chosen version.

```python
from pytest_ollama_regress.sim import SimServer
with SimServer(profile="good", version="0.12.6", env={"OLLAMA_NUM_PARALLEL": "4"}) as sim:
    sim.url  # "http://127.0.0.1:<port>"
```
"""

from __future__ import annotations

from pytest_ollama_regress.sim.features import DEFAULT_VERSION, Features, check_version
from pytest_ollama_regress.sim.latency import Latency
from pytest_ollama_regress.sim.profiles import PROFILES, Profile, get_profile
from pytest_ollama_regress.sim.server import SimServer

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
