"""The fuzz session: one warm handler for every event, and the tally printed at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.harness import TALLY, Harness


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    harness = Harness(tmp_path_factory.mktemp("fuzz"))
    harness.still_serves_correctly()
    yield harness
    harness.still_serves_correctly()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.events:
        terminalreporter.write_line(TALLY.summary())
