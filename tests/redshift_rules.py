"""Amazon Redshift's documented rules, as checks over SQL text (AWS *Amazon Redshift Database Developer Guide*).

The PostgreSQL stand-in accepts things Redshift rejects (NOW() in an INSERT, DECIMAL(19,0) holding
2^63, scale 38, ALTER TABLE APPEND between tables whose AUTO attributes drifted), so each rule is
checked on the statements themselves. ``violations(sql)`` returns one line per broken rule; every
rule names its page. Statements are parsed with sqlglot's Redshift dialect.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlglot
from sqlglot import exp

DG = "https://docs.aws.amazon.com/redshift/latest/dg/"
Rule = Callable[[str, exp.Expression], list[str]]

# Parsed as a generic Command by sqlglot (no grammar for them); checked by text only.
COMMAND_PREFIXES = ("ALTER TABLE", "ALTER SCHEMA")
_DECIMAL = re.compile(r"\bDECIMAL\((\d+),(\d+)\)", re.IGNORECASE)
_VARCHAR = re.compile(r"\bVARCHAR\((\d+)\)", re.IGNORECASE)
_VARBYTE = re.compile(r"\bVARBYTE\((\d+)\)", re.IGNORECASE)
_QUOTED = re.compile(r'"((?:[^"]|"")*)"')


def parse(sql: str) -> exp.Expression:
    """One statement in Redshift's grammar (placeholders ``:name`` allowed); raises on a syntax error."""
    parsed = sqlglot.parse(sql.rstrip().rstrip(";"), read="redshift", error_level=sqlglot.ErrorLevel.RAISE)
    if len(parsed) != 1 or parsed[0] is None:
        raise ValueError(f"not exactly one statement: {sql!r}")
    tree: exp.Expression = parsed[0]  # type: ignore[assignment]
    if isinstance(tree, exp.Command) and not sql.upper().startswith(COMMAND_PREFIXES):
        raise ValueError(f"sqlglot could not parse it as Redshift SQL: {sql!r}")
    return tree


def leader_node_functions(sql: str, tree: exp.Expression) -> list[str]:
    """*Leader node–only functions* (c_SQL_functions_leader_node_only.html): "A query that uses a
    leader-node function must run exclusively on the leader node … or it will return an error" — NOW()
    in an INSERT into a user table fails ("Specified types or functions … not supported on Redshift tables")."""
    if not isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Copy)):
        return []
    bad: list[exp.Expression] = list(tree.find_all(exp.CurrentTimestamp))
    bad += [f for f in tree.find_all(exp.Anonymous) if str(f.name).upper() in {"NOW", "CURRENT_SCHEMA", "VERSION"}]
    return [f"leader-node-only function {b.sql('redshift')} in a statement on a user table" for b in bad]


def decimal_bounds(sql: str, tree: exp.Expression) -> list[str]:
    """*Numeric types* (r_Numeric_types201.html): "The maximum precision is 38", "The maximum scale is
    37", and "The maximum positive value that you can insert into a DECIMAL(19,0) column is
    9223372036854775807": a DECIMAL(19,s) cannot hold every 19-digit value, so none is ever declared."""
    out = []
    for p, s in _DECIMAL.findall(sql):
        precision, scale = int(p), int(s)
        if not (1 <= precision <= 38 and scale <= min(precision, 37)):
            out.append(f"DECIMAL({precision},{scale}) outside precision 1..38, scale 0..min(p,37)")
        if precision == 19:
            out.append(f"DECIMAL(19,{scale}) cannot hold every 19-digit value (2^63 and above)")
    return out


def type_lengths(sql: str, tree: exp.Expression) -> list[str]:
    """*Character types* (r_Character_types.html): VARCHAR "up to 65535 bytes"; *VARBYTE type*
    (r_VARBYTE_type.html): "The maximum number of bytes (n) can range from 1 – 16,777,216"."""
    out = [f"VARCHAR({n}) over 65535 bytes" for n in _VARCHAR.findall(sql) if not 1 <= int(n) <= 65535]
    return out + [f"VARBYTE({n}) over 16,777,216 bytes" for n in _VARBYTE.findall(sql) if not 1 <= int(n) <= 16_777_216]


