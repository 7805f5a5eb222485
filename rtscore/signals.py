"""SIGTERM and SIGINT in a server process: the first starts the drain, later ones change nothing.

The handlers are the process's own (`signal.signal`), not the event loop's: removing a loop handler, as
a loop also does when it closes, resets the signal to its default action first, and a supervisor's
second SIGTERM landing in that moment kills a process that had drained cleanly. Going from our handler
straight to SIG_IGN leaves no such moment.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_wakeup: list[socket.socket] = []  # the socket pair that wakes an asyncio loop, kept open


def stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop`. Call from the main thread, on the running loop."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop.set)

    _wake_loop_on_signals(loop)
    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)


def ignore_stop_signals() -> None:
    """Once drained: a repeated SIGTERM or SIGINT must not turn the clean exit that follows into death
    by signal."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _wake_loop_on_signals(loop: asyncio.AbstractEventLoop) -> None:
    # Python runs a handler on the main thread at its next bytecode, so a loop asleep in epoll must be
    # woken: uvloop keeps a wakeup fd of its own while it runs; asyncio's loop sets one only for its
    # own handlers, so give it one (again for a later loop in the same process).
    current = signal.set_wakeup_fd(-1)
    if current != -1 and not (_wakeup and current == _wakeup[1].fileno()):
        signal.set_wakeup_fd(current)  # the loop's own
        return
    if not _wakeup:
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        _wakeup[:] = [reader, writer]
    reader, writer = _wakeup
    loop.add_reader(reader.fileno(), _drain, reader)
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)


def _drain(reader: socket.socket) -> None:
    try:
        while reader.recv(4096):
            pass
    except BlockingIOError:
        pass
