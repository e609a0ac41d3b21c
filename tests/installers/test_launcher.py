"""installers/windows/consulta-desk.pyw, the Start-menu launcher: when the app cannot even
start under pythonw (no console), the person gets a message box saying where the details
are, and the details are in the user's data folder."""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

LAUNCHER = Path(__file__).resolve().parents[2] / "installers" / "windows" / "consulta-desk.pyw"


def load_launcher() -> ModuleType:
    loader = SourceFileLoader("consulta_desk_launcher", str(LAUNCHER))  # a .pyw file
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_an_app_that_cannot_start_leaves_its_reason_and_says_where(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = load_launcher()
    boxes: list[tuple[str, str, int]] = []
    user32 = SimpleNamespace(MessageBoxW=lambda _owner, text, title, flags:
                             boxes.append((text, title, flags)))
    monkeypatch.setattr(launcher.ctypes, "windll", SimpleNamespace(user32=user32),
                        raising=False)
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    monkeypatch.delenv("CONSULTA_DESK_DATA", raising=False)
    monkeypatch.setitem(sys.modules, "desktop.ui.app", None)  # the import fails
    assert launcher.main() == 1
    report = tmp_path / "Local" / "Consulta" / "Consulta" / "startup-error.txt"
    assert "ModuleNotFoundError: import of desktop.ui.app halted" in report.read_text()
    [(text, title, flags)] = boxes
    assert str(report) in text
    assert "IT support" in text
    assert (title, flags) == ("Consulta Desk", launcher.MB_ICONERROR)


def test_the_launcher_starts_the_app_and_returns_its_exit_code(
        monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = load_launcher()
    fake_app = ModuleType("desktop.ui.app")
    fake_app.main = lambda: 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "desktop.ui.app", fake_app)
    assert launcher.main() == 3
