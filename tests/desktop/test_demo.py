"""`consulta-desk --demo` where the server is not installed (the MSI carries the desktop's
packages only): a clear reason instead of a traceback from a child process."""

from __future__ import annotations

import pytest

from desktop import demo
from desktop.config import ConfigError


def test_the_demo_without_the_server_packages_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo.shutil, "which", lambda *_args, **_kwargs: None)
    monkeypatch.setattr(demo.importlib.util, "find_spec",
                        lambda name: None if name == "fastapi" else object())
    with pytest.raises(ConfigError, match="does not include"):
        demo._server_command()


def test_the_demo_runs_the_server_module_when_it_is_installed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo.shutil, "which", lambda *_args, **_kwargs: None)
    assert demo._server_command()[1:] == ["-m", "sync_server.cli"]
