"""SIGTERM and SIGINT in a server process: the first starts the drain, later ones change nothing."""

from __future__ import annotations

import asyncio
import signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop`."""
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)


def ignore_stop_signals(loop: asyncio.AbstractEventLoop) -> None:
    """Once drained: a repeated SIGTERM or SIGINT (a supervisor's second ask) must not turn the clean
    exit that follows into death by signal, as the default action would once the loop has closed."""
    for sig in STOP_SIGNALS:
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
