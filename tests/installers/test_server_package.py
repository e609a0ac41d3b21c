"""installers/build-server: the wheel and sdist of `consulta` hold every file the running
server needs (checked against git), nothing else, and work from where they are unpacked."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "installers" / "build-server"


def load_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("build_server", str(SCRIPT))
    spec = importlib.util.spec_from_loader("build_server", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_server"] = module  # its dataclasses look their module up there
    loader.exec_module(module)
    return module


build_server = load_script()


def _git_files(*patterns: str) -> set[str]:
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--", *patterns],
                         check=True, capture_output=True, text=True).stdout
    return set(out.split())


def _setuptools_can_build() -> bool:
    """This venv's setuptools reads pyproject.toml's license expression from 77 on."""
    try:
        return int(version("setuptools").split(".")[0]) >= 77
    except ValueError:
        return False


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path
    report: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One build per module, as a release would run it."""
    if importlib.util.find_spec("build") is None:
        message = "the 'build' package is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, str(SCRIPT), "--out", str(out)]
    if _setuptools_can_build():
        command.append("--no-isolation")  # no package index needed
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    wheel, sdist = build_server.find_artifacts(out)
    return Built(wheel, sdist, result.stdout)


def test_the_report_names_each_file_with_its_size_and_sha256(built: Built) -> None:
    for path in (built.wheel, built.sdist):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"{path.name}  {path.stat().st_size:,} bytes" in built.report
        assert f"sha256 {digest}" in built.report
    assert "checks passed" in built.report
    assert "FAILED" not in built.report


def test_the_wheel_holds_every_tracked_migration_template_and_catalogue(built: Built) -> None:
    files, entry_points = build_server.wheel_contents(built.wheel)
    needed = _git_files("sync_server/migrations/versions/*.py", "sync_server/web/templates",
                        "sync_server/web/static", "sync_server/reminders/templates",
                        "shared_models/formulary", "shared_models/lab_catalogue",
                        "*/py.typed")
    assert len([n for n in needed if "/versions/" in n]) >= 15
    assert needed <= files
    modules = _git_files("shared_models/*.py", "sync_server/*.py", "desktop/*.py")
    assert modules <= files
    assert not {n for n in files if n.split("/")[0] not in build_server.PACKAGES}
    assert build_server.parse_entry_points(entry_points or "") == {
        "consulta-server": "sync_server.cli:main", "consulta-desk": "desktop.ui.app:main"}
    sdist = build_server.sdist_contents(built.sdist)
    assert {"pyproject.toml", "README.md"} <= sdist
    assert modules | needed <= sdist


def test_a_file_package_data_misses_is_named_with_the_setting_to_fix(built: Built) -> None:
    files, _ = build_server.wheel_contents(built.wheel)
    expected = build_server.expected_package_files(build_server.tracked_package_files())
    revision = max(n for n in files if "/migrations/versions/" in n)
    template = "sync_server/web/templates/details.html"

    findings = build_server.check_package_files(
        files - {revision, template} | {"tests/conftest.py"}, expected=expected, what="wheel")

    assert len(findings.problems) == 3
    missing_revision, missing_template, extra = findings.problems
    assert missing_revision.startswith(f"wheel: missing {revision} (")
    assert missing_template.startswith(f"wheel: missing {template} (")
    assert "[tool.setuptools.package-data]" in missing_template
    assert extra == "wheel: must not contain tests/conftest.py"
    assert build_server.check_package_files(files, expected=expected, what="wheel").problems == []


def test_every_revision_gone_is_reported_even_without_git_to_compare(built: Built) -> None:
    files, _ = build_server.wheel_contents(built.wheel)
    without = {n for n in files if "/migrations/versions/" not in n}
    problems = build_server.check_package_files(without, expected=set(), what="wheel").problems
    assert problems == [
        "wheel: an Alembic revision (sync_server/migrations/versions/*.py) is not in it"]


def test_a_missing_console_script_is_reported() -> None:
    text = "[console_scripts]\nconsulta-server = sync_server.cli:main\n"
    assert build_server.check_entry_points(text) == [
        "wheel: entry point consulta-desk = desktop.ui.app:main missing from entry_points.txt "
        "(found nothing); see [project.scripts]"]
    assert build_server.check_entry_points(None) == ["wheel: no *.dist-info/entry_points.txt"]


UNPACKED_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import shared_models.prescribing, shared_models.lab_tests, sync_server, sync_server.main
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sync_server.db.migrate import alembic_config
from sync_server.reminders.messages import TEMPLATES_DIR
from sync_server.web import pages

script = ScriptDirectory.from_config(alembic_config(make_url("postgresql+psycopg://x@/y")))
print(json.dumps({
    "sync_server": sync_server.__file__,
    "shared_models": shared_models.__file__,
    "alembic": script.dir,
    "revisions": len(list(script.walk_revisions())),
    "booking_template": pages.TEMPLATES.get_template("details.html").filename,
    "static": str(pages.STATIC_DIR),
    "reminder_templates": str(TEMPLATES_DIR),
    "formulary": len(shared_models.prescribing.formulary().medicines) > 0,
    "lab_tests": len(shared_models.lab_tests.catalogue().tests) > 0,
}))
"""


def test_the_unpacked_wheel_imports_and_finds_its_own_files(built: Built, tmp_path: Path
                                                            ) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(built.wheel) as archive:
        archive.extractall(site)
    # Run from tmp_path, so the checkout is not on sys.path through the current folder.
    result = subprocess.run([sys.executable, "-c", UNPACKED_PROBE, str(site)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)

    assert Path(found["sync_server"]) == site / "sync_server" / "__init__.py"
    assert Path(found["shared_models"]) == site / "shared_models" / "__init__.py"
    assert Path(found["alembic"]) == site / "sync_server" / "migrations"
    assert found["revisions"] == len(_git_files("sync_server/migrations/versions/*.py"))
    assert Path(found["booking_template"]).is_relative_to(site)
    assert Path(found["static"]) == site / "sync_server" / "web" / "static"
    assert (Path(found["static"]) / "booking.css").is_file()
    assert Path(found["reminder_templates"]) == site / "sync_server" / "reminders" / "templates"
    assert found["formulary"] is True
    assert found["lab_tests"] is True


def test_the_command_fails_naming_a_revision_missing_from_a_wheel(built: Built,
                                                                   tmp_path: Path) -> None:
    """--check-only on a wheel whose package-data lost a migration: exit 1, the file named."""
    with zipfile.ZipFile(built.wheel) as source:
        revision = max(n for n in source.namelist() if "/migrations/versions/" in n)
        broken = tmp_path / built.wheel.name
        with zipfile.ZipFile(broken, "w") as target:
            for item in source.infolist():
                if item.filename != revision:
                    target.writestr(item, source.read(item))
    (tmp_path / built.sdist.name).write_bytes(built.sdist.read_bytes())

    result = subprocess.run([sys.executable, str(SCRIPT), "--check-only", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1
    assert failed[0].startswith(f"FAILED: wheel: missing {revision} (")


def test_bad_input_exits_2_saying_what_to_fix(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check-only", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "must hold exactly one consulta wheel and one sdist" in result.stderr
