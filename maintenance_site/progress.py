"""Progress bars for whatever runs long: demo data, dataset builds, benchmarks. One library (rich), one look.

    with progress.bars(stream=self.stderr) as bars:
        with bars.step("work orders", total=1_000_000) as step:
            for chunk in chunks:
                ...
                step.advance(len(chunk))

On a terminal each step is a live bar (count, rate, elapsed, time left). Elsewhere (CI, a pipe, a test) nothing
redraws: each step prints one line when it ends, with its count and time, so logs stay readable. `quiet=True`
(a command's --verbosity 0) prints nothing at all.
"""

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Step:
    """One bar: `advance(n)` as work gets done; on leaving the block it is complete."""

    def __init__(self, bars: "Bars", description: str, total: int | None):
        self.bars, self.description, self.total = bars, description, total
        self.done = 0
        self.started = time.perf_counter()
        self.task = bars.live.add_task(description, total=total) if bars.live is not None else None

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        if self.task is not None:
            self.bars.live.update(self.task, advance=amount)

    def __enter__(self) -> "Step":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.seconds = time.perf_counter() - self.started
        if self.task is not None:
            self.bars.live.update(self.task, total=max(self.done, self.total or 0) or 1, completed=self.done or 1)
        elif not self.bars.quiet and exc_type is None:
            count = f"{self.done:,} in " if self.done else ""
            self.bars.console.print(f"{self.description}: {count}{self.seconds:.1f} s", highlight=False)


class Bars:
    def __init__(self, console: Console, live: Progress | None, quiet: bool):
        self.console, self.live, self.quiet = console, live, quiet

    def step(self, description: str, total: int | None = None) -> Step:
        return Step(self, description, total)

    def track(self, iterable: Iterable, description: str, total: int | None = None) -> Iterator:
        """The items of `iterable`, one bar advanced per item."""
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        with self.step(description, total) as step:
            for item in iterable:
                yield item
                step.advance()

    def print(self, *args, **kwargs) -> None:
        """A line above the bars (plain output when they are off)."""
        if not self.quiet:
            self.console.print(*args, highlight=False, **kwargs)


@contextmanager
def bars(*, stream=None, quiet: bool = False, live: bool | None = None) -> Iterator[Bars]:
    """A display for the steps of one long job. `stream` defaults to stderr, so a command's output stays clean;
    `live` defaults to "the stream is a terminal"."""
    stream = getattr(stream, "_out", stream)  # a command's self.stderr (OutputWrapper) adds newlines: unwrap it
    console = Console(file=stream or sys.stderr, highlight=False)
    live = console.is_terminal if live is None else live
    if quiet or not live:
        yield Bars(console, None, quiet)
        return
    display = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    with display:
        yield Bars(console, display, quiet)
