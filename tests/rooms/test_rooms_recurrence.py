from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.errors import InvalidInput
from rooms.recurrence import Limits, Occurrence, Schedule, expand, first_overlap, validate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_duration=timedelta(hours=12), horizon=timedelta(days=730), max_occurrences=1000)


def weekly(count: int = 6, **kwargs: object) -> Schedule:
    return Schedule(
        datetime(2026, 3, 16, 9, 0),
        datetime(2026, 3, 16, 10, 0),
        "Europe/Berlin",
        f"FREQ=WEEKLY;COUNT={count}",
        **kwargs,  # type: ignore[arg-type]
    )


def test_weekly_series_keeps_local_time_across_dst() -> None:
    occurrences = expand(validate(weekly(), now=NOW, limits=LIMITS))
    # Berlin switches to summer time on 2026-03-29: 09:00 local is 08:00 UTC before and 07:00 UTC after.
    assert [o.start.hour for o in occurrences] == [8, 8, 7, 7, 7, 7]
    assert all(o.recurrence_id.hour == 9 for o in occurrences)
    assert all(o.end - o.start == timedelta(hours=1) for o in occurrences)


def test_exdate_removes_one_occurrence() -> None:
    schedule = validate(weekly(exdates=(datetime(2026, 3, 23, 9, 0),)), now=NOW, limits=LIMITS)
    starts = [o.recurrence_id.day for o in expand(schedule)]
    assert starts == [16, 30, 6, 13, 20]


def test_exdate_given_as_aware_instant_is_converted_to_local() -> None:
    schedule = validate(weekly(exdates=(datetime(2026, 3, 30, 7, 0, tzinfo=UTC),)), now=NOW, limits=LIMITS)
    assert schedule.exdates == (datetime(2026, 3, 30, 9, 0),)


def test_exdate_not_on_the_series_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        validate(weekly(exdates=(datetime(2026, 3, 24, 9, 0),)), now=NOW, limits=LIMITS)
    assert info.value.field == "exdates"


def test_local_until_is_rewritten_to_utc() -> None:
    schedule = Schedule(
        datetime(2026, 3, 16, 9, 0),
        datetime(2026, 3, 16, 10, 0),
        "Europe/Berlin",
        "RRULE:freq=daily;until=20260318",
    )
    canonical = validate(schedule, now=NOW, limits=LIMITS)
    assert canonical.rrule == "FREQ=DAILY;UNTIL=20260318T225959Z"
    assert len(expand(canonical)) == 3


