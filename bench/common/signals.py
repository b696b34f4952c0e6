"""Ctrl-C and SIGTERM from the first instant: one line and exit status 130 / 143, never a traceback.

`python -m bench` installs these before anything heavy is imported (bench/__main__.py), so a
SIGTERM while torch loads ends the command like one during the work. SIGTERM raises Terminated
(a KeyboardInterrupt) where the process stands, so the same cleanups run as for Ctrl-C. A signal
that lands inside a `__del__` or a weakref callback, where Python swallows the exception and
prints "Exception ignored in ...", is delivered again once that finaliser has returned. Once the
command has printed its line, further signals are ignored (`settle`) so that the cleanups and
the interpreter's shutdown finish without a second traceback.
"""

import os
import signal
import sys
import threading

INTERRUPTED, TERMINATED = 130, 143
REDELIVERY_SECONDS = 0.05


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process stands so that cleanups run as for Ctrl-C."""


def _terminate(signum, frame):
    raise Terminated()


def _unraisable(hook) -> None:
    """A Ctrl-C or SIGTERM swallowed by a finaliser is sent again; anything else as Python reports it."""
    if hook.exc_type is not None and issubclass(hook.exc_type, KeyboardInterrupt):
        signum = signal.SIGTERM if issubclass(hook.exc_type, Terminated) else signal.SIGINT
        # sent from a thread a moment later: raised now, it would land inside this hook and be lost again
        threading.Timer(REDELIVERY_SECONDS, os.kill, (os.getpid(), signum)).start()
        return
    sys.__unraisablehook__(hook)


def install() -> dict | None:
    """SIGTERM raises Terminated, SIGINT KeyboardInterrupt; returns the handlers replaced (None off
    the main thread, where Python delivers no signal)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _terminate),
                signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler)}
    sys.unraisablehook = _unraisable
    return previous


def restore(previous: dict | None) -> None:
    for signum, handler in (previous or {}).items():
        signal.signal(signum, handler)
    sys.unraisablehook = sys.__unraisablehook__


def settle() -> None:
    """The command has said how it ended: ignore further signals while the process winds down."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)


def status_of(interrupt: KeyboardInterrupt) -> tuple[str, int]:
    """How the interrupt is named in the line, and the exit status."""
    if isinstance(interrupt, Terminated):
        return "terminated (SIGTERM)", TERMINATED
    return "interrupted", INTERRUPTED
