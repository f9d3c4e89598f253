"""The dashboard's server side: the public static shell (no data, strict CSP, no path escapes) and the
worker metric history behind the charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from control_plane_api.api.dashboard import VENDOR_FILES
from tests.fixtures.control_plane import discovered
from tests.fixtures.metrics import post_reports, report


def _ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def test_the_shell_and_assets_are_public_hold_no_data_and_carry_a_strict_csp(control_plane) -> None:
    with control_plane.client() as http:
        page = http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "http://" not in page.text
        assert "https://" not in page.text
        script = http.get("/static/js/app.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        for name in VENDOR_FILES:
            vendored = http.get(f"/static/vendor/{name}")
            assert vendored.status_code == 200, f"{name}: {vendored.text[:200]}"
        # The API behind the page still refuses without a session.
        assert http.get("/api/auth/me").status_code == 401
        assert http.get("/api/workers").status_code == 401


def test_static_routes_serve_nothing_outside_the_dashboard_directory(control_plane) -> None:
    with control_plane.client() as http:
        for path in ("/static/../api/dashboard.py", "/static/%2e%2e/%2e%2e/settings.py", "/static/vendor/x.js",
                     "/static/..%2f..%2fmain.py", "/static/package.json", "/static/nope.js"):
            assert http.get(path).status_code == 404, path


def test_metric_history_keeps_one_sample_per_report_oldest_first(control_plane) -> None:
    with control_plane.client() as http:
        imported = http.post("/api/internal/workers/bulk-import", headers=control_plane.leader(),
                             json={"instances": [discovered(41), discovered(42)]}).json()["created"]
        first, second = sorted(imported)
        for n, age in enumerate((30, 20, 10)):
            post_reports(control_plane, http, report(first, collected_at=_ago(age), cml={
                "all_cpu_percent": 10.0 * (n + 1), "all_memory_total": 1000, "all_memory_used": 100 * (n + 1),
                "all_disk_total": 100, "all_disk_used": 50, "ready": True}))
        post_reports(control_plane, http, report(second, collected_at=_ago(5), cloudwatch={"cpu_utilization": 7.5}))

        history = http.get(f"/api/workers/{first}/metrics", headers=control_plane.viewer()).json()
        assert [s["cpu_percent"] for s in history["samples"]] == [10.0, 20.0, 30.0]
        assert [s["memory_percent"] for s in history["samples"]] == [10.0, 20.0, 30.0]
        assert {s["cpu_source"] for s in history["samples"]} == {"cml"}
        assert history["samples"][-1]["disk_percent"] == 50.0
        newest = http.get(f"/api/workers/{first}/metrics?limit=2", headers=control_plane.viewer()).json()
        assert [s["cpu_percent"] for s in newest["samples"]] == [20.0, 30.0]
        recent = http.get(f"/api/workers/{first}/metrics?minutes=0.25", headers=control_plane.viewer()).json()
        assert [s["cpu_percent"] for s in recent["samples"]] == [30.0]

        other = http.get(f"/api/workers/{second}/metrics", headers=control_plane.viewer()).json()["samples"]
        assert [(s["cpu_percent"], s["cpu_source"], s["memory_percent"]) for s in other] == [
            (7.5, "cloudwatch", None)]
        assert http.get("/api/workers/nope/metrics", headers=control_plane.viewer()).status_code == 404
        assert http.get(f"/api/workers/{first}/metrics").status_code == 401


def test_the_package_ships_every_dashboard_file_it_serves() -> None:
    """Non-editable installs (the container image) get the files through package-data globs."""
    import tomllib
    from pathlib import PurePosixPath

    from control_plane_api.api.dashboard import DASHBOARD_DIR, STATIC_DIR

    package_dir = DASHBOARD_DIR.parent
    pyproject = package_dir.parent / "pyproject.toml"
    globs = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]["control_plane_api"]
    served = [p.relative_to(package_dir).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()]
    served += [f"dashboard/node_modules/{path}" for path in VENDOR_FILES.values()]
    missing = [path for path in served if not any(PurePosixPath(path).match(g) for g in globs)]
    assert missing == []
