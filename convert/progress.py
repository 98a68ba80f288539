"""Progress for the long steps (conversion, calibration, upload), on stderr.

Shown only to a person at a terminal, never with ``--json``: stderr otherwise
carries nothing but the one-line error, if any.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO


class Reporter:
    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr

    @classmethod
    def for_cli(cls, json_output: bool) -> Reporter:
        return cls(enabled=not json_output and sys.stderr.isatty())

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        """``text…`` then ``done in 1.2s`` on the same line."""
        if not self.enabled:
            yield
            return
        print(f"{text}…", end="", file=self.stream, flush=True)
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            print(" failed", file=self.stream, flush=True)
            raise
        print(f" done in {time.perf_counter() - start:.1f}s", file=self.stream, flush=True)

    @contextmanager
    def bar(
        self, total: int, label: str, unit: str = "it"
    ) -> Iterator[Callable[[int], None] | None]:
        """A tqdm bar; yields its ``update`` (or None when progress is hidden)."""
        if not self.enabled:
            yield None
            return
        from tqdm import tqdm

        with tqdm(
            total=total,
            desc=label,
            unit=unit,
            unit_scale=unit == "B",
            file=self.stream,
            leave=False,
        ) as bar:
            yield bar.update
