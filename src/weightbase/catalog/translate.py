"""Turn SQLAlchemy and driver errors into weightbase errors where they leave the catalog.

    with translate_errors("the catalog at sqlite:///…"):
        session.flush()

A unique or foreign-key violation becomes :class:`~weightbase.errors.Conflict`,
a locked or unreachable database :class:`~weightbase.errors.StorageError`
(``retryable=True`` where trying again can help), a value the database refuses
:class:`~weightbase.errors.ValidationError`. The driver's exception stays
attached as ``__cause__``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from weightbase.errors import Conflict, StorageError, ValidationError

__all__ = ["translate_errors"]

# PostgreSQL SQLSTATE codes (Appendix A of its manual).
_PG_VIOLATIONS = {
    "23505": "unique",
    "23503": "foreign_key",
    "23502": "not_null",
    "23514": "check",
    "23P01": "exclusion",
}
_PG_RETRYABLE = {"40001", "40P01", "55P03", "57014"}  # serialization, deadlock, lock, timeout
_PG_UNREACHABLE_PREFIX = "08"  # connection exceptions
_SQLITE_VIOLATION = re.compile(r"(UNIQUE|FOREIGN KEY|NOT NULL|CHECK) constraint failed:?\s*(.*)")


@contextmanager
def translate_errors(target: str = "the catalog") -> Iterator[None]:
    """Re-raise SQLAlchemy/driver errors from the block as weightbase errors naming ``target``."""
    try:
        yield
    except sa_exc.IntegrityError as exc:
        raise _conflict(exc, target) from exc
    except sa_exc.DataError as exc:
        raise ValidationError(
            f"{target} refused a value: {_driver_message(exc)}", target=target
        ) from exc
    except sa_exc.DBAPIError as exc:
        raise _storage_error(exc, target) from exc
    except sa_exc.StatementError as exc:
        # a value that failed to bind (e.g. a naive datetime): bad input, caught before the database
        if isinstance(exc.orig, ValueError | TypeError):
            raise ValidationError(f"{target} refused a value: {exc.orig}", target=target) from exc
        raise
    except sa_exc.TimeoutError as exc:  # the connection pool ran dry
        raise StorageError(
            f"no free connection to {target}: {exc}", target=target, retryable=True
        ) from exc


def _driver_message(exc: sa_exc.DBAPIError) -> str:
    """The first line of the driver's own message, without SQLAlchemy's SQL echo."""
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc.orig).__name__


def _sqlstate(exc: sa_exc.DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None)  # psycopg 3
    return state if isinstance(state, str) else None


def _conflict(exc: sa_exc.IntegrityError, target: str) -> Conflict:
    message = _driver_message(exc)
    violation = "integrity"
    constraint: str | None = None
    state = _sqlstate(exc)
    if state is not None:
        violation = _PG_VIOLATIONS.get(state, violation)
        diag = getattr(exc.orig, "diag", None)
        constraint = getattr(diag, "constraint_name", None)
        detail = getattr(diag, "message_detail", None)
        if detail:
            message = f"{message} ({detail})"
    else:
        match = _SQLITE_VIOLATION.search(message)
        if match:
            violation = match.group(1).lower().replace(" ", "_")
            constraint = match.group(2) or None
    what = {
        "unique": "already exists",
        "foreign_key": "refers to a row that does not exist, or is still referred to",
        "not_null": "lacks a required value",
        "check": "breaks a rule of the schema",
    }.get(violation, "conflicts with existing data")
    return Conflict(
        f"the write to {target} {what}: {message}",
        target=target,
        violation=violation,
        constraint=constraint,
    )


def _storage_error(exc: sa_exc.DBAPIError, target: str) -> StorageError:
    message = _driver_message(exc)
    lowered = message.lower()
    state = _sqlstate(exc)
    if "database is locked" in lowered or "database table is locked" in lowered:
        return StorageError(
            f"{target} is busy: another writer held its lock for too long; try again",
            target=target,
            retryable=True,
        )
    if state in _PG_RETRYABLE:
        return StorageError(
            f"{target} could not complete the transaction ({message}); try again",
            target=target,
            retryable=True,
        )
    unreachable = (
        exc.connection_invalidated
        or (state is not None and state.startswith(_PG_UNREACHABLE_PREFIX))
        or (
            "connection" in lowered
            and any(word in lowered for word in ("refused", "failed", "timeout", "closed"))
        )
        or "unable to open database file" in lowered
    )
    if unreachable:
        return StorageError(f"cannot reach {target}: {message}", target=target, retryable=True)
    return StorageError(f"{target} failed: {message}", target=target, retryable=False)
