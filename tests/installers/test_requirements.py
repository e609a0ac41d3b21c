"""What the installers ship is what the desktop needs: installers/desktop-requirements.in
against pyproject.toml, the pinned Windows set against it, and the desktop's real imports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DESKTOP_IN = ROOT / "installers" / "desktop-requirements.in"
WINDOWS_PINS = ROOT / "installers" / "windows" / "requirements.txt"
# Dependencies of the distribution the desktop never imports (the server's).
SERVER_ONLY = {"pydantic-settings", "fastapi", "uvicorn", "python-multipart", "psycopg",
               "alembic", "pgserver", "jinja2", "apscheduler", "icalendar"}
SERVER_MODULES = ("fastapi", "starlette", "uvicorn", "psycopg", "psycopg_pool", "alembic",
                  "pgserver", "jinja2", "apscheduler", "icalendar", "sync_server",
                  "pydantic_settings", "multipart")


def name(requirement: str) -> str:
    bare = re.split(r"[\[<>=!;\s]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", bare).lower()


def requirement_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def normalise(requirement: str) -> str:
    """The requirement without spaces, quoting style or extras (sqlalchemy's asyncio extra
    is the server's; the desktop uses plain sqlalchemy)."""
    return re.sub(r"\[[^\]]*\]", "", requirement.replace(" ", "").replace("'", '"').lower())


def test_every_desktop_requirement_repeats_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = {normalise(r) for r in project}
    desktop = requirement_lines(DESKTOP_IN)
    assert desktop
    for requirement in desktop:
        assert normalise(requirement) in declared, f"{requirement} differs from pyproject.toml"
    left_out = {name(r) for r in project} - {name(r) for r in desktop}
    assert left_out == SERVER_ONLY, "classify a new dependency: desktop or server only"


def test_windows_pins_cover_the_desktop_requirements_exactly() -> None:
    pins = {}
    for line in WINDOWS_PINS.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if match:
            pins[name(match[1])] = match[2].rstrip("\\").strip()
    wanted = {name(r) for r in requirement_lines(DESKTOP_IN)}
    assert wanted <= set(pins), sorted(wanted - set(pins))
    assert "pywin32-ctypes" in pins  # keyring's Windows backend
    assert "secretstorage" not in pins  # keyring's Linux backend
    for line in WINDOWS_PINS.read_text().splitlines():
        if "==" in line:
            assert line.endswith("\\"), f"{line}: every pin carries hashes"


def test_the_desktop_imports_no_server_package() -> None:
    probe = ("import importlib, json, pkgutil, sys\n"
             "import desktop\n"
             "for m in pkgutil.walk_packages(desktop.__path__, 'desktop.'):\n"
             "    if m.name != 'desktop.demo':\n"
             "        importlib.import_module(m.name)\n"
             "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
                          cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "desktop" in loaded
    assert "PySide6" in loaded
    assert not loaded & set(SERVER_MODULES), sorted(loaded & set(SERVER_MODULES))
