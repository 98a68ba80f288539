"""Routes that describe the repository and this environment's statistics.

* ``GET /v2/models``: maas's model index (names, aliases, versions), a maas
  extension to the Open Inference Protocol.
* ``POST /v2/repository/index``: Triton's repository index, which
  ``tritonclient``'s ``get_model_repository_index`` calls.
* ``GET /v2/models/stats``, ``/v2/models/{m}/stats``,
  ``/v2/models/{m}/versions/{v}/stats``: Triton's statistics extension, counted
  in this execution environment (:mod:`maas.serving.statistics`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from maas.errors import InvalidInput
from maas.protocol.jsonbody import parse_object
from maas.registry.index import model_index, repository_index
from maas.serving.dataplane import DataPlane

Respond = Callable[[int, Any], Response[Any]]


def register(
    app: APIGatewayHttpResolver,
    plane: Callable[[], DataPlane],
    request_body: Callable[[], bytes],
    respond: Respond,
    version_of: Callable[[str, str], int],
) -> None:
    """Add the routes to ``app``; ``respond(status, document)`` renders JSON and
    ``version_of(model, segment)`` reads a ``/versions/{segment}`` (number or alias)."""

    @app.get("/v2/models")
    def models_index() -> Response[Any]:
        return respond(200, model_index(plane().registry))

    @app.post("/v2/repository/index")
    def triton_repository_index() -> Response[Any]:
        body = request_body()
        if body.strip():  # tritonclient posts an empty body; Triton's spec allows {"ready"}
            document = parse_object(body, "the repository index request")
            unknown = sorted(set(document) - {"ready"})
            if unknown:
                raise InvalidInput(
                    f"unknown field {unknown[0]!r} in the repository index request; "
                    "it takes only 'ready'"
                )
            if "ready" in document and not isinstance(document["ready"], bool):
                raise InvalidInput("'ready' must be true or false")
        return respond(200, repository_index(plane().registry))

    @app.get("/v2/models/stats")
    def all_stats() -> Response[Any]:
        return respond(200, _stats(plane(), None, None))

    @app.get("/v2/models/<model>/stats")
    def model_stats(model: str) -> Response[Any]:
        return respond(200, _stats(plane(), model, None))

    @app.get("/v2/models/<model>/versions/<version>/stats")
    def model_version_stats(model: str, version: str) -> Response[Any]:
        return respond(200, _stats(plane(), model, version_of(model, version)))


def _stats(plane: DataPlane, model: str | None, version: int | None) -> dict[str, Any]:
    """Every version loaded or answered here; an unknown model or version is a 404."""
    if model is not None:
        versions = plane.registry.require_model(model)  # NotFound names what exists
        if version is not None and version not in versions:
            plane.models.manifest(model, version)  # NotFound naming the version
    seen = set(plane.statistics.versions(model)) | {
        key for key in plane.models.loaded() if model is None or key[0] == model
    }
    if version is not None:
        seen = {(model or "", version)}
    return {"model_stats": [plane.statistics.model_stats(n, v) for n, v in sorted(seen)]}
