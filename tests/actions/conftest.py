"""Fixtures for the action tests: a real store on a fresh SQLite file, trackers, the domain."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import Deps, use
from bot.settings import PROJECT_ROOT, Settings
from bot.store.db import upgrade
from bot.store.repo import Store


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'actions.db'}"
    upgrade(url)
    return url


@pytest.fixture
def app(settings: Settings, db_url: str, tmp_path: Path) -> Iterator[Deps]:
    """The action server's dependencies, on a fresh database and spool."""
    app_settings = dataclasses.replace(
        settings, database_url=db_url, spool_dir=tmp_path / "spool", store_retry_seconds=0.5
    )
    deps = Deps(app_settings)
    use(deps)
    yield deps
    use(None)


@pytest.fixture
def store(app: Deps) -> Store:
    return app.store


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))


def parse(text: str, intent: str, confidence: float = 0.95, **extra: Any) -> dict[str, Any]:
    """A Rasa parse result as the tracker carries it in ``latest_message``."""
    ranking = extra.pop("ranking", None) or [{"name": intent, "confidence": confidence}]
    return {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": ranking,
        "entities": extra.pop("entities", []),
        "metadata": extra.pop("metadata", {}),
        **extra,
    }


def tracker(
    text: str,
    intent: str = "not_scam",
    confidence: float = 0.95,
    *,
    sender: str = "resident-1",
    slots: dict[str, Any] | None = None,
    events: list[dict] | None = None,
    active_loop: str | None = None,
    **extra: Any,
) -> Tracker:
    latest = parse(text, intent, confidence, **extra)
    history = [*(events or []), {"event": "user", "text": text, "parse_data": latest}]
    return Tracker(
        sender,
        slots or {},
        latest,
        history,
        False,
        None,
        {"name": active_loop} if active_loop else {},
        "action_listen",
    )


def responses(dispatcher: CollectingDispatcher) -> list[str]:
    return [m.get("response") for m in dispatcher.messages]
