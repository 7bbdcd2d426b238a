"""A spool for writes that could not reach the database: one JSON file per record.

When ``Store`` raises ``StoreUnavailable`` the caller puts the record here and answers the
resident anyway; a later ``drain`` replays the files in the order they were written. Each file
is written to a temporary name, flushed to disk and renamed, so a crash leaves either the whole
record or nothing; the directory is synced after the rename and after a delete. A file is
deleted only after its handler returned, so a record is replayed at least once: handlers should
tolerate a repeat (a report filed twice is a smaller harm than one lost).
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")
_SUFFIX = ".json"
_TMP_PREFIX = ".tmp-"
_LOCK_NAME = ".drain.lock"


class Spool:
    """Records waiting in ``directory`` (created if missing)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count()
        self._token = uuid.uuid4().hex[:8]

    def put(self, kind: str, record: dict[str, Any]) -> Path:
        """Write one record durably; the file name sorts by the time it was written."""
        if not _KIND.fullmatch(kind):
            raise ValueError("a spool kind is lower-case letters, digits and '_'")
        body = json.dumps({"kind": kind, "record": record}, ensure_ascii=False, sort_keys=True)
        name = f"{time.time_ns():020d}-{next(self._counter):08d}-{self._token}-{kind}{_SUFFIX}"
        final = self.directory / name
        tmp = self.directory / f"{_TMP_PREFIX}{name}"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        self._sync_directory()
        return final

    def pending(self) -> list[Path]:
        """The records not yet drained, oldest first."""
        return sorted(
            p for p in self.directory.glob(f"*{_SUFFIX}") if not p.name.startswith(_TMP_PREFIX)
        )

    @staticmethod
    def read(path: Path) -> tuple[str, dict[str, Any]]:
        """The kind and record in one spool file."""
        data = json.loads(path.read_text(encoding="utf-8"))
        return str(data["kind"]), dict(data["record"])

    def drain(self, handler: Callable[[str, dict[str, Any]], object]) -> int:
        """Hand each record to ``handler`` in order, deleting it once handled.

        Stops at the first record whose handler raises (the exception propagates and the file
        stays, so the order is kept for the next drain). Returns how many were handled. Only
        one drain runs at a time per directory; a second one returns 0 at once.
        """
        with open(self.directory / _LOCK_NAME, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            try:
                done = 0
                for path in self.pending():
                    if not path.exists():
                        continue
                    kind, record = self.read(path)
                    handler(kind, record)
                    path.unlink()
                    self._sync_directory()
                    done += 1
                return done
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
