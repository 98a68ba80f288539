"""Powertools' HTTP API resolver, with the event it is handling kept per thread.

``APIGatewayHttpResolver.resolve`` stores the event on a *class* attribute
(``BaseRouter.current_event``, so that included routers can see it), shared by
every resolver in the process. The routes read headers and the body from
``app.current_event`` at any point while they run, so two invocations at once
(``maas serve`` answering several connections) would read each other's
requests. On Lambda, one invocation per environment, the two are the same.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from maas.protocol.jsonbody import dumps_text


class ThreadLocalEventResolver(APIGatewayHttpResolver):
    def __init__(self) -> None:
        # One JSON library behind every response: the codecs' own.
        super().__init__(serializer=dumps_text)
        self._invocation = threading.local()

    @property  # type: ignore[override]
    def current_event(self) -> APIGatewayProxyEventV2:
        event: APIGatewayProxyEventV2 = self._invocation.event
        return event

    @current_event.setter
    def current_event(self, value: APIGatewayProxyEventV2) -> None:
        self._invocation.event = value

    @property
    def request_headers(self) -> dict[str, str]:
        """The request's headers under lower-case names, built once per invocation
        (Powertools' ``current_event.headers`` builds a new dict on every read)."""
        headers: dict[str, str] | None = self._invocation.headers
        if headers is None:
            raw = self.current_event.get("headers") or {}
            headers = {str(name).lower(): str(value) for name, value in raw.items()}
            self._invocation.headers = headers
        return headers

    @property
    def lambda_context(self) -> Any:
        return self._invocation.context

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._invocation.context = value

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        # Powertools sets its class attribute too; every read here goes through
        # the properties above, so this thread's values are the ones used.
        self.current_event = APIGatewayProxyEventV2(dict(event))
        self.lambda_context = context
        self._invocation.headers = None
        return super().resolve(event, context)
