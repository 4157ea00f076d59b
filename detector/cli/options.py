"""Options and helpers every command shares (``--db``, ``--signatures``, loading the engine).

A module of its own so ``cli`` and the ``cli_*`` modules it registers can all import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from detector.errors import DetectorError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DB = "detector.db"


class LockedExit(click.ClickException):
    """Another run holds the database's lock: exit 75 (EX_TEMPFAIL) with the holder named."""

    exit_code = 75


def db_option(help: str, default: str = DEFAULT_DB, dest: str = "db") -> Callable[[F], F]:
    """``--db PATH``: the SQLite database a command reads or writes."""
    return click.option("--db", dest, default=default, show_default=True, type=click.Path(dir_okay=False),
                        help=help)


def signatures_option(func: F) -> F:
    """``--signatures DIR`` (repeatable; later directories override earlier ones by name)."""
    return click.option(
        "--signatures",
        "signature_dirs",
        multiple=True,
        type=click.Path(exists=True, file_okay=False),
        help="Signature directory (repeatable; later ones override earlier ones by name). "
        "Default: the bundled library.",
    )(func)


def load_engine(signature_dirs: Iterable[str], accelerate: bool = True) -> Any:
    """Load (and so validate) the engine, turning library errors into click errors."""
    from detector.engine.match import Engine

    try:
        return Engine.from_directories(list(signature_dirs) or None, accelerate=accelerate)
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def reported() -> Iterator[None]:
    """Turn the library's errors into click errors: the message, exit 1 (75 when locked out)."""
    from detector.store.lock import LockedError

    try:
        yield
    except LockedError as exc:
        raise LockedExit(str(exc)) from None
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None
