"""Signals: SIGTERM and SIGHUP end a run like Ctrl-C; clean-up is shielded from interrupts.

``timeout``, CI cancellation and a closed terminal send SIGTERM or SIGHUP, which would kill
Python without running any clean-up. :func:`stop_like_ctrl_c` makes them raise
``KeyboardInterrupt`` instead, so pytest ends the session the way it does for Ctrl-C (exit
status 2) and the containers are brought down. Only signals still at their default action are
taken over (a handler someone else installed, or SIGHUP ignored by ``nohup``, is left alone).

:func:`shielded` wraps clean-up: an interrupt during it prints a note and is absorbed so the
clean-up finishes; one more interrupt than ``allowance`` raises ``KeyboardInterrupt`` and leaves
what remains to the watchdog (see :mod:`watchdog`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

#: what ends a run like Ctrl-C
TERMINATING = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
INTERRUPTING = (signal.SIGINT, *TERMINATING)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # pytest's summary then reads "KeyboardInterrupt: SIGTERM" (a note printed here would be
    # swallowed by output capturing during a test).
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stop_like_ctrl_c() -> Callable[[], None]:
    """Make SIGTERM/SIGHUP raise ``KeyboardInterrupt``; returns the function that undoes it.

    Does nothing outside the main thread (Python delivers signals only there).
    """
    if not _main_thread():
        return lambda: None
    installed: dict[int, Any] = {}
    for sig in TERMINATING:
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _raise_interrupt)
            installed[sig] = signal.SIG_DFL

    def restore() -> None:
        if not _main_thread():
            return
        for sig, previous in installed.items():
            if signal.getsignal(sig) is _raise_interrupt:
                signal.signal(sig, previous)
        installed.clear()

    return restore


@contextlib.contextmanager
def shielded(what: str, allowance: int = 1) -> Iterator[None]:
    """Absorb up to ``allowance`` interrupts (SIGINT, SIGTERM, SIGHUP) while ``what`` runs.

    Each absorbed one prints a line to stderr; the next raises ``KeyboardInterrupt``.
    Outside the main thread the block runs unshielded.
    """
    if not _main_thread():
        yield
        return
    count = 0

    def absorb(signum: int, frame: FrameType | None) -> None:
        nonlocal count
        count += 1
        name = signal.Signals(signum).name
        if count > allowance:
            sys.stderr.write(
                f"\npytest-ollama-regress: {name} again; leaving the rest of the clean-up to "
                "the watchdog\n"
            )
            raise KeyboardInterrupt(name)
        sys.stderr.write(
            f"\npytest-ollama-regress: {name} received while {what}; finishing it first "
            "(interrupt again to leave it to the watchdog)\n"
        )

    previous: dict[int, Any] = {}
    for sig in INTERRUPTING:
        current = signal.getsignal(sig)
        if current is signal.SIG_IGN:
            continue  # e.g. SIGHUP under nohup
        previous[sig] = current
        signal.signal(sig, absorb)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
