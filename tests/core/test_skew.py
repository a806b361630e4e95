"""The offset between the local clock and AWS's: read from a Date header, measured over one exchange, applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from govuk_imds.core.skew import as_local, describe, for_clients, measured_offset, server_time, worth_telling

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_date_header_is_read_as_the_middle_of_the_second_it_names() -> None:
    assert server_time("Mon, 02 Mar 2026 09:00:00 GMT") == T0 + timedelta(milliseconds=500)
    assert server_time("") is None
    assert server_time(None) is None
    assert server_time("not a date") is None


def test_the_offset_is_the_servers_time_against_the_middle_of_the_exchange() -> None:
    sent, received = T0, T0 + timedelta(seconds=2)
    assert measured_offset(sent, received, T0 + timedelta(minutes=35, seconds=1)) == timedelta(minutes=35)
    assert measured_offset(sent, received, T0 - timedelta(hours=2) + timedelta(seconds=1)) == -timedelta(hours=2)


def test_an_aws_moment_is_moved_onto_the_local_clock() -> None:
    # AWS's clock is 35 minutes behind the local one: AWS's 17:00 is 17:35 locally.
    assert as_local(T0, -timedelta(minutes=35)) == T0 + timedelta(minutes=35)


def test_only_an_offset_worth_telling_reaches_clients_and_people() -> None:
    assert not worth_telling(timedelta(seconds=59)) and for_clients(timedelta(seconds=59)) == timedelta(0)
    assert worth_telling(-timedelta(minutes=1)) and for_clients(-timedelta(minutes=1)) == -timedelta(minutes=1)
    assert describe(-timedelta(minutes=35)) == "35 min 0 s ahead of AWS"
    assert describe(timedelta(hours=2)) == "2 h 0 min behind AWS"
