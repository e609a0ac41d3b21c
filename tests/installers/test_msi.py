"""installers/build-msi and installers/verify-msi, for real: two signed MSIs built from this
checkout (the second from a copy whose pyproject says the next version), checked by the
verifier, then installed, upgraded, downgraded and uninstalled with wine's msiexec while
the installed Python opens an encrypted store in the user's data folder.

The tools come from Debian (wixl, msitools, osslsigncode, wine, mingw-w64; .ci/run installs
them). Without them the tests are skipped on a workstation and fail under CI.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.installers.tools import require

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "installers" / "build-msi"
VERIFY = ROOT / "installers" / "verify-msi"
WINE_FILES = Path(__file__).parent / "wine"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
MSI_TOOLS = ("wixl", "msibuild", "msiinfo", "msiextract", "osslsigncode", "openssl")
WINE_TOOLS = ("wine", "wineserver", "x86_64-w64-mingw32-gcc")
SERVER_URL = "https://consulta.clinica.example"
ENROLMENT_CODE = "K7QM-2PXD-9WTR"


def next_version(version: str) -> str:
    major, minor, patch = version.split(".")
    return f"{major}.{minor}.{int(patch) + 1}"




@dataclass(frozen=True)
class Build:
    msi: Path
    cert: Path
    app: Path
    record: dict[str, object]
    stdout: str


def build_msi(source: Path, out: Path, work: Path) -> Build:
    done = subprocess.run([sys.executable, str(source / "installers" / "build-msi"),
                           "--throwaway-cert", "--keep-app", "--out", str(out),
                           "--work", str(work)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout.strip().splitlines()[-1])
    name = Path(str(record["msi"])).stem
    full = json.loads((out / f"{name}.json").read_text())
    return Build(msi=out / f"{name}.msi", cert=out / f"{name}.test-cert.pem",
                 app=out / f"{name}-app", record=full, stdout=done.stdout)


def checkout_copy(target: Path, version: str) -> Path:
    """This checkout's files (committed or not, never ignored ones) with another version."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached",
                             "--others", "--exclude-standard"], capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    subprocess.run(["git", "init", "-q", str(target)], check=True)
    pyproject = target / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'version = "{VERSION}"',
                                                       f'version = "{version}"', 1))
    return target


def verify(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(VERIFY), *map(str, args)], capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Build, Build]:
    require(*MSI_TOOLS)
    base = tmp_path_factory.mktemp("msi")
    first = build_msi(ROOT, base / "dist", base / "work")
    newer = checkout_copy(base / "newer-checkout", next_version(VERSION))
    second = build_msi(newer, base / "dist", base / "work-newer")
    return first, second


def test_build_prints_its_time_and_size_and_records_them(builds: tuple[Build, Build]) -> None:
    first, second = builds
    for build, version in ((first, VERSION), (second, next_version(VERSION))):
        assert build.msi.name == f"consulta-desk-{version}-x64.msi"
        assert re.search(r"Built .+\.msi \(\d+\.\d MiB, \d+ files\) in \d+\.\d s", build.stdout)
        assert build.record["msi_bytes"] == build.msi.stat().st_size
        assert build.record["sha256"] == hashlib.sha256(build.msi.read_bytes()).hexdigest()
        assert float(str(build.record["seconds"])) > 0
        assert build.record["version"] == version
    # the same pinned inputs: only this project's own files differ between the two
    assert first.record["python_embed"] == second.record["python_embed"]
    assert [w for w in first.record["wheels"] if not str(w).startswith("consulta-")] == \
        [w for w in second.record["wheels"] if not str(w).startswith("consulta-")]


