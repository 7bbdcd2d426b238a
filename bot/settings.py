"""Settings, read once from the environment and an optional ``.env`` file.

This is the only module that reads ``os.environ``. Every setting is listed in the README's table.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_URL_PASSWORD = re.compile(r"(://[^/:@]*:)[^/@]*@")


def _read_dotenv(path: Path) -> dict[str, str]:
    """Parse ``KEY=value`` lines; ``#`` comments and blank lines are skipped, quotes stripped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Typed settings. Field names are the environment variable names in lower case."""

    rasa_url: str = "http://127.0.0.1:5005"
    rasa_python: Path = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"
    model_dir: Path = PROJECT_ROOT / "models"
    taxonomy_path: Path = PROJECT_ROOT / "nlu_data" / "scam_types.yml"
    lookups_dir: Path = PROJECT_ROOT / "nlu_data" / "lookups"
    scam_threshold: float = 0.3
    classify_concurrency: int = 8
    rasa_start_timeout: float = 240.0
    rasa_request_timeout: float = 30.0
    log_level: str = "INFO"
    database_url: str = "sqlite:///" + str(PROJECT_ROOT / "data" / "antifraud.db")
    spool_dir: Path = PROJECT_ROOT / "data" / "spool"
    store_retry_seconds: float = 5.0
    action_server_url: str = "http://127.0.0.1:5055"
    rasa_tracker_db: str = ""
    redis_url: str = ""
    telegram_bot_token: str = ""
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_file_url: str = "https://api.telegram.org/file/bot"
    telegram_mode: str = "polling"
    telegram_webhook_url: str = ""
    telegram_webhook_secret: str = ""
    staff_chat_id: str = ""
    group_warn_confidence: float = 0.8
    group_warn_window_minutes: int = 60
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    campaign_rate: float = 25.0
    campaign_tick_seconds: float = 30.0
    dashboard_session_hours: float = 12.0
    dashboard_secure_cookies: str = "auto"

    @property
    def sandbox(self) -> bool:
        """No token: the bot runs against the local sandbox server instead of Telegram."""
        return not self.telegram_bot_token

    def __repr__(self) -> str:  # never print secrets
        hidden = {"telegram_bot_token", "telegram_webhook_secret"}
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str) and "://" in value:
                value = _URL_PASSWORD.sub(r"\1***@", value)
            parts.append(f"{f.name}={'***' if f.name in hidden and value else repr(value)}")
        return f"Settings({', '.join(parts)})"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, dotenv: Path | None = None) -> Settings:
        """Environment variables win over ``.env``; unknown keys are ignored."""
        merged = _read_dotenv(dotenv or PROJECT_ROOT / ".env")
        merged.update(os.environ if env is None else env)
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            raw = merged.get(f.name.upper())
            if raw is None or raw == "":
                continue
            kwargs[f.name] = _coerce(f.name, raw, type(getattr(cls, f.name, "")))
        settings = cls(**kwargs)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 0.0 < self.scam_threshold < 1.0:
            raise SettingsError("SCAM_THRESHOLD must be between 0 and 1")
        if self.classify_concurrency < 1:
            raise SettingsError("CLASSIFY_CONCURRENCY must be at least 1")
        if not self.rasa_url.startswith(("http://", "https://")):
            raise SettingsError("RASA_URL must be an http:// or https:// address")
        if not self.action_server_url.startswith(("http://", "https://")):
            raise SettingsError("ACTION_SERVER_URL must be an http:// or https:// address")
        if not self.database_url.startswith(("sqlite://", "postgresql")):
            raise SettingsError("DATABASE_URL must be a sqlite:// or postgresql:// address")
        if self.telegram_mode not in ("polling", "webhook"):
            raise SettingsError("TELEGRAM_MODE must be polling or webhook")
        if self.telegram_mode == "webhook":
            # Telegram calls only https:// addresses; the sandbox calls plain http on loopback.
            schemes = ("https://",) if self.telegram_bot_token else ("https://", "http://")
            if not self.telegram_webhook_url.startswith(schemes):
                raise SettingsError(
                    "TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_URL, the public https:// "
                    "address Telegram will post to"
                )
            if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", self.telegram_webhook_secret):
                raise SettingsError(
                    "TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_SECRET: 16 to 256 characters "
                    "of A-Z, a-z, 0-9, _ and - (Telegram's rule), e.g. from "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
        if self.rasa_tracker_db and not self.rasa_tracker_db.startswith(
            ("sqlite://", "postgresql", "memory")
        ):
            raise SettingsError("RASA_TRACKER_DB must be a sqlite:// or postgresql:// address")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://")):
            raise SettingsError("REDIS_URL must be a redis:// address")
        if not 0.0 < self.group_warn_confidence <= 1.0:
            raise SettingsError("GROUP_WARN_CONFIDENCE must be between 0 and 1")
        if not 0.0 < self.campaign_rate <= 30.0:
            raise SettingsError(
                "CAMPAIGN_RATE must be above 0 and at most 30 messages a second (Telegram's limit)"
            )
        if not 1.0 <= self.campaign_tick_seconds <= 3600.0:
            raise SettingsError("CAMPAIGN_TICK_SECONDS must be 1 to 3600")
        if not 0.1 <= self.dashboard_session_hours <= 24 * 30:
            raise SettingsError("DASHBOARD_SESSION_HOURS must be 0.1 to 720")
        if self.dashboard_secure_cookies not in ("auto", "on", "off"):
            raise SettingsError("DASHBOARD_SECURE_COOKIES must be auto, on or off")
        if self.store_retry_seconds < 0:
            raise SettingsError("STORE_RETRY_SECONDS must not be negative")


def _coerce(name: str, raw: str, kind: type) -> object:
    try:
        if kind is float:
            return float(raw)
        if kind is int:
            return int(raw)
        if issubclass(kind, Path):
            path = Path(raw)
            return path if path.is_absolute() else PROJECT_ROOT / path
    except ValueError as exc:
        raise SettingsError(f"{name.upper()}={raw!r} is not a valid {kind.__name__}") from exc
    return raw
