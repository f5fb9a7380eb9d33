"""Security: credentials never leak, identifiers never become SQL, COPY only ever uses the IAM role.

A whole job (determination, two segments, centralization, two failing runs, every ``--help``) runs with
real-looking secrets configured every supported way: AWS keys and a session token in the environment,
a password in ``ARM_ETL_WAREHOUSE_URL``, a ``RedshiftCredentials`` block with a password and a
prefect-aws ``AwsCredentials`` block with a secret key. Then everything the job left behind is searched
for any of them: log records (arm_etl, flows and prefect loggers at DEBUG, everything else at INFO),
CLI output, exception texts and tracebacks, Prefect artifacts, flow and task run parameters and state
messages, every S3 object it wrote (manifests, parts, cached data-schemas), and Prefect's local result
storage. (The embedded PostgreSQL trusts its socket, so the passwords are accepted and ignored; moto
accepts any AWS key. Both are checked to be really in use.)
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import secrets
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from arm_etl.cache import SchemaCache
from arm_etl.config import target_schema
from arm_etl.seed import create_table, seed_table
from arm_etl.upload import PartStore
from arm_etl.warehouse import TableCopy, Warehouse, WarehouseError, warehouse_for
from tests.exactness import check_segment, ensure_buckets, raw_segment, schema_exists

TABLE = "sec-src"
TOTAL = 2


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.records.append(f"{record.name}: {text}")


@dataclass
class Corpus:
    """Everything the job produced, by where it came from."""

    secrets: dict[str, str]
    texts: dict[str, list[str]] = field(default_factory=dict)

    def add(self, where: str, text: Any) -> None:
        self.texts.setdefault(where, []).append(text if isinstance(text, str) else repr(text))

    def leaks(self, where: str | None = None) -> list[str]:
        found = []
        for w, texts in self.texts.items():
            if where is not None and w != where:
                continue
            for t in texts:
                for name, value in self.secrets.items():
                    if value in t:
                        i = t.index(value)
                        found.append(f"{name} in {w}: …{t[max(0, i - 120) : i + 40]!r}…")
        return found


def traced(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


@contextlib.contextmanager
def captured(corpus: Corpus, where: str) -> Iterator[None]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        corpus.add(where, out.getvalue())
        corpus.add(where, err.getvalue())


@pytest.fixture(scope="module")
def job(stack: Any, prefect_api: str) -> Iterator[Corpus]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH
    from prefect_aws import AwsClientParameters, AwsCredentials

    from blocks import RedshiftCredentials
    from flows.cli import main
    from flows.segment import segment_etl

    ensure_buckets(stack)
    tag = secrets.token_hex(6)
    sec = {
        "aws_key_id": f"AKIASEC{tag.upper()}",
        "aws_secret": f"awsSecret{tag}/xY+z",
        "aws_token": f"awsToken{tag}Zz",
        "url_password": f"urlPw{tag}",
        "block_password": f"blockPw{tag}",
        "block_aws_secret": f"blockAwsSecret{tag}",
    }
    corpus = Corpus(sec)
    url = make_url(stack.warehouse_url).set(password=sec["url_password"]).render_as_string(hide_password=False)
    collect = Collect()
    loggers = [logging.getLogger(n) for n in ("", "prefect", "arm_etl", "flows")]
    saved = [(lg, lg.level) for lg in loggers[1:]]
    for lg in loggers:
        lg.addHandler(collect)
    for lg in loggers[1:]:
        lg.setLevel(logging.DEBUG)
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("AWS_ACCESS_KEY_ID", sec["aws_key_id"])
        mp.setenv("AWS_SECRET_ACCESS_KEY", sec["aws_secret"])
        mp.setenv("AWS_SESSION_TOKEN", sec["aws_token"])
        mp.setenv("ARM_ETL_WAREHOUSE_URL", url)
        with psycopg2.connect(url) as conn, conn.cursor() as cur:  # the password is accepted (and ignored)
            cur.execute("SELECT 1")
        pg_block = f"sec-pg-{tag}"
        bad_block = f"sec-bad-{tag}"
        aws_block = f"sec-aws-{tag}"
        good = RedshiftCredentials.from_url(stack.warehouse_url)
        good.password = SecretStr(sec["block_password"])
        good.save(pg_block, overwrite=True)
        bad = good.model_copy(update={"database": "no_such_database"})
        bad.save(bad_block, overwrite=True)
        AwsCredentials(
            aws_access_key_id="testing",
            aws_secret_access_key=SecretStr(sec["block_aws_secret"]),
            region_name="us-east-1",
            aws_client_parameters=AwsClientParameters(endpoint_url=stack.endpoint),
        ).save(aws_block, overwrite=True)
        from flows.resources import Resources

        via_blocks = Resources(aws_block, pg_block)  # the blocks really carry the secrets the runs use
        assert via_blocks._aws[0].get_credentials().secret_key == sec["block_aws_secret"]
        block_url, env_url = via_blocks.require_warehouse().url, Resources().require_warehouse().url
        assert block_url is not None and block_url.password == sec["block_password"]
        assert env_url is not None and env_url.password == sec["url_password"]
        corpus.add("repr", repr(via_blocks.require_warehouse()))
        corpus.add("repr", repr(RedshiftCredentials.load(pg_block)))
        corpus.add("repr", repr(warehouse_for(url)))
        corpus.add("repr", repr(warehouse_for(good.url())))

        seed_table(boto3.client("dynamodb", endpoint_url=stack.endpoint), TABLE, 40, seed=23)
        blocks = ["--aws-credentials-block", aws_block, "--redshift-block", pg_block]
        with captured(corpus, "cli"):
            assert main(["schema", "--table", TABLE, "--total", "2", "--route", "sk:#", *blocks]) == 0
            assert (
                main(["segment", "--table", TABLE, "--segment", "0", "--total", "2", "--page-limit", "10", *blocks])
                == 0
            )
        with captured(corpus, "flow"):
            out = segment_etl(TABLE, 1, TOTAL, page_limit=10)  # environment: keys, token, URL password
            corpus.add("flow", out)
        with captured(corpus, "cli"):
            assert main(["centralize", "--table", TABLE, "--total", "2", "--yes", *blocks]) == 0
            # a failing run: the block's database does not exist
            args = ["segment", "--table", TABLE, "--segment", "0", "--total", "2", "--phases", "load"]
            assert main([*args, "--redshift-block", bad_block]) == 2
        with captured(corpus, "exception"), pytest.raises(WarehouseError) as err:
            segment_etl(TABLE, 0, TOTAL, phases="load", redshift_block=bad_block)
        corpus.add("exception", traced(err.value))
        assert "no_such_database" in str(err.value)  # the error is the connection's, and names what is wrong
        with pytest.raises(WarehouseError) as err2:
            warehouse_for(f"postgresql://etl:{sec['url_password']}@127.0.0.1:1/db").connect()
        corpus.add("exception", traced(err2.value))
        commands = ["local", "seed", "schema", "segment", "centralize", "refresh", "demo", "serve"]
        for argv in [["--help"], ["local", "up", "--help"], *([c, "--help"] for c in commands)]:
            with captured(corpus, "help"), contextlib.suppress(SystemExit):
                main(argv)

        with get_client(sync_client=True) as client:
            for where, read in (
                ("artifacts", client.read_artifacts),
                ("flow runs", client.read_flow_runs),
                ("task runs", client.read_task_runs),
            ):
                offset = 0
                while page := read(limit=200, offset=offset):
                    for obj in page:
                        corpus.add(where, obj.model_dump_json())
                    offset += len(page)
        s3 = boto3.client("s3", endpoint_url=stack.endpoint)
        env = stack.env()
        for bucket, prefix in ((env["ARM_ETL_DATA_BUCKET"], f"{TABLE}/"), (env["ARM_ETL_CACHE_BUCKET"], "dynamo-etl/")):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                    if obj["Key"].endswith(".gz"):
                        body = gzip.decompress(body)
                    corpus.add("s3", body.decode("utf-8", "replace"))
        storage = Path(str(PREFECT_LOCAL_STORAGE_PATH.value()))
        if storage.is_dir():
            for f in storage.rglob("*"):
                if f.is_file():
                    corpus.add("prefect storage", f.read_bytes().decode("utf-8", "replace"))
        corpus.add("logs", "\n".join(collect.records))
        yield corpus
    finally:
        mp.undo()
        for lg in loggers:
            lg.removeHandler(collect)
        for lg, level in saved:
            lg.setLevel(level)


def test_the_job_really_ran_with_the_secrets(job: Corpus, stack: Any) -> None:
    """Guards the search: the job did its work, left material to search, and the search finds a planted secret."""
    assert any("now holds" in t for t in job.texts["cli"])  # centralization swapped
    assert job.texts["s3"] and len("".join(job.texts["logs"])) > 10_000
    assert sum(len(t) for t in job.texts["help"]) > 2_000
    planted = Corpus(job.secrets, {"x": [f"connected with {job.secrets['block_password']}"]})
    assert planted.leaks() and not Corpus(job.secrets, {"x": ["nothing"]}).leaks()


@pytest.mark.parametrize(
    "where",
    [
        "logs",
        "cli",
        "flow",
        "exception",
        "help",
        "artifacts",
        "flow runs",
        "task runs",
        "s3",
        "repr",
        "prefect storage",
    ],
)
def test_no_secret_appears(job: Corpus, where: str) -> None:
    leaks = job.leaks(where)
    assert not leaks, "\n".join(leaks)


def test_reprs_hide_the_password() -> None:
    wh = warehouse_for(
        "redshift+psycopg2://etl:s3cr3t-pw@cluster.example:5439/dev", iam_role="arn:aws:iam::123456789012:role/c"
    )
    assert "s3cr3t-pw" not in repr(wh) and "***" in repr(wh)
    assert "s3cr3t-pw" not in str(wh)


# ---------------------------------------------------------------------------------------------- COPY


class FakeRedshift:
    """A psycopg2-like connection that records statements instead of running them."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def cursor(self) -> Any:
        conn = self

        class Cur:
            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def execute(self, sql: str, params: Any = None) -> None:
                conn.sql.append(sql)

        return Cur()

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


