"""The typed error hierarchy shared by every LCM service.

Each service maps these to HTTP exactly once (see `control_plane_api.api.errors`): NotFound → 404,
Conflict → 409, Invalid → 422, TooManyRequests → 429, Unavailable → 503. Anything else is a bug and becomes a 500.
"""

from __future__ import annotations


class LcmError(Exception):
    """Base class of every error LCM raises on purpose."""

    code = "lcm_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFoundError(LcmError):
    """The addressed object does not exist."""

    code = "not_found"


class ConflictError(LcmError):
    """The request lost a race (stale version, stale leader epoch) or breaks a uniqueness rule."""

    code = "conflict"


class InvalidError(LcmError):
    """The request is well-formed but not acceptable (a transition not allowed, a bad setting)."""

    code = "invalid"


class UnavailableError(LcmError):
    """A dependency (Mongo, Redis, etcd, AWS, CML, the control plane) cannot be reached right now."""

    code = "unavailable"


class TooManyRequestsError(LcmError):
    """The caller is sending more than it is allowed to (a login throttle); it may retry after a pause."""

    code = "too_many_requests"

    def __init__(self, message: str, retry_after_seconds: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ConfigurationError(LcmError):
    """Settings are missing, malformed or unsafe for the environment."""

    code = "configuration"


class StaleVersionError(ConflictError):
    """A conditional write lost a race: somebody wrote since the object was read (re-read and retry)."""

    code = "conflict"
