"""Prometheus `/metrics`: request counts and latency per route template, SSE clients, the event log, the
fleet by status and health, and what the alert rules read (`api.metrics_series`), all read at scrape time.
Scraped with the API key or a viewer's token."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_plane_api.api.metrics_series import AlertReadings, AlertSeries
from control_plane_api.api.security import CP, viewer_or_api_key
from control_plane_api.domain.cost_report import Amounts

router = APIRouter(tags=["metrics"])


class ApiMetrics:
    """One registry per app, so that several apps in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("lcm_http_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("lcm_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
                                 registry=self.registry)
        self.sse_clients = Gauge("lcm_sse_clients", "Connected SSE clients", registry=self.registry)
        self.events_delivered = Gauge("lcm_events_delivered", "Events delivered to local subscribers",
                                      registry=self.registry)
        self.event_log_up = Gauge("lcm_event_log_available", "1 when the Redis event log is reachable",
                                  registry=self.registry)
        self.workers = Gauge("lcm_workers", "Workers by status and health", ["status", "health"],
                             registry=self.registry)
        self.etcd_failed_writes = Gauge("lcm_etcd_failed_writes", "etcd key writes that failed",
                                        registry=self.registry)
        self.lost_races: Callable[[], dict[str, int]] = dict
        """Read at each scrape (set by the route: the stores belong to the control plane, built after this)."""
        self.registry.register(_LostRaces(self))
        self.costs: dict[str, Amounts] = {}
        """Cost and savings since the ledger began by pool label (set by the route at each scrape)."""
        self.registry.register(_CostCounters(self))
        self.alerts = AlertSeries()
        """Controllers, licences, stuck sessions, SSE overflows (their readings set by the route at each scrape)."""
        self.registry.register(self.alerts)


class _LostRaces(Collector):
    """`lcm_version_conflicts_total{aggregate}`: writes that lost a version race since start (each re-read and
    re-applied). Steady growth is contention on one aggregate type."""

    def __init__(self, metrics: ApiMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("lcm_version_conflicts", "Writes that lost a version race since start "
                                     "(re-read and re-applied), by what they wrote", labels=["aggregate"])
        for aggregate, lost in sorted(self._metrics.lost_races().items()):
            family.add_metric([aggregate], lost)
        yield family


class _CostCounters(Collector):
    """`lcm_cost_usd_total{pool, state}` and `lcm_cost_savings_usd_total{pool, reason}`: what the fleet has cost
    and saved since the cost ledger began (docs/costs.md); the pool label is the pool's name or `none`."""

    def __init__(self, metrics: ApiMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        cost = CounterMetricFamily("lcm_cost_usd", "Fleet cost in USD since the cost ledger began, by pool and "
                                   "billed state", labels=["pool", "state"])
        savings = CounterMetricFamily("lcm_cost_savings_usd", "What running would have cost, less the EBS paid, "
                                      "while workers were stopped by idle auto-pause or retired by a pool's "
                                      "scale-down (USD, since the cost ledger began)", labels=["pool", "reason"])
        for pool, amounts in sorted(self._metrics.costs.items()):
            cost.add_metric([pool, "running"], amounts.running_usd)
            cost.add_metric([pool, "stopped"], amounts.stopped_usd)
            savings.add_metric([pool, "idle_pause"], amounts.savings_idle_pause_usd)
            savings.add_metric([pool, "scale_down"], amounts.savings_scale_down_usd)
        yield cost
        yield savings


def install_metrics(app: FastAPI) -> ApiMetrics:
    metrics = ApiMetrics()

    class Middleware:
        """Pure ASGI (not BaseHTTPMiddleware), so that streaming responses pass through untouched."""

        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await self.inner(scope, receive, send)
                return
            started = time.perf_counter()
            status = [500]

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await self.inner(scope, receive, capture)
            finally:
                template = getattr(scope.get("route"), "path", "unmatched")
                if template != "/api/events/stream":  # long-lived: its duration is not a latency
                    metrics.latency.labels(scope["method"], template).observe(time.perf_counter() - started)
                metrics.requests.labels(scope["method"], template, str(status[0])).inc()

    app.add_middleware(Middleware)
    return metrics


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus(request: Request, cp: CP, _caller: Annotated[str, Depends(viewer_or_api_key)]) -> Response:
    metrics: ApiMetrics = request.app.state.metrics
    metrics.sse_clients.set(cp.relay.subscriber_count)
    metrics.events_delivered.set(cp.relay.delivered)
    metrics.event_log_up.set(1 if cp.relay.log_available else 0)
    metrics.etcd_failed_writes.set(cp.etcd.failed_writes)
    metrics.lost_races = cp.lost_races
    metrics.costs = await cp.costs.counters()
    counts = await cp.workers.count_by_status_and_health()
    metrics.workers.clear()
    for (status, health), count in counts.items():
        metrics.workers.labels(status, health).set(count)
    controllers = await cp.readings.controllers()
    metrics.alerts.readings = AlertReadings(
        controllers=controllers, licences=await cp.readings.licences(),
        sessions_past_boot_timeout=await cp.readings.sessions_past_boot_timeout(controllers.boot_timeout_seconds),
        sse_overflow_disconnects=cp.relay.overflowed_clients)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
