"""The CLI is generated from the flows: one option per parameter, each with help, none accepted and ignored.

Fast: parsers are built and read, and dispatch runs against a recording stand-in for the flow; nothing runs.
"""

from __future__ import annotations

import argparse
import inspect
import typing
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from flows import cli
from flows.options import WHERE, Adapter, FlowCommand, flag

FLOW_COMMANDS = ("schema", "segment", "centralize", "refresh")


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return cli.build_parser()


@pytest.fixture(scope="module")
def commands() -> dict[str, FlowCommand]:
    return cli.flow_commands()


def subparsers(p: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))


def options(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in p._actions if not isinstance(a, argparse._HelpAction)]


def adapter_dests(cmd: FlowCommand) -> dict[str, str]:
    """Namespace attribute → the parameter whose adapter sets it."""
    return {dest: name for name, ad in cmd.adapters.items() for dest in ad.dests}


def test_flow_commands_are_the_flow_backed_subcommands(commands: dict[str, FlowCommand]) -> None:
    assert tuple(commands) == FLOW_COMMANDS


@pytest.mark.parametrize("name", FLOW_COMMANDS)
def test_every_parameter_is_exactly_one_option_and_every_option_a_parameter(
    parser: argparse.ArgumentParser, commands: dict[str, FlowCommand], name: str
) -> None:
    cmd = commands[name]
    signature = inspect.signature(cmd.flow.fn).parameters
    assert set(cmd.excluded) <= set(signature), "an exclusion names no parameter"
    assert set(cmd.adapters) <= set(signature), "an adapter names no parameter"
    assert set(cmd.adapters).isdisjoint(cmd.excluded)
    params = {p.name for p in cmd.parameters()}
    assert params == set(signature) - set(cmd.excluded)

    acts = options(subparsers(parser).choices[name])
    owned = adapter_dests(cmd)
    assert sorted(set(owned.values())) == sorted(cmd.adapters)
    generated = [a for a in acts if a.dest not in owned]
    assert Counter(a.dest for a in acts).most_common(1)[0][1] == 1, "two options set one attribute"
    assert {a.dest for a in generated} | set(cmd.adapters) == params
    assert {a.dest for a in generated}.isdisjoint(cmd.adapters)
    assert set(owned) <= {a.dest for a in acts}, "an adapter's option is missing"
    for a in generated:
        assert a.option_strings[0] == flag(a.dest)  # --page-limit for page_limit


@pytest.mark.parametrize("name", FLOW_COMMANDS)
def test_required_options_and_defaults_are_the_signatures(
    parser: argparse.ArgumentParser, commands: dict[str, FlowCommand], name: str
) -> None:
    cmd = commands[name]
    params = cmd.parameters()
    required = [p for p in params if p.default is inspect.Parameter.empty]
    acts = options(subparsers(parser).choices[name])
    assert sorted(a.dest for a in acts if a.required) == sorted(p.name for p in required)
    hints = typing.get_type_hints(cmd.flow.fn)
    values = {p.name: 7 if hints[p.name] is int else "t" for p in required}
    argv = [name, *(x for p, v in values.items() for x in (flag(p), str(v)))]
    kwargs = cmd.kwargs(parser.parse_args(argv))
    assert kwargs == {p.name: values.get(p.name, p.default) for p in params}


@pytest.mark.parametrize("name", FLOW_COMMANDS)
def test_every_option_has_help_with_its_default(
    parser: argparse.ArgumentParser, commands: dict[str, FlowCommand], name: str
) -> None:
    sub = subparsers(parser).choices[name]
    assert sub.description, "the flow's docstring summary is the description"
    owned = adapter_dests(commands[name])
    for a in options(sub):
        assert a.help and a.help.strip(), a.option_strings
        if a.dest not in owned and a.default not in (None, False, True):
            assert f"(default: {a.default})" in a.help
    where = {g.title: g for g in sub._action_groups}[cli.WHERE_TITLE]
    assert {a.dest for a in where._group_actions} <= set(WHERE)


def test_schema_rejects_data_bucket(parser: argparse.ArgumentParser, capsys: pytest.CaptureFixture[str]) -> None:
    """determine_schema has no data_bucket: the option it would ignore is not accepted."""
    with pytest.raises(SystemExit) as done:
        parser.parse_args(["schema", "--table", "t", "--data-bucket", "b"])
    assert done.value.code == 2
    assert "unrecognized arguments: --data-bucket b" in capsys.readouterr().err


