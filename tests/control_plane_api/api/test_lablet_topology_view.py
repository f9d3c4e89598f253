"""`GET /api/lablet-definitions/{id}/topology`: the node/link/port summary the dashboard's definition page shows."""

from __future__ import annotations

from tests.fixtures.lablet_api import SAMPLE_TOPOLOGY, create_definition


def test_topology_summary_lists_nodes_links_and_ports_per_version(control_plane) -> None:
    cp = control_plane
    definition = create_definition(cp, name="ccna-topology", activate=False)
    with cp.client() as http:
        summary = http.get(f"/api/lablet-definitions/{definition['id']}/topology", headers=cp.viewer())
        assert summary.status_code == 200, summary.text
        body = summary.json()
        assert (body["title"], body["version"], body["node_count"]) == ("ccna-basic", 1, 4)
        nodes = {n["label"]: n for n in body["nodes"]}
        assert (nodes["R1"]["node_definition"], nodes["R1"]["cpus"], nodes["R1"]["ram_mb"]) == ("iosv", 1, 768)
        assert nodes["PC"]["ram_mb"] == 1024  # the node's own value wins over its definition's default
        assert nodes["SW1"]["counts_against_node_limit"] is False
        assert [(p["name"], p["template_port"]) for p in nodes["PC"]["ports"]] == [("PC_serial", 5043),
                                                                                    ("PC_vnc", 5044)]
        assert nodes["SW1"]["ports"] == []
        assert [(link["from"], link["to"]) for link in body["links"]] == [("R1", "R2"), ("R2", "SW1"),
                                                                          ("SW1", "PC")]
        assert [p["name"] for p in body["port_template"]] == ["R1_serial", "R2_serial", "PC_serial", "PC_vnc"]
        assert body["estimated_requirements"] == definition["estimated_requirements"]

        edited = SAMPLE_TOPOLOGY.replace("tags: [serial:5042]", "tags: [serial:5042, vnc:5045]")
        updated = http.put(f"/api/lablet-definitions/{definition['id']}", headers=cp.admin(),
                           json={"version": 1, "lab_topology_yaml": edited})
        assert updated.status_code == 200, updated.text
        current = http.get(f"/api/lablet-definitions/{definition['id']}/topology", headers=cp.viewer()).json()
        r2 = next(n for n in current["nodes"] if n["label"] == "R2")
        assert (current["version"], [p["name"] for p in r2["ports"]]) == (2, ["R2_serial", "R2_vnc"])
        first = http.get(f"/api/lablet-definitions/{definition['id']}/topology", headers=cp.viewer(),
                         params={"version": 1}).json()
        assert first["version"] == 1
        assert len(first["port_template"]) == 4
        assert http.get("/api/lablet-definitions/nope/topology", headers=cp.viewer()).status_code == 404
        assert http.get(f"/api/lablet-definitions/{definition['id']}/topology").status_code == 401
