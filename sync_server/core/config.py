"""The server's one `Settings`, read from the environment (documented in the README)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

APP_NAME = "consulta"
APP_DB_ROLE = "consulta_app"
EMBEDDED_DB_NAME = "consulta"
SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSULTA_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)))
    # Owner connection: runs migrations and the admin CLI. Unset: the embedded PostgreSQL.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CONSULTA_DATABASE_URL")
    )
    # The request path's connection, as a role that owns nothing and cannot bypass RLS.
    # Unset: the owner URL with the user replaced by `consulta_app`.
    app_database_url: str | None = None
    app_db_password: SecretStr | None = None
    secret_key: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Server processes (`consulta-server serve`); each holds its own pool of
    # `db_pool_size` connections and runs the reminder dispatcher.
    workers: int = Field(default=1, ge=1)
    # Addresses of the TLS terminator(s) whose X-Forwarded-For / X-Forwarded-Proto are
    # believed (comma-separated IPs or networks, or "*"); from anyone else the headers are
    # ignored. The per-address limits of sign-in and booking count the address this gives.
    forwarded_allow_ips: str = "127.0.0.1,::1"
    db_pool_size: int = 20
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    # Login throttling: each failure past the first waits longer, up to the cap; after
    # `login_lock_after` failures inside the window the account (or address) is locked.
    login_window_minutes: int = 15
    login_lock_after: int = 5
    login_lock_after_per_address: int = 20
    login_lock_minutes: int = 15
    login_delay_base_seconds: float = 0.25
    login_delay_cap_seconds: float = 2.0
    # The patient booking page: booking submissions allowed per client address and per
    # phone number inside the window, and upcoming web bookings one phone may hold.
    booking_window_minutes: int = 60
    booking_limit_per_address: int = 30
    booking_limit_per_phone: int = 8
    booking_pending_per_phone: int = 3
    # Every booking answer takes at least this long, so whether the details matched an
    # existing patient cannot be read from the response time.
    booking_min_response_seconds: float = 0.3
    # How long a booking form stays valid (its anti-forgery token).
    booking_form_hours: int = 12
    # How long a server process reuses a rendered list of providers, days or times (0: never).
    booking_page_cache_seconds: float = 2.0
    # Where links in messages to patients point (the booking page's public address).
    # Unset: http://{host}:{port}.
    public_url: str | None = None

    # Reminders. Every server process runs the dispatcher unless this is off (for
    # example, to run it in separate `consulta-server dispatch` processes instead).
    reminders_dispatch: bool = True
    reminder_interval_seconds: float = 15.0
    reminder_batch: int = 50
    # A claimed reminder belongs to its process this long; if the process dies, another
    # takes it over after that.
    reminder_lease_seconds: int = 120
    reminder_max_attempts: int = 3
    reminder_retry_base_seconds: float = 60.0
    # The demo's channel: every message is written to this folder instead of being sent.
    outbox_dir: Path | None = None
    # E-mail: tls is "none", "starttls" or "implicit".
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["none", "starttls", "implicit"] = "starttls"
    smtp_sender: str = "recordatorios@consulta.invalid"
    # SMS and WhatsApp through a Twilio-style API; the auth token also checks the
    # signature of patients' replies.
    sms_base_url: str | None = None
    whatsapp_base_url: str | None = None
    sms_account: str | None = None
    sms_token: SecretStr | None = None
    sms_sender: str | None = None
    whatsapp_sender: str | None = None

    _signing_key: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env == "production":
            if self.secret_key is None or len(self.secret_key.get_secret_value()) < 32:
                raise ValueError(
                    "CONSULTA_SECRET_KEY must be set to at least 32 random characters "
                    "in production"
                )
            if self.database_url is None:
                raise ValueError("DATABASE_URL must be set in production")
        return self

    def link_base(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def signing_key(self) -> str:
        """The JWT signing key; in development one is made once and kept in the data dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if self._signing_key is None:
            path = self.data_dir / SECRET_KEY_FILE
            if not path.exists():
                self.data_dir.mkdir(parents=True, exist_ok=True)
                path.touch(mode=0o600)
                path.write_text(secrets.token_urlsafe(48))
            self._signing_key = path.read_text().strip()
        return self._signing_key


@lru_cache
def get_settings() -> Settings:
    return Settings()
