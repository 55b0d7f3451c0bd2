"""SIGTERM/SIGHUP as Ctrl-C, and the shield around clean-up (in this process, main thread)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from pytest_ollama_regress.containers.interrupts import shielded, stop_like_ctrl_c


@pytest.fixture(autouse=True)
def _defaults():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    for sig in saved:
        signal.signal(sig, signal.SIG_DFL)
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _deliver(sig: signal.Signals) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.05)  # the handler runs at the next bytecode boundary


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_terminating_signals_raise_keyboard_interrupt_until_restored(sig) -> None:
    restore = stop_like_ctrl_c()
    try:
        with pytest.raises(KeyboardInterrupt, match=sig.name):
            _deliver(sig)
    finally:
        restore()
    assert signal.getsignal(sig) is signal.SIG_DFL


def test_handlers_of_others_and_nohup_are_left_alone() -> None:
    def mine(signum, frame):
        pass

    signal.signal(signal.SIGTERM, mine)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    restore = stop_like_ctrl_c()
    assert signal.getsignal(signal.SIGTERM) is mine
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    restore()


def test_the_shield_absorbs_one_interrupt_and_yields_to_the_next(capfd) -> None:
    finished = False
    with shielded("testing"):
        _deliver(signal.SIGINT)
        finished = True
    assert finished and "SIGINT received while testing; finishing it first" in capfd.readouterr().err
    with pytest.raises(KeyboardInterrupt), shielded("testing"):
        _deliver(signal.SIGTERM)
        _deliver(signal.SIGINT)
    assert "leaving the rest of the clean-up to the watchdog" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
