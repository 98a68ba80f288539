"""The HTTP API: API Gateway HTTP API (payload 2.0) events → the serving core.

Transport only: routes adapt events to :class:`~maas.serving.dataplane.DataPlane` and
to the protocol codecs in :mod:`maas.protocol`. Errors from the one hierarchy
in :mod:`maas.errors` become ``{"error": ...}`` responses here, in exactly one
handler, with the status their class carries.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from maas import __version__, http_repository
from maas.config import LAMBDA_PAYLOAD_BYTES
from maas.errors import InvalidInput, MaasError, PayloadTooLarge
from maas.http_resolver import ThreadLocalEventResolver
from maas.names import check_alias, parse_version
from maas.protocol import compression, jsonbody, response_size, tfclassify, tfserving, v2
from maas.protocol.integers import INT64_MAX, is_decimal, parse_count
from maas.serving.dataplane import DataPlane

log = logging.getLogger(__name__)

HttpResponse = Response[Any]

JSON = "application/json"
MODEL_VERSION_HEADER = "x-maas-model-version"


def json_response(
    status: int, document: Any, headers: dict[str, str] | None = None
) -> HttpResponse:
    """The resolver's serializer (:func:`maas.protocol.jsonbody.dumps_text`) prints ``document``."""
    return Response(status, JSON, document, headers or {})


def error_response(exc: MaasError) -> HttpResponse:
    return json_response(exc.status, {"error": str(exc)})


def version_or_alias(segment: str | None) -> tuple[int | None, str | None]:
    """``/versions/{v}``: an integer version, or (a maas extension) an alias name."""
    if segment is None:
        return None, None
    if is_decimal(segment):
        return path_version(segment), None
    return None, check_alias(segment)


def path_version(segment: str) -> int:
    """A version from a URL segment; its length is bounded before ``int()`` runs."""
    if is_decimal(segment):
        return parse_version(parse_count(segment, "version", INT64_MAX))
    return parse_version(segment[:40])


def within_lambda_payload(response: dict[str, Any], limit: int | None = None) -> dict[str, Any]:
    """Lambda fails a synchronous response over 6 MB, and API Gateway then answers a
    bare 502; answer with a clear client error instead (the request asked for it).

    Routes refuse oversized answers before encoding them
    (:mod:`maas.protocol.response_size`); this is the backstop for anything else.
    """
    limit = LAMBDA_PAYLOAD_BYTES if limit is None else limit
    size = len(response.get("body") or "")
    if size <= limit:
        return response
    exc = response_size.too_large(size, limit)
    return {
        "statusCode": exc.status,
        "headers": {"Content-Type": JSON},
        "body": jsonbody.dumps_text({"error": str(exc)}),
        "isBase64Encoded": False,
    }


