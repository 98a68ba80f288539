"""`maas serve`: a local HTTP front for development and tests, NOT for production.

Each HTTP request becomes exactly the event API Gateway's HTTP API (payload
format 2.0) would deliver: header names lowercased, repeated headers joined
with commas, and bodies base64-encoded (``isBase64Encoded``) unless their
Content-Type is text. The same Lambda handler answers, and its response is
written back faithfully: status, headers, and the decoded body.

The transport is HTTP/1.1 with kept-open connections, as tritonclient, the
KServe SDK and ``requests.Session`` use it: TCP_NODELAY and each response in a
single write (no Nagle stall), a socket timeout, strict body framing
(:mod:`maas.local_body`), and a JSON ``{"error": ...}`` for everything it
refuses itself, like every error the handler returns. Each connection has its
thread, and concurrent invocations do not wait for one another
(:mod:`maas.local_replicas`), so one slow model never stalls the rest.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

from maas.errors import MaasError, RequestTimeout
from maas.local_body import BodyReader, body_length
from maas.local_context import (
    LocalContext as LocalContext,  # re-exported: callers import it from here
)

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

_TEXT_TYPES = (
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
)


def is_text_content_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+json", "+xml"))


def build_event(
    method: str,
    target: str,
    headers: Mapping[str, str] | list[tuple[str, str]],
    body: bytes,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The API Gateway HTTP API payload 2.0 event for one HTTP request."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in pairs:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    url = urlsplit(target)
    query: dict[str, str] = {}
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": url.path or "/",
        "rawQueryString": url.query,
        "headers": merged,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": merged.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": url.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        if is_text_content_type(merged.get("content-type")):
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode("ascii")
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def response_body(response: Mapping[str, Any]) -> bytes:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


JSON = "application/json"
#: RFC 9110 §5.6.2: what a method name may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Clearer words than http.server's for the refusals it makes without a message.
_MESSAGES = {HTTPStatus.REQUEST_URI_TOO_LONG: "the request line is over 65536 bytes"}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _header_value(value: object) -> str:
    # A CR or LF in a value would end the header early (response splitting).
    return str(value).replace("\r", " ").replace("\n", " ")


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalApiServer
    protocol_version = "HTTP/1.1"
    # StreamRequestHandler.setup() sets TCP_NODELAY on the connection.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        # Every read and write of the connection, the wait for the next request
        # on a kept-open one included: an idle or stalled client is let go.
        self.connection.settimeout(self.server.timeout_seconds)

    def parse_request(self) -> bool:
        self._started = time.perf_counter()
        if not super().parse_request():
            return False
        if not _TOKEN.fullmatch(self.command):
            self.send_error(HTTPStatus.BAD_REQUEST, f"bad method name {self.command[:40]!r}")
            return False
        # http.server answers 501, in HTML, for a method without a do_ attribute.
        # Every method goes to the handler instead; it answers 404 or 405 (JSON,
        # with Allow) for what it does not route, as it would on Lambda.
        if not hasattr(self, f"do_{self.command}"):
            setattr(self, f"do_{self.command}", self._handle)
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (400, 414, 431, 505...), as JSON like all others."""
        text = message or _MESSAGES.get(HTTPStatus(code), _phrase(code))
        if explain and explain != text:
            text = f"{text}: {explain}"
        self.log_error("code %d, message %s", code, text)
        self._refuse(code, text)

    def _refuse(self, status: int, message: str) -> None:
        """Answer an error and close: after broken framing, the next request's start is unknown."""
        self.close_connection = True
        self._send(status, [("content-type", JSON)], json.dumps({"error": message}).encode())

    def _send(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        """Status line, headers and body in one write: as two small writes on a
        kept-open connection, the second waits for the client's delayed ACK."""
        self._log_access(status, headers, len(payload))
        lines = [
            f"{self.protocol_version} {status} {_phrase(status)}",
            f"server: {self.version_string()}",
            f"date: {self.date_time_string()}",
            *(f"{name}: {_header_value(value)}" for name, value in headers),
            f"content-length: {len(payload)}",
        ]
        if self.close_connection:
            lines.append("connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        try:
            self.wfile.write(head if self.command == "HEAD" else head + payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left without its answer

    def _read_body(self) -> bytes:
        try:
            reader = BodyReader(self.rfile, keep=self.server.max_body_bytes + 1)
            return reader.read(body_length(self.headers))
        except TimeoutError:
            raise RequestTimeout(
                f"timed out after {self.server.timeout_seconds:g} s waiting for the request body"
            ) from None

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except MaasError as exc:
            self._refuse(exc.status, str(exc))
            return
        event = build_event(
            self.command, self.path, list(self.headers.items()), body, self.client_address[0]
        )
        try:
            response = self.server.invoke(event, LocalContext())
        except Exception:
            # A failing function: API Gateway answers 500 too (here in the API's error shape).
            log.exception("the handler failed")
            self._send(500, [("content-type", JSON)], b'{"error":"internal server error"}')
            return
        headers = {k.lower(): str(v) for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name.lower()] = ",".join(values)
        headers.pop("content-length", None)
        pairs = list(headers.items())
        pairs += [("set-cookie", cookie) for cookie in response.get("cookies") or []]
        self._send(int(response.get("statusCode", 200)), pairs, response_body(response))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def _log_access(self, status: int, headers: list[tuple[str, str]], size: int) -> None:
        """One line per request: on ``access_log`` as text, else a structured log record."""
        elapsed_ms = (time.perf_counter() - getattr(self, "_started", time.perf_counter())) * 1000
        request = getattr(self, "requestline", "") or "-"
        version = next((v for k, v in headers if k == "x-maas-model-version"), None)
        stream = self.server.access_log
        if stream is None:
            log.info(
                "request",
                extra={
                    "client": self.client_address[0],
                    "request": request,
                    "status": status,
                    "bytes": size,
                    "duration_ms": round(elapsed_ms, 3),
                    "model_version": version,
                },
            )
            return
        served = f" v{version}" if version else ""
        stream.write(
            f'{self.client_address[0]} "{request}" {status} {size}B {elapsed_ms:.2f}ms{served}\n'
        )
        stream.flush()

    def log_message(self, format: str, *args: Any) -> None:
        # http.server's own notes (refused requests); each request's line is _log_access's.
        log.info("%s %s", self.address_string(), format % args)


class LocalApiServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 makes clients that connect together wait.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: Handler,
        max_body_bytes: int = 6 * 2**20,
        timeout_seconds: float = 30.0,
        access_log: TextIO | None = None,
    ) -> None:
        """``access_log``: where each request's text line goes; without one, each
        request is a structured (JSON) log record beside the EMF metrics."""
        from maas.local_replicas import concurrent  # Powertools and the core, only when serving

        super().__init__(address, _RequestHandler)
        self.handler = handler
        # A text access log replaces the EMF records on the console (`maas serve`'s default).
        self.invoke = concurrent(handler, max_body_bytes, metrics_on_stdout=access_log is None)
        self.max_body_bytes = max_body_bytes
        self.timeout_seconds = timeout_seconds
        self.access_log = access_log

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}"

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, daemon=True, name="maas-serve")
        thread.start()
        return thread
