"""Progress of a long command: a bar on a terminal, a plain line at intervals otherwise.

Piped to a file or run in CI, a ten-minute evaluation still says how far it is:
'evaluating: 12/90 rows (13%), 41 s, about 4.4 min left' every PROGRESS_EVERY_S seconds.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

import click

PROGRESS_EVERY_S = 30.0  # off a terminal (a log file, CI), a plain progress line this often


def progress(what: str = "evaluating"):
    """A context giving a `(done, total)` callback: a rich bar on a terminal, else ProgressLines."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    @contextmanager
    def bar():
        with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), transient=True) as p:
            task = p.add_task(what, total=None)
            yield lambda done, total: p.update(task, completed=done, total=total)

    @contextmanager
    def lines():
        yield ProgressLines(what=what)

    return bar() if sys.stderr.isatty() else lines()


class ProgressLines:
    """Progress for a log: 'evaluating: 12/90 rows (13%), 41 s, about 4.4 min left' at intervals."""

    def __init__(self, every_s: float | None = None, what: str = "evaluating"):
        self.every_s = PROGRESS_EVERY_S if every_s is None else every_s
        self.what = what
        self.started = time.monotonic()
        self.last: float | None = None  # the first call prints: the run has begun

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.last is not None and now - self.last < self.every_s and done < total:
            return
        self.last = now
        elapsed = now - self.started
        share = done / total if total else 1.0
        left = f", about {elapsed * (1 - share) / share / 60:.1f} min left" if 0 < share < 1 else ""
        click.echo(f"{self.what}: {done}/{total} rows ({share:.0%}), {elapsed:.0f} s{left}", err=True)
