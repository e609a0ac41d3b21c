"""The machine-wide settings clinic IT pre-sets (the MSI's SERVER_URL and ENROLMENT_CODE):
written by `python -m desktop.machine_preset` as the installer, read by the app on first
run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.config import (
    ConfigError,
    MachinePreset,
    machine_config_path,
    machine_preset,
    write_machine_preset,
)
from desktop.machine_preset import ERROR_FILE
from desktop.machine_preset import main as preset_main

URL = "https://consulta.clinica.example"


@pytest.fixture
def machine_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ProgramData" / "Consulta" / "consulta-desk.json"
    monkeypatch.setenv("CONSULTA_DESK_MACHINE_CONFIG", str(path))
    return path


def test_no_file_means_nothing_pre_set(machine_file: Path) -> None:
    assert machine_config_path() == machine_file
    assert machine_preset() == MachinePreset()


def test_what_the_installer_writes_the_app_reads(machine_file: Path) -> None:
    assert preset_main(["--server-url", f" {URL}/ ", "--enrolment-code", "K7QM-2PXD"]) == 0
    assert json.loads(machine_file.read_text()) == {"server_url": URL,
                                                     "enrolment_code": "K7QM-2PXD"}
    assert machine_preset() == MachinePreset(server_url=URL, enrolment_code="K7QM-2PXD")
    assert not list(machine_file.parent.glob("*.partial"))


def test_an_upgrade_without_the_properties_keeps_what_was_set(machine_file: Path) -> None:
    write_machine_preset(MachinePreset(server_url=URL, enrolment_code="K7QM-2PXD"))
    # msiexec passes properties it was not given as empty strings
    assert preset_main(["--server-url", "", "--enrolment-code", ""]) == 0
    assert machine_preset() == MachinePreset(server_url=URL, enrolment_code="K7QM-2PXD")
    assert preset_main(["--enrolment-code", "NEW1-CODE"]) == 0
    assert machine_preset() == MachinePreset(server_url=URL, enrolment_code="NEW1-CODE")


@pytest.mark.parametrize(("url", "message"), [
    ("http://consulta.clinica.example", "must start with https://"),
    ("consulta.clinica.example", "Write the server address in full"),
    ("https://consulta.clinica.example/?next=x", "cannot contain"),
])
def test_a_bad_address_stops_the_install_with_the_reason_and_keeps_the_old_file(
        machine_file: Path, url: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    write_machine_preset(MachinePreset(server_url=URL))
    before = machine_file.read_bytes()
    assert preset_main(["--server-url", url, "--enrolment-code", "SECRET-CODE"]) == 2
    assert machine_file.read_bytes() == before
    reason = (machine_file.parent / ERROR_FILE).read_text()
    assert message in reason
    assert message in capsys.readouterr().err
    assert "SECRET-CODE" not in reason  # the code is never written to a log
    # the next good run clears the reason
    assert preset_main(["--server-url", URL]) == 0
    assert not (machine_file.parent / ERROR_FILE).exists()


@pytest.mark.parametrize("code", ["X" * 41, "AB\nCD"])
def test_an_unusable_enrolment_code_is_refused(machine_file: Path, code: str) -> None:
    with pytest.raises(ConfigError, match="enrolment code"):
        write_machine_preset(MachinePreset(enrolment_code=code))
    assert not machine_file.exists()


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('["https://x.example"]', "not a Consulta settings file"),
    ('{"server_url": 42}', "must be text"),
    ('{"server_url": "http://x.example"}', "must start with https://"),
])
def test_a_damaged_file_is_reported_not_guessed(machine_file: Path, content: str,
                                                message: str) -> None:
    machine_file.parent.mkdir(parents=True)
    machine_file.write_text(content)
    with pytest.raises(ConfigError, match=message):
        machine_preset()


def test_a_new_install_replaces_a_damaged_file(machine_file: Path) -> None:
    machine_file.parent.mkdir(parents=True)
    machine_file.write_text("{not json")
    assert preset_main(["--server-url", URL]) == 0
    assert machine_preset() == MachinePreset(server_url=URL)


def test_the_module_runs_as_the_installer_runs_it(machine_file: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "desktop.machine_preset", "--server-url", URL,
                           "--enrolment-code", "K7QM-2PXD"], capture_output=True, text=True,
                          env={**os.environ}, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert machine_preset().server_url == URL
