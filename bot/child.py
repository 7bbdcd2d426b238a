"""A service run as a child process: started with its log in a file, waited for, stopped.

The Rasa server, the action server and the application are each one of these
(``bot.nlp.rasa_server.RasaProcess``, ``bot.services.ActionServerProcess`` and ``AppProcess``);
``make run``, the tests and ``make bench`` start them all the same way.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import tempfile
import time
from pathlib import Path

from bot.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)


class ChildProcess:
    """Subclasses set ``what`` and ``unavailable`` and implement ``is_ready``."""

    what = "the service"
    unavailable: type[Exception] = RuntimeError
    poll_seconds = 0.3
    stop_grace = 10.0

    def spawn(
        self, command: list[str], env: dict[str, str], *, url: str, timeout: float, prefix: str
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.log_path = Path(tempfile.mkstemp(prefix=prefix, suffix=".log")[1])
        logger.info("starting %s on %s (log: %s)", self.what, url, self.log_path)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    async def is_ready(self) -> bool:
        raise NotImplementedError

    async def wait_ready(self) -> None:
        """Return once it answers; raise ``unavailable`` if it exits or takes too long."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self.unavailable(f"{self.what} exited early:\n{self.log_tail(2000)}")
            if await self.is_ready():
                return
            await asyncio.sleep(self.poll_seconds)
        self.stop()
        raise self.unavailable(f"{self.what} was not ready within {self.timeout:.0f} s")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def cleanup(self) -> None:
        """Files to remove whenever it stops (a subclass's own)."""

    def stop(self, *, keep_log: bool = False) -> None:
        """Terminate it (killed after ``stop_grace`` s). The log is kept if it exited by itself
        (it says why) or with ``keep_log``."""
        try:
            if self.process.poll() is not None:
                return
            self.process.terminate()
            try:
                self.process.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            if not keep_log:
                self.log_path.unlink(missing_ok=True)
        finally:
            self.cleanup()