def test_copy_uses_the_iam_role_and_never_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID1234")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FQoGZXIvYXdzEXAMPLETOKEN")
    role = "arn:aws:iam::123456789012:role/etl-copy"
    wh = warehouse_for("redshift+psycopg2://etl:pw-in-url@cluster.example:5439/dev", iam_role=role, region="us-east-1")
    fake = FakeRedshift()
    monkeypatch.setattr(Warehouse, "connect", lambda self: fake)
    wh.load_tables(
        "dynamodb_t_part_0__staging",
        [TableCopy("fin", ["pk", "sk", "x"], "s3://observes.etl-data/t/part_0/fin/copy.manifest")],
    )
    (copy,) = [s for s in fake.sql if s.startswith("COPY")]
    assert f"IAM_ROLE '{role}'" in copy
    for forbidden in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN", "CREDENTIALS", "aws_access_key", "token"):
        assert forbidden.lower() not in copy.lower(), forbidden
    for value in ("AKIAEXAMPLEKEYID1234", "wJalrXUtnFEMI", "FQoGZXIvYXdzEXAMPLETOKEN", "pw-in-url"):
        assert value not in copy

    no_role = warehouse_for("redshift+psycopg2://etl:pw@cluster.example:5439/dev")
    with pytest.raises(WarehouseError, match="needs an IAM role"):
        no_role.load_tables("s", [TableCopy("t", ["a"], "s3://observes.etl-data/t/part_0/t/copy.manifest")])


