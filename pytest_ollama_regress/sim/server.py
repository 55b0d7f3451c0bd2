"""HTTP layer of the simulator: a threaded HTTP/1.1 server on 127.0.0.1 with gin's routing.

Streams use chunked transfer encoding, one chunk per NDJSON line, flushed at once; the
``perf_counter_ns`` right after each flush is recorded per request (``X-Sim-Request-Id``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pytest_ollama_regress.sim import openai
from pytest_ollama_regress.sim.app import App, Record
from pytest_ollama_regress.sim.catalogue import CATALOGUE
from pytest_ollama_regress.sim.errors import ApiError
from pytest_ollama_regress.sim.features import DEFAULT_VERSION, Features, check_version
from pytest_ollama_regress.sim.latency import Latency
from pytest_ollama_regress.sim.logs import ServerLog, debug_level
from pytest_ollama_regress.sim.profiles import get_profile
from pytest_ollama_regress.sim.wire import go_json

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
_FLUSH_RE = re.compile(r"^/_sim/(flushes|requests)/([^/]+)$")
_V1_MODEL_RE = re.compile(r"^/v1/models/(.+)$")

# path -> allowed methods -> App method name (or "openai:<fn>")
ROUTES: dict[str, dict[str, str]] = {
    "/": {"GET": "root", "HEAD": "root"},
    "/api/version": {"GET": "version", "HEAD": "version"},
    "/api/tags": {"GET": "tags", "HEAD": "tags"},
    "/api/show": {"POST": "show"},
    "/api/ps": {"GET": "ps"},
    "/api/chat": {"POST": "chat"},
    "/api/generate": {"POST": "generate"},
    "/api/embed": {"POST": "embed"},
    "/api/embeddings": {"POST": "embeddings"},
    "/api/pull": {"POST": "pull"},
    "/api/delete": {"DELETE": "delete"},
    "/v1/chat/completions": {"POST": "openai:chat_completions"},
    "/v1/models": {"GET": "openai:models"},
}


class _ClientGone(Exception):
    """The client closed the connection."""


class _Exchange:
    """Response writer for one request (implements ``app.Exchange``)."""

    def __init__(self, handler: _Handler, method: str, path: str, body: bytes) -> None:
        self.handler = handler
        self.method = method
        self.path = path
        self.body = body
        self.request_id: str | None = None
        self.record: Record | None = None
        self.started = False
        self.finished = False
        self.status = 0
        self.head_only = method == "HEAD"
        self._pending = b""

    def _headers(self, status: int, content_type: str | None, length: int | None) -> None:
        """Queue the status line and headers; they go out with the first body write."""
        h = self.handler
        h.send_response_only(status)
        if content_type:
            h.send_header("Content-Type", content_type)
        if self.request_id is not None:
            h.send_header("X-Sim-Request-Id", self.request_id)
        h.send_header("Date", formatdate(usegmt=True))
        if length is None:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(length))
        buffered = getattr(h, "_headers_buffer", [])
        self._pending = b"".join(buffered) + b"\r\n"
        h._headers_buffer = []
        self.status = status

    def _write(self, data: bytes, timed: bool = False) -> None:
        if self._pending:
            data, self._pending = self._pending + data, b""
        try:
            self.handler.wfile.write(data)
            self.handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError) as exc:
            self.handler.close_connection = True
            raise _ClientGone() from exc
        if timed and self.record is not None:
            self.record.flushes.append(time.perf_counter_ns())

    def _single(self, status: int, content_type: str | None, payload: bytes) -> None:
        if self.started:
            raise RuntimeError("response already started")
        self.started = True
        self.finished = True
        self._headers(status, content_type, len(payload))
        self._write(b"" if self.head_only else payload, timed=True)

    def json(self, status: int, obj: Any) -> None:
        self._single(status, JSON_TYPE, go_json(obj))

    def text(self, status: int, text: str) -> None:
        self._single(status, TEXT_TYPE, text.encode())

    def empty(self, status: int) -> None:
        self._single(status, None, b"")

    def chunk(self, data: bytes, content_type: str = "application/x-ndjson") -> None:
        if not self.started:
            self.started = True
            self._headers(200, content_type, None)
        if data:
            self._write(b"%x\r\n%s\r\n" % (len(data), data), timed=True)

    def line(self, obj: Any, content_type: str = "application/x-ndjson") -> None:
        self.chunk(go_json(obj) + b"\n", content_type)

    def end(self) -> None:
        if self.started and not self.finished:
            self.finished = True
            self._write(b"0\r\n\r\n")

    def attach(self, record: Record) -> None:
        """Bind the request record: ``X-Sim-Request-Id`` and flush times."""
        self.record = record
        self.request_id = record.request_id


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300  # idle keep-alive connections are closed after 5 minutes
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Go's net package sets TCP_NODELAY on every connection: no Nagle delay per chunk
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silenced: requests are logged in gin's format instead."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            for _ in range(1_000_000):
                size_line = self.rfile.readline(1024).strip()
                size = int(size_line.split(b";")[0] or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024).strip():
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(8)
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        with self.server.tracking():
            self._dispatch_tracked()

    def _dispatch_tracked(self) -> None:
        started = time.perf_counter_ns()
        method = self.command
        path = self.path.split("?", 1)[0]
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        ex = _Exchange(self, method, path, body)
        app = self.server.app
        try:
            if not self._host_allowed():
                ex.empty(403)
                return
            self._route(app, ex, method, path)
        except _ClientGone:
            self.close_connection = True
        except ApiError as exc:
            self._error(ex, exc.status, exc.message)
        except Exception as exc:  # a simulator bug: report it like a server error
            app.log("ERROR", "routes.go", "simulator error", error=repr(exc))
            self._error(ex, 500, f"simulator error: {exc!r}")
        finally:
            if ex.started and not ex.finished:
                try:
                    ex.end()
                except _ClientGone:
                    self.close_connection = True
            if ex.record is not None:
                ex.record.finished.set()
            app.log.gin(ex.status, time.perf_counter_ns() - started, self.client_address[0],
                        method, path)

    def _host_allowed(self) -> bool:
        """``allowedHostsMiddleware``: on a loopback listener only local Host headers pass."""
        if not _is_loopback(self.server.server_address[0]):
            return True
        host = self.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower()
        if name in ("", "localhost", socket.gethostname().lower()) or name.endswith(
                (".localhost", ".local", ".internal")):
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False
        return address.is_loopback or address.is_private or address.is_unspecified

    def _error(self, ex: _Exchange, status: int, message: str) -> None:
        try:
            if not ex.started:
                if ex.path.startswith("/v1/"):
                    ex.json(status, openai.wrap_error(status, message))
                else:
                    ex.json(status, {"error": message})
            elif not ex.finished:
                ex.line({"error": message})
                ex.end()
        except _ClientGone:
            self.close_connection = True

    def _route(self, app: App, ex: _Exchange, method: str, path: str) -> None:
        match = _FLUSH_RE.match(path)
        if match:
            if method != "GET":
                ex.text(405, "405 method not allowed")
                return
            record = app.record(match.group(2))
            if record is not None:
                record.wait()
            if record is None:
                ex.json(404, {"error": f"no request {match.group(2)!r}"})
            elif match.group(1) == "flushes":
                ex.json(200, list(record.flushes))
            else:
                ex.json(200, record.as_dict())
            return
        model_match = _V1_MODEL_RE.match(path)
        if model_match:
            if method != "GET":
                ex.text(405, "405 method not allowed")
                return
            openai.model(app, ex, model_match.group(1))
            return
        routes = ROUTES.get(path)
        if routes is None:
            ex.text(404, "404 page not found")
            return
        target = routes.get(method)
        if target is None:
            ex.text(405, "405 method not allowed")
            return
        if target.startswith("openai:"):
            getattr(openai, target.split(":", 1)[1])(app, ex)
        else:
            getattr(app, target)(ex)

    do_GET = do_POST = do_HEAD = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = _dispatch


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._inflight = 0
        self._idle = threading.Condition()
        super().__init__(address, _Handler)

    @contextlib.contextmanager
    def tracking(self) -> Iterator[None]:
        """Count a request as in flight until its response is written and logged."""
        with self._idle:
            self._inflight += 1
        try:
            yield
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def drain(self, timeout: float = 2.0) -> None:
        """Wait (bounded) for in-flight requests to finish, as a graceful shutdown does."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._inflight > 0 and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A peer resetting an idle keep-alive connection is normal; log anything else."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return
        self.app.log("ERROR", "routes.go", "connection error", client=client_address[0],
                     error=repr(error))


