from __future__ import annotations

import pytest

from maas.errors import InvalidInput
from maas.protocol.integers import INT64_MAX, is_decimal, parse_count


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), (" 42 ", 42), ("007", 7), (str(INT64_MAX), INT64_MAX), ("0" * 5000 + "1", 1)],
)
def test_counts_parse(text: str, expected: int) -> None:
    assert parse_count(text, "n") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "1" * 5000,
            r"n must be at most 9223372036854775807, got '1{40}'\.\.\. \(5000 characters\)",
        ),
        (str(INT64_MAX + 1), "must be at most"),
        ("", "must be a non-negative integer"),
        ("-1", "must be a non-negative integer"),
        ("١٢", "must be a non-negative integer"),
        ("1e3", "must be a non-negative integer"),
        ("+5", "must be a non-negative integer"),
    ],
)
def test_bad_counts_are_client_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_count(text, "n")


def test_a_smaller_maximum_is_honoured() -> None:
    assert parse_count("10", "n", maximum=10) == 10
    with pytest.raises(InvalidInput, match="at most 10"):
        parse_count("11", "n", maximum=10)


def test_only_ascii_digits_are_decimal() -> None:
    assert is_decimal("12") and not is_decimal("") and not is_decimal("²") and not is_decimal("1a")
