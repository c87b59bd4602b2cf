"""``weightbase users …`` and ``weightbase tokens …``: who may use a server, over ``wb.access``.

Users have a role (viewer, editor, approver, admin) and teams, and are disabled
rather than deleted; a model's owner and team are who may change it; tokens are
shown once, when created, and stored only as hashes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from weightbase.cli._common import console, emit_json, err_console, open_workspace
from weightbase.cli.options import JsonOption
from weightbase.cli.render import table
from weightbase.errors import ValidationError

if TYPE_CHECKING:
    from datetime import datetime

    from weightbase.governance.access import ApiToken, ModelOwnership, User

__all__ = ["tokens_app", "users_app"]

users_app = typer.Typer(
    help="Users of a weightbase server: add, list, role, teams, disable, enable; model owners.",
    no_args_is_help=True,
)
tokens_app = typer.Typer(
    help="API tokens: create one for a user (shown once), list them, revoke them.",
    no_args_is_help=True,
)

UserArgument = Annotated[str, typer.Argument(help="User name, such as ada or ada@example.org.")]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why; kept in the audit log.")]
RoleHelp = "viewer (read), editor (push, log, tag), approver (decide approvals) or admin."

_NOT_SHOWN_AGAIN = "Store this token now: it is not shown again, and cannot be recovered."


def _moment(value: datetime | None) -> str:
    return "" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M")


def _user_line(verb: str, user: User) -> None:
    state = " [dim](disabled)[/]" if user.disabled else ""
    console.print(f"[bold green]{verb}[/] {escape(user.name)}: {user.role}{state}")


# -- users ------------------------------------------------------------------------------------


@users_app.command("add")
def add_user(
    name: UserArgument,
    role: Annotated[str, typer.Option("--role", help=RoleHelp)] = "viewer",
    display_name: Annotated[
        str | None, typer.Option("--display-name", help="A readable name, such as Ada Lovelace.")
    ] = None,
    teams: Annotated[
        list[str] | None,
        typer.Option("--team", help="A team the user belongs to (repeatable)."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Add user NAME with a role (default viewer) and teams."""
    with open_workspace() as wb:
        user = wb.access.users.add(name, role=role, display_name=display_name, teams=teams or ())
    if json:
        emit_json(user.to_dict())
        return
    _user_line("added", user)


