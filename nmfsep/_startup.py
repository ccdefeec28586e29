"""Signals that arrive while the command line is still starting (importing nmfsep).

``nmfsep`` and ``python -m nmfsep`` import the package (numpy and the pipeline, a
few tenths of a second) before :func:`nmfsep.cli.main` installs its signal handlers:
until then a Ctrl-C ended the process with a traceback and SIGTERM with a bare
signal status. When this process is the nmfsep program, the package's ``__init__``
calls :func:`defer_signals` before anything heavy; ``main`` then calls
:func:`take_over` and stops as an interrupt during a run does. In any other process
(a library user, a worker of a batch) nothing here touches a signal.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["is_command_line", "defer_signals", "handler_before", "take_over", "SIGNAL_NAMES"]

#: The signals held back while starting: Ctrl-C and those nmfsep.cli handles as it.
SIGNAL_NAMES = ("SIGINT", "SIGTERM", "SIGHUP")

_before: dict[int, Any] = {}  # signal -> its handler before defer_signals
_pending: list[int] = []  # signals received while deferred, in order


def is_command_line() -> bool:
    """Tell whether this process is the nmfsep program (console script or ``-m nmfsep``).

    Read from the process's own command line (``sys.orig_argv``), so that a worker
    process started by a batch, whose ``sys.argv`` is copied from its parent, is not.
    """
    argv = list(getattr(sys, "orig_argv", ()))
    if sys.argv[:1] == ["-m"]:  # python -m MODULE, while MODULE is located
        return any(a == "-m" and b == "nmfsep" for a, b in zip(argv, argv[1:], strict=False)) \
            or "-mnmfsep" in argv
    script = sys.argv[0] if sys.argv else ""
    return Path(script).name == "nmfsep" and script in argv[1:2]


def _record(signum: int, frame: object) -> None:
    _pending.append(signum)


def defer_signals() -> None:
    """Record SIGINT, SIGTERM and SIGHUP instead of acting on them, until :func:`take_over`.

    A signal the process ignores (``nohup``, a background job) stays ignored; outside
    the main thread nothing changes.
    """
    for name in SIGNAL_NAMES:
        sig = getattr(signal, name, None)
        if sig is None or signal.getsignal(sig) is signal.SIG_IGN:
            continue
        try:
            _before[sig] = signal.signal(sig, _record)
        except ValueError:  # not the main thread
            return


def take_over() -> int | None:
    """End the deferral: return the first signal received meanwhile, or None.

    Call it once the program's own handlers are installed: a signal whose handler is
    still the deferring one gets its handler of before back (SIGINT: Ctrl-C raises
    KeyboardInterrupt again), the others keep the program's.
    """
    for sig, previous in _before.items():
        if signal.getsignal(sig) is _record:
            signal.signal(sig, previous)
    _before.clear()
    return _pending[0] if _pending else None


def handler_before(sig: int, handler: Any) -> Any:
    """Return ``handler``, or ``sig``'s handler from before the deferral if it is the deferring one.

    For a program that installs its own handler while the deferral is on: what it
    restores afterwards is the handler of before (SIGTERM kills again), not the deferral.
    """
    return _before.get(sig, handler) if handler is _record else handler
