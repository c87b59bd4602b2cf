"""API tokens: long random secrets, shown once, stored only as their SHA-256.

A token reads ``wb_<token id>_<secret>``. The token id (12 hex digits) is
public: it names the token in listings, the audit log and revocations. The
whole token's SHA-256 is what the catalog keeps; ``authenticate`` looks the row
up by its id and compares digests in constant time. Nothing is cached, so a
revocation, an expiry or a disabled user takes effect on the next call.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from weightbase.catalog.schema import ApiTokenRow, UserRow, utcnow
from weightbase.errors import AuthenticationError, Conflict, NotFound, ValidationError
from weightbase.governance.roles import Principal, check_role
from weightbase.governance.users import user_row

if TYPE_CHECKING:
    from weightbase.catalog import Catalog
    from weightbase.changes import ChangeRecorder

__all__ = ["ApiToken", "NewToken", "Tokens", "hash_secret"]

_PREFIX = "wb_"
_TOKEN = re.compile(r"^wb_([0-9a-f]{12})_([A-Za-z0-9_-]{43})\Z")
# last_used_at is written at most this often per token, so reads stay reads.
_LAST_USED_RESOLUTION = timedelta(minutes=1)
# Compared against when no token has the id given, so that miss costs what a hit does.
_NO_TOKEN_HASH = "0" * 64


def hash_secret(secret: str) -> str:
    """The hex SHA-256 of a whole token: what the catalog stores in its place."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token as listed: its public id, owner and dates, never its secret."""

    token_id: str
    user: str
    name: str
    description: str | None
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the token's expiry has passed (at ``now``, default the present)."""
        return self.expires_at is not None and self.expires_at <= (now or utcnow())

    def to_dict(self) -> dict[str, Any]:
        """The token as plain JSON-ready data (no secret: the record has none)."""

        def moment(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "token_id": self.token_id,
            "user": self.user,
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "last_used_at": moment(self.last_used_at),
            "expires_at": moment(self.expires_at),
            "revoked_at": moment(self.revoked_at),
            "revoked": self.revoked,
            "expired": self.expired(),
        }

    @classmethod
    def from_row(cls, row: ApiTokenRow, user: str) -> ApiToken:
        return cls(
            token_id=row.token_id,
            user=user,
            name=row.name,
            description=row.description,
            created_at=row.created_at,
            created_by=row.created_by,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: the record, and the secret, which is never shown again."""

    token: ApiToken
    secret: str = field(repr=False)


class Tokens:
    """Create, list and revoke API tokens, and authenticate a caller by one."""

    def __init__(self, catalog: Catalog, *, recorder: ChangeRecorder) -> None:
        self._catalog = catalog
        self._recorder = recorder

    def create(
        self,
        user: str,
        *,
        name: str,
        description: str | None = None,
        expires_at: datetime | None = None,
        expires_in: timedelta | None = None,
    ) -> NewToken:
        """A new token for ``user``; its secret is in the result and nowhere else, ever.

        ``expires_at`` (aware) or ``expires_in`` bound its life; without either
        it lasts until revoked. A disabled user gets no token (``Conflict``).
        """
        name = name.strip() if isinstance(name, str) else name
        if not isinstance(name, str) or not name or len(name) > 255:
            raise ValidationError(f"token name must be 1 to 255 characters, not {name!r}")
        now = utcnow()
        expires = _expiry(now, expires_at, expires_in)
        token_id = secrets.token_hex(6)
        secret = f"{_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        with self._catalog.transaction() as session:
            owner = user_row(session, user)
            if owner.disabled_at is not None:
                raise Conflict(f"user {user!r} is disabled: no new tokens", user=user)
            row = ApiTokenRow(
                user_id=owner.id,
                token_id=token_id,
                secret_hash=hash_secret(secret),
                name=name,
                description=description,
                created_at=now,
                created_by=self._recorder.actor,
                expires_at=expires,
            )
            session.add(row)
            session.flush()
            token = ApiToken.from_row(row, owner.name)
            self._recorder.record(
                session,
                "tokens.create",
                "api_token",
                token_id,
                after={
                    "user": owner.name,
                    "name": name,
                    "expires_at": None if expires is None else expires.isoformat(),
                },
                event="token_created",
            )
        return NewToken(token, secret)

    def get(self, token_id: str) -> ApiToken:
        """The token with this public id; ``NotFound`` if there is none."""
        with self._catalog.session() as session:
            found = session.execute(
                select(ApiTokenRow, UserRow.name)
                .join(UserRow, UserRow.id == ApiTokenRow.user_id)
                .where(ApiTokenRow.token_id == token_id)
            ).one_or_none()
        if found is None:
            raise NotFound(f"no API token {token_id!r}", token_id=token_id)
        return ApiToken.from_row(*found)

    def list(
        self, user: str | None = None, *, include_revoked: bool = False
    ) -> builtins.list[ApiToken]:
        """Tokens, oldest first: of ``user`` only when given; revoked ones only when asked."""
        query = (
            select(ApiTokenRow, UserRow.name)
            .join(UserRow, UserRow.id == ApiTokenRow.user_id)
            .order_by(ApiTokenRow.id)
        )
        if not include_revoked:
            query = query.where(ApiTokenRow.revoked_at.is_(None))
        with self._catalog.session() as session:
            if user is not None:
                query = query.where(ApiTokenRow.user_id == user_row(session, user).id)
            return [ApiToken.from_row(row, owner) for row, owner in session.execute(query)]

    def revoke(self, token_id: str, *, reason: str | None = None) -> ApiToken:
        """Revoke a token: its next use fails. Revoking a revoked token changes nothing."""
        with self._catalog.transaction() as session:
            found = session.execute(
                select(ApiTokenRow, UserRow.name)
                .join(UserRow, UserRow.id == ApiTokenRow.user_id)
                .where(ApiTokenRow.token_id == token_id)
            ).one_or_none()
            if found is None:
                raise NotFound(f"no API token {token_id!r}", token_id=token_id)
            row, owner = found
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                self._recorder.record(
                    session,
                    "tokens.revoke",
                    "api_token",
                    token_id,
                    before={"user": owner, "name": row.name, "revoked": False},
                    after={"user": owner, "name": row.name, "revoked": True},
                    reason=reason,
                    event="token_revoked",
                )
            return ApiToken.from_row(row, owner)

    def authenticate(self, secret: str) -> Principal:
        """Who ``secret`` signs in as; ``AuthenticationError`` for anything but a live token.

        Refused: a malformed or unknown token, a wrong secret, a revoked or
        expired token, a token of a disabled user. Checked afresh on every call.
        """
        match = _TOKEN.match(secret) if isinstance(secret, str) else None
        if match is None:
            raise AuthenticationError("not a weightbase API token (wb_<id>_<secret>)")
        token_id = match.group(1)
        with self._catalog.session() as session:
            found = session.execute(
                select(ApiTokenRow, UserRow)
                .join(UserRow, UserRow.id == ApiTokenRow.user_id)
                .where(ApiTokenRow.token_id == token_id)
            ).one_or_none()
            stored = _NO_TOKEN_HASH if found is None else found[0].secret_hash
            if not hmac.compare_digest(hash_secret(secret), stored) or found is None:
                raise AuthenticationError("invalid API token", token_id=token_id)
            row, user = found
            now = utcnow()
            if row.revoked_at is not None:
                raise AuthenticationError(f"API token {token_id} was revoked", token_id=token_id)
            if row.expires_at is not None and row.expires_at <= now:
                raise AuthenticationError(f"API token {token_id} has expired", token_id=token_id)
            if user.disabled_at is not None:
                raise AuthenticationError(
                    f"user {user.name!r} is disabled", token_id=token_id, user=user.name
                )
            principal = Principal(
                user=user.name,
                role=check_role(user.role),
                token_id=token_id,
                teams=frozenset(user.teams or ()),
            )
            stale = row.last_used_at is None or now - row.last_used_at >= _LAST_USED_RESOLUTION
        if stale:
            self._touch(token_id, now)
        return principal

    def _touch(self, token_id: str, now: datetime) -> None:
        with self._catalog.transaction() as session:
            session.execute(
                update(ApiTokenRow).where(ApiTokenRow.token_id == token_id).values(last_used_at=now)
            )


def _expiry(
    now: datetime, expires_at: datetime | None, expires_in: timedelta | None
) -> datetime | None:
    if expires_at is not None and expires_in is not None:
        raise ValidationError("give expires_at or expires_in, not both")
    if expires_in is not None:
        if expires_in <= timedelta(0):
            raise ValidationError(f"expires_in must be positive, not {expires_in}")
        return now + expires_in
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ValidationError(f"expires_at must be timezone-aware, not {expires_at!r}")
        if expires_at <= now:
            raise ValidationError(f"expires_at {expires_at.isoformat()} is not in the future")
    return expires_at
