"""What a set of rendered NetworkPolicies lets through, by the rules of the Kubernetes API (networking.k8s.io/v1):
a pod selected by no policy of a direction is open in that direction; once selected, a connection passes when
any rule of any selecting policy of that direction matches both the peer and the port. Only what the LCM
manifests use is modelled (label selectors with matchLabels/matchExpressions, namespace selectors on the
`kubernetes.io/metadata.name` label, ipBlock with except, numeric ports); an unknown construct fails loudly
rather than being read as "allowed".
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    """One side of a connection: a pod (labels, namespace) or an address outside the cluster (ip)."""

    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    ip: str | None = None

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


def pod(namespace: str, **labels: str) -> Endpoint:
    return Endpoint(namespace=namespace, labels={k.replace("__", "."): v for k, v in labels.items()})


def lcm_pod(namespace: str, name: str) -> Endpoint:
    return Endpoint(namespace=namespace, labels={"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "lcm"})


def outside(ip: str) -> Endpoint:
    return Endpoint(ip=ip)


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector: an empty one selects everything."""
    selector = selector or {}
    unknown = set(selector) - {"matchLabels", "matchExpressions"}
    assert not unknown, f"selector fields not modelled: {unknown}"
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        assert operator in ("In", "NotIn", "Exists", "DoesNotExist"), operator
    return True


def peer_matches(peer: dict[str, Any], policy_namespace: str, endpoint: Endpoint) -> bool:
    if "ipBlock" in peer:
        if endpoint.ip is None:  # pod IPs are the implementation's business; LCM's rules never rely on them
            return False
        address = ipaddress.ip_address(endpoint.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(excluded) for excluded in block.get("except", []))
    if not endpoint.is_pod:
        return False
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": endpoint.namespace or ""}
        if not selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif endpoint.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector"), endpoint.labels)


def port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:  # every port of the protocol
            return True
        first = entry["port"]
        assert isinstance(first, int), f"named ports are not modelled: {entry}"
        if first <= port <= int(entry.get("endPort", first)):
            return True
    return False


def allowed(policies: list[dict[str, Any]], source: Endpoint, destination: Endpoint, port: int,
            protocol: str = "TCP") -> bool:
    """Whether both the source's egress and the destination's ingress let the connection through."""
    return (_direction_allows(policies, "Egress", subject=source, peer=destination, port=port, protocol=protocol)
            and _direction_allows(policies, "Ingress", subject=destination, peer=source, port=port,
                                  protocol=protocol))


def isolated(policies: list[dict[str, Any]], subject: Endpoint, direction: str) -> bool:
    return bool(_selecting(policies, subject, direction))


def _selecting(policies: list[dict[str, Any]], subject: Endpoint, direction: str) -> list[dict[str, Any]]:
    if not subject.is_pod:
        return []
    return [p for p in policies
            if p["metadata"]["namespace"] == subject.namespace and direction in _types(p)
            and selects(p["spec"].get("podSelector"), subject.labels)]


def _types(policy: dict[str, Any]) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])


def _direction_allows(policies: list[dict[str, Any]], direction: str, *, subject: Endpoint, peer: Endpoint,
                      port: int, protocol: str) -> bool:
    if not subject.is_pod:  # outside the cluster: no policy applies
        return True
    selecting = _selecting(policies, subject, direction)
    if not selecting:
        return True
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(peer_matches(p, policy["metadata"]["namespace"], peer) for p in peers)
            if peer_ok and port_matches(rule.get("ports"), port, protocol):
                return True
    return False
