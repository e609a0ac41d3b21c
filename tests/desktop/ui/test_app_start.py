"""Starting the app when IT's machine-wide settings file is damaged: the person sees why
in a window (the Start-menu shortcut has no console), and nothing starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop.ui import app as app_module
from desktop.ui.qt import QApplication


def test_a_damaged_machine_file_is_shown_in_a_dialog(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qapp: QApplication) -> None:
    machine_file = tmp_path / "consulta-desk.json"
    machine_file.write_text('{"server_url": "http://consulta.clinica.example"}')
    monkeypatch.setenv("CONSULTA_DESK_MACHINE_CONFIG", str(machine_file))
    shown: list[str] = []
    monkeypatch.setattr(app_module.QMessageBox, "critical",
                        lambda _parent, _title, text: shown.append(text))
    monkeypatch.setattr(app_module, "QApplication", lambda _argv: qapp)
    started: list[object] = []
    monkeypatch.setattr(app_module.DeskApp, "start", lambda self: started.append(self))
    quits = qapp.quitOnLastWindowClosed()
    try:
        assert app_module.main(["--data-dir", str(tmp_path / "data")]) == 2
    finally:
        qapp.setQuitOnLastWindowClosed(quits)
    assert len(shown) == 1
    assert "must start with https://" in shown[0]
    assert str(machine_file) in shown[0]
    assert started == []
    assert not (tmp_path / "data").exists()
