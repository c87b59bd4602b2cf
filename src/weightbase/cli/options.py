"""Options and arguments that several commands take, declared once with their help text.

A command names its parameter and its default; the flag and the help come from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "DescriptionOption",
    "JsonOption",
    "ModelNameArgument",
    "NameFilterOption",
    "OutArgument",
    "ReasonOption",
    "StoreOption",
    "VersionOption",
    "VersionRefArgument",
    "VersionTagsOption",
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="WEIGHTBASE_STORE_URL",
        help="Store location: a folder or s3://bucket/prefix (default: $WEIGHTBASE_HOME/store).",
        show_default=False,
    ),
]

ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why; kept in the model's history.")
]

# -- new versions (models push, datasets add) --------------------------------------------------

VersionOption = Annotated[
    str | None,
    typer.Option("--version", help="Exact semantic version, such as 1.0.0 (default: bump)."),
]
DescriptionOption = Annotated[
    str | None, typer.Option("--description", help="What this version is.")
]
VersionTagsOption = Annotated[
    list[str] | None, typer.Option("--tag", help="Tag the version (repeatable).")
]

# -- naming what a command acts on -------------------------------------------------------------

ModelNameArgument = Annotated[str, typer.Argument(help="Model name.")]
VersionRefArgument = Annotated[str, typer.Argument(help="NAME@REF of the version.")]
NameFilterOption = Annotated[
    str | None, typer.Option("--name", help="Only names containing this text.")
]
OutArgument = Annotated[Path, typer.Argument(help="Where to write: a file or a folder.")]
