"""What the worker-controller's use cases need of the world, as small Protocols (ports).

Discovery, the metrics cycle, provisioning, licensing and the reconciler depend on these, never on boto3 or on
the control plane's HTTP client; the composition root (`main`) wires the adapters of `infrastructure`
(`AwsFleet`, `ControlPlaneGateway`) to them, and unit tests wire in-memory fakes. Each Protocol names only the
methods its users call. An adapter that cannot reach AWS or the control plane raises
`lcm_core.errors.UnavailableError`; a `guard` given to a changing EC2 call runs right before the request
leaves and raises to cancel it (the leader fence).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from lcm_core.domain.pools import PoolEvaluation, PoolView, PoolWork
from lcm_core.domain.workers import CloudWatchSample, Ec2Checks, MetricsBatchOutcome, WorkerMetricsReport
from worker_controller.domain.ec2 import Ec2Instance, Guard
from worker_controller.domain.worker_view import ImportReply, WorkerView

# ----------------------------------------------------------------- EC2 and CloudWatch


class InstancesById(Protocol):
    async def instances_by_id(self, region: str, instance_ids: Sequence[str], /) -> dict[str, Ec2Instance]:
        """The instances of a region that still exist, by id (one missing id fails nothing)."""
        ...


class AmiInstances(InstancesById, Protocol):
    """EC2 as discovery reads it: the AMIs matching a name pattern, their instances a page at a time, and
    instances by id (the orphan check)."""

    async def find_amis(self, region: str, name_pattern: str, /) -> dict[str, str]: ...

    def instances_from_amis(self, region: str, ami_ids: Sequence[str], /) -> AsyncIterator[list[Ec2Instance]]: ...


class InstanceHealth(Protocol):
    """EC2 status checks and CloudWatch CPU/network of instances, batched per region (the metrics cycle)."""

    async def status_checks(self, region: str, instance_ids: Sequence[str], /) -> dict[str, Ec2Checks]: ...

    async def cloudwatch(self, region: str, instance_ids: Sequence[str], /, *,
                         now: datetime) -> dict[str, CloudWatchSample]: ...


class InstanceLauncher(Protocol):
    """Launches a worker's instance from its template, and finds the instances already launched for it by tag."""

    async def instances_by_tag(self, region: str, key: str, value: str, /) -> list[Ec2Instance]: ...

    async def run_from_template(self, region: str, template: dict[str, Any], /, *, name: str, client_token: str,
                                tags: dict[str, str], guard: Guard | None = None) -> Ec2Instance: ...


class InstanceControl(InstancesById, InstanceLauncher, Protocol):
    """EC2 as the reconciler drives it: reads instances by id, starts, stops and terminates them (and launches
    them, through provisioning)."""

    async def start(self, region: str, instance_ids: Sequence[str], /, guard: Guard | None = None) -> None: ...

    async def stop(self, region: str, instance_ids: Sequence[str], /, guard: Guard | None = None) -> None: ...

    async def terminate(self, region: str, instance_ids: Sequence[str], /, guard: Guard | None = None) -> None: ...


# ----------------------------------------------------------------- the control plane


class SettingsSource(Protocol):
    async def settings(self) -> dict[str, Any]:
        """The stored SystemSettings, as the control plane answers them (`customized` names the sections set)."""
        ...


class WorkerImport(Protocol):
    async def bulk_import(self, instances: Sequence[dict[str, Any]], source: str, /) -> ImportReply:
        """Creates or updates the workers of these instances (`discovery.to_discovered` items)."""
        ...


class StatusReports(Protocol):
    async def report_status(self, worker_id: str, body: dict[str, Any], /) -> WorkerView:
        """Reports what was observed of a worker (EC2 state, addresses, CML service); answers the worker as stored."""
        ...


class DiscoveryReports(WorkerImport, StatusReports, Protocol):
    """Discovery's side of the control plane: imports, the inventory check, orphans reported terminated."""

    async def unseen(self, instance_ids: Iterable[str], /) -> list[WorkerView]:
        """Workers with an instance, not terminated, whose instance is not among `instance_ids`."""
        ...


class LicenceReports(Protocol):
    async def license_progress(self, worker_id: str, body: dict[str, Any], /) -> WorkerView:
        """Reports the progress of a worker's licence change; answers the worker as stored."""
        ...


class MetricsReports(Protocol):
    """The metrics cycle's side of the control plane: the running workers, and their reports in batches."""

    async def workers(self, *, status: str | None = None) -> list[WorkerView]: ...

    async def report_metrics(self, reports: Sequence[WorkerMetricsReport], /) -> MetricsBatchOutcome: ...


class ProvisioningReports(WorkerImport, Protocol):
    """Provisioning's side of the control plane: the worker's template, the instance attached to it (and any
    duplicate launched for it, imported so that it is seen)."""

    async def template(self, name: str, /) -> dict[str, Any]: ...

    async def provisioned(self, worker_id: str, instance: dict[str, Any], /) -> WorkerView: ...

    async def launch_failed(self, worker_id: str, report: dict[str, Any], /) -> WorkerView:
        """Reports an attempt to launch the worker's instance that launched nothing (`LaunchFailureReport`)."""
        ...


class WorkerGateway(StatusReports, LicenceReports, ProvisioningReports, Protocol):
    """The reconciler's side of the control plane: the workers to reconcile, one worker as it is now, and
    every report it (or the licensing and provisioning it drives) makes."""

    async def workers(self) -> list[WorkerView]: ...

    async def worker(self, worker_id: str, /) -> WorkerView: ...


class PoolGateway(Protocol):
    """The autoscaler's side of the control plane: the pools, one pool as it stands (with its workers, the
    sessions waiting for it and its template), and the evaluation report."""

    async def pools(self) -> list[PoolView]: ...

    async def pool_work(self, pool_id: str, /) -> PoolWork: ...

    async def report_evaluation(self, pool_id: str, evaluation: PoolEvaluation, /) -> PoolView: ...
