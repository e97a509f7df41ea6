"""The daemon's HTTP surface: ``POST /webhook``, ``GET /healthz``, ``/readyz``, ``/metrics``,
and the playground's routes when it is enabled."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from supervisor.webhook import WebhookEndpoint

__all__ = ("build_app",)


def build_app(
    webhook: WebhookEndpoint,
    readiness: Callable[[], tuple[bool, dict[str, object]]],
    metrics_registry: CollectorRegistry | None = None,
    extra_routes: Iterable[web.AbstractRouteDef] = (),
) -> web.Application:
    """The aiohttp application.

    Args:
        webhook: the webhook handler.
        readiness: returns (ready, details) for ``/readyz``.
        metrics_registry: what ``/metrics`` shows (default: this process's registry).
        extra_routes: more routes (the playground's, when it is enabled).
    """
    registry = REGISTRY if metrics_registry is None else metrics_registry

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_request: web.Request) -> web.Response:
        ready, details = readiness()
        return web.json_response({"ready": ready, **details}, status=200 if ready else 503)

    async def metrics(_request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/webhook", webhook.handle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_routes(extra_routes)
    return app
