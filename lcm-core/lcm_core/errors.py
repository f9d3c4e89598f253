"""The typed error hierarchy shared by every LCM service.

Each service maps these to HTTP exactly once (see `control_plane_api.api.errors`): NotFound → 404,
Conflict → 409, Invalid → 422, TooManyRequests → 429, Unavailable → 503. Anything else is a bug and becomes a 500.

There is one conflict error, `ConflictError`; its subclass `VersionConflict` marks a stale version, the one
conflict that re-reading resolves (the use cases retry it when it was their own read that went stale), and
`FencedError` a deposed leader's write, which nothing retries.
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
    """The request conflicts with the stored state: a version the caller read is stale, the state does not
    allow the change, the object already exists, or the caller is no longer the leader. A 409; of its kinds only
a `VersionConflict` is ever retried (by the use case that read the stale version)."""

    code = "conflict"


class VersionConflict(ConflictError):
    """A stale version: the stored object is no longer at the version the writer named (somebody wrote since
    it was read). When the use case named it (its own read) it re-reads and re-applies its change, bounded, and
    a caller only sees it (409) when every attempt lost; when the caller named it (an operator's edit of what
    she read), it is the caller's to re-read."""


class FencedError(ConflictError):
    """A write of a controller that no longer leads: its epoch is not its service's current leader's (the etcd
    check), or a newer epoch of its service has already written the object (the token kept in storage). Never
    retried: the caller must stop acting on what it decided as leader."""


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

