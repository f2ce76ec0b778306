"""HTTP request metrics for the services: duration by route template and status.

Labelled by the matched route's template (``/v1/members/{member_id}``), never the path, so
member ids stay out of Prometheus and the label set stays small; a request that matched no
route is ``route="unmatched"``. The status is the one sent (``500`` when the app raised
before answering).
"""

from __future__ import annotations

import time

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"

API_REQUEST_SECONDS = Histogram(
    "lapse_api_request_duration_seconds",
    "Time to answer an api request, by method, route template and status.",
    ["method", "route", "status"],
)


class RequestMetrics:
    """ASGI middleware observing ``histogram`` once per HTTP request.

    ``histogram``'s labels are a subset of ``method``, ``route`` and ``status``, in any order.
    """

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram
        self.labels = tuple(histogram._labelnames)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None)
            values = {
                "method": str(scope.get("method", "")),
                "route": route if isinstance(route, str) else UNMATCHED,
                "status": str(status),
            }
            self.histogram.labels(*(values[name] for name in self.labels)).observe(
                time.perf_counter() - start
            )
