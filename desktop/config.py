"""Where this computer keeps its Consulta data, and which server it talks to.

Per-user data lives in the platform's data folder (or CONSULTA_DESK_DATA): the encrypted
store and `device.json`, which names the server and this computer's device id, never a
secret (the device secret is kept inside the encrypted store). Clinic IT can pre-set the
server address and an enrolment code in a machine-wide file (the installer writes it),
read on first run only.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

APP_NAME = "Consulta"
STORE_FILE = "consulta.db"
DEVICE_FILE = "device.json"
MACHINE_FILE = "consulta-desk.json"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_CODE_LENGTH = 40  # the server refuses longer enrolment codes


class ConfigError(ValueError):
    """A setting a person typed or IT provided is not usable; the message says why."""


def data_dir() -> Path:
    return Path(os.environ.get("CONSULTA_DESK_DATA") or platformdirs.user_data_dir(APP_NAME))


def machine_config_path() -> Path:
    return Path(os.environ.get("CONSULTA_DESK_MACHINE_CONFIG")
                or Path(platformdirs.site_config_dir(APP_NAME)) / MACHINE_FILE)


def check_server_url(raw: str) -> str:
    """The server's base address; plain http only to this computer itself (DESIGN §8)."""
    url = raw.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError("Write the server address in full, e.g. https://consulta.miclinica.cl")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise ConfigError("The server address must start with https:// so patient data is "
                          "encrypted on the way; plain http is only allowed to this computer.")
    if parts.query or parts.fragment:
        raise ConfigError("The server address cannot contain '?' or '#'.")
    return url


@dataclass(frozen=True)
class Enrolment:
    """This computer's enrolment: which server, which clinic, which device."""

    server_url: str
    device_id: uuid.UUID
    clinic_id: uuid.UUID
    store_id: str  # names the store's key in the OS keyring

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        record = {k: str(v) for k, v in asdict(self).items()}
        (folder / DEVICE_FILE).write_text(json.dumps(record, indent=2))

    @classmethod
    def load(cls, folder: Path) -> Enrolment | None:
        path = folder / DEVICE_FILE
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text())
            return cls(server_url=check_server_url(raw["server_url"]),
                       device_id=uuid.UUID(raw["device_id"]),
                       clinic_id=uuid.UUID(raw["clinic_id"]), store_id=str(raw["store_id"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is damaged; enrol this computer again.") from exc


@dataclass(frozen=True)
class MachinePreset:
    """What clinic IT pre-set for every user of this computer."""

    server_url: str | None = None
    enrolment_code: str | None = None


def machine_preset(path: Path | None = None) -> MachinePreset:
    path = path or machine_config_path()
    if not path.exists():
        return MachinePreset()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON; ask IT to reinstall Consulta.") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} is not a Consulta settings file; ask IT to reinstall "
                          "Consulta.")
    url, code = raw.get("server_url"), raw.get("enrolment_code")
    if not isinstance(url, str | None) or not isinstance(code, str | None):
        raise ConfigError(f"{path}: server_url and enrolment_code must be text; ask IT to "
                          "reinstall Consulta.")
    try:
        return MachinePreset(server_url=check_server_url(url) if url else None,
                             enrolment_code=code or None)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (set by IT in {path}; ask IT to reinstall Consulta with "
                          "the right SERVER_URL)") from exc


def write_machine_preset(preset: MachinePreset, path: Path | None = None) -> Path:
    """Merge what the installer was given into the machine-wide file, keeping what an
    earlier install set and this one did not (an upgrade run without the properties)."""
    path = path or machine_config_path()
    url = check_server_url(preset.server_url) if preset.server_url else None
    code = (preset.enrolment_code or "").strip() or None
    if code is not None and (len(code) > MAX_CODE_LENGTH or not code.isprintable()):
        raise ConfigError(f"The enrolment code must be at most {MAX_CODE_LENGTH} printable "
                          "characters, as the clinic admin gave it.")
    try:
        current = machine_preset(path)
    except ConfigError:  # a damaged file is replaced by what IT gives now
        current = MachinePreset()
    record = {"server_url": url or current.server_url,
              "enrolment_code": code or current.enrolment_code}
    path.parent.mkdir(parents=True, exist_ok=True)
    # A whole file or the old one, never half of one: write beside it, then swap.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({k: v for k, v in record.items() if v}, indent=2) + "\n",
                       encoding="utf-8")
    os.replace(partial, path)
    return path
