"""Timestamps in query parameters: RFC 3339 with a time zone, read exactly, anything else a 400."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from read_side.errors import InvalidInstant
from read_side.instants import parse_instant, time_range, utc_text


@pytest.mark.parametrize(
    ("raw", "instant"),
    [
        ("2026-01-31T09:30:00Z", datetime(2026, 1, 31, 9, 30, tzinfo=UTC)),
        ("2026-01-31t09:30:00z", datetime(2026, 1, 31, 9, 30, tzinfo=UTC)),
        ("2026-01-31 09:30:00Z", datetime(2026, 1, 31, 9, 30, tzinfo=UTC)),
        ("2026-01-31T10:30:00.25+01:00", datetime(2026, 1, 31, 9, 30, 0, 250_000, tzinfo=UTC)),
        ("2026-01-31T04:00:00-05:30", datetime(2026, 1, 31, 9, 30, tzinfo=UTC)),
        ("2026-01-31T09:30:00.000001Z", datetime(2026, 1, 31, 9, 30, 0, 1, tzinfo=UTC)),
    ],
)
def test_rfc_3339_timestamps_with_a_zone_are_read_as_the_instant_they_name(
    raw: str, instant: datetime
) -> None:
    assert parse_instant(raw, "as_of") == instant


def test_a_fraction_finer_than_a_microsecond_is_cut_not_rounded() -> None:
    parsed = parse_instant("2026-01-31T09:30:00.9999999Z", "as_of")

    assert parsed == datetime(2026, 1, 31, 9, 30, 0, 999_999, tzinfo=UTC)


def test_a_plus_that_arrived_as_a_space_in_a_url_is_read_as_plus() -> None:
    assert parse_instant("2026-01-31T10:30:00 01:00", "as_of") == datetime(
        2026, 1, 31, 9, 30, tzinfo=UTC
    )


def test_a_leap_second_is_read_as_the_last_microsecond_before_the_next_minute() -> None:
    assert parse_instant("2016-12-31T23:59:60Z", "as_of") == datetime(
        2016, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC
    )


@pytest.mark.parametrize("raw", ["2026-01-31T09:30:00", "2026-01-31T09:30:00.5"])
def test_a_timestamp_without_a_time_zone_is_refused_saying_so(raw: str) -> None:
    with pytest.raises(InvalidInstant, match="as_of has no time zone"):
        parse_instant(raw, "as_of")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "yesterday",
        "2026-01-31",
        "2026-01-31T09:30Z",
        "2026-01-31T09:30:00+0100",
        "2026-01-31T09:30:00+01",
        "1769851800",
        "\uff12026-01-31T09:30:00Z",  # a fullwidth digit: \d is ASCII only here
        "2026-01-31T09:30:00Z trailing",
    ],
)
def test_text_that_is_not_rfc_3339_is_refused_naming_the_parameter(raw: str) -> None:
    with pytest.raises(InvalidInstant, match="to must be an RFC 3339 timestamp"):
        parse_instant(raw, "to")


@pytest.mark.parametrize(
    "raw",
    [
        "2026-02-30T09:30:00Z",
        "2026-13-01T09:30:00Z",
        "2026-01-31T24:00:00Z",
        "2026-01-31T09:61:00Z",
        "2026-01-31T09:30:00+24:00",
        "0000-01-01T00:00:00Z",
    ],
)
def test_a_well_formed_timestamp_naming_no_real_instant_is_refused(raw: str) -> None:
    with pytest.raises(InvalidInstant, match="from is not a valid instant"):
        parse_instant(raw, "from")


def test_a_range_may_be_open_at_either_end_or_a_single_instant() -> None:
    at = "2026-01-31T09:30:00Z"
    instant = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)

    assert time_range(None, None) == (None, None)
    assert time_range(at, None) == (instant, None)
    assert time_range(None, at) == (None, instant)
    assert time_range(at, at) == (instant, instant)


def test_a_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidInstant, match="is after to"):
        time_range("2026-01-31T09:30:00.000001Z", "2026-01-31T10:30:00+01:00")


def test_the_echoed_instant_is_utc_to_the_microsecond_even_at_the_edge_of_the_calendar() -> None:
    plus_two = timezone(timedelta(hours=2))

    assert utc_text(datetime(2026, 1, 31, 11, 30, tzinfo=plus_two)) == (
        "2026-01-31T09:30:00.000000+00:00"
    )
    assert utc_text(parse_instant("0001-01-01T00:00:00+05:00", "as_of")) == (
        "0001-01-01T00:00:00.000000+05:00"
    )