def test_two_builds_of_one_commit_hold_the_same_files(builds: tuple[Build, Build],
                                                    tmp_path: Path) -> None:
    first, _ = builds
    done = subprocess.run([sys.executable, str(BUILD), "--app-only", "--out",
                           str(tmp_path / "out"), "--work", str(tmp_path / "elsewhere")],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    again = json.loads(done.stdout.strip().splitlines()[-1])
    assert again["app_files"] == first.record["app_files"]
    assert again["app_sha256"] == first.record["app_sha256"]
    # nothing inside says where or by whom it was built
    leaks = [p for p in (tmp_path / "out").rglob("*") if p.is_file()
             and str(tmp_path).encode() in p.read_bytes()]
    assert leaks == []


def test_verify_msi_passes_on_what_build_msi_made(builds: tuple[Build, Build]) -> None:
    first, _ = builds
    done = verify(first.msi, "--ca-file", first.cert, "--app-dir", first.app,
                  "--version", VERSION)
    assert done.returncode == 0, done.stdout
    for line in ("ok   Authenticode signature valid", "ok   signature digest is SHA-256",
                 "ok   table File present", "ok   table Component present",
                 "ok   table Shortcut present", "ok   table Upgrade present",
                 "ok   every file of the application folder is in the MSI",
                 "ok   every file in the MSI is byte for byte the application folder's",
                 "ok   the packages inside are the pinned runtime packages",
                 "ok   no test, lint or build tool inside", "all checks passed"):
        assert line in done.stdout


def test_the_second_build_upgrades_the_first_in_place(builds: tuple[Build, Build]) -> None:
    first, second = builds
    done = verify(second.msi, "--ca-file", second.cert, "--app-dir", second.app,
                  "--previous", first.msi)
    assert done.returncode == 0, done.stdout
    assert "ok   same UpgradeCode as the previous MSI" in done.stdout
    assert "ok   a new ProductCode (a major upgrade)" in done.stdout
    assert f"ok   installing {next_version(VERSION)} replaces {VERSION} in place" in done.stdout
    # and not the other way round
    backwards = verify(first.msi, "--ca-file", first.cert, "--previous", second.msi)
    assert backwards.returncode == 1
    assert f"FAIL version {VERSION} is higher than {next_version(VERSION)}" in backwards.stdout


def test_the_package_holds_only_runtime_packages(builds: tuple[Build, Build]) -> None:
    first, _ = builds
    listed = [re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() for line in
              (first.app / "packages.txt").read_text().splitlines()
              if "==" in line]
    assert {"consulta", "pyside6-essentials", "sqlcipher3"} <= set(listed)
    assert {"pywin32-ctypes", "tzdata"} <= set(listed)  # Windows-only markers resolved
    for tool in ("pytest", "hypothesis", "ruff", "mypy", "playwright", "schemathesis",
                 "aiosmtpd", "time-machine", "pip", "setuptools"):
        assert tool not in listed
    for server_only in ("fastapi", "uvicorn", "psycopg", "alembic", "pgserver",
                        "apscheduler", "jinja2", "secretstorage"):
        assert server_only not in listed


def test_a_changed_byte_breaks_the_signature(builds: tuple[Build, Build],
                                             tmp_path: Path) -> None:
    first, _ = builds
    tampered = tmp_path / "tampered.msi"
    shutil.copy2(first.msi, tampered)
    subprocess.run(["msibuild", str(tampered), "-q",
                    "UPDATE Property SET Value='Someone Else' WHERE Property='Manufacturer'"],
                   check=True)
    done = verify(tampered, "--ca-file", first.cert)
    assert done.returncode == 1
    assert "FAIL Authenticode signature valid" in done.stdout


def test_verify_msi_reports_a_file_missing_from_the_msi(builds: tuple[Build, Build],
                                                        tmp_path: Path) -> None:
    first, _ = builds
    app = tmp_path / "app"
    shutil.copytree(first.app / "python" / "Lib" / "site-packages" / "desktop", app / "x")
    done = verify(first.msi, "--ca-file", first.cert, "--app-dir", app)
    assert done.returncode == 1
    assert "FAIL every file of the application folder is in the MSI" in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--throwaway-cert", "--version", "1.2"], "cannot be an MSI version"),
    (["--throwaway-cert", "--version", "256.0.0"], "cannot be an MSI version"),
    ([], "Say how to sign"),
    (["--pfx", "/nonexistent/codesign.pfx"], "No certificate file"),
    (["--pkcs11-module", "/usr/lib/opensc-pkcs11.so"], "needs --pkcs11-cert and --pkcs11-key"),
])
def test_build_msi_refuses_bad_input_before_building(args: list[str], message: str,
                                                     tmp_path: Path) -> None:
    require(*MSI_TOOLS)
    done = subprocess.run([sys.executable, str(BUILD), "--out", str(tmp_path / "out"),
                           "--work", str(tmp_path / "work"), *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "out").exists()


def test_verify_msi_refuses_a_missing_file(tmp_path: Path) -> None:
    done = verify(tmp_path / "nothing.msi")
    assert done.returncode == 2
    assert "no file" in done.stderr


# -- under wine ---------------------------------------------------------------------------

class Wine:
    """A fresh 64-bit wine prefix: a Windows machine with one user and no display."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.env = {**os.environ, "WINEPREFIX": str(prefix), "WINEARCH": "win64",
                    "WINEDEBUG": "-all", "WINEDLLOVERRIDES": "mscoree,mshtml="}
        self.env.pop("DISPLAY", None)

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        # wine's programs hang on an open terminal input; give them none.
        return subprocess.run(["wine", *args], env=self.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def wait(self) -> None:
        subprocess.run(["wineserver", "-w"], env=self.env, timeout=120, check=False)

    def drive(self, windows_path: str) -> Path:
        return self.prefix / "drive_c" / windows_path.removeprefix("C:\\").replace("\\", "/")

    def msiexec(self, *args: str) -> int:
        done = self.run("msiexec", *args, "/qn")
        self.wait()
        return done.returncode


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wine]:
    require(*WINE_TOOLS)
    machine = Wine(tmp_path_factory.mktemp("wine") / "prefix")
    machine.run("wineboot", "--init", timeout=300)
    machine.wait()
    system32 = machine.prefix / "drive_c" / "windows" / "system32"
    for source in sorted(WINE_FILES.glob("*.c")):
        subprocess.run(["x86_64-w64-mingw32-gcc", "-shared", "-O2", "-o",
                        str(system32 / f"{source.stem}.dll"), str(source)], check=True,
                       timeout=120)
    yield machine
    subprocess.run(["wineserver", "-k"], env=machine.env, timeout=60, check=False)


INSTALL_DIR = "C:\\Program Files\\Consulta Desk"
PYTHON = INSTALL_DIR + "\\python\\python.exe"
MACHINE_FILE = "C:\\ProgramData\\Consulta\\Consulta\\consulta-desk.json"


def app_check(wine: Wine, mode: str) -> dict[str, object]:
    script = wine.drive("C:\\installed_app_check.py")
    shutil.copy2(WINE_FILES / "installed_app_check.py", script)
    done = wine.run(PYTHON, "C:\\installed_app_check.py", mode, timeout=180)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert lines, done.stdout[-2000:]
    return dict(json.loads(lines[-1]))


def installed_products(wine: Wine) -> list[str]:
    done = wine.run("reg", "query",
                    "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall", "/s")
    return re.findall(r"DisplayName\s+REG_SZ\s+(Consulta Desk.*)", done.stdout) + \
        re.findall(r"DisplayVersion\s+REG_SZ\s+(\S+)", done.stdout)


def shortcut(wine: Wine) -> list[Path]:
    return list((wine.prefix / "drive_c").glob("**/Start Menu/Programs/Consulta/*.lnk"))


def test_install_upgrade_and_uninstall_under_wine_keep_the_data(
        builds: tuple[Build, Build], wine: Wine) -> None:
    first, second = builds
    install_dir = wine.drive(INSTALL_DIR)
    machine_file = wine.drive(MACHINE_FILE)

    # A bad address from IT stops the install and leaves nothing behind.
    assert wine.msiexec("/i", str(first.msi), "SERVER_URL=http://consulta.example") != 0
    assert not (install_dir / "python").exists()
    assert not machine_file.exists()
    error = machine_file.with_name("consulta-desk-install-error.txt").read_text()
    assert "must start with https://" in error

    # The first install, as group policy would run it.
    assert wine.msiexec("/i", str(first.msi), f"SERVER_URL={SERVER_URL}",
                        f"ENROLMENT_CODE={ENROLMENT_CODE}") == 0
    assert (install_dir / "python" / "pythonw.exe").is_file()
    assert (install_dir / "packages.txt").read_text().count(f"consulta=={VERSION}") == 1
    assert len(shortcut(wine)) == 1
    assert json.loads(machine_file.read_text()) == {"server_url": SERVER_URL,
                                                     "enrolment_code": ENROLMENT_CODE}
    seen = app_check(wine, "create")
    assert seen["python"] == "3.11.9"
    assert seen["executable"] == PYTHON
    assert (seen["key_source"], seen["keyring"]) == ("keyring", "WinVaultKeyring")
    assert str(seen["cipher_version"]).startswith("4.")
    assert (seen["qt_platform"], seen["label_visible"]) == ("offscreen", True)
    assert (seen["preset_server"], seen["preset_code"]) == (SERVER_URL, ENROLMENT_CODE)
    store = wine.drive(str(seen["store"]))
    assert store.is_file()
    assert not store.read_bytes().startswith(b"SQLite format 3")  # encrypted
    before = hashlib.sha256(store.read_bytes()).hexdigest()

    # The upgrade: no properties given, one product afterwards, the data as it was.
    assert wine.msiexec("/i", str(second.msi)) == 0
    products = installed_products(wine)
    assert products.count("Consulta Desk") == 1, products
    assert next_version(VERSION) in products
    assert VERSION not in products
    assert f"consulta=={next_version(VERSION)}" in (install_dir / "packages.txt").read_text()
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    assert json.loads(machine_file.read_text())["server_url"] == SERVER_URL
    assert app_check(wine, "reopen")["notes"] == ["kept across upgrades"]

    # The older MSI refuses to replace the newer one.
    assert wine.msiexec("/i", str(first.msi)) != 0
    assert f"consulta=={next_version(VERSION)}" in (install_dir / "packages.txt").read_text()

    # Uninstall: the program goes, the user's data and IT's settings stay.
    assert wine.msiexec("/x", str(second.msi)) == 0
    assert not (install_dir / "python").exists()
    assert shortcut(wine) == []
    assert "Consulta Desk" not in installed_products(wine)
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    assert machine_file.is_file()