def openapi_document() -> dict[str, Any]:
    text = resources.files("maas").joinpath("openapi.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@functools.cache
def _documented_paths() -> list[tuple[re.Pattern[str], list[str]]]:
    """Each documented path as a regular expression (its parameters' own patterns),
    with the methods it has; the document is the one list of routes (a test proves it)."""
    compiled = []
    for template, item in openapi_document()["paths"].items():
        regex = re.escape(template)
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    schema = parameter["schema"]
                    default = "[0-9]+" if schema.get("type") == "integer" else "[^/]+"
                    pattern = schema.get("pattern", default)
                    regex = regex.replace(
                        re.escape(f"{{{parameter['name']}}}"),
                        f"(?:{pattern.removeprefix('^').removesuffix('$')})",
                    )
        compiled.append((re.compile(regex), sorted(method.upper() for method in item)))
    return compiled


@functools.lru_cache(maxsize=1024)
def allowed_methods(path: str) -> tuple[str, ...]:
    """The methods documented for ``path``; empty when no route has it. Every request
    asks (the middleware below), so answers are kept for the paths seen most."""
    allowed = set()
    for regex, methods in _documented_paths():
        if regex.fullmatch(path):
            allowed.update(methods)
    return tuple(sorted(allowed))


def method_not_allowed(method: str, path: str) -> HttpResponse | None:
    """405 with Allow when ``path`` is documented, but not for ``method``."""
    allowed = allowed_methods(path)
    if not allowed or method in allowed:
        return None
    return json_response(
        405,
        {"error": f"{method} is not allowed on {path}; it takes {', '.join(allowed)}"},
        {"Allow": ", ".join(allowed)},
    )


def build_app(
    plane: Callable[[], DataPlane], body_limit: int = LAMBDA_PAYLOAD_BYTES
) -> APIGatewayHttpResolver:
    """The resolver with every route. ``plane`` is called per request, so the
    DataPlane can be built (and swapped in tests) independently of the routes."""
    app = ThreadLocalEventResolver()

    def documented_methods_only(app: APIGatewayHttpResolver, next: NextMiddleware) -> HttpResponse:
        # Powertools' path parameters may hold ':', so GET /v1/models/m:predict would
        # reach the status route as model "m:predict" (a 400); it is POST's path.
        event = app.current_event
        refused = method_not_allowed(event.http_method, event.path)
        return refused if refused is not None else next(app)

    app.use(middlewares=[documented_methods_only])

    def header(name: str) -> str | None:
        return app.request_headers.get(name)

    def request_body() -> bytes:
        event = app.current_event
        raw = event.get("body") or ""
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInput("request body is not valid base64") from None
        else:
            # A lone surrogate cannot come from UTF-8 text; keep it, and let the JSON
            # parser refuse the body as not UTF-8 (a 400) instead of failing here.
            body = raw.encode("utf-8", "surrogatepass")
        if len(body) > body_limit:
            raise PayloadTooLarge(
                f"request body is {len(body)} bytes, over the limit of {body_limit} "
                "(MAAS_MAX_BODY_BYTES)"
            )
        try:
            return compression.decompress(body, header("content-encoding"), body_limit)
        except PayloadTooLarge as exc:
            raise PayloadTooLarge(f"{exc} (MAAS_MAX_BODY_BYTES)") from None

    def gzip_ok() -> bool:
        return compression.accepts_gzip(header("accept-encoding"))

    def header_length() -> int | None:
        return v2.parse_header_length(header(v2.HEADER_LENGTH))

    def refuse_oversized(size: int, binary: bool, *, at_least: bool) -> None:
        response_size.check(
            size, binary=binary, gzip=gzip_ok(), limit=LAMBDA_PAYLOAD_BYTES, at_least=at_least
        )

    # -------------------------------------------------------------- V2 health
    @app.get("/v2/health/live")
    def live() -> HttpResponse:
        return json_response(200, {"live": True})

    @app.get("/v2/health/ready")
    def server_ready() -> HttpResponse:
        ready, why = plane().server_ready()
        if ready:
            return json_response(200, {"ready": True})
        return json_response(503, {"ready": False, "error": why})

    @app.get("/v2")
    def server_metadata() -> HttpResponse:
        return json_response(200, v2.server_metadata(__version__))

    # ------------------------------------------------------------- V2 models
    def v2_metadata(model: str, segment: str | None) -> HttpResponse:
        version, alias = version_or_alias(segment)
        meta = plane().metadata(model, version, alias)
        return json_response(
            200,
            v2.model_metadata(
                model, meta["versions"], meta["inputs"], meta["outputs"], meta.get("ensemble")
            ),
        )

    def v2_ready(model: str, segment: str | None) -> HttpResponse:
        version, alias = version_or_alias(segment)
        plane().ready(model, version, alias)
        return json_response(200, {"name": model, "ready": True})

    def v2_infer(model: str, segment: str | None) -> HttpResponse:
        version, alias = version_or_alias(segment)
        serving = plane()
        # Resolve first: an unknown model is a 404 whatever the body holds.
        selection = serving.select(model, version, alias)
        parsed = v2.decode_infer_request(request_body(), header_length())
        result = serving.run(selection, parsed.request)
        floor, binary = response_size.smallest_body(result.outputs, parsed.binary_outputs)
        refuse_oversized(floor, binary, at_least=True)
        body, headers = v2.encode_infer_response(result, parsed.binary_outputs)
        content_type = headers.pop("content-type", JSON)
        refuse_oversized(len(body), content_type != JSON, at_least=False)
        headers[MODEL_VERSION_HEADER] = str(result.model_version)
        # Powertools re-serialises non-str JSON bodies; binary bodies it base64-encodes.
        payload: str | bytes = body.decode("utf-8") if content_type == JSON else body
        return Response(200, content_type, payload, headers, compress=gzip_ok())

    @app.get("/v2/models/<model>")
    def v2_model(model: str) -> HttpResponse:
        return v2_metadata(model, None)

    @app.get("/v2/models/<model>/versions/<version>")
    def v2_model_version(model: str, version: str) -> HttpResponse:
        return v2_metadata(model, version)

    @app.get("/v2/models/<model>/ready")
    def v2_model_ready(model: str) -> HttpResponse:
        return v2_ready(model, None)

    @app.get("/v2/models/<model>/versions/<version>/ready")
    def v2_model_version_ready(model: str, version: str) -> HttpResponse:
        return v2_ready(model, version)

    @app.post("/v2/models/<model>/infer", compress=True)
    def v2_model_infer(model: str) -> HttpResponse:
        return v2_infer(model, None)

    @app.post("/v2/models/<model>/versions/<version>/infer", compress=True)
    def v2_model_version_infer(model: str, version: str) -> HttpResponse:
        return v2_infer(model, version)

    # ------------------------------------------------------------ TF Serving
    def tf_status(model: str, version: int | None, alias: str | None) -> HttpResponse:
        meta = plane().metadata(model, version, alias)
        return json_response(200, tfserving.model_status([meta["version"]]))

    def tf_metadata(model: str, version: int | None, alias: str | None) -> HttpResponse:
        meta = plane().metadata(model, version, alias)
        return json_response(
            200, tfserving.model_metadata(model, meta["version"], meta["inputs"], meta["outputs"])
        )

    def tf_predict(model: str, version: int | None, alias: str | None) -> HttpResponse:
        serving = plane()
        selection = serving.select(model, version, alias)
        request, form = tfserving.decode_predict(request_body(), selection.model.inputs)
        result = serving.run(selection, request)
        refuse_oversized(response_size.smallest_body(result.outputs)[0], False, at_least=True)
        body = tfserving.encode_predict_body(result, form)
        refuse_oversized(len(body), False, at_least=False)
        headers = {MODEL_VERSION_HEADER: str(result.model_version)}
        return Response(200, JSON, body.decode("utf-8"), headers, compress=gzip_ok())

    def tf_classify(model: str, version: int | None, alias: str | None) -> HttpResponse:
        serving = plane()
        selection = serving.select(model, version, alias)
        tfclassify.check_classifier(selection.model.outputs)
        request = tfclassify.decode_classify(request_body(), selection.model.inputs)
        result = serving.run(selection, request)
        document = tfclassify.encode_classify(result, selection.model.manifest.get("labels"))
        body = jsonbody.dumps_text(document)
        refuse_oversized(len(body), False, at_least=False)
        headers = {MODEL_VERSION_HEADER: str(result.model_version)}
        return Response(200, JSON, body, headers, compress=gzip_ok())

    @app.post("/v1/models/<model>:classify", compress=True)
    def tf_model_classify(model: str) -> HttpResponse:
        return tf_classify(model, None, None)

    @app.post("/v1/models/<model>/versions/<version>:classify", compress=True)
    def tf_model_version_classify(model: str, version: str) -> HttpResponse:
        return tf_classify(model, path_version(version), None)

    @app.post("/v1/models/<model>/labels/<label>:classify", compress=True)
    def tf_model_label_classify(model: str, label: str) -> HttpResponse:
        return tf_classify(model, None, check_alias(label))

    @app.get("/v1/models/<model>")
    def tf_model(model: str) -> HttpResponse:
        return tf_status(model, None, None)

    @app.get("/v1/models/<model>/versions/<version>")
    def tf_model_version(model: str, version: str) -> HttpResponse:
        return tf_status(model, path_version(version), None)

    @app.get("/v1/models/<model>/labels/<label>")
    def tf_model_label(model: str, label: str) -> HttpResponse:
        return tf_status(model, None, check_alias(label))

    @app.get("/v1/models/<model>/metadata")
    def tf_model_metadata(model: str) -> HttpResponse:
        return tf_metadata(model, None, None)

    @app.get("/v1/models/<model>/versions/<version>/metadata")
    def tf_model_version_metadata(model: str, version: str) -> HttpResponse:
        return tf_metadata(model, path_version(version), None)

    @app.get("/v1/models/<model>/labels/<label>/metadata")
    def tf_model_label_metadata(model: str, label: str) -> HttpResponse:
        return tf_metadata(model, None, check_alias(label))

    @app.post("/v1/models/<model>:predict", compress=True)
    def tf_model_predict(model: str) -> HttpResponse:
        return tf_predict(model, None, None)

    @app.post("/v1/models/<model>/versions/<version>:predict", compress=True)
    def tf_model_version_predict(model: str, version: str) -> HttpResponse:
        return tf_predict(model, path_version(version), None)

    @app.post("/v1/models/<model>/labels/<label>:predict", compress=True)
    def tf_model_label_predict(model: str, label: str) -> HttpResponse:
        return tf_predict(model, None, check_alias(label))

    def segment_version(model: str, segment: str) -> int:
        version, alias = version_or_alias(segment)
        return (
            version if version is not None else int(plane().metadata(model, None, alias)["version"])
        )

    http_repository.register(app, plane, request_body, json_response, segment_version)

    # --------------------------------------------------------------- OpenAPI
    @app.get("/openapi.json")
    def openapi() -> HttpResponse:
        return json_response(200, openapi_document())

    # ---------------------------------------------------------------- errors
    @app.exception_handler(MaasError)
    def handle_maas_error(exc: MaasError) -> HttpResponse:
        if exc.status >= 500:
            log.error("request failed: %s", exc, exc_info=exc)
        return error_response(exc)

    @app.not_found
    def handle_not_found(exc: Exception) -> HttpResponse:
        event = app.current_event
        refused = method_not_allowed(event.http_method, event.path)
        if refused is not None:
            return refused
        return json_response(404, {"error": f"no route for {event.http_method} {event.path}"})

    @app.exception_handler(Exception)
    def handle_unexpected(exc: Exception) -> HttpResponse:
        # A bug of ours: log it whole, tell the client only that it happened.
        log.exception("unhandled error")
        return json_response(500, {"error": "internal server error"})

    return app