def append_attributes_pinned(sql: str, tree: exp.Expression) -> list[str]:
    """*ALTER TABLE APPEND* (r_ALTER_TABLE_APPEND.html): "If a column with the same name but different
    attributes exists in both tables, the command fails. Like-named columns must have … Compression
    encoding … Sort key columns …", and both tables the same distribution style; *CREATE TABLE*
    (r_CREATE_TABLE_NEW.html): without ENCODE or SORTKEY the defaults are AUTO and "Amazon Redshift can
    change" them. So every CREATE TABLE pins an ENCODE on every column, a SORTKEY and DISTSTYLE EVEN."""
    if not (isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "TABLE"):
        return []
    out = []
    schema = tree.this
    for col in schema.expressions if isinstance(schema, exp.Schema) else []:
        if isinstance(col, exp.ColumnDef) and not any(
            isinstance(c.kind, exp.EncodeColumnConstraint) for c in col.constraints
        ):
            out.append(f"column {col.name!r} has no explicit ENCODE (ENCODE AUTO may change it)")
    text = sql.upper()
    if "SORTKEY" not in text or "SORTKEY AUTO" in text:
        out.append("no explicit SORTKEY (SORTKEY AUTO may change it)")
    if "DISTSTYLE EVEN" not in text:
        out.append("no DISTSTYLE EVEN (AUTO may change the distribution style)")
    return out


def sort_key_types(sql: str, tree: exp.Expression) -> list[str]:
    """*VARBYTE type* (r_VARBYTE_type.html): "You can't use a VARBYTE column as a sort key" (nor a SUPER
    one): a table whose first column is a binary DynamoDB key must sort by another column."""
    if not (isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "TABLE"):
        return []
    schema = tree.this
    types = {
        col.name: col.args["kind"].sql("redshift").upper()
        for col in (schema.expressions if isinstance(schema, exp.Schema) else [])
        if isinstance(col, exp.ColumnDef) and col.args.get("kind") is not None
    }
    keys = re.findall(r"SORTKEY\s*\(([^)]*)\)", sql, re.IGNORECASE)
    names = [n.strip().strip('"') for k in keys for n in k.split(",")]
    return [f"sort key {n!r} is {types[n]}" for n in names if types.get(n, "").startswith(("VARBYTE", "SUPER"))]


def identifiers(sql: str, tree: exp.Expression) -> list[str]:
    """*Names and identifiers* (r_names.html): delimited identifiers are at most 127 bytes of UTF-8."""
    return [
        f"identifier {name!r} over 127 bytes"
        for name in (m.replace('""', '"') for m in _QUOTED.findall(sql))
        if len(name.encode("utf-8")) > 127
    ]


def postgres_only(sql: str, tree: exp.Expression) -> list[str]:
    """*Unsupported PostgreSQL features* / *data types* (c_unsupported-postgresql-features.html,
    c_unsupported-postgresql-datatypes.html): no JSONB, BYTEA, SERIAL, ON CONFLICT, SET STORAGE,
    ``::regclass``, and no COPY FROM STDIN (Redshift loads from S3)."""
    text = sql.upper()
    words = ("JSONB", "BYTEA", "SERIAL", "ON CONFLICT", "SET STORAGE", "::REGCLASS", "FROM STDIN")
    return [f"PostgreSQL-only {w}" for w in words if w in text]


def sys_view_query_id(sql: str, tree: exp.Expression) -> list[str]:
    """*SYS_QUERY_HISTORY* (SYS_QUERY_HISTORY.html): "The query_id column in the SYS monitoring views
    and the query column in STL_QUERY are not the same identifier" — pg_last_copy_id() (an STL query id)
    never filters a SYS view."""
    text = sql.lower()
    if re.search(r"\bsys_\w+", text) and re.search(r"query_id\s*=\s*pg_last_copy_id\(\)", text):
        return ["a SYS view filtered by pg_last_copy_id() (an STL query id)"]
    return []


