"""A progress bar with rate and ETA on a terminal; nothing at all when the output is not a terminal."""

from __future__ import annotations

import time
from typing import TextIO

from service.audit.run import Progress


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Bar:
    """Redraws one line of `stream` at most ten times a second."""

    def __init__(self, stream: TextIO, width: int = 28) -> None:
        self._stream = stream
        self._width = width
        self._started: dict[str, float] = {}
        self._drawn = 0.0

    def __call__(self, phase: str, done: int, total: int, patients: int) -> None:
        now = time.monotonic()
        started = self._started.setdefault(phase, now)
        if done < total and now - self._drawn < 0.1:
            return
        self._drawn = now
        share = done / total if total else 1.0
        filled = int(share * self._width)
        elapsed = now - started
        eta = elapsed / share - elapsed if share > 0 else 0.0
        rate = (
            f"{patients / elapsed:,.0f} patients/s"
            if phase == "judge" and elapsed > 0
            else (f"{done / elapsed:,.1f} files/s" if elapsed > 0 else "")
        )
        what = "reading files" if phase == "read" else "judging"
        self._stream.write(
            f"\r{what:14} [{'#' * filled}{'.' * (self._width - filled)}] {done}/{total} {rate} "
            f"ETA {_clock(eta)} "
        )
        if done >= total:
            self._stream.write("\n")
        self._stream.flush()


def progress_for(stream: TextIO) -> Progress | None:
    """A bar on a terminal, None otherwise (quiet in CI, pipes and files)."""
    return Bar(stream) if stream.isatty() else None
