"""A packet capture of the loopback interface: the referee for client arrival stamps.

``tcpdump`` (Debian's ``tcpdump`` package; root, or ``CAP_NET_RAW``) records every TCP packet
a server port sends, with the kernel's nanosecond timestamp taken when the packet passed the
interface, in a process that is none of the contestants. :class:`LoopbackCapture` runs it
around a block, reads the pcap file back (nanosecond pcap, Ethernet framing as ``lo`` has,
IPv4) and maps its CLOCK_REALTIME stamps onto ``perf_counter_ns`` (the offset measured when
the capture starts and when it stops; both are printed so a clock step would show).

:func:`first_content_packets` finds, per response, the packet carrying its first non-empty
content line, keyed by the marker its request's prompt carried (``[req:MARKER]``, see
:func:`marked`): any server, any client, without a server-side request id.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LoopbackCapture", "Packet", "clock_offset", "first_content_packets", "marked"]

START_LIMIT_S = 10.0
STOP_LIMIT_S = 10.0
#: the capture file has caught up once it has not grown for this long
QUIET_S = 0.3
_PCAP_NS_MAGIC = 0xA1B23C4D
_LINKTYPE_ETHERNET = 1
_MARKER = re.compile(rb"\[req:([A-Za-z0-9_-]+)\]")
#: a line with non-empty content: Ollama's NDJSON (generate's "response", chat's "content")
#: or an OpenAI SSE delta's "content" (``reasoning_content`` does not match)
_CONTENT = re.compile(rb'"(?:response|content)":"(?:[^"\\]|\\.)')


@dataclass(frozen=True)
class Packet:
    """One captured TCP segment with payload, stamped on the ``perf_counter_ns`` clock."""

    stamp_ns: int
    src_port: int
    dst_port: int
    payload: bytes


def clock_offset() -> int:
    """CLOCK_REALTIME minus ``perf_counter_ns`` now (the midpoint of a bracket)."""
    before = time.perf_counter_ns()
    wall = time.time_ns()
    after = time.perf_counter_ns()
    return wall - (before + after) // 2


class LoopbackCapture:
    """``with LoopbackCapture(port) as cap: ...`` then ``cap.packets``: what ``port`` sent
    and received."""

    def __init__(self, port: int, snaplen: int = 1024) -> None:
        self.port = port
        self.snaplen = snaplen
        self.packets: list[Packet] = []
        self.offsets: tuple[int, int] = (0, 0)
        self.report = ""
        self._folder = tempfile.TemporaryDirectory(prefix="bench-capture-")
        self._path = Path(self._folder.name) / "lo.pcap"
        self._child: subprocess.Popen[str] | None = None

    @staticmethod
    def available() -> str | None:
        """Why a capture cannot run here, or ``None`` when it can."""
        if shutil.which("tcpdump") is None:
            return "tcpdump is not installed (apt-get install -y tcpdump)"
        if os.geteuid() != 0:
            return "a capture needs root (or CAP_NET_RAW for tcpdump)"
        return None

    def __enter__(self) -> LoopbackCapture:
        os.chmod(self._folder.name, 0o777)  # tcpdump drops to its own user before writing
        command = ["tcpdump", "-i", "lo", "-n", "-U", "--immediate-mode", "-B", "65536",
                   "-s", str(self.snaplen),
                   "--time-stamp-precision=nano", "-w", str(self._path),
                   f"tcp port {self.port}"]
        self._child = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True)
        assert self._child.stderr is not None
        deadline = time.monotonic() + START_LIMIT_S
        line = self._child.stderr.readline()  # "listening on lo, ..." once it captures
        if "listening on" not in line or time.monotonic() > deadline:
            self._stop()
            raise RuntimeError(f"tcpdump did not start: {line.strip()}")
        self.offsets = (clock_offset(), 0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.offsets = (self.offsets[0], clock_offset())
        self._stop()
        try:
            self.packets = list(read_pcap(self._path, (self.offsets[0] + self.offsets[1]) // 2))
        finally:
            self._folder.cleanup()

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        # tcpdump stops at SIGINT without draining what its socket still holds: wait until
        # the file has not grown for a while (it lags behind on a busy machine)
        deadline = time.monotonic() + STOP_LIMIT_S
        size, still_since = -1, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - still_since < QUIET_S:
            now = self._path.stat().st_size if self._path.exists() else 0
            if now != size:
                size, still_since = now, time.monotonic()
            time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        try:
            _, err = child.communicate(timeout=STOP_LIMIT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            _, err = child.communicate()
        self.report = " ".join((err or "").split())


def read_pcap(path: Path, offset_ns: int) -> list[Packet]:
    """TCP segments with payload from a nanosecond Ethernet pcap, stamps minus ``offset_ns``."""
    data = path.read_bytes()
    magic, _major, _minor, _zone, _sigfigs, _snap, link = struct.unpack_from("<IHHiIII", data)
    if magic != _PCAP_NS_MAGIC or link != _LINKTYPE_ETHERNET:
        raise RuntimeError(f"unexpected capture format (magic {magic:#x}, link type {link})")
    packets: list[Packet] = []
    pos = 24
    while pos + 16 <= len(data):
        seconds, nanos, caplen, _length = struct.unpack_from("<IIII", data, pos)
        frame = data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
            continue  # not IPv4
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        if ip[9] != 6:
            continue  # not TCP
        tcp = ip[ihl:total]
        src, dst = struct.unpack_from("!HH", tcp)
        payload = tcp[(tcp[12] >> 4) * 4:]
        if payload:
            packets.append(Packet(seconds * 1_000_000_000 + nanos - offset_ns, src, dst, payload))
    return packets


def marked(prompt: str, marker: str) -> str:
    """``prompt`` carrying ``marker`` (letters, digits, ``-``, ``_``) for the capture."""
    return f"[req:{marker}] {prompt}"


def first_content_packets(packets: list[Packet], server_port: int) -> dict[str, int]:
    """Marker -> stamp of the packet carrying the response's first non-empty content.

    Per connection (the client's port) requests and responses alternate, in order: a request
    packet naming ``[req:MARKER]`` opens a response, and its first content is the first
    payload the server sends on that connection after it holding a content line with text.
    """
    found: dict[str, int] = {}
    current: dict[int, tuple[str, bool]] = {}  # client port -> (marker, content seen)
    for packet in packets:
        if packet.dst_port == server_port:
            match = _MARKER.search(packet.payload)
            if match:
                current[packet.src_port] = (match.group(1).decode(), False)
            continue
        request = current.get(packet.dst_port)
        if request is None or request[1]:
            continue
        if _CONTENT.search(packet.payload):
            found[request[0]] = packet.stamp_ns
            current[packet.dst_port] = (request[0], True)
    return found
