"""Go-style wire encoding: ``encoding/json`` output, Go time formats, Go base64 and JSON errors.

The real server is Go: compact JSON with ``<``, ``>``, ``&`` (and U+2028/U+2029) escaped,
floats in Go's shortest form, ``time.Time`` in RFC3339Nano. These helpers reproduce those
bytes so that byte-level tests against the simulator mean something.
"""

from __future__ import annotations

import json
import math
import struct
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

_HTML_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


class Float32(float):
    """A float that Go holds as ``float32`` (encoded with float32's shortest digits)."""


def _go_float(value: float, bits: int = 64) -> str:
    """Format like Go's ``encoding/json`` float encoder."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {value}")
    if value == 0:
        return "0"
    digits = _shortest_float32(value) if bits == 32 else repr(value)
    dec = Decimal(digits)
    absval = abs(value)
    if absval < 1e-6 or absval >= 1e21:
        mantissa, _, exp = f"{dec:e}".partition("e")
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        sign = exp[0]
        exp_digits = exp[1:].lstrip("0") or "0"
        if sign == "+" and len(exp_digits) < 2:
            exp_digits = "0" + exp_digits
        return f"{mantissa}e{sign}{exp_digits}"
    text = format(dec.normalize(), "f")
    return text


def _shortest_float32(value: float) -> str:
    target = struct.pack("<f", value)
    for precision in range(1, 10):
        text = f"{value:.{precision}g}"
        if struct.pack("<f", float(text)) == target:
            return text
    return repr(value)


def _encode(obj: Any, out: list[str]) -> None:
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(json.dumps(obj, ensure_ascii=False))
    elif isinstance(obj, int):
        out.append(str(obj))
    elif isinstance(obj, Float32):
        out.append(_go_float(obj, 32))
    elif isinstance(obj, float):
        out.append(_go_float(obj, 64))
    elif isinstance(obj, dict):
        out.append("{")
        first = True
        for key, val in obj.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _encode(val, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for index, val in enumerate(obj):
            if index:
                out.append(",")
            _encode(val, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(obj).__name__}")


def go_json(obj: Any) -> bytes:
    """Encode ``obj`` as Go's ``json.Marshal`` would (compact, HTML-escaped, UTF-8)."""
    out: list[str] = []
    _encode(obj, out)
    text = "".join(out)
    for raw, escaped in _HTML_ESCAPES:
        if raw in text:
            text = text.replace(raw, escaped)
    return text.encode("utf-8", errors="replace")


# --- time -------------------------------------------------------------------------------

