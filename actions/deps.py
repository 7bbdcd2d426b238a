"""What every action needs, built once per action-server process: settings, taxonomy, analyser,
store and spool.

Actions call ``deps()``; tests call ``use(Deps(...))`` with their own store. Nothing is built at
import time, so the action server starts (and answers ``/health``) even while the database is
still coming up.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

from bot.nlp.analysis import Analyzer, get_analyzer
from bot.nlp.taxonomy import Taxonomy, load_taxonomy
from bot.settings import Settings
from bot.store.repo import Store
from bot.store.spool import Spool


@dataclass
class Deps:
    """The shared parts; the store and spool are made on first use."""

    settings: Settings
    store_override: Store | None = None

    @cached_property
    def taxonomy(self) -> Taxonomy:
        return load_taxonomy(self.settings.taxonomy_path)

    @cached_property
    def analyzer(self) -> Analyzer:
        return get_analyzer(self.settings.taxonomy_path, self.settings.lookups_dir)

    @cached_property
    def store(self) -> Store:
        if self.store_override is not None:
            return self.store_override
        return Store.from_settings(self.settings)

    @cached_property
    def spool(self) -> Spool:
        return Spool(self.settings.spool_dir)


_lock = threading.Lock()
_current: Deps | None = None


def deps() -> Deps:
    """The process's dependencies, from the environment on first call."""
    global _current
    with _lock:
        if _current is None:
            _current = Deps(Settings.from_env())
        return _current


def use(new: Deps | None) -> None:
    """Replace the process's dependencies (tests); ``None`` goes back to the environment."""
    global _current
    with _lock:
        _current = new
