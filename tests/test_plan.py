"""Tests for arm_etl.plan and ``arm-etl plan``: the rules on DescribeTable-shaped dicts with exact numbers, and
the real DescribeTable answer of in-process moto, through the CLI too."""

from __future__ import annotations

import argparse
import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from arm_etl.extract import ExtractError, describe_table
from arm_etl.plan import (
    MEASURED_ITEMS_PER_S,
    PAGE_BYTES,
    TOTAL_SEGMENTS_MAX,
    ScanPlan,
    plan_scan,
    render,
)
from flows.cli import build_parser, main

REGION = "us-east-1"
GIB = 1024**3
_names = itertools.count()


def described(
    size: int,
    items: int,
    rcu: int | None = None,
    billing: str | None = "PROVISIONED",
    name: str = "orders",
) -> dict[str, Any]:
    """A DescribeTable response as boto3 returns it (only the fields the plan reads, plus the key schema)."""
    table: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "TableSizeBytes": size,
        "ItemCount": items,
        "ProvisionedThroughput": {"ReadCapacityUnits": rcu or 0, "WriteCapacityUnits": rcu or 0},
    }
    if billing is not None:
        table["BillingModeSummary"] = {"BillingMode": billing}
    return {"Table": table}


# --- the rules, exact numbers ---------------------------------------------------------------------------------


def test_ten_gib_provisioned_table() -> None:
    plan = plan_scan(described(10 * GIB, 50_000_000, rcu=1000))
    assert (plan.total_segments, plan.workers, plan.read_limit_rcu) == (5, 5, 500.0)
    assert plan.est_read_units == 1_310_720.0  # 10 GiB / 4 KiB = 2,621,440 reads x 0.5 (eventually consistent)
    assert plan.read_bound_s == 2621.44  # 1,310,720 RCU / 500 RCU/s
    assert plan.cpu_bound_s == pytest.approx(2090.8123, abs=1e-4)  # 50 M items / 4,782.83 items/s / 5 workers
    assert plan.est_duration_s == 2621.44  # the read limit binds
    assert plan.est_cost_usd is None  # provisioned: billed as provisioned, not per read
    # 5 workers at the measured rate would read 1,310,720 / 2,090.8 s = 627 RCU/s > 500: 3 stay within it
    assert plan.workers_within_read_limit == 3
    assert (plan.billing_mode, plan.provisioned_rcu, plan.table) == ("PROVISIONED", 1000, "orders")


def test_aws_example_thirty_gib_is_fifteen_segments() -> None:
    """AWS: "for a 30 GB table, you could set TotalSegments to 15 (30 GB / 2 GB)"; workers stop at max_workers."""
    plan = plan_scan(described(30 * GIB, 1_000, rcu=40_000), max_workers=8)
    assert (plan.total_segments, plan.workers) == (15, 8)
    plan = plan_scan(described(30 * GIB + 1, 1_000, rcu=40_000), max_workers=32)
    assert (plan.total_segments, plan.workers) == (16, 16)  # a byte over: one more segment


def test_on_demand_has_no_read_limit_and_costs_read_request_units() -> None:
    desc = described(4 * GIB, 8_000_000, billing="PAY_PER_REQUEST")
    plan = plan_scan(desc)
    assert (plan.total_segments, plan.workers, plan.provisioned_rcu, plan.read_limit_rcu) == (2, 2, None, None)
    assert plan.read_bound_s is None
    assert plan.est_read_units == 524_288.0  # 4 GiB / 4 KiB x 0.5 read request unit
    assert plan.est_duration_s == plan.cpu_bound_s == pytest.approx(8_000_000 / MEASURED_ITEMS_PER_S / 2)
    assert plan.est_cost_usd is None  # no price given: no dollars
    assert any("On-demand" in n for n in plan.notes)
    priced = plan_scan(desc, price_per_million_reads=0.25)
    assert priced.est_cost_usd == 0.131072  # 524,288 / 1e6 x 0.25
    assert "$0.13 (524,288 RRU at $0.25 per million)" in render(priced)


def test_a_price_on_a_provisioned_table_gives_no_dollars() -> None:
    plan = plan_scan(described(GIB, 1_000, rcu=10), price_per_million_reads=0.25)
    assert plan.est_cost_usd is None
    assert any("billed for the capacity it provisions" in n for n in plan.notes)


