"""Smart Licensing of a simulated host: the LicensingStatus document and the calls that change it.

Registration is asynchronous on a real controller (the SSMS round trip): POST answers 204 at once, the
status reads IN_PROGRESS for `registration_seconds`, then COMPLETED/IN_COMPLIANCE, or a failure when
the host is set to have no route to SSMS. Timestamps use CML's `YYYY-MM-DD HH:MM:SS` (UTC, no zone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lcm_core.testing.cml_simulator.errors import CmlError
from lcm_core.testing.cml_simulator.profile import HostProfile

ENTERPRISE_ID = "regid.2019-10.com.cisco.CML_ENT_BASE,1.0_88bd6dfd-0c4a-4d1b-b1cf-bd2b0d0f2c3e"
EXPANSION_ID = "regid.2019-10.com.cisco.CML_NODE_COUNT,1.0_2607650b-6ca8-46d5-81e5-e6688b7383c4"
PERSONAL_ID = "regid.2019-10.com.cisco.CML_PERSONAL,1.0_0c3d5f6e-1a2b-4c3d-9e8f-7a6b5c4d3e2f"
DEFAULT_SSMS = "https://smartreceiver.cisco.com/licservice/license"
PRODUCTS = frozenset({"CML_Enterprise", "CML_Education", "CML_Personal", "CML_Personal40"})
_TOKEN = re.compile(r"^[A-Za-z0-9+/%=-]{1,256}$")
_DAY = 86400.0


def stamp(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _iso_stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).replace(microsecond=0).isoformat()


@dataclass
class TimeInfo:
    succeeded: float | None = None
    attempted: float | None = None
    scheduled: float | None = None
    status: str | None = None
    failure: str | None = None
    success: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"succeeded": stamp(self.succeeded), "attempted": stamp(self.attempted),
                "scheduled": stamp(self.scheduled), "status": self.status, "failure": self.failure,
                "success": self.success}

    def record(self, now: float, ok: bool, *, next_in_days: float) -> None:
        self.attempted = now
        if ok:
            self.succeeded, self.status, self.failure, self.success = now, "SUCCEEDED", None, "SUCCESS"
            self.scheduled = now + next_in_days * _DAY
        else:
            self.status, self.failure, self.success = "FAILED", "Communication send error", "FAILED"


@dataclass
class LicensingState:
    profile: HostProfile
    registered: bool = True
    pending_until: float | None = None
    smart_account: str | None = None
    virtual_account: str | None = None
    register_time: TimeInfo = field(default_factory=TimeInfo)
    renew_time: TimeInfo = field(default_factory=TimeInfo)
    auth_renew_time: TimeInfo = field(default_factory=TimeInfo)
    registration_expires: float | None = None
    authorization_expires: float | None = None
    product: str = "CML_Enterprise"
    expansion_nodes: int = 0
    proxy_server: str | None = None
    proxy_port: int | None = None
    ssms: str | None = DEFAULT_SSMS
    reservation_mode: bool = False

    @classmethod
    def initial(cls, profile: HostProfile, now: float) -> LicensingState:
        """A host registered `registered_days_ago` days ago, authorised within the last 30 days."""
        state = cls(profile=profile, expansion_nodes=profile.expansion_nodes)
        registered_at = now - profile.registered_days_ago * _DAY
        state._complete(registered_at, ok=True)
        state.auth_renew_time.record(now - (profile.registered_days_ago % 30) * _DAY, True, next_in_days=30)
        state.authorization_expires = now + (90 - profile.registered_days_ago % 30) * _DAY
        return state

    @property
    def registration_status(self) -> str:
        if self.pending_until is not None:
            return "IN_PROGRESS"
        return "COMPLETED" if self.registered else "NOT_REGISTERED"

    @property
    def authorization_status(self) -> str:
        return "IN_COMPLIANCE" if self.registered else "EVAL_MODE"

    @property
    def is_licensed(self) -> bool:
        return self.registration_status == "COMPLETED" and self.authorization_status == "IN_COMPLIANCE"

    @property
    def is_enterprise(self) -> bool:
        return self.product in ("CML_Enterprise", "CML_Education")

    def _complete(self, now: float, *, ok: bool) -> None:
        self.pending_until = None
        self.register_time.record(now, ok, next_in_days=180)
        if not ok:
            return
        self.registered = True
        self.smart_account, self.virtual_account = self.profile.smart_account, self.profile.virtual_account
        self.renew_time = TimeInfo(scheduled=now + 180 * _DAY)
        self.registration_expires = now + 365 * _DAY
        self.auth_renew_time.record(now, True, next_in_days=30)
        self.authorization_expires = now + 90 * _DAY

    def advance(self, now: float, ssms_reachable: bool) -> None:
        if self.pending_until is not None and now >= self.pending_until:
            self._complete(self.pending_until, ok=ssms_reachable)

    # ---- operations (each raises CmlError with the status CML documents) -------------------

    def register(self, token: Any, reregister: Any, now: float, delay: float) -> None:
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise CmlError(400, "Invalid registration token")
        if self.pending_until is not None:
            raise CmlError(409, "A registration is already in progress")
        if self.registered and reregister is not True:
            raise CmlError(409, "The product is already registered; use reregister to register again")
        self.pending_until = now + delay
        self.register_time.attempted = now

    def deregister(self, ssms_reachable: bool) -> int:
        """Deregister; 204, or 202 when the local deregistration could not reach SSMS."""
        if self.pending_until is not None:
            raise CmlError(409, "A registration is in progress")
        if not self.registered:
            raise CmlError(400, "The product is not registered")
        self.registered = False
        self.smart_account = self.virtual_account = None
        self.registration_expires = self.authorization_expires = None
        self.register_time, self.renew_time, self.auth_renew_time = TimeInfo(), TimeInfo(), TimeInfo()
        return 204 if ssms_reachable else 202

    def renew(self, what: str, now: float, ssms_reachable: bool) -> None:
        if self.pending_until is not None:
            raise CmlError(409, "A registration is in progress")
        if not self.registered:
            raise CmlError(400, "The product is not registered")
        if what == "registration":
            self.renew_time.record(now, ssms_reachable, next_in_days=180)
            if ssms_reachable:
                self.registration_expires = now + 365 * _DAY
        else:
            self.auth_renew_time.record(now, ssms_reachable, next_in_days=30)
            if ssms_reachable:
                self.authorization_expires = now + 90 * _DAY

    def set_product(self, product: Any) -> None:
        if not isinstance(product, str) or product not in PRODUCTS:
            raise CmlError(400, f"Unknown product license: {product!r}")
        self.product = product

    def set_transport(self, body: Any) -> None:
        proxy = body.get("proxy") if isinstance(body, dict) else None
        if not isinstance(proxy, dict):
            raise CmlError(400, "transport: 'proxy' is required")
        port = proxy.get("port")
        if port is not None and (not isinstance(port, int) or not 1 <= port <= 65535):
            raise CmlError(400, "transport: invalid proxy port")
        self.proxy_server, self.proxy_port = proxy.get("server"), port
        ssms = body.get("ssms")
        self.ssms = ssms if isinstance(ssms, str) and ssms else DEFAULT_SSMS

    def set_features(self, body: Any) -> None:
        if not isinstance(body, list) or not 1 <= len(body) <= 2:
            raise CmlError(400, "features: expected a list of 1-2 {id, count}")
        for item in body:
            count = item.get("count") if isinstance(item, dict) else None
            if not isinstance(item, dict) or item.get("id") not in (ENTERPRISE_ID, EXPANSION_ID):
                raise CmlError(400, f"features: unknown feature {item!r}")
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise CmlError(400, "features: count must be a non-negative integer")
            if item["id"] == EXPANSION_ID:
                if count > 500:
                    raise CmlError(400, "features: at most 500 expansion nodes")
                self.expansion_nodes = count

    def set_reservation_mode(self, body: Any) -> None:
        if not isinstance(body, bool):
            raise CmlError(400, "reservation mode: expected true or false")
        if self.registered and body != self.reservation_mode:
            raise CmlError(409, "Deregister before changing the reservation mode")
        self.reservation_mode = body

    # ---- document --------------------------------------------------------------------------

    def _features(self) -> list[dict[str, Any]]:
        status = "IN_COMPLIANCE" if self.is_licensed else "INIT"
        end = stamp(self.registration_expires)
        if not self.is_enterprise:
            return [{"id": PERSONAL_ID, "name": "CML - Personal License", "description": "Cisco Modeling Labs - "
                     "Personal License", "version": "1.0", "in_use": 1, "status": status, "min": 1, "max": 1,
                     "minEndDate": end, "maxEndDate": end}]
        return [
            {"id": ENTERPRISE_ID, "name": "CML - Enterprise License",
             "description": "Cisco Modeling Labs - Enterprise License with 20 nodes capacity included",
             "version": "1.0", "in_use": 1, "status": status, "min": 1, "max": 1,
             "minEndDate": end, "maxEndDate": end},
            {"id": EXPANSION_ID, "name": "CML - Expansion Node License",
             "description": "Cisco Modeling Labs - Expansion Node License", "version": "1.0",
             "in_use": self.expansion_nodes, "status": status if self.expansion_nodes else "INIT",
             "min": 0, "max": 500, "minEndDate": None, "maxEndDate": None},
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "udi": {"hostname": self.profile.controller.hostname, "product_uuid": self.profile.product_uuid},
            "registration": {"status": self.registration_status, "smart_account": self.smart_account,
                             "virtual_account": self.virtual_account, "register_time": self.register_time.to_json(),
                             "renew_time": self.renew_time.to_json(), "expires": stamp(self.registration_expires)},
            "authorization": {"status": self.authorization_status, "renew_time": self.auth_renew_time.to_json(),
                              "expires": stamp(self.authorization_expires)},
            "reservation_mode": self.reservation_mode,
            "features": self._features(),
            "product_license": {"active": self.product, "is_enterprise": self.is_enterprise},
            "transport": {"proxy": {"server": self.proxy_server, "port": self.proxy_port}, "ssms": self.ssms,
                          "default_ssms": DEFAULT_SSMS},
        }

    def tech_support(self, now: float) -> str:
        return (f"CML licensing tech support ({_iso_stamp(now)})\n"
                f"udi: {self.profile.controller.hostname} {self.profile.product_uuid}\n"
                f"registration: {self.registration_status}\nauthorization: {self.authorization_status}\n"
                f"product: {self.product}\nexpansion nodes: {self.expansion_nodes}\n")
