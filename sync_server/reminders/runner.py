"""Running the dispatcher: the channels the settings configure, its own database engine,
and the APScheduler job that calls it in every server process.

APScheduler only triggers the work in-process (its job stores cannot be shared between
processes); the queue and its locking live in PostgreSQL. The job runs on a scheduler
thread, never on the server's event loop, and one run at a time per process.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL

from shared_models.enums import Channel
from sync_server.core.config import Settings
from sync_server.reminders.channels import (
    Adapter,
    EmailChannel,
    HttpTextChannel,
    OutboxChannel,
)
from sync_server.reminders.dispatcher import Dispatcher

log = logging.getLogger("consulta.reminders")
# Longer than any send may take (the channels time out after 10 s).
STUCK_AFTER_SECONDS = 60


def configured_channels(settings: Settings) -> dict[Channel, Adapter]:
    """The outbox folder for every channel when one is set (the demo); otherwise each
    channel whose provider is configured."""
    if settings.outbox_dir is not None:
        return {ch: OutboxChannel(ch, settings.outbox_dir) for ch in Channel}
    adapters: dict[Channel, Adapter] = {}
    if settings.smtp_host:
        adapters[Channel.EMAIL] = EmailChannel(
            settings.smtp_host, settings.smtp_port, settings.smtp_sender,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password
            else None, tls=settings.smtp_tls)
    token = settings.sms_token.get_secret_value() if settings.sms_token else ""
    for channel, base, sender in ((Channel.SMS, settings.sms_base_url, settings.sms_sender),
                                  (Channel.WHATSAPP, settings.whatsapp_base_url,
                                   settings.whatsapp_sender)):
        if base and settings.sms_account and sender:
            adapters[channel] = HttpTextChannel(channel, base, settings.sms_account, token,
                                                sender)
    return adapters


def dispatcher_engine(app_url: URL, settings: Settings) -> Engine:
    """The dispatcher's own connections, as the app role. A session left idle inside a
    transaction well past any send's timeout (a process stuck mid-send) is ended by the
    server, which releases its row lock for the others."""
    idle_ms = (settings.reminder_lease_seconds + STUCK_AFTER_SECONDS) * 1000
    return create_engine(
        app_url.set(drivername="postgresql+psycopg"), pool_size=2, max_overflow=0,
        pool_pre_ping=True,
        connect_args={"options": f"-c idle_in_transaction_session_timeout={idle_ms} "
                                 "-c lock_timeout=5000"})


def build_dispatcher(app_url: URL, settings: Settings) -> Dispatcher:
    return Dispatcher(dispatcher_engine(app_url, settings), configured_channels(settings),
                      settings)


class ReminderRunner:
    """The in-process job: every `reminder_interval_seconds`, send what is due."""

    def __init__(self, app_url: URL, settings: Settings) -> None:
        self.settings = settings
        self.dispatcher = build_dispatcher(app_url, settings)
        self._stopping = threading.Event()
        self.scheduler = BackgroundScheduler(timezone=UTC)

    def tick(self) -> None:
        try:
            result = self.dispatcher.drain(should_stop=self._stopping.is_set)
        except Exception:
            log.exception("reminder dispatch failed; the next run tries again")
            return
        if result.claimed:
            log.info("reminders: claimed %d, %s", result.claimed, result.outcomes)

    def start(self) -> None:
        if not self.dispatcher.adapters:
            # Reminders stay queued until a channel is configured.
            log.warning("reminders: no channel is configured (set CONSULTA_SMTP_HOST, the "
                        "CONSULTA_SMS_* settings or CONSULTA_OUTBOX_DIR); nothing is sent")
            return
        self.scheduler.add_job(
            self.tick, "interval", seconds=self.settings.reminder_interval_seconds,
            id="reminders", max_instances=1, coalesce=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=1))
        self.scheduler.start()

    def stop(self) -> None:
        self._stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.dispatcher.close()
        self.dispatcher.engine.dispose()

    def run_forever(self) -> None:
        """For `consulta-server dispatch`: the same job, until interrupted."""
        self.start()
        try:
            self._stopping.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
