"""Progress reporting shared by the terminal and the run page.

The engine only calls ``stage(name)`` / ``update(fraction)`` / ``log(message)`` on a ``Progress``; the CLI
passes a ``TerminalProgress``, the RQ job passes one that writes onto the ``ConversionRun`` row.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator, Protocol, TextIO


class Progress(Protocol):
    def stage(self, name: str) -> None: ...
    def update(self, fraction: float, detail: str = "") -> None: ...
    def log(self, message: str) -> None: ...


class NullProgress:
    def stage(self, name: str) -> None:
        pass

    def update(self, fraction: float, detail: str = "") -> None:
        pass

    def log(self, message: str) -> None:
        pass


class TerminalProgress:
    """Prints one line per stage with its duration, and a throttled in-place bar for long stages."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self._stage: str | None = None
        self._started = 0.0
        self._last_draw = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def _finish_stage(self) -> None:
        if self._stage is not None and not self.quiet:
            elapsed = time.monotonic() - self._started
            end = "\r\033[K" if self._tty else ""
            self.stream.write(f"{end}  done  {self._stage} ({elapsed:.1f} s)\n")
            self.stream.flush()

    def stage(self, name: str) -> None:
        self._finish_stage()
        self._stage = name
        self._started = time.monotonic()
        if not self.quiet and not self._tty:
            self.stream.write(f"  start {name}\n")
            self.stream.flush()

    def update(self, fraction: float, detail: str = "") -> None:
        now = time.monotonic()
        if self.quiet or not self._tty or now - self._last_draw < 0.2:
            return
        self._last_draw = now
        filled = int(max(0.0, min(1.0, fraction)) * 30)
        bar = "#" * filled + "." * (30 - filled)
        self.stream.write(f"\r\033[K  [{bar}] {fraction * 100:5.1f}% {self._stage} {detail}")
        self.stream.flush()

    def log(self, message: str) -> None:
        if not self.quiet:
            prefix = "\r\033[K" if self._tty else ""
            self.stream.write(f"{prefix}{message}\n")
            self.stream.flush()

    def close(self) -> None:
        self._finish_stage()
        self._stage = None


@contextmanager
def timed(timings: dict[str, float], key: str) -> Iterator[None]:
    """Adds the wall time of the block to ``timings[key]`` (seconds)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = round(timings.get(key, 0.0) + time.perf_counter() - start, 3)
