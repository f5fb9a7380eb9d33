"""A segment run's default snapshot: a deployment run's scheduled start, so a retry after midnight resumes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from arm_etl.config import snapshot_for


def test_a_scheduled_run_keeps_its_snapshot_across_midnight() -> None:
    scheduled = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # the workday schedule's 03:00 UTC run
    retried = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)  # retried from the UI after 00:00 UTC
    assert snapshot_for(scheduled, retried) == "20261201"


def test_a_plain_call_uses_the_utc_date_of_now() -> None:
    late_in_lima = datetime(2026, 12, 1, 22, 0, tzinfo=timezone(timedelta(hours=-5)))  # 03:00 UTC next day
    assert snapshot_for(None, late_in_lima) == "20261202"


def test_a_scheduled_start_in_another_zone_is_read_in_utc() -> None:
    scheduled = datetime(2026, 12, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2)))  # 01:30 UTC on the 2nd
    assert snapshot_for(scheduled, datetime(2026, 12, 5, tzinfo=UTC)) == "20261202"


def test_a_plain_flow_call_has_no_deployment_and_uses_today(prefect_api: str) -> None:
    from prefect import flow

    from flows.segment import default_snapshot

    @flow
    def probe() -> str:
        return default_snapshot()

    assert probe() == datetime.now(UTC).strftime("%Y%m%d")
