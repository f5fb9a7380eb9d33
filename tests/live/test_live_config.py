"""The live suite's own logic, in the normal suite (no cluster needed): configuration from the environment,
the one skip line, the names a run creates (and the only ones it drops), and how values read back from
Redshift are turned into the oracle's Python forms."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tests.live import config
from tests.live.compare import coerce, select_sql
from tests.live.config import LiveConfigError, RunNames, parse, skip_reason

ROOT = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/arm-etl-copy"
URL = "redshift+psycopg2://etl:s3cr%40t@example.abc123.us-east-1.redshift.amazonaws.com:5439/dev"
FULL = {config.URL_VAR: URL, config.ROLE_VAR: ROLE, config.BUCKET_VAR: "my-scratch-bucket"}
LIVE_VARS = (config.URL_VAR, config.BLOCK_VAR, config.ROLE_VAR, config.BUCKET_VAR)


def test_skip_line_names_what_to_set() -> None:
    assert skip_reason({}, loaded_early=True) == (
        "live Redshift suite: set ARM_ETL_TEST_REDSHIFT_URL (or ARM_ETL_TEST_REDSHIFT_BLOCK), "
        "ARM_ETL_TEST_IAM_ROLE and ARM_ETL_TEST_BUCKET"
    )
    assert skip_reason({config.URL_VAR: "  "}, loaded_early=True) == config.SKIP_REASON  # blank is unset
    partial = skip_reason({config.BLOCK_VAR: "prod-redshift", config.ROLE_VAR: ROLE}, loaded_early=True)
    assert partial == f"{config.SKIP_REASON} (missing: ARM_ETL_TEST_BUCKET)"


def test_skip_line_when_the_credentials_snapshot_came_too_late() -> None:
    """Set but run without the early plugin (e.g. by ``make test``): skip, naming ``make test-redshift``."""
    reason = skip_reason(FULL, loaded_early=False)
    assert reason is not None and "make test-redshift" in reason and "-p tests.live.aws_env" in reason
    assert skip_reason(FULL, loaded_early=True) is None


def test_parse_url_and_block() -> None:
    c = parse(FULL)
    assert (c.url, c.block, c.iam_role, c.bucket, c.dialect, c.keep) == (
        URL,
        None,
        ROLE,
        "my-scratch-bucket",
        "redshift",
        False,
    )
    assert "s3cr" not in repr(c) and "s3cr" not in c.source and "etl:***@" in c.source
    b = parse({config.BLOCK_VAR: "prod-redshift", config.ROLE_VAR: ROLE, config.BUCKET_VAR: "s3://b-1/"})
    assert (b.block, b.url, b.bucket, b.dialect, b.source) == (
        "prod-redshift",
        None,
        "b-1",
        None,
        "block 'prod-redshift'",
    )
    assert parse({**FULL, config.KEEP_VAR: "1"}).keep is True
    rehearsal = parse({**FULL, config.URL_VAR: "postgresql://u@localhost:5432/db"})
    assert rehearsal.dialect == "postgresql"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({config.BLOCK_VAR: "prod-redshift"}, "not both"),
        ({config.URL_VAR: "mysql://u:topsecret@h/db"}, "redshift+psycopg2://"),
        ({config.ROLE_VAR: "arm-etl-copy"}, "not an IAM role ARN"),
        ({config.ROLE_VAR: "arn:aws:iam::123:role/x"}, "not an IAM role ARN"),
        ({config.BUCKET_VAR: "s3://bucket/some/prefix/"}, "without a key prefix"),
        ({config.BUCKET_VAR: "Bad_Bucket"}, "not an S3 bucket name"),
        ({config.BUCKET_VAR: ""}, "missing: ARM_ETL_TEST_BUCKET"),
    ],
)
def test_parse_refuses_with_the_variable_named(change: dict[str, str], message: str) -> None:
    with pytest.raises(LiveConfigError, match=re.escape(message)) as err:
        parse({**FULL, **change})
    assert "topsecret" not in str(err.value)


def test_run_names_are_unique_valid_and_the_only_ones_dropped() -> None:
    from arm_etl.names import fold

    n = RunNames("0a1b2c3d")
    assert n.table == "arm-live-0a1b2c3d" and re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", n.table)
    assert n.target == "arm_live_0a1b2c3d" == fold(n.target)
    assert n.schemas(2) == [
        "arm_live_0a1b2c3d",
        "arm_live_0a1b2c3d_live",
        "arm_live_0a1b2c3d_loading",
        "arm_live_0a1b2c3d_backup",
        "arm_live_0a1b2c3d_part_0",
        "arm_live_0a1b2c3d_part_0__staging",
        "arm_live_0a1b2c3d_part_1",
        "arm_live_0a1b2c3d_part_1__staging",
    ]
    assert n.s3_prefixes() == ["arm-live-0a1b2c3d/", "dynamo-etl/arm-live-0a1b2c3d/"]


def test_select_converts_varbyte_and_super_on_redshift_only() -> None:
    cols = [("pk", "VARCHAR(16)"), ("blob", "VARBYTE(16)"), ("doc", "SUPER"), ('we"ird', "BIGINT")]
    assert select_sql("s", "t", cols, "redshift") == (
        'SELECT "pk", TO_HEX("blob") AS "blob", JSON_SERIALIZE("doc") AS "doc", "we""ird" FROM "s"."t"'
    )
    assert select_sql("s", "t", cols, "postgresql") == 'SELECT "pk", "blob", "doc", "we""ird" FROM "s"."t"'


def test_coerce_gives_the_oracle_forms() -> None:
    assert coerce("0001ff", "VARBYTE(16)") == b"\x00\x01\xff"
    assert coerce("", "VARBYTE(16)") == b""
    assert coerce("\\x00ff", "VARBYTE(4)") == b"\x00\xff"
    assert coerce(memoryview(b"\x01"), "VARBYTE(4)") == b"\x01"
    assert coerce('{"a": [1, "x", null]}', "SUPER") == {"a": [1, "x", None]}
    assert coerce("0a", "VARCHAR(4)") == "0a"
    assert coerce(None, "VARBYTE(4)") is None and coerce(None, "TIMESTAMPTZ") is None
    at = datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-12)))
    assert coerce(at, "TIMESTAMPTZ") is at
    assert coerce("2024-03-01 11:59:59.999999+00", "TIMESTAMPTZ") == at.astimezone(UTC)
    assert coerce("2024-02-29", "DATE") == date(2024, 2, 29)
    assert coerce("15.000000000000000000", "DECIMAL(38,18)") == Decimal(15)
    assert coerce("-9223372036854775808", "BIGINT") == -(2**63)
    assert coerce("t", "BOOLEAN") is True and coerce(False, "BOOLEAN") is False


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LIVE_VARS and not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_live_module_skips_with_one_line_when_unset() -> None:
    """What CI sees from ``make test-redshift``'s pytest call: one skip line naming the variables, exit 0."""
    pytest_args = ["-p", "tests.live.aws_env", "-p", "no:cacheprovider", "-q", "-rfEs", "tests/live"]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args, "-k", "not test_live_module_skips_with_one_line_when_unset"],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("SKIPPED")]
    assert lines == [f"SKIPPED [1] tests/live/test_redshift_live.py:{_skip_lineno()}: {config.SKIP_REASON}"], out.stdout


def _skip_lineno() -> int:
    text = (ROOT / "tests/live/test_redshift_live.py").read_text().splitlines()
    return next(n for n, line in enumerate(text, 1) if "pytest.skip(" in line)


def test_skipping_imports_nothing_heavy() -> None:
    """Collecting ``tests/live`` when it skips starts no server and imports no AWS, Prefect or driver code."""
    probe = (
        "import sys, tests.live.aws_env, tests.live.config, tests.live.compare, tests.live.conftest\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'prefect', 'psycopg2', "
        "'moto', 'sqlalchemy', 'arm_etl', 'flows', 'blocks'})\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=_clean_env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
