"""The local stack's seed (`lcm_core.testing.devstack.pool_seed`) against a real CPA: it creates the template, the
pool and the definition of the pool's track once; a stack restarted on its own data creates (and says it created)
nothing."""

from __future__ import annotations

from lcm_core.testing.devstack import pool_seed


def test_the_seed_creates_what_is_missing_once(control_plane) -> None:
    cp = control_plane
    assert pool_seed.seed(cp.url, cp.admin_token, ["us-east-1"]) == [
        f"template {pool_seed.TEMPLATE}", f"pool {pool_seed.POOL}", f"definition {pool_seed.DEFINITION}"]
    assert pool_seed.seed(cp.url, cp.admin_token, ["us-east-1"]) == []
    with cp.client() as http:
        [pool] = http.get("/api/pools", headers=cp.viewer()).json()["items"]
        definitions = http.get("/api/lablet-definitions", headers=cp.viewer()).json()["items"]
    assert (pool["name"], pool["lab_track"], pool["template_name"]) == (pool_seed.POOL, pool_seed.TRACK,
                                                                        pool_seed.TEMPLATE)
    assert [(d["name"], d["lab_track"], d["status"]) for d in definitions] == [
        (pool_seed.DEFINITION, pool_seed.TRACK, "active")]
