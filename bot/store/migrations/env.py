"""Alembic's entry point for the store's migrations.

``bot.store.db`` runs the migrations with a connection of its own (``config.attributes``). Run
by hand (``alembic -x url=...`` with a config naming this folder), it connects to the ``url``
given, else to ``sqlalchemy.url``, else to the ``DATABASE_URL`` setting. SQLite gets batch mode,
so that later migrations can alter tables there.
"""

from __future__ import annotations

from alembic import context

from bot.store.db import make_engine, migration_connection, resolve_url
from bot.store.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        from bot.settings import Settings

        url = Settings.from_env().database_url
    return url


def run_offline() -> None:
    url = resolve_url(_url())
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with migration_connection(engine) as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=engine.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
