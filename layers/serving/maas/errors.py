"""The one error hierarchy of maas.

Every failure that maas reports on purpose is a :class:`MaasError`. Each class
carries the HTTP status the API answers with and the exit code the CLI exits
with; this module is the only place where either is decided.
"""

from __future__ import annotations

from typing import Any


class MaasError(Exception):
    """Base class: a failure with a message fit to show a user as one line."""

    status: int = 500
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        # One line, always: the CLI prints it on stderr and the API returns it
        # as {"error": ...}.
        return " ".join(self.message.split())


class InvalidInput(MaasError):
    """The caller sent something malformed: a bad name, flag, file or body."""

    status, exit_code = 400, 2


class PayloadTooLarge(InvalidInput):
    """A request body over MAAS_MAX_BODY_BYTES, as received or once decompressed."""

    status = 413


class RequestTimeout(InvalidInput):
    """A client that stopped sending part-way through a request (`maas serve`'s socket timeout)."""

    status = 408


class UnsupportedRequest(InvalidInput):
    """Well-formed HTTP that maas does not implement (e.g. a transfer coding other than chunked)."""

    status = 501


class ModelRefused(InvalidInput):
    """A model file that maas will not publish or serve (not ONNX, hostile, broken)."""

    #: What the bounded verification that refused it measured (peak_rss_bytes,
    #: footprint_bytes, load_seconds, wall_seconds), when one ran.
    resources: dict[str, Any] | None = None


class NotFound(MaasError):
    """A model, version or alias that does not exist."""

    status, exit_code = 404, 4


class Conflict(MaasError):
    """A compare-and-swap or exclusive create lost, even after retries."""

    status, exit_code = 409, 3


class StoreUnavailable(MaasError):
    """The registry cannot be reached, throttles, or an I/O operation failed."""

    status, exit_code = 503, 5


class ServerFault(MaasError):
    """Our side is wrong (corrupt registry, misconfiguration); retrying will not help."""

    status, exit_code = 500, 1


class IntegrityError(ServerFault):
    """Stored bytes do not match what their manifest promises (sha256, size, schema)."""

    exit_code = 5


class ModelTooLarge(ServerFault):
    """A model whose footprint exceeds the whole cache budget: refused, never loaded."""


class NotReady(MaasError):
    """Nothing can answer yet: no model loaded and the registry not reachable."""

    status, exit_code = 503, 5


class RunTimedOut(NotReady):
    """An inference run passed MAAS_RUN_TIMEOUT_MS and was stopped; only its model answers 503."""


class PreconditionFailed(Conflict):
    """A conditional write (create-if-absent or compare-and-swap) did not apply.

    Raised by stores; the registry retries or turns it into a clearer error.
    """


class AliasNotFound(NotFound):
    """A model that exists but has no alias of that name."""

    def __init__(self, message: str, name: str, alias: str) -> None:
        super().__init__(message)
        self.name = name
        self.alias = alias
        self.existing: list[str] | None = None  # the aliases the model has, when known
