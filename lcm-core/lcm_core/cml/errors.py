"""Typed errors of the CML client.

They extend the shared hierarchy of `lcm_core.errors` so that a service maps them to HTTP without knowing
about CML: an unreachable host is `UnavailableError` (503), a missing lab `NotFoundError` (404), a refused
request `InvalidError` (422). Every error carries the host label (the base URL without credentials), the
HTTP status when there was one, and CML's own `description` — never a token or a password.
"""

from __future__ import annotations

from lcm_core.errors import InvalidError, LcmError, NotFoundError, UnavailableError


class CmlError(LcmError):
    """Base class of every error raised by `lcm_core.cml`."""

    code = "cml_error"

    def __init__(self, message: str, *, host: str | None = None, status_code: int | None = None) -> None:
        super().__init__(message, host=host, status_code=status_code)
        self.host = host
        self.status_code = status_code


class CmlUnreachableError(CmlError, UnavailableError):
    """Transport failure, timeout or a 5xx answer: the host (or its API service) is not usable right now.

    Callers treat it as "unreachable" health, not as a bug, and simply try again on the next cycle.
    """

    code = "cml_unreachable"


class CmlAuthError(CmlError):
    """The credentials were refused (403 on `/authenticate`), or a request stayed 401/403 after re-auth."""

    code = "cml_auth"


class CmlNotFoundError(CmlError, NotFoundError):
    """The addressed lab, node, interface or link does not exist on that host."""

    code = "cml_not_found"


class CmlRejectedError(CmlError, InvalidError):
    """CML refused a well-formed request (400, 409, 422…), e.g. "cannot register now" or "lab not stopped"."""

    code = "cml_rejected"


class CmlResponseError(CmlError):
    """The answer could not be understood: not JSON, or not the shape the endpoint documents."""

    code = "cml_bad_response"