# ---------------------------------------------------------------------------------------------- injection

INJECT_TABLE = "sec-inject"
INJECT_TARGET = 'inj"; DROP TABLE public.arm_canary; --'
INJECT_FOLDED = "inj___drop_table_public_arm_canary____"  # a target given by the user is folded like every name
HOSTILE_NAMES = [
    'x"; DROP TABLE public.arm_canary; --',
    "'); DROP TABLE public.arm_canary; --",
    '"',
    '""',
    "a;b",
    "$$; DROP TABLE public.arm_canary; $$",
    "\\",
    "/* c */",
    "x' OR '1'='1",
]


def test_hostile_names_are_quoted_and_harmless(stack: Any, prefect_api: str, pg: Any) -> None:
    from flows.centralize import centralize
    from flows.schema import determine_schema
    from flows.segment import segment_etl

    ensure_buckets(stack)
    with pg.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS public.arm_canary (v text)")
        cur.execute("DELETE FROM public.arm_canary")
        cur.execute("INSERT INTO public.arm_canary VALUES ('alive')")
    ddb = boto3.client("dynamodb", endpoint_url=stack.endpoint)
    create_table(ddb, INJECT_TABLE)
    routes = ["ev'il\"; DROP TABLE public.arm_canary; --", "ok"]
    for i in range(12):
        item: dict[str, Any] = {
            "pk": {"S": f"P'{i}\"; DROP TABLE public.arm_canary; --"},
            "sk": {"S": f"{routes[i % 2]}#{i}"},
        }
        for k, name in enumerate(HOSTILE_NAMES):
            item[name] = {"S": f"'; DROP TABLE public.arm_canary; -- {k}"}
        item["nested"] = {"M": {'m"; DROP SCHEMA public CASCADE; --': {"L": [{"N": str(i)}]}}}
        ddb.put_item(TableName=INJECT_TABLE, Item=item)
    determine_schema(INJECT_TABLE, total=1, routing=["sk:#"])
    out = segment_etl(INJECT_TABLE, 0, 1, target_schema=INJECT_TARGET, snapshot="inject")
    assert out["mode"] == "fresh"

    s3 = boto3.client("s3", endpoint_url=stack.endpoint)
    env = stack.env()
    schema = SchemaCache(s3, env["ARM_ETL_CACHE_BUCKET"], INJECT_TABLE).require()
    store = PartStore(s3, env["ARM_ETL_DATA_BUCKET"], INJECT_TABLE, 0)
    items = raw_segment(stack.endpoint, INJECT_TABLE, 0, 1)
    assert target_schema(INJECT_TABLE, INJECT_TARGET) == INJECT_FOLDED
    problems = check_segment(pg, schema, store, INJECT_FOLDED, 0, items, "inject")
    assert not problems, "\n".join(problems)
    assert {t.name for t in schema.tables if t.parent is None} == {"ev_il___drop_table_public_arm_canary____", "ok"}

    centralized = centralize(INJECT_TABLE, 1, target_schema=INJECT_TARGET, approve=True)
    assert centralized["changed"] is True
    assert schema_exists(pg, INJECT_FOLDED) and not schema_exists(pg, INJECT_TARGET)
    with pg.cursor() as cur:
        cur.execute("SELECT v FROM public.arm_canary")
        assert cur.fetchall() == [("alive",)]
        cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'")
        assert cur.fetchone() == (1,)
        cur.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s AND column_name LIKE %s",
            (INJECT_FOLDED, "%drop_table_public_arm_canary%"),
        )
        assert cur.fetchone()[0] >= 2
