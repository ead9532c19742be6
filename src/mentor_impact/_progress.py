"""Minimal progress reporting for long pipeline steps (stderr; silent with ``quiet``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Progress"]


def _peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB of 10^9 bytes (NaN if unknown)."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return float(peak) * 1024 / 1e9 if sys.platform != "darwin" else float(peak) / 1e9
    except (ImportError, OSError):  # pragma: no cover - Windows
        return float("nan")


def _current_rss_gb() -> float:
    """Return the resident memory of this process, in GB of 10^9 bytes (NaN if unknown)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        import resource

        return pages * resource.getpagesize() / 1e9
    except (ImportError, OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return float("nan")


class Progress:
    """Report the steps of a pipeline with their durations.

    Parameters
    ----------
    quiet : bool, default=False
        Print nothing (for CI logs).
    total : int, optional
        Number of steps, shown as ``[i/total]``.
    """

    def __init__(self, *, quiet: bool = False, total: int | None = None) -> None:
        self.quiet = quiet
        self.total = total
        self.count = 0
        self.timings: dict[str, float] = {}
        self.peak_memory_gb: dict[str, float] = {}
        self.memory_gb: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step, printing its name when it starts and its duration when it ends."""
        self.count += 1
        prefix = f"[{self.count}/{self.total}] " if self.total else f"[{self.count}] "
        if not self.quiet:
            print(f"{prefix}{name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.timings[name] = self.timings.get(name, 0.0) + dt
            self.peak_memory_gb[name] = _peak_rss_gb()
            self.memory_gb[name] = _current_rss_gb()
            if not self.quiet:
                print(f"{prefix}{name}: done in {dt:.1f} s", file=sys.stderr, flush=True)
