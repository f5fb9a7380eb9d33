"""``arm-etl``: the command line over the flows (same as ``python -m flows``).

The flow-backed subcommands (schema, segment, centralize, refresh) are generated from the flows' signatures
and docstrings (:mod:`flows.options`); the tables below hold only what differs from a parameter's own flag.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from flows.options import WHERE_TITLE, FlowCommand, grant_options, routing_options, yes_option

WHERE_HELP = {
    "aws_credentials_block": "name of a prefect-aws AwsCredentials block (else boto3's environment)",
    "redshift_block": "name of a RedshiftCredentials block (else ARM_ETL_WAREHOUSE_URL)",
    "data_bucket": "S3 bucket for CSV parts (else ARM_ETL_DATA_BUCKET, default observes.etl-data)",
    "cache_bucket": "S3 bucket for data-schemas (else ARM_ETL_CACHE_BUCKET, default observes.cache)",
}


def _expected_errors() -> tuple[type[BaseException], ...]:
    from arm_etl.errors import ArmEtlError

    return (ArmEtlError,)


def _where(p: argparse.ArgumentParser, *names: str) -> None:
    """The 'where' options of a hand-written subcommand: only those it passes on."""
    g = p.add_argument_group(WHERE_TITLE)
    for name in names:
        g.add_argument("--" + name.replace("_", "-"), help=WHERE_HELP[name])


def _show_schema(out: dict[str, Any]) -> None:
    print(out["summary"])
    print(f"cached at {out['url']}")


def _show_segment(out: dict[str, Any]) -> None:
    print(json.dumps({k: out[k] for k in ("schema", "mode", "snapshot", "totals", "rejects")}, indent=2))


def _show_message(out: dict[str, Any]) -> None:
    print(out["message"])


def flow_commands() -> dict[str, FlowCommand]:
    """The flow-backed subcommands. Imports the flows (and Prefect): call after :func:`_quiet_defaults`."""
    from arm_etl.inference import NESTED_MODES
    from flows.centralize import centralize
    from flows.refresh import full_refresh
    from flows.schema import determine_schema
    from flows.segment import segment_etl

    return {
        "schema": FlowCommand(
            "schema",
            determine_schema,
            "data-schema determination: scan, infer, cache versioned JSON in S3",
            _show_schema,
            adapters={"routing": routing_options()},
            choices={"nested": NESTED_MODES},  # annotated str, not Literal: choices fail at argparse, not post-scan
        ),
        "segment": FlowCommand(
            "segment",
            segment_etl,
            "segment ETL: extract → transform → S3 → COPY into <target>_part_<i>",
            _show_segment,
        ),
        "centralize": FlowCommand(
            "centralize",
            centralize,
            "merge every segment schema into <target>, verified, swapped atomically",
            _show_message,
            adapters={"approve": yes_option(), "grants": grant_options()},
        ),
        "refresh": FlowCommand(
            "refresh",
            full_refresh,
            "full refresh: determination if stale → every segment → centralization",
            _show_message,
            adapters={"routing": routing_options(), "approve": yes_option(), "grants": grant_options()},
        ),
    }


def build_parser() -> argparse.ArgumentParser:
    _quiet_defaults()  # the flow-backed subcommands import Prefect
    generated = flow_commands()
    parser = argparse.ArgumentParser(
        prog="arm-etl",
        description="Copy a DynamoDB table into Amazon Redshift (or PostgreSQL locally), exactly and resumably.",
        epilog="Every subcommand runs a Prefect flow; without PREFECT_API_URL, Prefect starts a temporary local API.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="see arm-etl COMMAND --help for its options"
    )

    local = sub.add_parser(
        "local", help="the embedded local stack (moto server, embedded PostgreSQL, a Prefect server)"
    )
    lsub = local.add_subparsers(dest="local_command", required=True, metavar="ACTION", help="what to do with the stack")
    up = lsub.add_parser(
        "up",
        help="start the stack in the foreground and print the env a shell needs (PREFECT_API_URL included) "
        "and the Prefect UI's address; Ctrl-C stops it",
    )
    up.add_argument("--dir", default=".arm-etl", help="state folder (default .arm-etl)")
    up.add_argument("--port", type=int, default=4566, help="moto server port on 127.0.0.1 (default 4566; 0 = any)")
    up.add_argument(
        "--prefect-port",
        type=int,
        default=4200,
        help="Prefect server (API and UI) port on 127.0.0.1 (default 4200); its runs are kept in the state folder",
    )
    up.add_argument(
        "--no-prefect",
        action="store_true",
        help="no Prefect server: each command then starts a temporary one (slower, its runs are not kept)",
    )

    seed = sub.add_parser("seed", help="write a synthetic single-table design with every awkward value class")
    seed.add_argument("--table", required=True, help="DynamoDB table to write to (created if missing)")
    seed.add_argument("--items", type=int, required=True, help="number of items to write")
    seed.add_argument("--seed", type=int, default=0, help="random seed (same seed, same items)")

    generated["schema"].add_parser(sub)
    generated["segment"].add_parser(sub)
    generated["centralize"].add_parser(sub)

    st = sub.add_parser(
        "status",
        help="read-only: would centralization proceed? one row per segment, with what to run (exit 0 yes, 1 no)",
        description="Read every segment's manifest in S3 and redshift-schema, as centralization would, and print "
        "one row per segment (manifest, snapshot, data-schema, upload complete, loaded, counts match), what to "
        "run for each segment not ready (the deployment run and the CLI command), and whether centralization "
        "would proceed. Changes nothing. Exit 0 when it would proceed (or has nothing to do), 1 when not.",
    )
    st.add_argument("--table", required=True, help="DynamoDB source table")
    st.add_argument("--total", type=int, required=True, help="number of segments the table was extracted in")
    st.add_argument("--target-schema", help="production redshift-schema (default dynamodb_<table>)")
    _where(st, *WHERE_HELP)

    generated["refresh"].add_parser(sub)

    sql = sub.add_parser(
        "sql",
        help="print every statement a segment run and a centralization run on the warehouse; nothing executed",
        description="Print, for the cached data-schema of TABLE, every statement a segment run and a centralization "
        "would run on the warehouse (DDL, COPY, APPEND, swap, bookkeeping), in order, run values as :placeholders. "
        "Nothing is executed and no warehouse connection is opened: what a DBA reviews before granting access.",
    )
    sql.add_argument("--table", required=True, help="DynamoDB source table (its cached data-schema is read from S3)")
    sql.add_argument("--target-schema", help="production redshift-schema (default dynamodb_<table>)")
    sql.add_argument(
        "--dialect",
        choices=["redshift", "postgresql"],
        help="warehouse dialect (default: the configured warehouse's, else redshift)",
    )
    sql.add_argument("--total", type=int, default=1, help="segments the centralization merges (default 1)")
    sql.add_argument("--segment", type=int, default=0, help="the segment whose run is shown (default 0)")
    sql.add_argument("--schema-version", help="a cached data-schema version (default latest)")
    _where(sql, *WHERE_HELP)

    plan = sub.add_parser(
        "plan",
        help="recommend total (segments), workers and a read limit from DescribeTable; read-only, no flow run",
        description="Read TABLE's DescribeTable (size, item count, billing mode, provisioned read capacity) and "
        "print the parallel-scan segment count (total), workers and read limit to use, with the estimated "
        "duration and read-capacity cost of one full scan and the commands to run next. Segments start at "
        "AWS's one per 2 GiB, each holding at least one 1 MB Scan page; the duration uses arm-etl's measured "
        "items/s per worker. One DescribeTable call: nothing is scanned, no Prefect flow runs.",
    )
    plan.add_argument("--table", required=True, help="DynamoDB table to plan for")
    plan.add_argument(
        "--max-workers",
        type=_plan_positive_int,
        default=8,
        metavar="N",
        help="segment runs you can run at once (workers; default 8): workers = min(total, N)",
    )
    plan.add_argument(
        "--read-share",
        type=_plan_share,
        default=0.5,
        metavar="F",
        help="share of a provisioned table's read capacity the scan may use, in (0, 1] (default 0.5); "
        "ignored on demand",
    )
    plan.add_argument(
        "--gib-per-segment",
        type=_plan_positive_float,
        default=2.0,
        metavar="G",
        help="data per segment in GiB (default 2, AWS's starting point); lower it for more, smaller segments",
    )
    plan.add_argument(
        "--price-per-million-reads",
        type=_plan_price,
        metavar="USD",
        help="your region's on-demand price per million read request units, to show the cost in dollars "
        "(default: in read units only; no price is built in)",
    )
    _where(plan, "aws_credentials_block")

    demo = sub.add_parser("demo", help="the whole job on the embedded stack, end to end, with a printed summary")
    demo.add_argument("--items", type=int, default=2000, help="items seeded into the demo table (default 2000)")
    demo.add_argument("--total", type=int, default=3, help="parallel-scan segments (default 3)")
    demo.add_argument("--table", default="arm-demo", help="DynamoDB table to seed and copy (default arm-demo)")
    demo.add_argument("--dir", default=".arm-etl", help="state folder of the embedded stack (default .arm-etl)")

    serve = sub.add_parser("serve", help="serve every deployment from this process (schedules paused unless asked)")
    serve.add_argument("--schedules", action="store_true", help="register the schedules active (default: paused)")

    alerts = sub.add_parser(
        "alerts",
        add_help=False,  # its own parser answers `arm-etl alerts --help`
        help="create or replace the alert automations (run failed, approval waiting, segment too long) on the "
        "Prefect API, notifying through a block you name: arm-etl alerts --notify-block TYPE/NAME",
    )
    alerts.add_argument("alerts_args", nargs=argparse.REMAINDER, help="see arm-etl alerts --help")
    return parser


def _plan_number(text: str, kind: type[int] | type[float]) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None


def _plan_positive_int(text: str) -> int:
    value = int(_plan_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _plan_positive_float(text: str) -> float:
    value = _plan_number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _plan_share(text: str) -> float:
    value = _plan_number(text, float)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], not {text}")
    return value


def _plan_price(text: str) -> float:
    value = _plan_number(text, float)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def _blocks(a: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(a, name) for name in WHERE_HELP}


def _status(a: argparse.Namespace) -> int:
    from arm_etl.centralize import Centralizer
    from arm_etl.config import target_schema
    from arm_etl.status import status
    from arm_etl.upload import PartStore
    from flows.resources import Resources

    res = Resources(**_blocks(a))
    stores = [PartStore(res.s3, res.data_bucket, a.table, i) for i in range(a.total)]
    target = target_schema(a.table, a.target_schema)
    c = Centralizer(a.table, a.total, target, res.require_warehouse(), stores, res.schema_cache(a.table))
    report = status(c)
    print(report.text(), end="")
    return 0 if report.would_proceed else 1


def _quiet_defaults() -> None:
    """Before Prefect is imported: no analytics, and room for a slow machine to start the local API."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")  # platformdirs, as root in CI


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_defaults()
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["alerts"]:  # its options are deployments.automations' own, help included
        from deployments import automations

        return automations.main(given[1:], prog="arm-etl alerts")
    args = build_parser().parse_args(given)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except _expected_errors() as exc:
        print(f"arm-etl: error: {exc}", file=sys.stderr)
        return 2