def test_route_and_no_routing_exclude_each_other(parser: argparse.ArgumentParser) -> None:
    with pytest.raises(SystemExit) as done:
        parser.parse_args(["schema", "--table", "t", "--route", "sk:#", "--no-routing"])
    assert done.value.code == 2


WHERE_ARGV = " --aws-credentials-block aws --redshift-block rs --cache-bucket cache"
WHERE_KW = {"aws_credentials_block": "aws", "redshift_block": "rs", "cache_bucket": "cache"}
NO_WHERE = {"aws_credentials_block": None, "redshift_block": None, "data_bucket": None, "cache_bucket": None}
SAMPLES: list[tuple[str, dict[str, Any]]] = [
    (
        "schema --table t --total 2 --route sk:# --route kind --nested super --page-limit 10 --name-limit 63"
        + WHERE_ARGV,
        {"table": "t", "total": 2, "routing": ["sk:#", "kind"], "nested": "super", "page_limit": 10}
        | {"name_limit": 63, **WHERE_KW},
    ),
    (
        "schema --table t --no-routing",
        {"table": "t", "total": 4, "routing": [], "nested": None, "page_limit": None, "name_limit": None}
        | {"aws_credentials_block": None, "redshift_block": None, "cache_bucket": None},
    ),
    (
        "segment --table t --segment 1 --total 3 --target-schema prod --schema-version v2 --snapshot 2026-01-02"
        " --fresh --phases load --page-limit 5 --pages-per-chunk 2 --part-size-mb 0.5 --max-in-flight 4"
        " --data-bucket data" + WHERE_ARGV,
        {"table": "t", "segment": 1, "total": 3, "target_schema": "prod", "schema_version": "v2"}
        | {"snapshot": "2026-01-02", "fresh": True, "phases": "load", "page_limit": 5, "pages_per_chunk": 2}
        | {"part_size_mb": 0.5, "max_in_flight": 4, "data_bucket": "data", **WHERE_KW},
    ),
    (
        "centralize --table t --total 3 --yes --grant-select analyst --grant-select role:bi --approval-timeout-s 60"
        + WHERE_ARGV,
        {"table": "t", "total": 3, "target_schema": None, "approve": True, "approval_timeout_s": 60}
        | {"data_bucket": None, **WHERE_KW, "grants": {"select": ["analyst", "role:bi"]}},
    ),
    (
        "centralize --table t --total 1",
        {"table": "t", "total": 1, "target_schema": None, "approve": False, "approval_timeout_s": 86400}
        | {**NO_WHERE, "grants": None},
    ),
    (
        "refresh --table t --total 5 --target-schema prod --max-schema-age-hours 1.5 --route sk:# --page-limit 9"
        " --max-concurrent-segments 2 --yes --segment-deployment segment-etl/segment-etl"
        " --centralization-deployment centralization/centralization --grant-select PUBLIC" + WHERE_ARGV,
        {"table": "t", "total": 5, "target_schema": "prod", "max_schema_age_hours": 1.5, "routing": ["sk:#"]}
        | {"page_limit": 9, "max_concurrent_segments": 2, "segment_deployment": "segment-etl/segment-etl"}
        | {"centralization_deployment": "centralization/centralization", "approve": True}
        | {"data_bucket": None, **WHERE_KW, "grants": {"select": ["PUBLIC"]}},
    ),
    (
        "refresh --table t --total 2",
        {"table": "t", "total": 2, "target_schema": None, "max_schema_age_hours": 168.0, "routing": None}
        | {"page_limit": None, "max_concurrent_segments": 4, "segment_deployment": None}
        | {"centralization_deployment": None, "approve": False}
        | {**NO_WHERE, "grants": None},
    ),
]
IDS = [" ".join(argv.split()[:4]) for argv, _ in SAMPLES]


@pytest.mark.parametrize(("argv", "expected"), SAMPLES, ids=IDS)
def test_command_line_to_flow_keywords(parser: argparse.ArgumentParser, argv: str, expected: dict[str, Any]) -> None:
    a = parser.parse_args(argv.split())
    assert a.flow_command.name == argv.split()[0]
    assert a.flow_command.kwargs(a) == expected