def rfc3339nano(ns: int, tz: timezone | None = timezone.utc) -> str:
    """Go's ``time.RFC3339Nano`` for a Unix time in ns: trailing zeros trimmed, ``Z`` for UTC."""
    seconds, frac = divmod(ns, 1_000_000_000)
    if tz is None:
        stamp = datetime.fromtimestamp(seconds).astimezone()
    else:
        stamp = datetime.fromtimestamp(seconds, tz)
    base = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{frac:09d}".rstrip("0")
    if fraction:
        base += "." + fraction
    offset = stamp.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return base + "Z"
    total = int(offset.total_seconds())
    sign = "+" if total >= 0 else "-"
    hours, minutes = divmod(abs(total) // 60, 60)
    return f"{base}{sign}{hours:02d}:{minutes:02d}"


def now_utc() -> str:
    """``time.Now().UTC()`` as the generate/chat handlers write ``created_at``."""
    return rfc3339nano(time.time_ns())


def local_time(ns: int) -> str:
    """A local ``time.Time`` (``modified_at``, ``expires_at``): RFC3339Nano with the offset."""
    return rfc3339nano(ns, None)


def far_future_local() -> str:
    """``time.Now().Add(math.MaxInt64)``: what a negative keep_alive shows in ``/api/ps``."""
    now = datetime.now().astimezone()
    stamp = now + timedelta(microseconds=(2**63 - 1) // 1000)
    ns = int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000
    return local_time(ns)


# --- base64 -----------------------------------------------------------------------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_MAP = {ord(ch): index for index, ch in enumerate(_B64)}


class Base64Error(ValueError):
    """``base64.CorruptInputError``: ``illegal base64 data at input byte N``."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"illegal base64 data at input byte {offset}")
        self.offset = offset


def go_b64decode(text: str) -> bytes:
    """Decode like Go's ``base64.StdEncoding.Decode`` (padded, CR/LF skipped, same offsets)."""
    src = text.encode("latin-1", errors="replace") if text.isascii() else text.encode("utf-8")
    out = bytearray()
    si = 0
    n = len(src)
    while si < n:
        dbuf = [0, 0, 0, 0]
        dlen = 4
        j = 0
        trailing_error: int | None = None
        while j < 4:
            if si == n:
                if j == 0:
                    return bytes(out)
                raise Base64Error(si - j)
            ch = src[si]
            si += 1
            value = _B64_MAP.get(ch)
            if value is not None:
                dbuf[j] = value
                j += 1
                continue
            if ch in (10, 13):
                continue
            if ch != 61:  # '='
                raise Base64Error(si - 1)
            if j in (0, 1):
                raise Base64Error(si - 1)
            if j == 2:
                while si < n and src[si] in (10, 13):
                    si += 1
                if si == n:
                    raise Base64Error(n)
                if src[si] != 61:
                    raise Base64Error(si - 1)
                si += 1
            while si < n and src[si] in (10, 13):
                si += 1
            if si < n:
                trailing_error = si
            dlen = j
            break
        val = (dbuf[0] << 18) | (dbuf[1] << 12) | (dbuf[2] << 6) | dbuf[3]
        triple = [(val >> 16) & 0xFF, (val >> 8) & 0xFF, val & 0xFF]
        out.extend(triple[: dlen - 1])
        if trailing_error is not None:
            raise Base64Error(trailing_error)
        if dlen < 4:
            return bytes(out)
    return bytes(out)


# --- JSON request errors ----------------------------------------------------------------

def go_json_kind(value: Any) -> str:
    """The JSON kind Go names in ``cannot unmarshal <kind>`` errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def go_json_error(doc: str, err: json.JSONDecodeError) -> str:
    """Map a Python JSON syntax error to the text Go's decoder gives for the same input."""
    pos = err.pos
    if pos >= len(doc.rstrip()) or not doc.strip():
        return "unexpected EOF"
    char = doc[pos]
    shown = _go_quote_char(char)
    msg = err.msg
    if msg.startswith("Expecting value"):
        context = "looking for beginning of value"
    elif msg.startswith("Expecting property name"):
        context = "looking for beginning of object key string"
    elif msg.startswith("Expecting ':'"):
        context = "after object key"
    elif msg.startswith("Expecting ','"):
        before = doc[:pos].rstrip()
        context = _comma_context(before)
    elif msg.startswith("Extra data"):
        context = "after top-level value"
    elif msg.startswith("Invalid control character"):
        context = "in string literal"
    elif msg.startswith("Invalid \\escape") or msg.startswith("Invalid \\u"):
        context = "in string escape code"
    elif msg.startswith("Unterminated string"):
        return "unexpected EOF"
    else:
        context = "looking for beginning of value"
    return f"invalid character {shown} {context}"


def _comma_context(before: str) -> str:
    depth: list[str] = []
    in_str = False
    escape = False
    for ch in before:
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth.append(ch)
        elif ch in "]}" and depth:
            depth.pop()
    if depth and depth[-1] == "[":
        return "after array element"
    return "after object key:value pair"


def _go_quote_char(char: str) -> str:
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    if char.isprintable():
        return f"'{char}'"
    return f"'\\x{ord(char):02x}'" if ord(char) < 256 else f"'\\u{ord(char):04x}'"