def _dispatch(a: argparse.Namespace) -> int:
    command = getattr(a, "flow_command", None)
    if isinstance(command, FlowCommand):  # every option it generated reaches the flow, nothing else does
        command.show(command.flow(**command.kwargs(a)))
        return 0
    if a.command == "local":
        from flows.local import local_up

        return local_up(a.dir, a.port, None if a.no_prefect else a.prefect_port)
    if a.command == "seed":
        import boto3

        from arm_etl.seed import seed_table

        n = seed_table(boto3.client("dynamodb"), a.table, a.items, a.seed)
        print(f"seeded {n} items into DynamoDB table {a.table!r}")
        return 0
    if a.command == "status":
        return _status(a)
    if a.command == "sql":
        return _print_sql(a)
    if a.command == "plan":
        from arm_etl.extract import describe_table
        from arm_etl.plan import plan_scan, render
        from flows.resources import Resources

        client = Resources(aws_credentials_block=a.aws_credentials_block).dynamodb
        plan = plan_scan(
            describe_table(client, a.table),
            max_workers=a.max_workers,
            read_share=a.read_share,
            bytes_per_segment=max(1, round(a.gib_per_segment * 1024**3)),
            price_per_million_reads=a.price_per_million_reads,
        )
        print(render(plan), end="")
        return 0
    if a.command == "demo":
        from flows.demo import run_demo

        return run_demo(a.table, a.items, a.total, a.dir)
    if a.command == "serve":
        from deployments.serve import serve_all

        serve_all(schedules_active=a.schedules)
        return 0
    raise AssertionError(a.command)