class Recording:
    """Stands in for a flow: records its call, returns a canned result."""

    def __init__(self, real: Any, result: dict[str, Any]) -> None:
        self.fn, self.name, self.result = real.fn, real.name, result
        self.calls: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        assert args == ()
        self.calls.append(kwargs)
        return self.result


OUT = {"summary": "S", "url": "s3://c/k", "message": "M", "schema": "p", "mode": "fresh", "snapshot": "d"}
PRINTED = {
    "schema": "S\ncached at s3://c/k\n",
    "segment": '{\n  "schema": "p",\n  "mode": "fresh",\n  "snapshot": "d",\n  "totals": {},\n  "rejects": 0\n}\n',
    "centralize": "M\n",
    "refresh": "M\n",
}


@pytest.mark.parametrize(("argv", "expected"), SAMPLES, ids=IDS)
def test_dispatch_calls_the_flow_with_exactly_those_keywords(
    parser: argparse.ArgumentParser, capsys: pytest.CaptureFixture[str], argv: str, expected: dict[str, Any]
) -> None:
    a = parser.parse_args(argv.split())
    flow = Recording(a.flow_command.flow, {**OUT, "totals": {}, "rejects": 0})
    a.flow_command = replace(a.flow_command, flow=flow)
    assert cli._dispatch(a) == 0
    assert flow.calls == [expected]
    assert capsys.readouterr().out == PRINTED[a.command]


def walk(p: argparse.ArgumentParser, path: str = "arm-etl") -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, p)]
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += walk(child, f"{path} {name}")
    return found


def test_every_subcommand_and_option_has_help(
    parser: argparse.ArgumentParser, capsys: pytest.CaptureFixture[str]
) -> None:
    undocumented = []
    for path, p in walk(parser):
        for action in p._actions:
            if not (action.help and action.help.strip()):
                undocumented.append((path, action.option_strings or action.dest))
            if isinstance(action, argparse._SubParsersAction):
                helped = {c.dest for c in action._choices_actions if c.help}
                undocumented += [(path, name) for name in action.choices if name not in helped]
        text = p.format_help()  # every help string formats (a stray % would raise here)
        for action in p._actions:
            for opt in action.option_strings:
                assert opt in text, (path, opt)
    assert undocumented == []
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in subparsers(parser).choices)


def test_plan_takes_only_the_where_option_it_uses(parser: argparse.ArgumentParser) -> None:
    plan = subparsers(parser).choices["plan"]
    where = {g.title: g for g in plan._action_groups}[cli.WHERE_TITLE]
    assert [a.dest for a in where._group_actions] == ["aws_credentials_block"]


def _toy(table: str, tags: list[str] | None = None) -> None:
    """A flow with a list parameter and no adapter for it.

    Args:
        table: A table.
        tags: Tags.
    """


def _undocumented(table: str, limit: int = 1) -> None:
    """A flow whose docstring forgets a parameter.

    Args:
        table: A table.
    """


class _Flow:
    def __init__(self, fn: Any) -> None:
        self.fn, self.name = fn, fn.__name__


def test_a_parameter_the_generator_cannot_spell_fails_loudly() -> None:
    def build(cmd: FlowCommand) -> None:
        cmd.add_parser(argparse.ArgumentParser().add_subparsers())

    with pytest.raises(TypeError, match="tags"):
        build(FlowCommand("toy", _Flow(_toy), "toy", print))
    with pytest.raises(ValueError, match="limit"):
        build(FlowCommand("toy", _Flow(_undocumented), "toy", print))
    tags = Adapter(lambda c, doc: c.add_argument("--tag", action="append", help=doc), lambda a: a.tag, ("tag",))
    build(FlowCommand("toy", _Flow(_toy), "toy", print, adapters={"tags": tags}))
    build(FlowCommand("toy", _Flow(_toy), "toy", print, excluded={"tags": "not for the CLI"}))


def test_alerts_is_the_automations_command(capsys: pytest.CaptureFixture[str]) -> None:
    """``arm-etl alerts`` hands its arguments to ``deployments.automations`` (its own --help, its own errors)."""
    from flows.cli import main

    with pytest.raises(SystemExit) as done:
        main(["alerts", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: arm-etl alerts [-h] --notify-block TYPE/NAME")
    with pytest.raises(SystemExit) as done:
        main(["alerts"])  # --notify-block is required: argparse's usage error, exit 2
    assert done.value.code == 2 and "--notify-block" in capsys.readouterr().err
