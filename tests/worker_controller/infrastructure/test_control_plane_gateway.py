"""The gateway reads every page of the worker list (a fleet can outgrow one page)."""

from __future__ import annotations

import httpx
import respx

from lcm_core.control_plane_client import ControlPlaneClient
from worker_controller.infrastructure.control_plane import ControlPlaneGateway


def worker(n: int) -> dict[str, object]:
    return {"id": f"w{n}", "aws_region": "us-east-1", "aws_instance_id": f"i-{n:017x}", "status": "running"}


async def test_workers_are_read_page_by_page() -> None:
    fleet = [worker(n) for n in range(5)]
    with respx.mock(base_url="http://cpa") as mock:
        def page(request: httpx.Request) -> httpx.Response:
            offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
            return httpx.Response(200, json={"items": fleet[offset:offset + limit], "total": len(fleet),
                                             "offset": offset, "limit": limit})

        route = mock.get("/api/internal/workers").mock(side_effect=page)
        async with ControlPlaneClient("http://cpa", "key") as client:
            found = await ControlPlaneGateway(client).workers(page_size=2)
    assert [w.id for w in found] == ["w0", "w1", "w2", "w3", "w4"]
    assert route.call_count == 3