def _print_sql(a: argparse.Namespace) -> int:
    from arm_etl.config import target_schema
    from arm_etl.warehouse import DIALECTS, RedshiftWarehouse
    from arm_etl.warehouse.script import centralization_script, render, segment_script
    from flows.resources import Resources

    res = Resources(**_blocks(a))
    configured = res.warehouse
    wanted = DIALECTS[a.dialect] if a.dialect else type(configured) if configured is not None else RedshiftWarehouse
    wh = configured if isinstance(configured, wanted) else wanted(iam_role=res.settings.iam_role)
    if wh.needs_copy_manifests and wh.region is None:
        wh.region = res.data_bucket_region  # COPY's REGION, as a run would set it
    placeholder_role = wh.needs_copy_manifests and not wh.iam_role
    if placeholder_role:
        wh.iam_role = "arn:aws:iam::123456789012:role/set-ARM_ETL_IAM_ROLE"
    ds = res.schema_cache(a.table).require(a.schema_version)
    target = target_schema(a.table, a.target_schema)
    header = [
        f"-- arm-etl sql: {wh.dialect} statements for data-schema {ds.version} of {a.table!r} into {target}",
        "-- nothing was executed; run values are :placeholders; identifiers are always double-quoted",
    ]
    if placeholder_role:
        header.append("-- ARM_ETL_IAM_ROLE is not set: the COPY shows a placeholder role ARN")
    body = [
        *segment_script(wh, ds, target, a.segment, res.data_bucket),
        *centralization_script(wh, ds, target, a.total),
    ]
    print(render(iter([*header, *body])), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
