"""A worker whose instance cannot be launched, on its detail page in headless Chromium against the local stack:
the failed attempts show up live, as text (the template's AMI pattern carries markup, which must not become
HTML). The worker is created from a template of its own, outside any pool, and terminated at the end."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.e2e.stack import LocalStack, log_in, open_page
from tests.fixtures.polling import wait_for

pytestmark = pytest.mark.e2e


def test_a_worker_that_cannot_be_launched_says_why_on_its_detail_page(browser, local_stack: LocalStack) -> None:
    tag = uuid.uuid4().hex[:8]
    pattern = f"CML-<img src=x onerror=window.__pwned=1>-{tag}-*"
    region = local_stack.env["WORKER_DISCOVERY_REGIONS"].split(",")[0]
    template = local_stack.api("POST", "/api/templates", json={
        "name": f"no-ami-{tag}", "instance_type": "m5zn.metal", "ami_name_pattern": pattern,
        "regions": {region: {}}, "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 300,
                                               "max_nodes": 100}})
    assert template.status_code == 201, template.text
    page = open_page(browser, local_stack)
    log_in(page, local_stack, "admin")
    created = local_stack.api("POST", "/api/workers", json={"template_name": f"no-ami-{tag}", "aws_region": region})
    assert created.status_code in (200, 201), created.text
    worker_id = created.json()["id"]
    try:
        page.goto(f"/#/workers/{worker_id}/aws")
        notice = page.locator("[data-field=notices] li").filter(has_text="Launch failed")
        notice.wait_for(timeout=45_000)  # arrives by the worker.launch.failed event, no reload
        text = notice.inner_text()
        assert f"no AMI matches '{pattern}' in {region}" in text, text
        assert "(retried with backoff)" in text
        assert page.locator("[data-field=notices] img").count() == 0
        assert page.evaluate("window.__pwned") is None
        shown = re.search(r"Launch failed (\d+) time\(s\)", text)
        assert shown is not None, text
        stored = local_stack.worker(worker_id)["launch_failure"]
        assert 1 <= int(shown.group(1)) <= stored["attempts"]  # more may have failed since it was drawn
    finally:
        page.close()
        local_stack.api("POST", f"/api/workers/{worker_id}/terminate", json={"reason": "test over"})
        wait_for("the worker cancelled", lambda: local_stack.worker(worker_id)["status"] == "terminated", timeout=30)
        local_stack.api("DELETE", f"/api/templates/no-ami-{tag}")
