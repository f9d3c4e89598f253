"""The control plane's internal API, as the worker-controller uses it (the only way it changes state)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from lcm_core.control_plane_client import ControlPlaneClient
from lcm_core.domain.pools import PoolEvaluation, PoolView, PoolWork
from lcm_core.domain.workers import MetricsBatch, MetricsBatchOutcome, WorkerMetricsReport, WorkerView
from worker_controller.domain.worker_view import ImportReply

#: Items per bulk call: large enough to make 2,000 workers a handful of requests, small enough for one body.
BATCH = 500


class ControlPlaneGateway:
    def __init__(self, client: ControlPlaneClient) -> None:
        self._client = client

    async def workers(self, *, include_terminated: bool = False, status: str | None = None,
                      page_size: int = 5000) -> list[WorkerView]:
        """Every matching worker, page by page (a fleet may outgrow one page)."""
        found: list[WorkerView] = []
        while True:
            page = await self._client.get("/api/internal/workers", include_terminated=include_terminated,
                                          status=status, limit=page_size, offset=len(found), view="controller")
            found += [WorkerView.model_validate(item) for item in page["items"]]
            if not page["items"] or len(found) >= page["total"]:
                return found

    async def worker(self, worker_id: str) -> WorkerView:
        return WorkerView.model_validate(await self._client.get(f"/api/internal/workers/{worker_id}"))

    async def settings(self) -> dict[str, Any]:
        return await self._client.get("/api/internal/settings")

    async def bulk_import(self, instances: Sequence[dict[str, Any]], source: str) -> ImportReply:
        reply = ImportReply()
        for start in range(0, len(instances), BATCH):
            page = await self._client.post("/api/internal/workers/bulk-import",
                                           {"instances": list(instances[start:start + BATCH]), "source": source})
            reply.created += page["created"]
            reply.workers += [WorkerView.model_validate(item) for item in page["workers"]]
        return reply

    async def unseen(self, instance_ids: Iterable[str]) -> list[WorkerView]:
        """Workers with an instance, not terminated, whose instance is not among `instance_ids`."""
        reply = await self._client.post("/api/internal/workers/unseen", {"aws_instance_ids": list(instance_ids)})
        return [WorkerView.model_validate(item) for item in reply["items"]]

    async def report_status(self, worker_id: str, body: dict[str, Any]) -> WorkerView:
        return WorkerView.model_validate(await self._client.post(f"/api/internal/workers/{worker_id}/status", body))

    async def report_metrics(self, reports: Sequence[WorkerMetricsReport]) -> MetricsBatchOutcome:
        totals = MetricsBatchOutcome()
        for start in range(0, len(reports), BATCH):
            body = MetricsBatch(reports=list(reports[start:start + BATCH])).model_dump(mode="json", exclude_none=True)
            totals.add(MetricsBatchOutcome.model_validate(
                await self._client.post("/api/internal/workers/metrics:batch", body)))
        return totals

    async def template(self, name: str) -> dict[str, Any]:
        return await self._client.get(f"/api/internal/templates/{name}")

    async def provisioned(self, worker_id: str, instance: dict[str, Any]) -> WorkerView:
        return WorkerView.model_validate(
            await self._client.post(f"/api/internal/workers/{worker_id}/provisioned", instance))

    async def launch_failed(self, worker_id: str, report: dict[str, Any]) -> WorkerView:
        return WorkerView.model_validate(
            await self._client.post(f"/api/internal/workers/{worker_id}/launch-failed", report))

    async def license_progress(self, worker_id: str, body: dict[str, Any]) -> WorkerView:
        return WorkerView.model_validate(await self._client.post(f"/api/internal/workers/{worker_id}/license", body))

    async def pools(self) -> list[PoolView]:
        """Every pool not yet terminated."""
        reply = await self._client.get("/api/internal/pools")
        return [PoolView.model_validate(item) for item in reply["items"]]

    async def pool_work(self, pool_id: str) -> PoolWork:
        return PoolWork.model_validate(await self._client.get(f"/api/internal/pools/{pool_id}"))

    async def report_evaluation(self, pool_id: str, evaluation: PoolEvaluation) -> PoolView:
        body = evaluation.model_dump(mode="json")
        return PoolView.model_validate(await self._client.post(f"/api/internal/pools/{pool_id}/evaluation", body))
