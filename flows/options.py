"""CLI options generated from a flow's signature and its docstring's ``Args:``, one option per parameter.

Why: the flow is the single source of an option's name, type, default, required-ness and help, so the CLI
cannot drift from it (an option without help, a parameter with no option, an option accepted and ignored).
A parameter whose flag is historical (``--yes``) or whose type argparse cannot read (lists, dicts) gets an
explicit :class:`Adapter`; a parameter that is no option at all is listed, with its reason, in ``excluded``.
Prefect is imported only when a parser is built, so ``arm-etl`` can set Prefect's environment first.
"""

from __future__ import annotations

import argparse
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

WHERE = ("aws_credentials_block", "redshift_block", "data_bucket", "cache_bucket")
WHERE_TITLE = "where (defaults: environment, see README)"
SCALARS: tuple[type, ...] = (str, int, float)

Container = argparse._ActionsContainer  # a parser or one of its argument groups


def flag(name: str) -> str:
    """The option spelling of a parameter: ``page_limit`` → ``--page-limit``."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Adapter:
    """The options of one parameter that is not spelled ``flag(name)`` with a scalar type.

    ``add`` adds them (given the parameter's docstring text), ``value`` reads the parameter's value back
    from the parsed options (the signature's default when none is given), ``dests`` names the Namespace
    attributes the options set, so a test can check that every option belongs to a parameter.
    """

    add: Callable[[Container, str], object]
    value: Callable[[argparse.Namespace], Any]
    dests: tuple[str, ...]


@dataclass(frozen=True)
class FlowCommand:
    """A subcommand that runs ``flow`` with exactly the keyword arguments its parsed options give."""

    name: str
    flow: Any  # a prefect Flow: .fn is the decorated function, .name the flow's name
    help: str
    show: Callable[[dict[str, Any]], None]  # prints the flow's result, as the command's output
    adapters: Mapping[str, Adapter] = field(default_factory=dict)
    excluded: Mapping[str, str] = field(default_factory=dict)  # parameter → why it is no option
    choices: Mapping[str, Sequence[str]] = field(default_factory=dict)  # for str parameters not typed Literal

    def parameters(self) -> list[inspect.Parameter]:
        """The flow's parameters that are options (all but ``excluded``), in signature order."""
        params = inspect.signature(self.flow.fn).parameters.values()
        return [p for p in params if p.name not in self.excluded]

    def add_parser(self, sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
        """Add this subcommand's parser; raises if a parameter has no docstring entry or an unreadable type."""
        from prefect.utilities.callables import parameter_docstrings

        fn = self.flow.fn
        docs = parameter_docstrings(inspect.getdoc(fn))
        hints = typing.get_type_hints(fn)
        parser = sub.add_parser(self.name, help=self.help, description=summary(fn))
        where = parser.add_argument_group(WHERE_TITLE)
        for param in self.parameters():
            doc = " ".join(docs.get(param.name, "").split()).replace("%", "%%")  # argparse %-formats help
            if not doc:
                raise ValueError(f"flow {self.flow.name!r}: parameter {param.name!r} is not documented under Args:")
            container = where if param.name in WHERE else parser
            if param.name in self.adapters:
                self.adapters[param.name].add(container, doc)
            else:
                spec = argument(param, hints[param.name], doc, self.choices.get(param.name))
                container.add_argument(flag(param.name), dest=param.name, **spec)
        parser.set_defaults(flow_command=self)
        return parser

    def kwargs(self, ns: argparse.Namespace) -> dict[str, Any]:
        """The flow's keyword arguments from parsed options: one per parameter that is an option."""
        return {
            p.name: self.adapters[p.name].value(ns) if p.name in self.adapters else getattr(ns, p.name)
            for p in self.parameters()
        }


def argument(param: inspect.Parameter, hint: Any, doc: str, choices: Sequence[str] | None) -> dict[str, Any]:
    """``add_argument`` keywords for a parameter of type str, int, float, bool or Literal, each maybe ``| None``."""
    required = param.default is inspect.Parameter.empty
    default = None if required else param.default
    base = optional_of(hint)
    if base is bool:
        if required:
            raise TypeError(f"parameter {param.name!r}: a bool without a default needs an Adapter")
        if default:  # on unless --no-x
            return {"action": argparse.BooleanOptionalAction, "default": True, "help": f"{doc} (default: on)"}
        return {"action": "store_true", "help": doc}
    spec: dict[str, Any] = {"required": required, "default": default}
    spec["help"] = doc if default is None else f"{doc} (default: {default})"
    if typing.get_origin(base) is Literal:
        values = typing.get_args(base)
        spec |= {"type": type(values[0]), "choices": list(values)}
    elif base in SCALARS:
        spec["type"] = base
    else:
        raise TypeError(f"parameter {param.name!r}: {hint!r} is no CLI type; give it an Adapter or exclude it")
    if choices is not None:
        spec["choices"] = list(choices)
    return spec


def optional_of(hint: Any) -> Any:
    """``X`` of ``X | None`` (or ``Optional[X]``); any other hint as it is."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def summary(fn: Callable[..., Any]) -> str:
    """The docstring before ``Args:``, as the subcommand's description (``--help`` rewraps it)."""
    doc = inspect.getdoc(fn) or ""
    return doc.split("\nArgs:", 1)[0].strip().replace("%", "%%").replace("``", "")


# The adapters of arm-etl's flows: list and dict parameters, and flags older than the parameter's name.


def routing_options() -> Adapter:
    """routing, a list: ``--route RULE`` repeated, or ``--no-routing`` for the empty list (clears the rules)."""

    def add(c: Container, doc: str) -> None:
        g = c.add_mutually_exclusive_group()
        rule = f"one routing rule, repeatable. {doc}"
        g.add_argument("--route", action="append", default=[], metavar="RULE", help=rule)
        g.add_argument(
            "--no-routing", action="store_true", help="clear the routing rules (every item to one data-schema)"
        )

    def value(a: argparse.Namespace) -> list[str | dict[str, Any]] | None:
        return [] if a.no_routing else list(a.route) or None

    return Adapter(add, value, ("route", "no_routing"))


def grant_options() -> Adapter:
    """grants, a dict: ``--grant-select GRANTEE`` repeated gives ``{"select": [...]}``."""

    def add(c: Container, doc: str) -> None:
        c.add_argument(
            "--grant-select",
            action="append",
            default=[],
            metavar="GRANTEE",
            help="a reader of production (user, role:NAME, group:NAME or PUBLIC): USAGE on it and SELECT on its "
            "views; repeatable. Privileges readers already hold are kept without it",
        )

    def value(a: argparse.Namespace) -> dict[str, list[str]] | None:
        return {"select": list(a.grant_select)} if a.grant_select else None

    return Adapter(add, value, ("grant_select",))


def yes_option() -> Adapter:
    """approve (default false) as ``--yes``, the flag operators know."""

    def add(c: Container, doc: str) -> None:
        c.add_argument("--yes", action="store_true", help=doc)

    return Adapter(add, lambda a: bool(a.yes), ("yes",))
