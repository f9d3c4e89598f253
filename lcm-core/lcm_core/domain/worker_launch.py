"""A worker whose instance could not be launched, as the worker-controller reports each attempt and as the
worker carries the run of failures (part of the worker contract, `lcm_core.domain.workers.WorkerSummary`).
No I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lcm_core.domain.cml_snapshot import StrictModel
from lcm_core.domain.types import Instant, Text

#: The longest launch error a worker keeps (AWS's message, cut by the reporter: an authorisation failure
#: carries a long encoded blob).
LAUNCH_ERROR_MAX_LENGTH = 500


def _in_utc(value: datetime) -> datetime:
    # Compared with the attempts already stored (UTC): a time without an offset cannot be, and one whose UTC
    # time falls outside the calendar is no time an attempt was made.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("the time must carry its offset (e.g. 2026-12-05T07:35:09Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range") from None


class LaunchFailureReport(StrictModel):
    """One failed attempt to launch a worker's instance, as the worker-controller reports it
    (`POST /api/internal/workers/{id}/launch-failed`), after it has checked by the worker's id tag that no
    instance was launched after all. Secrets are masked by the reporter."""

    error: Annotated[Text, Field(min_length=1, max_length=LAUNCH_ERROR_MAX_LENGTH)]
    observed_at: Annotated[Instant, AfterValidator(_in_utc)]
    """When the attempt failed, with its offset (kept in UTC); one not newer than the last attempt counted is
    ignored, one ahead of the control plane's clock is refused (`worker_launch`)."""


class LaunchFailure(BaseModel):
    """A worker whose instance could not be launched: since when, how many attempts in a row, and the last
    error. Cleared when its instance is attached; the pool fails while a member keeps failing (docs/pools.md)."""

    model_config = ConfigDict(extra="ignore")

    since: datetime
    """The first failed attempt of the run."""
    last_at: datetime
    """The last failed attempt."""
    attempts: int = Field(default=1, ge=1)
    """Failed attempts in a row."""
    error: str
    """Why the last attempt failed (at most `LAUNCH_ERROR_MAX_LENGTH` characters)."""