class SimServer:
    """A simulated Ollama server on ``host:port`` (port 0 picks a free one).

    ``env`` is the server's whole environment (the process environment is not read);
    ``latency`` overrides the defaults, and ``OLLAMA_SIM_*_MS/_US`` in ``env`` override it.
    Log lines are kept in memory (``log_lines()``) and also written to ``log_stream``: a text
    stream, ``"stderr"`` (what the console command uses), or ``None`` (default: nowhere).
    """

    def __init__(self, profile: str = "good", version: str = DEFAULT_VERSION,
                 env: Mapping[str, str] | None = None, host: str = "127.0.0.1", port: int = 0,
                 latency: Latency | None = None, log_stream: Any = None) -> None:
        self.profile = get_profile(profile)
        self.version = check_version(version)
        self.env = {k: str(v) for k, v in (env or {}).items()}
        self.host = host
        self.latency = Latency.from_env(self.env, latency)
        self.log = ServerLog(debug_level(self.env.get("OLLAMA_DEBUG")), log_stream)
        self.app = App(Features(self.version), self.profile, self.env, self.latency, self.log)
        self._requested_port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> SimServer:
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer((self.host, self._requested_port), self.app)
        self._log_startup()
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"ollama-sim-{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Run in the calling thread (the console command)."""
        if self._httpd is None:
            self._httpd = _HTTPServer((self.host, self._requested_port), self.app)
            self._log_startup()
        self._httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        if self._thread is not None:
            httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        httpd.drain()
        httpd.server_close()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            return self._requested_port
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- introspection -------------------------------------------------------------------
    def flush_times(self, request_id: str | int, timeout: float = 10.0) -> list[int]:
        """``perf_counter_ns`` right after each chunk of request ``request_id`` was flushed
        (waits up to ``timeout`` s for the response to complete; [] for unknown ids)."""
        record = self.app.record(str(request_id))
        if record is None:
            return []
        record.wait(timeout)
        return list(record.flushes)

    def request_record(self, request_id: str | int) -> Record | None:
        """Everything known about one request (scheduled first token, load, flushes)."""
        return self.app.record(str(request_id))

    def log_lines(self) -> list[str]:
        """The server log lines written so far (most recent 5000)."""
        return list(self.log.lines)

    # -- logging -------------------------------------------------------------------------
    def _log_startup(self) -> None:
        cfg = self.app.config
        keep = "2562047h47m16.854775807s" if cfg.keep_alive_s == float("inf") else \
            f"{int(cfg.keep_alive_s // 60)}m{int(cfg.keep_alive_s % 60)}s"
        values = {
            "CUDA_VISIBLE_DEVICES": self.env.get("CUDA_VISIBLE_DEVICES", ""),
            "OLLAMA_CONTEXT_LENGTH": str(cfg.context_length or (
                0 if self.app.features.vram_default_ctx else 4096)),
            "OLLAMA_DEBUG": {0: "INFO", -4: "DEBUG"}.get(self.log.level, "TRACE"),
            "OLLAMA_FLASH_ATTENTION": self.env.get("OLLAMA_FLASH_ATTENTION", "false"),
            "OLLAMA_HOST": f"http://{self.host}:{self.port}",
            "OLLAMA_KEEP_ALIVE": keep,
            "OLLAMA_KV_CACHE_TYPE": self.env.get("OLLAMA_KV_CACHE_TYPE", ""),
            "OLLAMA_MAX_LOADED_MODELS": str(cfg.max_loaded),
            "OLLAMA_MAX_QUEUE": str(cfg.max_queue),
            "OLLAMA_MODELS": self.env.get("OLLAMA_MODELS", "/root/.ollama/models"),
            "OLLAMA_NUM_PARALLEL": str(cfg.num_parallel),
            "OLLAMA_ORIGINS": "[http://localhost https://localhost http://127.0.0.1]",
        }
        self.log("INFO", "routes.go", "server config", env=self.log.env_map(values))
        self.log("INFO", "images.go", f"total blobs: {self.app.store.count_blobs()}")
        self.log("INFO", "routes.go",
                 f"Listening on {self.host}:{self.port} (version {self.app.reported_version})")
        vram = cfg.vram_gib
        if vram > 0:
            self.log("INFO", "types.go", "inference compute", id="GPU-sim-0", library="cuda",
                     name="CUDA0", description="Simulated GPU", total=f"{vram:.1f} GiB",
                     available=f"{vram * 0.97:.1f} GiB")
        else:
            self.log("INFO", "types.go", "inference compute", id="cpu", library="cpu",
                     name="cpu", total="0 B")
        if self.app.features.low_vram_mode and cfg.low_vram:
            self.log("INFO", "routes.go", "entering low vram mode",
                     **{"\"total vram\"": f"{max(vram, 0):.1f} GiB", "threshold": "20.0 GiB"})
        if self.app.features.vram_default_ctx:
            self.log("INFO", "routes.go", "vram-based default context",
                     total_vram=f"{vram:.1f} GiB", default_num_ctx=cfg.default_num_ctx)
        self.log("INFO", "sim", "simulator ready", profile=self.profile.name,
                 models=len(CATALOGUE))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
