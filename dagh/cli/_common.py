"""What every dagh command shares: error handling and option parsing helpers."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from dagh.errors import DaghError

EXIT_USER_ERROR = 2


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a DaghError into 'error: ...' on stderr and exit code 2, no traceback."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DaghError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
    return wrapper


def parse_int_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    """'1,10,100' -> (1, 10, 100)."""
    if value is None:
        return None
    try:
        items = tuple(int(float(v)) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not items:
        raise click.BadParameter("expected at least one value")
    return items


def echo_err(message: str) -> None:
    click.echo(message, err=True)
