"""Exit codes scripts can rely on: one table from weightbase's errors to a process status.

The app's groups catch a ``WeightbaseError``, print it as one ``error:`` line on stderr and
exit with its code, in a real process and under Typer's test runner alike.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, NoReturn

import typer
from rich.markup import escape
from typer.core import TyperGroup

from weightbase.cli._common import err_console
from weightbase.errors import (
    Conflict,
    IntegrityError,
    NotFound,
    PermissionDenied,
    ValidationError,
    WeightbaseError,
)

__all__ = ["ExitCode", "ExitCodeGroup", "exit_code_for", "exit_with"]


class ExitCode(IntEnum):
    """How a ``weightbase`` command ended."""

    OK = 0
    FAILED = 1  # the operation failed: a storage error, a missing extra, fsck found problems
    USAGE = 2  # bad flags (Click's own), or input refused before anything was done
    NOT_FOUND = 3
    CONFLICT = 4
    INTEGRITY = 5  # stored bytes do not match their digest
    PERMISSION_DENIED = 6


_BY_ERROR: dict[type[WeightbaseError], ExitCode] = {
    ValidationError: ExitCode.USAGE,
    NotFound: ExitCode.NOT_FOUND,
    Conflict: ExitCode.CONFLICT,
    IntegrityError: ExitCode.INTEGRITY,
    PermissionDenied: ExitCode.PERMISSION_DENIED,
}


def exit_code_for(error: WeightbaseError) -> ExitCode:
    """The code of the most specific class of ``error`` in the table; ``FAILED`` otherwise."""
    for cls in type(error).__mro__:
        code = _BY_ERROR.get(cls)
        if code is not None:
            return code
    return ExitCode.FAILED


def exit_with(error: WeightbaseError) -> NoReturn:
    """Print ``error`` as one ``error:`` line on stderr and exit with its code."""
    # escaped: names in messages may look like markup ("[/x]" would raise);
    # soft-wrapped: one line even where stderr is no terminal 80 columns wide
    message = f"[bold red]error:[/] {escape(str(error))}"
    err_console.print(message, highlight=False, soft_wrap=True)
    raise typer.Exit(int(exit_code_for(error)))


class ExitCodeGroup(TyperGroup):
    """A command group whose commands' ``WeightbaseError`` ends the process by the table."""

    # ctx: Typer's own click Context, which it does not export under a public name
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except WeightbaseError as error:
            exit_with(error)
