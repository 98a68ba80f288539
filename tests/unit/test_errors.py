from __future__ import annotations

import pytest

from maas import errors


@pytest.mark.parametrize(
    ("cls", "status", "exit_code"),
    [
        (errors.InvalidInput, 400, 2),
        (errors.ModelRefused, 400, 2),
        (errors.PayloadTooLarge, 413, 2),
        (errors.RequestTimeout, 408, 2),
        (errors.UnsupportedRequest, 501, 2),
        (errors.NotFound, 404, 4),
        (errors.Conflict, 409, 3),
        (errors.PreconditionFailed, 409, 3),
        (errors.StoreUnavailable, 503, 5),
        (errors.IntegrityError, 500, 5),
        (errors.ServerFault, 500, 1),
        (errors.ModelTooLarge, 500, 1),
        (errors.NotReady, 503, 5),
    ],
)
def test_each_error_carries_its_status_and_exit_code(
    cls: type[errors.MaasError], status: int, exit_code: int
) -> None:
    error = cls("boom")
    assert isinstance(error, errors.MaasError)
    assert (error.status, error.exit_code) == (status, exit_code)


def test_messages_render_as_one_line() -> None:
    assert str(errors.InvalidInput("bad\n  input\twith  lines")) == "bad input with lines"
