"""Column types of the models: aware UTC datetimes and exact amounts on both databases.

Every datetime the store hands out is timezone-aware UTC. PostgreSQL keeps ``timestamptz``;
SQLite has no time zones, so the value is stored as naive UTC text and given its zone back on
the way out. Naive datetimes are refused on the way in: a naive value is a bug in the caller
(local time or UTC?), and guessing would file reports under the wrong hour. Amounts are
``NUMERIC(14, 2)``, rounded half up to the cent on the way in (as PostgreSQL would).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

UTC = timezone.utc
CENT = Decimal("0.01")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (what every ``*_at`` column holds)."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """``timestamptz`` on PostgreSQL, naive UTC on SQLite; always aware UTC in Python."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to the store: use an aware datetime (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def to_cents(value: Decimal | float | str | int) -> Decimal:
    """An amount rounded half up to the cent, as it will be stored."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


class Money(sa.TypeDecorator[Decimal]):
    """``NUMERIC(14, 2)``; exact on PostgreSQL, and quantised back to cents from SQLite's REAL."""

    impl = sa.Numeric(14, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            # SQLite stores NUMERIC as REAL; reading floats and quantising here avoids
            # SQLAlchemy's "Decimal objects not supported natively" warning on every load.
            return dialect.type_descriptor(sa.Numeric(14, 2, asdecimal=False))
        return dialect.type_descriptor(sa.Numeric(14, 2))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        cents = to_cents(value)
        return float(cents) if dialect.name == "sqlite" else cents

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).quantize(CENT)