@users_app.command("list")
def list_users(
    enabled: Annotated[
        bool, typer.Option("--enabled", help="Only users who are not disabled.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Users by name, with their role, teams and whether they are disabled."""
    with open_workspace() as wb:
        users = wb.access.users.list(include_disabled=not enabled)
    if json:
        emit_json({"users": [user.to_dict() for user in users]})
        return
    if not users:
        console.print("no users")
        return
    listing = table(("name", "role", "teams", "display name", "disabled", "created"), plain=True)
    for user in users:
        listing.add_row(
            escape(user.name),
            user.role,
            escape(", ".join(user.teams)),
            escape(user.display_name or ""),
            _moment(user.disabled_at),
            _moment(user.created_at),
        )
    console.print(listing)


@users_app.command("role")
def set_role(
    name: UserArgument,
    role: Annotated[str, typer.Argument(help=RoleHelp)],
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Give user NAME the role ROLE; the last enabled admin keeps theirs."""
    with open_workspace() as wb:
        user = wb.access.users.set_role(name, role, reason=reason)
    if json:
        emit_json(user.to_dict())
        return
    _user_line("role of", user)


@users_app.command("teams")
def set_teams(
    name: UserArgument,
    teams: Annotated[
        list[str] | None, typer.Argument(help="Every team the user is to be in, such as nlp.")
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Take the user out of every team.")
    ] = False,
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Make user NAME a member of exactly the teams TEAM... (--clear: of none)."""
    if bool(teams) == clear:
        raise ValidationError("name the teams, or pass --clear for none (not both)")
    with open_workspace() as wb:
        user = wb.access.users.set_teams(name, teams or (), reason=reason)
    if json:
        emit_json(user.to_dict())
        return
    shown = ", ".join(user.teams) or "none"
    console.print(f"[bold green]teams of[/] {escape(user.name)}: {escape(shown)}")


@users_app.command("own")
def set_owner(
    model: Annotated[str, typer.Argument(help="The model, such as org/bert.")],
    owner: Annotated[
        str | None, typer.Option("--owner", help="The user who owns the model.")
    ] = None,
    team: Annotated[
        str | None, typer.Option("--team", help="The team whose members may change the model.")
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="No owner and no team: every editor may change it.")
    ] = False,
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Make --owner and --team the ones who may change MODEL; without either, show them.

    The owner and team are set together: one left out is cleared.
    """
    if clear and (owner is not None or team is not None):
        raise ValidationError("--clear takes no --owner or --team")
    with open_workspace() as wb:
        if clear or owner is not None or team is not None:
            owned = wb.access.set_owner(model, owner, team, reason=reason)
        else:
            owned = wb.access.ownership(model)
    if json:
        emit_json(owned.to_dict())
        return
    console.print(_ownership_line(owned))


def _ownership_line(owned: ModelOwnership) -> str:
    owner = escape(owned.owner) if owned.owner else "[dim]no owner[/]"
    team = f"team {escape(owned.team)}" if owned.team else "[dim]no team[/]"
    return f"[bold green]{escape(owned.model)}[/]: {owner}, {team}"


@users_app.command("disable")
def disable_user(name: UserArgument, reason: ReasonOption = None, json: JsonOption = False) -> None:
    """Disable user NAME: their tokens stop working on their next use."""
    with open_workspace() as wb:
        user = wb.access.users.disable(name, reason=reason)
    if json:
        emit_json(user.to_dict())
        return
    _user_line("disabled", user)


@users_app.command("enable")
def enable_user(name: UserArgument, reason: ReasonOption = None, json: JsonOption = False) -> None:
    """Enable user NAME again: tokens not revoked or expired work again."""
    with open_workspace() as wb:
        user = wb.access.users.enable(name, reason=reason)
    if json:
        emit_json(user.to_dict())
        return
    _user_line("enabled", user)


# -- tokens -----------------------------------------------------------------------------------


@tokens_app.command("create")
def create_token(
    user: UserArgument,
    name: Annotated[str, typer.Option("--name", help="What the token is for, such as laptop.")],
    description: Annotated[
        str | None, typer.Option("--description", help="A longer note on the token.")
    ] = None,
    expires_in_days: Annotated[
        float | None,
        typer.Option("--expires-in-days", help="Expire after this many days (default: never)."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Create an API token for USER and print its secret, this once only."""
    expires_in = None if expires_in_days is None else timedelta(days=expires_in_days)
    with open_workspace() as wb:
        new = wb.access.tokens.create(
            user, name=name, description=description, expires_in=expires_in
        )
    if json:
        emit_json({"secret": new.secret, "warning": _NOT_SHOWN_AGAIN, **new.token.to_dict()})
        return
    token = new.token
    expiry = f", expires {_moment(token.expires_at)}" if token.expires_at else ""
    console.print(
        f"[bold green]created[/] token {token.token_id} for {escape(token.user)} "
        f"({escape(token.name)}{expiry})"
    )
    typer.echo(new.secret)
    err_console.print(f"[bold yellow]warning:[/] {_NOT_SHOWN_AGAIN}", highlight=False)


@tokens_app.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked tokens.")] = False,
    json: JsonOption = False,
) -> None:
    """API tokens by id, user and name, with when they were last used (never their secrets)."""
    with open_workspace() as wb:
        tokens = wb.access.tokens.list(user, include_revoked=revoked)
    if json:
        emit_json({"tokens": [token.to_dict() for token in tokens]})
        return
    if not tokens:
        console.print("no tokens")
        return
    listing = table(
        ("token id", "user", "name", "created", "last used", "expires", "state"), plain=True
    )
    for token in tokens:
        listing.add_row(
            token.token_id,
            escape(token.user),
            escape(token.name),
            _moment(token.created_at),
            _moment(token.last_used_at),
            _moment(token.expires_at),
            _state(token),
        )
    console.print(listing)


def _state(token: ApiToken) -> str:
    if token.revoked:
        return "revoked"
    return "expired" if token.expired() else "active"


@tokens_app.command("revoke")
def revoke_token(
    token_id: Annotated[str, typer.Argument(help="The token's id, as `tokens list` shows it.")],
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Revoke the token TOKEN_ID: its next use fails."""
    with open_workspace() as wb:
        token = wb.access.tokens.revoke(token_id, reason=reason)
    if json:
        emit_json(token.to_dict())
        return
    console.print(f"[bold green]revoked[/] token {token.token_id} of {escape(token.user)}")
