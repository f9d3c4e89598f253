"""The pool contract's own rules (`lcm_core.domain.pools`): when a moment lies in the allowed hours (in their
time zone, across midnight and the daylight-saving changes), and the scaling defaults and bounds an operator's
spec is held to (docs/pools.md)."""

from __future__ import annotations

from datetime import datetime, time

import pytest
from pydantic import ValidationError

from lcm_core.domain.pools import AllowedHours, PoolSpec, ScalingConfig

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"
EVERY_DAY = list(range(7))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}+00:00")


HOURS = [
    # (case, window, moment in UTC, inside)
    ("Paris office hours, winter: 08:00 CET is 07:00 UTC", AllowedHours(start=time(8), end=time(18), timezone=PARIS,
     weekdays=EVERY_DAY), "2026-12-07T07:00", True),
    ("one minute before, winter", AllowedHours(start=time(8), end=time(18), timezone=PARIS, weekdays=EVERY_DAY),
     "2026-12-07T06:59", False),
    ("the Monday after the spring change: 08:00 CEST is 06:00 UTC",
     AllowedHours(start=time(8), end=time(18), timezone=PARIS, weekdays=EVERY_DAY), "2026-03-30T06:00", True),
    ("the Friday before it, 06:00 UTC is still 07:00 CET: outside",
     AllowedHours(start=time(8), end=time(18), timezone=PARIS, weekdays=EVERY_DAY), "2026-03-27T06:00", False),
    ("summer end: 18:00 CEST is 16:00 UTC", AllowedHours(start=time(8), end=time(18), timezone=PARIS,
     weekdays=EVERY_DAY), "2026-06-01T16:00", False),
    ("the hour that repeats in autumn lies in a window that covers it, both times",
     AllowedHours(start=time(2), end=time(3), timezone=PARIS), "2026-10-25T01:30", True),
    ("... the first time too", AllowedHours(start=time(2), end=time(3), timezone=PARIS), "2026-10-25T00:30", True),
    ("the hour that does not exist in spring is never inside",
     AllowedHours(start=time(2), end=time(3), timezone=PARIS), "2026-03-29T01:00", False),
    ("across midnight: Friday 22:00 New York, Friday only", AllowedHours(start=time(22), end=time(6),
     timezone=NEW_YORK, weekdays=[4]), "2026-12-12T03:00", True),
    ("across midnight: Saturday 05:59 belongs to Friday's night", AllowedHours(start=time(22), end=time(6),
     timezone=NEW_YORK, weekdays=[4]), "2026-12-12T10:59", True),
    ("across midnight: Saturday 06:00 is past it", AllowedHours(start=time(22), end=time(6), timezone=NEW_YORK,
     weekdays=[4]), "2026-12-12T11:00", False),
    ("across midnight: Thursday night is not Friday's", AllowedHours(start=time(22), end=time(6),
     timezone=NEW_YORK, weekdays=[4]), "2026-12-11T03:00", False),
    ("across midnight on the night the clocks go forward (Sunday 01:00 New York belongs to Saturday)",
     AllowedHours(start=time(22), end=time(6), timezone=NEW_YORK, weekdays=[5]), "2026-03-08T06:00", True),
    ("start equal to end: the whole day from the start, Monday only",
     AllowedHours(start=time(8), end=time(8), timezone=PARIS, weekdays=[0]), "2026-12-08T06:59", True),
    ("... and not past it", AllowedHours(start=time(8), end=time(8), timezone=PARIS, weekdays=[0]),
     "2026-12-08T07:00", False),
]


@pytest.mark.parametrize(("window", "moment", "inside"), [case[1:] for case in HOURS],
                         ids=[case[0] for case in HOURS])
def test_allowed_hours(window: AllowedHours, moment: str, inside: bool) -> None:
    assert window.contains(utc(moment)) is inside


@pytest.mark.parametrize("clock", ["08:00+05:00", "08:00Z", "08:00:00-03:00"])
def test_a_time_of_day_with_an_offset_is_refused(clock: str) -> None:
    """The window's times are local to its time zone: an offset on them would contradict it (and a time with
    one cannot be compared with the local clock, which failed every evaluation of the pool)."""
    with pytest.raises(ValidationError, match="without an offset"):
        AllowedHours.model_validate({"start": clock, "end": "17:00", "timezone": PARIS})
    with pytest.raises(ValidationError, match="without an offset"):
        AllowedHours.model_validate({"start": "07:00", "end": clock, "timezone": PARIS})


def test_the_scaling_defaults_are_those_of_the_specification() -> None:
    cfg = PoolSpec(name="p", lab_track="t", template_name="m").scaling
    assert (cfg.cpu_scale_up_percent, cfg.cpu_scale_down_percent) == (75, 30)
    assert (cfg.memory_scale_up_percent, cfg.memory_scale_down_percent) == (80, 40)
    assert (cfg.max_labs_per_worker, cfg.min_labs_per_worker) == (15, 3)
    assert (cfg.scale_up_cooldown_minutes, cfg.scale_down_cooldown_minutes) == (10, 20)
    assert cfg.allowed_hours is None


@pytest.mark.parametrize(("values", "problem"), [
    ({"min_workers": 3, "max_workers": 2}, "min_workers (3) is above max_workers (2)"),
    ({"cpu_scale_down_percent": 80}, "cpu_scale_down_percent must be below cpu_scale_up_percent"),
    ({"memory_scale_up_percent": 40}, "memory_scale_down_percent must be below memory_scale_up_percent"),
    ({"min_labs_per_worker": 15}, "min_labs_per_worker (15) must be below max_labs_per_worker (15)"),
])
def test_inconsistent_scaling_is_refused(values: dict[str, int], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        ScalingConfig.model_validate(values)
