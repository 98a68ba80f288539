from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maas.errors import InvalidInput
from maas.names import NAME_PATTERN, ModelRef, check_alias, check_name, parse_version


@pytest.mark.parametrize("name", ["digits", "a", "m0", "my-model.v2_x", "9" * 64])
def test_valid_names_pass_unchanged(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "Digits", "../etc", "a/b", "..", ".hidden", "-dash", "_x", "a b", "x" * 65, "é", "a\n"],
)
def test_invalid_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_name(name)
    assert "invalid model name" in str(caught.value)
    assert "[a-z0-9][a-z0-9._-]{0,63}" in str(caught.value)


def test_alias_names_follow_the_same_rule() -> None:
    assert check_alias("production") == "production"
    with pytest.raises(InvalidInput, match="invalid alias name"):
        check_alias("Prod/uction")


@given(st.text(max_size=80))
def test_a_name_is_accepted_exactly_when_it_matches_the_pattern(text: str) -> None:
    matches = NAME_PATTERN.fullmatch(text) is not None
    try:
        check_name(text)
        accepted = True
    except InvalidInput:
        accepted = False
    assert accepted == matches
    if accepted:
        assert "/" not in text and ".." not in text[:1]


@pytest.mark.parametrize(("text", "expected"), [("1", 1), ("42", 42), (7, 7)])
def test_versions_are_positive_integers(text: str | int, expected: int) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "x", "", "٣", True])
def test_bad_versions_are_refused(text: str | int) -> None:
    with pytest.raises(InvalidInput, match="versions are positive integers"):
        parse_version(text)


def test_model_references_parse_all_three_forms() -> None:
    assert ModelRef.parse("digits") == ModelRef("digits")
    assert ModelRef.parse("digits:3") == ModelRef("digits", version=3)
    assert ModelRef.parse("digits@staging") == ModelRef("digits", alias="staging")
    assert str(ModelRef.parse("digits@staging")) == "digits@staging"
    with pytest.raises(InvalidInput):
        ModelRef.parse("digits:three")
    with pytest.raises(InvalidInput):
        ModelRef.parse("../x@prod")


def test_a_huge_version_is_invalid_input_not_a_crash() -> None:
    from maas.cli import main

    with pytest.raises(InvalidInput, match="invalid version '1111"):
        parse_version("1" * 5000)
    assert main(["models", "show", "m:" + "9" * 5000]) == 2
