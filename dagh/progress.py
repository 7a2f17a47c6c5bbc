"""Progress for long work that suits both a terminal and a log file.

On a terminal (stderr is a TTY) it is a tqdm bar redrawn in place. Anywhere
else, ``make demo > log 2>&1`` or a CI job, redrawing would write hundreds of
kilobytes of carriage-return frames, so it prints a plain line at most every
``interval`` seconds (and one when the work ends) instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

LOG_INTERVAL = 10.0  # seconds between two progress lines in a log


class LogProgress:
    """A tqdm-like progress counter that writes a line at most every ``interval`` seconds."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", interval: float = LOG_INTERVAL, stream: TextIO | None = None):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc, self.unit, self.interval = desc, unit, interval
        self.stream = stream if stream is not None else sys.stderr
        self.n = 0
        self.postfix = ""
        self.start = self.last = time.monotonic()
        self.closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._write()

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if time.monotonic() - self.start >= self.interval:  # short work: its caller's own line says enough
                self._write()

    def _write(self) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        elapsed = time.monotonic() - self.start
        tail = f", {self.postfix}" if self.postfix else ""
        label = f"{self.desc}: " if self.desc else ""
        print(f"{label}{self.n}{of} {self.unit} ({elapsed:.0f} s{tail})", file=self.stream, flush=True)


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", leave: bool = False):
    """A tqdm bar on a terminal, else a LogProgress; both iterate, ``update``, ``set_postfix`` and ``close``."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave)
    return LogProgress(iterable, total=total, desc=desc, unit=unit)