def no_cascade(sql: str, tree: exp.Expression) -> list[str]:
    """*DROP SCHEMA* / *DROP TABLE* / *DROP VIEW*: "CASCADE: Clause that indicates to automatically drop
    objects that depend on the table, such as views" — a reader's view, which arm-etl does not own. RESTRICT
    ("not to drop the table if any objects depend on it. This action is the default") is the only form used."""
    if isinstance(tree, exp.Drop) and "CASCADE" in sql.upper().split():
        return [f"DROP … CASCADE can drop objects arm-etl does not own: {sql[:80]}"]
    return []


_IDENT = r'"(?:[^"]|"")+"'
_GRANT = re.compile(
    rf"GRANT (?P<privs>[A-Z]+(?:, [A-Z]+)*) "
    rf"ON (?:SCHEMA (?P<schema>{_IDENT})|(?:TABLE )?(?P<table>{_IDENT}\.{_IDENT})) "
    rf"TO (?P<grantee>PUBLIC|ROLE {_IDENT}|GROUP {_IDENT}|{_IDENT})(?P<option> WITH GRANT OPTION)?;?"
)
_SCHEMA_PRIVILEGES = {"CREATE", "USAGE", "ALTER"}
_TABLE_PRIVILEGES = {"SELECT", "INSERT", "UPDATE", "DELETE", "DROP", "REFERENCES", "ALTER", "TRUNCATE"}


def grant_form(sql: str, tree: exp.Expression) -> list[str]:
    """*GRANT* (r_GRANT.html): on a schema "{ CREATE | USAGE | ALTER }", on tables and views "{ SELECT |
    INSERT | UPDATE | DELETE | DROP | REFERENCES | ALTER | TRUNCATE }", "TO { username [ WITH GRANT OPTION ]
    | ROLE role_name | GROUP group_name | PUBLIC }": a grant option only for a user, never a group or PUBLIC."""
    if not sql.upper().startswith("GRANT"):
        return []
    m = _GRANT.fullmatch(sql.strip())
    if m is None:
        return [f"GRANT not in a documented form: {sql[:120]}"]
    allowed = _SCHEMA_PRIVILEGES if m["schema"] else _TABLE_PRIVILEGES
    out = [f"privilege {p} cannot be granted on this object" for p in m["privs"].split(", ") if p not in allowed]
    if m["option"] and not m["grantee"].startswith('"'):
        out.append(f"WITH GRANT OPTION for {m['grantee']} (only a user can hold it)")
    return out


def view_form(sql: str, tree: exp.Expression) -> list[str]:
    """*CREATE VIEW* (r_CREATE_VIEW.html): "CREATE [ OR REPLACE ] VIEW name … AS query"; "The maximum number
    of columns you can define in a single view is 1,600"; a replacement must produce "the identical set of
    columns", so production's views name their columns (never ``*``) in the order they were created."""
    if not (isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "VIEW"):
        return []
    query = tree.expression
    if not isinstance(query, exp.Select):
        return ["a view's query is not a SELECT"]
    out = []
    if any(isinstance(e, exp.Star) for e in query.expressions):
        out.append("a view selects * (its columns would follow the table's, not the view's contract)")
    if len(query.expressions) > 1600:
        out.append(f"a view of {len(query.expressions)} columns (at most 1,600)")
    return out


RULES: tuple[Rule, ...] = (
    grant_form,
    view_form,
    no_cascade,
    leader_node_functions,
    decimal_bounds,
    type_lengths,
    append_attributes_pinned,
    sort_key_types,
    identifiers,
    postgres_only,
    sys_view_query_id,
)


def violations(sql: str) -> list[str]:
    """Every documented rule ``sql`` breaks (empty: none); a statement Redshift cannot parse is one."""
    try:
        tree = parse(sql)
    except (ValueError, sqlglot.errors.ParseError) as exc:
        return [f"does not parse as Redshift SQL: {exc}"]
    return [f"{rule.__name__}: {v}" for rule in RULES for v in rule(sql, tree)]


def statements(script: str) -> list[str]:
    """The statements of an ``arm-etl sql`` script: comment lines dropped, each ends with ``;`` at a line end."""
    out: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        if not current and (line.startswith("--") or not line.strip()):
            continue
        current.append(line)
        if line.endswith(";"):
            out.append("\n".join(current))
            current = []
    if current:
        raise ValueError(f"unterminated statement: {current!r}")
    return out
