"""Progress and cancel for a terminal: a bar on a TTY, plain lines in a log, Ctrl-C cancels cleanly."""
from __future__ import annotations

import signal
import sys
import time
from typing import Optional, TextIO


class Progress:
    """``progress(fraction, message)`` for the engine: a redrawn bar on a terminal; otherwise one line per
    new message and per 10 % (a log file stays readable)."""

    def __init__(self, stream: Optional[TextIO] = None, tty: Optional[bool] = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.width = width
        self._message = ""
        self._decile = -1
        self._drawn = 0.0

    def __call__(self, fraction: float, message: str = "") -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self.tty:
            now = time.monotonic()
            if message == self._message and now - self._drawn < 0.1 and fraction < 1.0:
                return
            self._message, self._drawn = message or self._message, now
            filled = int(round(self.width * fraction))
            self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {100 * fraction:3.0f}% "
                              f"{self._message[:60]:<60}")
            self.stream.flush()
            return
        decile = int(fraction * 10)
        if (message and message != self._message) or decile > self._decile:
            self._message = message or self._message
            self._decile = decile
            print(f"{100 * fraction:3.0f}% {self._message}", file=self.stream, flush=True)

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


class CtrlC:
    """While active, the first Ctrl-C (SIGINT) asks the run to stop at its next block — the engine then
    raises ``Canceled`` and discards what it wrote; a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "CtrlC":
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCanceling… (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    def __call__(self) -> bool:
        return self.requested
