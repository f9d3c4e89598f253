"""Helpers of the dashboard's end-to-end tests: the local stack's handles, and pages in the test browser."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx

from lcm_core.testing.devstack import env_file as stack_env
from lcm_core.testing.devstack.aws_seed import DEMO_TAG

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".lcm" / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
STREAM_LIFETIME_SECONDS = 8
# The demo fleet: the local AWS is seeded with 4 running and 1 stopped CML instance, which discovery imports.
# The seeded pool (demo-pool) launches workers of its own besides them: see `LocalStack.demo_workers`.
DEMO_WORKERS = 5


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class LocalStack:
    env: dict[str, str]
    root: Path
    console_errors: list[str] = field(default_factory=list)
    _demo_instances: set[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.env["LCM_API_URL"]

    def ec2(self, region: str) -> Any:
        return boto3.client("ec2", region_name=region, endpoint_url=self.env["AWS_ENDPOINT_URL"],
                            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])

    def api(self, method: str, path: str, who: str = "admin", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.env[f'LCM_{who.upper()}_TOKEN']}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def as_lablet_controller(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The internal API as the leading lablet-controller calls it: the stack's API key and the epoch of
        the lablet-controller's current leader (as the CPA's controllers page reports it)."""
        controllers = self.api("GET", "/api/system/controllers").json()["controllers"]
        epoch = controllers["lablet-controller"]["leader_epoch"]
        assert epoch is not None, controllers
        headers = {"X-API-Key": self.env["CONTROL_PLANE_API_KEY"], "X-LCM-Leader-Epoch": str(epoch)}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def workers(self) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.env['LCM_ADMIN_TOKEN']}"}
        return httpx.get(f"{self.url}/api/workers?limit=1000", headers=headers, timeout=10).json()["items"]

    def worker(self, worker_id: str) -> dict[str, Any]:
        """One worker's detail (the whole worker, its telemetry, its row)."""
        headers = {"Authorization": f"Bearer {self.env['LCM_ADMIN_TOKEN']}"}
        return httpx.get(f"{self.url}/api/workers/{worker_id}", headers=headers, timeout=10).json()

    def demo_instance_ids(self) -> set[str]:
        """The instances the local AWS was seeded with (`aws_seed.DEMO_TAG`), read once from the local AWS."""
        if self._demo_instances is None:
            found = set()
            for region in self.env["WORKER_DISCOVERY_REGIONS"].split(","):
                pages = self.ec2(region).get_paginator("describe_instances").paginate(
                    Filters=[{"Name": f"tag:{DEMO_TAG[0]}", "Values": [DEMO_TAG[1]]}])
                found |= {i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]}
            assert len(found) == DEMO_WORKERS, found
            self._demo_instances = found
        return self._demo_instances

    def demo_workers(self, workers: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """The workers of the demo fleet (discovered from the seeded instances), not those a pool launched."""
        seeded = self.demo_instance_ids()
        return [w for w in (self.workers() if workers is None else workers) if w["aws_instance_id"] in seeded]

    def wait_for_workers(self, predicate, what: str, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            workers = self.workers()
            if predicate(workers):
                return workers
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {[(w['name'], w['status']) for w in workers]}")
            time.sleep(0.5)


def read_env(path: Path) -> dict[str, str]:
    return stack_env.read(path)


def open_page(browser: Any, stack: LocalStack, width: int = 1280, height: int = 900) -> Any:
    """A fresh browser context (no cookies); console errors and CSP violations are collected."""
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=stack.url)
    context.set_default_timeout(15_000)
    page = context.new_page()

    def on_console(message: Any) -> None:
        if message.type == "error":
            stack.console_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda e: stack.console_errors.append(f"page error: {e}"))
    return page


def log_in(page: Any, stack: LocalStack, who: str) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(stack.env[f"LCM_{who.upper()}_USER"])
    page.get_by_label("Password").fill(stack.env[f"LCM_{who.upper()}_PASSWORD"])
    page.get_by_role("button", name="Log in").click()
    page.locator("#connection[data-state=live]").wait_for()
