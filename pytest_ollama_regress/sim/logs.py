"""Server log lines in the real server's formats: slog text lines and gin request lines."""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import IO

_LEVELS = {"DEBUG": -4, "INFO": 0, "WARN": 4, "ERROR": 8}
_SOURCES = {"routes.go": 1331, "server.go": 398, "sched.go": 190, "images.go": 477,
            "prompt.go": 106, "types.go": 130, "gpu.go": 217, "sim": 1}


def debug_level(raw: str | None) -> int:
    """``OLLAMA_DEBUG``: ``1``/``true`` -> DEBUG (-4), ``2`` -> TRACE (-8), ``i`` -> ``-4*i``."""
    text = (raw or "").strip().strip("\"'").lower()
    if not text or text in ("false", "0"):
        return 0
    if text in ("true", "t", "yes"):
        return -4
    try:
        return -4 * int(text)
    except ValueError:
        return -4


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n\t') or not text.isprintable():
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String`` (enough for gin's latency column)."""
    if ns < 1000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1000:g}µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:g}ms"
    return f"{ns / 1_000_000_000:g}s"


class ServerLog:
    """Keeps the last log lines and writes them to ``stream`` (``"stderr"``: the process's
    stderr at write time; ``None``: nowhere)."""

    def __init__(self, level: int = 0, stream: IO[str] | str | None = None,
                 keep: int = 5000) -> None:
        self.level = level
        self._stream = stream
        self._lock = threading.Lock()
        self.lines: collections.deque[str] = collections.deque(maxlen=keep)

    @property
    def debug_enabled(self) -> bool:
        return self.level <= -4

    def _emit(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)
            stream = sys.stderr if self._stream == "stderr" else self._stream
            if stream is None:
                return
            try:
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass

    def __call__(self, level: str, source: str, msg: str, **attrs: object) -> None:
        if _LEVELS.get(level, 0) < self.level:
            return
        stamp = datetime.now().astimezone().isoformat(timespec="milliseconds")
        stamp = stamp.replace("+00:00", "Z")
        src = f"{source}:{_SOURCES.get(source, 1)}"
        parts = [f"time={stamp}", f"level={level}", f"source={src}", f"msg={_quote(msg)}"]
        parts += [f"{key}={_quote(value)}" for key, value in attrs.items()]
        self._emit(" ".join(parts))

    def gin(self, status: int, latency_ns: int, client: str, method: str, path: str) -> None:
        """``[GIN] 2025/08/20 - 10:00:00 | 200 |   1.2ms |  127.0.0.1 | POST "/api/chat"``."""
        stamp = time.strftime("%Y/%m/%d - %H:%M:%S")
        self._emit(
            f"[GIN] {stamp} | {status:3d} | {go_duration(latency_ns):>13} | {client:>15} | "
            f'{method:<8} "{path}"'
        )

    def env_map(self, values: Mapping[str, str]) -> str:
        return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(values.items())) + "]"
