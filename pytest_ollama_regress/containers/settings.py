"""The containers' options (one row each); their values are checked in the
``pytest_ollama_register_targets`` hook, where the engine is at hand."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from pytest_ollama_regress.options import Option, read
from pytest_ollama_regress.targets.settings import seconds

DEFAULT_START_TIMEOUT = 120.0

OPTIONS = (
    Option("ollama_image", "test this image in a container (repeatable): sha256:<id>, a short "
           "ID such as 4beecd8, repo:tag or repo@sha256:<digest>; LABEL= names its test id",
           kind="list", metavar="[LABEL=]REF",
           ini_help="images to test (one [LABEL=]REF per line)"),
    Option("ollama_pull", "pull --ollama-image references the engine does not have (off by "
           "default)", kind="flag"),
    Option("ollama_gpus", "GPUs for the containers (default auto: all when the engine has an "
           "NVIDIA runtime)", metavar="auto|all|none|N|ID[,ID]", default="auto"),
    Option("ollama_models_dir", "host folder mounted at /models in the containers (Ollama: "
           "OLLAMA_MODELS=/models; llama-server: LLAMA_ARG_MODEL=/models/<its one .gguf>), "
           "read-only when it holds models unless --ollama-models-rw",
           metavar="PATH"),
    Option("ollama_models_rw", "mount the models folder read-write, for checks that pull or "
           "delete models (default: read-only, with OLLAMA_NOPRUNE=1 for Ollama, once it holds "
           "models: manifests/ or .gguf files)", kind="flag"),
    Option("ollama_env", "environment variable for the containers (repeatable); ollama_env "
           "markers add to it", kind="list", metavar="KEY=VALUE",
           ini_help="container environment, one KEY=VALUE per line"),
    Option("ollama_server_args", "arguments after the images' entrypoint, as in `docker run "
           "IMAGE ARGS` (they replace its CMD), e.g. --ollama-server-args='-c 4096 -np 4 -kvu' "
           "for llama-server images; the address and port stay the plugin's", kind="args",
           metavar="ARGS", parse=lambda items: tuple(part for item in items
                                                     for part in shlex.split(item)),
           ini_help="arguments after the images' entrypoint (replace their CMD)"),
    Option("ollama_network", "container networking (default auto: bridge with ports on "
           "127.0.0.1 when the engine has a bridge network, else host)",
           choices=("auto", "host", "bridge"), default="auto"),
    Option("ollama_start_timeout", f"how long a container may take to answer (Ollama: "
           f"/api/version, llama-server: /health 200; default {DEFAULT_START_TIMEOUT:g})", metavar="SECONDS",
           default=DEFAULT_START_TIMEOUT, parse=seconds),
    Option("ollama_keep", "leave the containers running at the end and print how to reach "
           "them", kind="flag"),
)
_BY_NAME = {option.name: option for option in OPTIONS}


def value(config: pytest.Config, name: str) -> Any:
    """The setting of one of the rows above (command line, env, ini, default)."""
    return read(config, _BY_NAME[name]).value