def test_the_read_limit_never_exceeds_provisioned_capacity() -> None:
    assert plan_scan(described(GIB, 1_000, rcu=100), read_share=1.0).read_limit_rcu == 100.0
    assert plan_scan(described(GIB, 1_000, rcu=5), read_share=0.5).read_limit_rcu == 2.5
    for share in (0.0, -0.1, 1.01):
        with pytest.raises(ValueError, match="read_share"):
            plan_scan(described(GIB, 1_000, rcu=100), read_share=share)


def test_empty_table_is_one_segment_with_a_note() -> None:
    plan = plan_scan(described(0, 0, rcu=100))
    assert (plan.total_segments, plan.workers, plan.est_read_units, plan.est_duration_s) == (1, 1, 0.0, 0.0)
    assert any("empty" in n for n in plan.notes)


def test_each_segment_keeps_at_least_one_page_and_total_stays_within_dynamodbs_maximum() -> None:
    # 5 MiB in 100 KB segments would be 53 segments of less than a page: capped at the 5 pages
    plan = plan_scan(described(5 * PAGE_BYTES, 3_000, rcu=100), bytes_per_segment=100_000)
    assert (plan.total_segments, plan.pages) == (5, 5)
    assert any("capped at 5" in n for n in plan.notes)
    huge = plan_scan(described(2 * TOTAL_SEGMENTS_MAX * PAGE_BYTES, 10**9, rcu=100), bytes_per_segment=PAGE_BYTES)
    assert huge.total_segments == TOTAL_SEGMENTS_MAX == 1_000_000


def test_small_table_is_not_split_to_fill_the_workers() -> None:
    """1 GiB stays one segment with 8 workers free: a segment's fixed cost beats splitting 2 GiB further."""
    plan = plan_scan(described(GIB, 4_000_000, rcu=1000), max_workers=8)
    assert (plan.total_segments, plan.workers) == (1, 1)
    more = plan_scan(described(GIB, 4_000_000, rcu=1000), max_workers=8, bytes_per_segment=GIB // 4)
    assert (more.total_segments, more.workers) == (4, 4)


def test_missing_billing_mode_summary_means_provisioned() -> None:
    """AWS: "You may need to switch to on-demand mode at least once in order to return a BillingModeSummary"."""
    plan = plan_scan(described(GIB, 1_000, rcu=100, billing=None))
    assert (plan.billing_mode, plan.provisioned_rcu, plan.read_limit_rcu) == ("PROVISIONED", 100, 50.0)
    assert plan_scan(described(GIB, 1_000, rcu=100)["Table"]) == plan_scan(described(GIB, 1_000, rcu=100))


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        plan_scan(described(GIB, 1), max_workers=0)
    with pytest.raises(ValueError, match="bytes_per_segment"):
        plan_scan(described(GIB, 1), bytes_per_segment=0)
    with pytest.raises(ValueError, match="price"):
        plan_scan(described(GIB, 1), price_per_million_reads=-1)


def test_render_shows_inputs_recommendation_estimates_and_next_commands() -> None:
    text = render(plan_scan(described(10 * GIB, 50_000_000, rcu=1000)))
    lines = text.splitlines()
    for expected in (
        "  size           10.0 GiB (10,737,418,240 bytes)",
        "  items          50,000,000 (215 bytes each on average)",
        "  billing mode   PROVISIONED",
        "  read capacity  1,000 RCU provisioned",
        "  total          5 segments (one per 2.0 GiB; ~2,048 Scan pages of 1 MB per segment)",
        "  read limit     500 RCU/s (50% of 1,000 provisioned)",
        "  read units     1,310,720 RCU (0.5 per 4 KB: eventually consistent, as arm-etl scans)",
        "  read-bound     43 min 41 s (1,310,720 / 500 RCU/s)",
        "  cpu-bound      34 min 51 s (50,000,000 items / 4,783 items/s per worker / 5 workers)",
        "  duration       43 min 41 s (bound by read capacity)",
        "  arm-etl refresh --table orders --total 5",
        "  prefect deployment run 'full-refresh/full-refresh' -p table=orders -p total=5 -p max_concurrent_segments=3",
        "  deployment parameter total=5 on every deployment of this table:",
    ):
        assert expected in lines, expected
    assert any(line.startswith("  workers        5 (at most 8") for line in lines)
    assert text.endswith("\n")
    # one value column in every block
    columns = {m.start(1) for line in lines if (m := re.match(r"  [a-z -]+?  +(\S)", line)) and ":" not in line[:16]}
    assert columns == {17}


# --- against moto's DescribeTable ------------------------------------------------------------------------------


@pytest.fixture()
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """In-process moto; yields a factory of fresh tables. Started without a reset and stopped keeping data, so
    the session's moto server (same process, same backends) keeps what other tests stored; the tables made
    here are deleted again."""
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    mock = mock_aws()
    mock.start(reset=False)
    client = boto3.client("dynamodb", region_name=REGION)
    made: list[str] = []

    def make(billing: str, rcu: int = 0, items: int = 0) -> str:
        name = f"plan-{next(_names)}-{billing.lower()}"
        extra: dict[str, Any] = {"BillingMode": billing}
        if billing == "PROVISIONED":
            extra["ProvisionedThroughput"] = {"ReadCapacityUnits": rcu, "WriteCapacityUnits": rcu}
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            **extra,
        )
        made.append(name)
        for i in range(items):
            client.put_item(TableName=name, Item={"pk": {"S": f"ITEM#{i}"}, "payload": {"S": "x" * 100}})
        return name

    try:
        yield make
    finally:
        for name in made:
            client.delete_table(TableName=name)
        mock.stop(remove_data=False)


