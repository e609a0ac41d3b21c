"""What the installer scripts (build-msi, verify-msi, build-dmg, build-server) share: the
project's version, the build time for reproducible archives, file hashes, and reading pin
files and installed distributions. Standard library only: the scripts run on bare build
machines and Macs."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)")


def project_version(root: Path = ROOT) -> str:
    return str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])


def source_date_epoch(root: Path = ROOT) -> str | None:
    """SOURCE_DATE_EPOCH as set, else the last commit's time, else None."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return os.environ["SOURCE_DATE_EPOCH"]
    try:
        out = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%ct"],
                             check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return out or None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def normalise(name: str) -> str:
    """A distribution's name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line of a pin file."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[normalise(match[1])] = match[2]
    return pins


def installed_distributions(site: Path) -> dict[str, str]:
    """Name (as its METADATA writes it) -> version of every distribution in a folder."""
    found = {}
    for meta in sorted(site.glob("*.dist-info/METADATA")):
        head = meta.read_text(encoding="utf-8").split("\n\n", 1)[0]
        fields = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
        found[fields["Name"]] = fields["Version"]
    return found