@pytest.mark.parametrize(
    ("rrule", "fragment"),
    [
        ("FREQ=WEEKLY", "must end"),
        ("FREQ=SOMETIMES;COUNT=2", "FREQ"),
        ("FREQ=HOURLY;COUNT=2", "FREQ"),
        ("FREQ=WEEKLY;COUNT=2;BYDAY=XX", "invalid rrule"),
        ("FREQ=WEEKLY;COUNT=abc", "invalid rrule"),
        ("FREQ=DAILY;COUNT=5000", "at most"),
        ("FREQ=DAILY;UNTIL=20200101T000000Z", "no occurrence"),
        ("FREQ=YEARLY;COUNT=5", "days ahead"),
        ("FREQ=DAILY;COUNT=2\nRRULE:FREQ=DAILY", "single"),
    ],
)
def test_bad_rrules_name_the_field(rrule: str, fragment: str) -> None:
    schedule = Schedule(datetime(2026, 3, 16, 9, 0), datetime(2026, 3, 16, 10, 0), "Europe/Berlin", rrule)
    with pytest.raises(InvalidInput, match=fragment) as info:
        validate(schedule, now=NOW, limits=LIMITS)
    assert info.value.field == "rrule"


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (Schedule(datetime(2026, 3, 16, 9), datetime(2026, 3, 16, 8), "UTC"), "end"),
        (Schedule(datetime(2026, 3, 16, 9), datetime(2026, 3, 16, 9), "UTC"), "end"),
        (Schedule(datetime(2026, 3, 16, 9), datetime(2026, 3, 17, 9), "UTC"), "end"),
        (Schedule(datetime(2026, 3, 16, 9), datetime(2026, 3, 16, 10), "Mars/Olympus"), "time_zone"),
        (Schedule(datetime(2026, 3, 16, 9), datetime(2026, 3, 16, 10), "../etc/passwd"), "time_zone"),
        (Schedule(datetime(2026, 3, 1, 9), datetime(2026, 3, 1, 10), "UTC"), "start"),
        (Schedule(datetime(1, 1, 1), datetime(1, 1, 1, 1), "Pacific/Kiritimati"), "start"),
        (Schedule(datetime(9999, 12, 31, 20), datetime(9999, 12, 31, 21), "America/New_York"), "start"),
        (Schedule(datetime(2026, 3, 16, 9), datetime(9999, 12, 31, 21), "America/New_York"), "end"),
        (
            Schedule(
                datetime(2026, 3, 16, 9),
                datetime(2026, 3, 16, 10),
                "UTC",
                "FREQ=DAILY;COUNT=2;UNTIL=20260320",
            ),
            "rrule",
        ),
        (Schedule(datetime(2030, 3, 1, 9), datetime(2030, 3, 1, 10), "UTC"), "start"),
        (
            Schedule(datetime(2026, 3, 16, 9), datetime(2026, 3, 16, 20), "UTC", "FREQ=HOURLY;COUNT=2"),
            "rrule",
        ),
    ],
)
def test_bad_schedules_name_the_field(schedule: Schedule, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate(schedule, now=NOW, limits=LIMITS)
    assert info.value.field == field


def test_series_whose_occurrences_overlap_each_other_is_refused() -> None:
    long_limits = Limits(max_duration=timedelta(hours=48), horizon=timedelta(days=730), max_occurrences=10)
    schedule = Schedule(datetime(2026, 3, 16, 9), datetime(2026, 3, 17, 10), "UTC", "FREQ=DAILY;COUNT=3")
    with pytest.raises(InvalidInput, match="overlap") as info:
        validate(schedule, now=NOW, limits=long_limits)
    assert info.value.field == "rrule"


def _occ(start_hour: float, end_hour: float) -> Occurrence:
    base = datetime(2026, 3, 16, tzinfo=UTC)
    start = base + timedelta(hours=start_hour)
    return Occurrence(start, base + timedelta(hours=end_hour), start.replace(tzinfo=None))


def test_first_overlap_half_open() -> None:
    ours = [_occ(9, 10), _occ(33, 34)]
    assert first_overlap(ours, [_occ(10, 11)]) is None  # touching is fine
    assert first_overlap(ours, [_occ(8, 9)]) is None
    assert first_overlap(ours, [_occ(8, 9), _occ(33.5, 35)]) == _occ(33.5, 35)
    assert first_overlap(ours, [_occ(9.5, 9.75)]) == _occ(9.5, 9.75)
    assert first_overlap([], [_occ(9, 10)]) is None


def test_series_vs_single_overlap_across_dst() -> None:
    series = expand(validate(weekly(), now=NOW, limits=LIMITS))
    # 07:30 UTC on 2026-04-06 is 09:30 Berlin summer time: inside the fourth occurrence.
    single = expand(
        validate(
            Schedule(datetime(2026, 4, 6, 7, 30), datetime(2026, 4, 6, 8, 0), "UTC"), now=NOW, limits=LIMITS
        )
    )
    assert first_overlap(single, series) == series[3]
    # The same UTC time a week before the change (08:30 Berlin winter time... 07:30 UTC = 08:30) is free.
    before = expand(
        validate(
            Schedule(datetime(2026, 3, 23, 7, 30), datetime(2026, 3, 23, 8, 0), "UTC"), now=NOW, limits=LIMITS
        )
    )
    assert first_overlap(before, series) is None


def test_series_vs_series_overlap() -> None:
    mondays = expand(validate(weekly(), now=NOW, limits=LIMITS))
    daily = Schedule(
        datetime(2026, 3, 17, 9, 30), datetime(2026, 3, 17, 9, 45), "Europe/Berlin", "FREQ=DAILY;COUNT=30"
    )
    daily_occ = expand(validate(daily, now=NOW, limits=LIMITS))
    clash = first_overlap(daily_occ, mondays)
    assert clash is not None and clash.recurrence_id == datetime(2026, 3, 23, 9, 0)
    tuesdays = Schedule(
        datetime(2026, 3, 17, 9, 0), datetime(2026, 3, 17, 10, 0), "Europe/Berlin", "FREQ=WEEKLY;COUNT=52"
    )
    assert first_overlap(expand(validate(tuesdays, now=NOW, limits=LIMITS)), mondays) is None


RRULE_PARTS = st.sampled_from(
    [
        "FREQ=DAILY",
        "FREQ=WEEKLY",
        "FREQ=MONTHLY",
        "FREQ=YEARLY",
        "FREQ=HOURLY",
        "COUNT=3",
        "COUNT=0",
        "COUNT=-1",
        "COUNT=99999999999999999999",
        "INTERVAL=0",
        "INTERVAL=2",
        "UNTIL=20260401",
        "UNTIL=20260401T000000Z",
        "UNTIL=99991231T235959Z",
        "UNTIL=2026",
        "BYDAY=MO,WE",
        "BYDAY=5MO",
        "BYDAY=-1FR",
        "BYMONTHDAY=31",
        "BYMONTHDAY=0",
        "BYSETPOS=0",
        "BYMONTH=13",
        "BYHOUR=25",
        "WKST=XX",
        "",
        ";;",
        "=",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    start=st.one_of(st.datetimes(), st.datetimes(datetime(2026, 2, 27), datetime(2028, 4, 1))),
    minutes=st.integers(-100, 2000),
    zone=st.sampled_from(
        ["UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai", "Pacific/Kiritimati", "X"]
    ),
    rrule=st.one_of(st.none(), st.lists(RRULE_PARTS, max_size=4).map(";".join)),
    exdates=st.lists(st.datetimes(), max_size=2),
)
def test_validate_only_ever_raises_invalid_input(
    start: datetime, minutes: int, zone: str, rrule: str | None, exdates: list[datetime]
) -> None:
    try:
        end = start + timedelta(minutes=minutes)
    except OverflowError:
        return
    try:
        schedule = validate(Schedule(start, end, zone, rrule, tuple(exdates)), now=NOW, limits=LIMITS)
    except InvalidInput as exc:
        assert exc.field in {"start", "end", "time_zone", "rrule", "exdates"}
        return
    occurrences = expand(schedule)
    assert occurrences and all(o.end > o.start for o in occurrences)
    assert occurrences[0].start >= NOW and occurrences[-1].end <= NOW + LIMITS.horizon