def test_moto_provisioned_table(aws: Callable[..., str]) -> None:
    name = aws("PROVISIONED", rcu=100, items=3)
    desc = describe_table(boto3.client("dynamodb", region_name=REGION), name)
    # moto computes ItemCount live but always reports TableSizeBytes 0 (AWS: both lag by up to ~6 hours)
    assert (desc["TableName"], desc["ItemCount"], desc["TableSizeBytes"]) == (name, 3, 0)
    plan = plan_scan(desc)
    assert isinstance(plan, ScanPlan)
    assert (plan.billing_mode, plan.provisioned_rcu, plan.read_limit_rcu) == ("PROVISIONED", 100, 50.0)
    assert (plan.item_count, plan.total_segments, plan.workers, plan.est_read_units) == (3, 1, 1, 0.0)
    assert plan.cpu_bound_s == pytest.approx(3 / MEASURED_ITEMS_PER_S)
    assert any("updated about every six hours" in n for n in plan.notes)  # 0 bytes but 3 items


def test_moto_on_demand_table(aws: Callable[..., str]) -> None:
    name = aws("PAY_PER_REQUEST", items=2)
    plan = plan_scan(describe_table(boto3.client("dynamodb", region_name=REGION), name))
    assert (plan.billing_mode, plan.provisioned_rcu, plan.read_limit_rcu, plan.read_bound_s) == (
        "PAY_PER_REQUEST",
        None,
        None,
        None,
    )
    assert (plan.item_count, plan.total_segments) == (2, 1)


def test_missing_table_names_table_endpoint_and_region(aws: Callable[..., str]) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    with pytest.raises(ExtractError) as err:
        describe_table(client, "no-such-table")
    message = str(err.value)
    assert "'no-such-table' not found" in message
    assert client.meta.endpoint_url in message and f"region {REGION}" in message
    assert not err.value.transient


def test_cli_plan_prints_the_recommendation(aws: Callable[..., str], capsys: pytest.CaptureFixture[str]) -> None:
    name = aws("PROVISIONED", rcu=100, items=5)
    assert main(["plan", "--table", name, "--read-share", "0.25"]) == 0
    out = capsys.readouterr().out
    assert f"arm-etl plan for DynamoDB table {name!r}" in out
    assert re.search(r"^  total +1 segment \(one per 2\.0 GiB", out, re.M)
    assert re.search(r"^  read limit +25 RCU/s \(25% of 100 provisioned\)$", out, re.M)
    assert re.search(r"^  items +5 \(no average\)$", out, re.M)
    assert f"\n  arm-etl refresh --table {name} --total 1\n" in out


def test_cli_plan_missing_table_exits_2(aws: Callable[..., str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--table", "no-such-table"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "arm-etl: error: DynamoDB table 'no-such-table' not found at " in captured.err
    assert f"(region {REGION})" in captured.err


def test_cli_plan_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--read-share", "0"], ["--read-share", "1.5"], ["--max-workers", "0"], ["--gib-per-segment", "0"]):
        with pytest.raises(SystemExit) as exit_:
            main(["plan", "--table", "t", *bad])
        assert exit_.value.code == 2
        assert f"arm-etl plan: error: argument {bad[0]}: must" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plan", "--table", "t", "--read-share", "half"])
    assert "argument --read-share: not a number: 'half'" in capsys.readouterr().err


def test_cli_plan_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    plan = sub.choices["plan"]
    assert plan.description and "DescribeTable" in plan.description
    undocumented = [a.option_strings for a in plan._actions if not a.help]
    assert undocumented == []
    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    out = capsys.readouterr().out
    for option in ("--table", "--max-workers", "--read-share", "--gib-per-segment", "--price-per-million-reads"):
        assert option in out
