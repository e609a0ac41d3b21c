"""`consulta-desk --demo` in one step: the demo server starts (its own process, on the
embedded PostgreSQL), the desk enrols with a fresh code, signs in as a receptionist and
pulls the demo clinic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import func, select

from desktop.config import MachinePreset
from desktop.demo import start_demo
from desktop.ui.app import DeskApp
from shared_models.tables import patient, provider
from tests.desktop.test_keys import MemoryKeyring
from tests.desktop.ui.conftest import gui_thread_guard, on_db_worker, setup_io

__all__ = ["gui_thread_guard"]


@pytest.fixture
def memory_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield
    keyring.set_keyring(previous)


def test_the_demo_opens_the_front_desk_signed_in_with_the_demo_clinic(
    qtbot: QtBot, tmp_path: Path, memory_keyring: None
) -> None:
    with setup_io():
        server = start_demo(tmp_path)
    try:
        app = DeskApp(folder=server.desk_folder,
                      preset=MachinePreset(server.url, server.enrolment_code),
                      auto_sign_in=(server.email, server.password), auto_enrol=True)
        app.start()
        qtbot.waitUntil(lambda: app.window is not None and app.window.isVisible(),
                        timeout=60_000)
        window = app.window
        assert window is not None
        assert window.desk.session.role == "receptionist"
        assert list(window.workspaces) == ["calendar", "patients", "attention"]
        qtbot.waitUntil(lambda: window.controller.status.last_sync is not None,
                        timeout=60_000)

        def counts() -> tuple[int, int]:
            with window.desk.engine.connect() as conn:
                return (conn.execute(select(func.count()).select_from(patient)).scalar_one(),
                        conn.execute(select(func.count()).select_from(provider)).scalar_one())
        assert on_db_worker(qtbot, window.desk, counts) == (200, 3)
        window.shut()
        app.tasks.wait()
    finally:
        server.stop()
