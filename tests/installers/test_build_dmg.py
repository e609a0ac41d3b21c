"""installers/build-dmg: the inputs it refuses, the steps and commands it plans, the bundle it
lays out (on any system), and the macOS pin files it downloads from."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import plistlib
import re
import struct
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "installers" / "build-dmg"
MACOS = ROOT / "installers" / "macos"
MAC_PINS = [MACOS / "requirements.txt", MACOS / "requirements-x86_64.txt"]
IDENTITY = "Developer ID Application: Consulta SpA (AB12CD34EF)"
PROFILE = "consulta-notary"
ARM64, X86_64 = 0x0100000C, 0x01000007
TEST_TOOLS = {"pytest", "pytest-asyncio", "pytest-qt", "hypothesis", "ruff", "mypy",
              "playwright", "schemathesis", "aiosmtpd", "time-machine"}
SERVER_ONLY = {"fastapi", "starlette", "uvicorn", "psycopg", "psycopg-binary", "psycopg-pool",
               "alembic", "pgserver", "apscheduler", "jinja2", "icalendar",
               "pydantic-settings", "python-multipart"}


def load_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("build_dmg", str(SCRIPT))
    spec = importlib.util.spec_from_loader("build_dmg", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_dmg"] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dmg() -> ModuleType:
    return load_script()


def macho(cpu: int, filetype: int = 2) -> bytes:
    return b"\xcf\xfa\xed\xfe" + struct.pack("<III", cpu, 0, filetype) + b"\0" * 48


def universal(*cpus: int, filetype: int = 6) -> bytes:
    """A fat file whose slices start at 4096-byte offsets, as lipo lays them out."""
    head = b"\xca\xfe\xba\xbe" + struct.pack(">I", len(cpus))
    for index, cpu in enumerate(cpus):
        head += struct.pack(">IIIII", cpu, 0, 4096 * (index + 1), 64, 12)
    body = bytearray(head.ljust(4096 * (len(cpus) + 1), b"\0"))
    for index, cpu in enumerate(cpus):
        start = 4096 * (index + 1)
        body[start:start + 64] = macho(cpu, filetype)[:64]
    return bytes(body)


def fake_runtime(folder: Path, *, cpu: int = ARM64, elf: bool = False) -> Path:
    """The layout of python-build-standalone's install_only `python` folder."""
    python = folder / "python"
    (python / "bin").mkdir(parents=True)
    (python / "lib" / "python3.11").mkdir(parents=True)
    (python / "lib" / "python3.11" / "os.py").write_text("# the standard library\n")
    interpreter = python / "bin" / "python3.11"
    interpreter.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 60 if elf else macho(cpu))
    interpreter.chmod(0o755)
    (python / "bin" / "pip3").write_text("#!/install/bin/python3.11\n")
    (python / "lib" / "libpython3.11.dylib").write_bytes(macho(cpu, 6))
    return python


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin"})


def pyproject_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


# -- the dry run ------------------------------------------------------------------------------

def test_dry_run_prints_every_release_step_in_order(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    done = run_script("--dry-run", "--python-runtime", str(runtime), "--identity", IDENTITY,
                      "--notary-profile", PROFILE)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    version = pyproject_version()
    assert f"consulta-desk-{version}-macos-arm64.dmg" in out
    assert f"<string>{version}</string>" in out
    order = ["pip download --no-deps --require-hashes --only-binary=:all: "
             "--platform macosx_13_0_arm64 --python-version 3.11 --implementation cp "
             "--abi cp311 -r " + str(MACOS / "requirements.txt"),
             "pip wheel --no-deps",
             "--target '",
             "-m compileall",
             f"codesign --force --options runtime --timestamp --entitlements "
             f"{MACOS / 'entitlements.plist'} --sign '{IDENTITY}' '<every Mach-O file",
             "'<each .framework",
             "codesign --verify --deep --strict",
             f"-m dmgbuild -s {MACOS / 'dmg_settings.py'} -D 'app=",
             "codesign --force --timestamp --sign",
             f"xcrun notarytool submit {ROOT}/dist/consulta-desk-{version}-macos-arm64.dmg "
             f"--keychain-profile {PROFILE} --wait",
             "xcrun stapler staple",
             "xcrun stapler validate",
             "spctl --assess --type open --context context:primary-signature -v"]
    positions = [out.find(fragment) for fragment in order]
    assert -1 not in positions, [f for f, p in zip(order, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    assert f"'Consulta Desk {version}'" in out  # the volume name
    assert "NOT notarised" not in out + done.stderr


def test_dry_run_marks_which_steps_need_macos(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    done = run_script("--dry-run", "--python-runtime", str(runtime), "--identity", IDENTITY,
                      "--notary-profile", PROFILE)
    marks = {title: mark for mark, title in
             re.findall(r"^\d+\. \[(needs macOS|runs anywhere)\] (.+)$", done.stdout,
                        flags=re.MULTILINE)}
    assert done.returncode == 0, done.stderr
    assert len(marks) == 11
    assert marks["download the macOS wheels (hash-checked)"] == "runs anywhere"
    assert marks["lay out Consulta Desk.app"] == "runs anywhere"
    for title in ("sign inside out with the hardened runtime", "verify the signature",
                  "build the disk image (dmgbuild runs hdiutil)",
                  "notarise (waits for Apple's answer)", "staple the ticket and check it",
                  "Gatekeeper's assessment"):
        assert marks[title] == "needs macOS", title


def test_version_override_reaches_plist_volume_and_file_name(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    done = run_script("--dry-run", "--python-runtime", str(runtime), "--identity", IDENTITY,
                      "--notary-profile", PROFILE, "--version", "2.3.14", "--arch", "x86_64")
    assert done.returncode == 2, done.stdout  # an arm64 runtime for an x86_64 build
    assert "built for arm64, not x86_64" in done.stderr
    runtime_x86 = fake_runtime(tmp_path / "x86", cpu=X86_64)
    done = run_script("--dry-run", "--python-runtime", str(runtime_x86), "--identity", IDENTITY,
                      "--notary-profile", PROFILE, "--version", "2.3.14", "--arch", "x86_64")
    assert done.returncode == 0, done.stderr
    assert "consulta-desk-2.3.14-macos-x86_64.dmg" in done.stdout
    assert "'Consulta Desk 2.3.14'" in done.stdout
    assert "--platform macosx_13_0_x86_64" in done.stdout
    assert str(MACOS / "requirements-x86_64.txt") in done.stdout


def test_skip_notarize_allows_an_ad_hoc_signature_and_says_so_loudly(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    done = run_script("--dry-run", "--python-runtime", str(runtime), "--identity", "-",
                      "--skip-notarize")
    assert done.returncode == 0, done.stderr
    assert "NOT notarised" in done.stderr
    assert "NOT notarised" in done.stdout
    assert "--timestamp=none" in done.stdout  # ad-hoc signatures cannot be timestamped
    assert "notarytool" not in done.stdout
    assert "stapler" not in done.stdout


# -- bad inputs -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (["--identity", "Consulta SpA"], "not a code-signing identity name"),
        (["--identity", "Developer ID Application: Consulta SpA (AB12)"],
         "10-character team id"),
        (["--identity", "Apple Development: Ana Rojas (AB12CD34EF)"],
         "cannot sign a release"),
        (["--identity", "-"], "cannot sign a release"),
        (["--notary-profile", ""], "no notary profile"),
        (["--version", "1.0rc1"], "CFBundleShortVersionString"),
        (["--version", "1.2.3.4"], "CFBundleShortVersionString"),
        (["--version", "01.2"], "CFBundleShortVersionString"),
        (["--arch", "universal2"], "no universal2 wheels"),
        (["--python-runtime", "/nonexistent/python"], "python-build-standalone"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(tmp_path: Path, change: list[str],
                                              problem: str) -> None:
    runtime = fake_runtime(tmp_path)
    args = {"--python-runtime": str(runtime), "--identity": IDENTITY,
            "--notary-profile": PROFILE}
    extra: list[str] = []
    for flag, value in zip(change[::2], change[1::2], strict=True):
        if flag in args:
            args[flag] = value
        else:
            extra += [flag, value]
    argv = [item for flag, value in args.items() if value for item in (flag, value)]
    done = run_script("--dry-run", *argv, *extra)
    assert done.returncode == 2, done.stdout
    assert problem in done.stderr
    assert done.stdout == ""


def test_every_problem_is_listed_not_only_the_first() -> None:
    done = run_script("--dry-run", "--identity", "nobody", "--version", "1.0.0.dev1")
    assert done.returncode == 2
    for problem in ("not a code-signing identity name", "no notary profile",
                    "CFBundleShortVersionString", "no Python runtime: pass --python-runtime"):
        assert problem in done.stderr, problem


def test_identity_and_profile_come_from_the_environment(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--python-runtime",
                           str(runtime)], capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "CONSULTA_MACOS_IDENTITY": IDENTITY,
                               "CONSULTA_NOTARY_PROFILE": PROFILE}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"--keychain-profile {PROFILE} --wait" in done.stdout


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        (lambda rt: (rt / "bin" / "python3.11").unlink(), "has no bin/python3.11"),
        (lambda rt: (rt / "lib" / "python3.11" / "os.py").unlink(), "no standard library"),
        (lambda rt: (rt / "bin" / "python3.11").write_bytes(b"\x7fELF" + b"\0" * 60),
         "Linux (ELF) build"),
        (lambda rt: (rt / "bin" / "python3.11").write_bytes(macho(X86_64)),
         "built for x86_64, not arm64"),
        (lambda rt: (rt / "bin" / "python3.11").chmod(0o644), "is not executable"),
    ],
)
def test_a_runtime_that_is_not_a_macos_cpython_311_is_refused(
        dmg: ModuleType, tmp_path: Path, setup: Callable[[Path], object], problem: str) -> None:
    runtime = fake_runtime(tmp_path)
    assert dmg.check_runtime(runtime, "arm64") == []
    setup(runtime)
    problems = dmg.check_runtime(runtime, "arm64")
    assert len(problems) == 1
    assert problem in problems[0]


def test_a_universal_runtime_serves_both_architectures(dmg: ModuleType,
                                                      tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    (runtime / "bin" / "python3.11").write_bytes(universal(X86_64, ARM64, filetype=2))
    assert dmg.check_runtime(runtime, "arm64") == []
    assert dmg.check_runtime(runtime, "x86_64") == []


def test_an_entitlement_outside_the_allow_list_is_refused(
        dmg: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    entitlements = tmp_path / "entitlements.plist"
    entitlements.write_bytes(plistlib.dumps({
        "com.apple.security.cs.allow-unsigned-executable-memory": True,
        "com.apple.security.cs.disable-library-validation": True}))
    monkeypatch.setattr(dmg, "ENTITLEMENTS", entitlements)
    code = dmg.main(["--dry-run", "--python-runtime", str(fake_runtime(tmp_path)),
                     "--identity", IDENTITY, "--notary-profile", PROFILE])
    assert code == 2
    err = capsys.readouterr().err
    assert "com.apple.security.cs.disable-library-validation is not in build-dmg's " \
           "allow-list" in err
    assert "allow-unsigned-executable-memory is not" not in err


def test_entitlements_must_parse_and_be_true(dmg: ModuleType, tmp_path: Path) -> None:
    broken = tmp_path / "broken.plist"
    broken.write_text("<plist><dict><key>x</key>")
    assert "is not a property list" in dmg.check_entitlements(broken)[0]
    false = tmp_path / "false.plist"
    false.write_bytes(plistlib.dumps(
        {"com.apple.security.cs.allow-unsigned-executable-memory": False}))
    assert "must be <true/>" in dmg.check_entitlements(false)[0]
    assert "is missing" in dmg.check_entitlements(tmp_path / "none.plist")[0]


def test_the_shipped_entitlements_are_allowed_and_minimal(dmg: ModuleType) -> None:
    assert dmg.check_entitlements(MACOS / "entitlements.plist") == []
    shipped = plistlib.loads((MACOS / "entitlements.plist").read_bytes())
    assert shipped == {"com.apple.security.cs.allow-unsigned-executable-memory": True}


HASH = " \\\n    --hash=sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("keyring>=25" + HASH, "keyring>=25 is not pinned"),
        ("keyring", "keyring is not pinned"),
        ("keyring==25.7.0", "keyring==25.7.0 has no --hash"),
        ('keyring==25.7.0 ; sys_platform == "darwin"' + HASH, "environment markers"),
    ],
)
def test_an_unpinned_requirement_is_refused(dmg: ModuleType, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str],
                                            line: str, problem: str) -> None:
    good = [f"{name}==1.0{HASH}" for name in dmg.ESSENTIAL if name != "keyring"]
    pins = tmp_path / "requirements.txt"
    pins.write_text("# header\n" + "\n".join([*good, line]) + "\n")
    monkeypatch.setattr(dmg, "PINS", {**dmg.PINS, "arm64": pins})
    code = dmg.main(["--dry-run", "--python-runtime", str(fake_runtime(tmp_path)),
                     "--identity", IDENTITY, "--notary-profile", PROFILE])
    assert code == 2
    assert problem in capsys.readouterr().err


def test_a_pin_file_without_an_essential_package_is_refused(dmg: ModuleType,
                                                            tmp_path: Path) -> None:
    pins = tmp_path / "requirements.txt"
    pins.write_text(f"keyring==25.7.0{HASH}\ncryptography==50.0.2{HASH}\n")
    names, problems = dmg.check_pins(pins)
    assert names == {"keyring": "25.7.0", "cryptography": "50.0.2"}
    assert problems == ["requirements.txt lacks pyside6-essentials, shiboken6, sqlcipher3, "
                        "without which the app cannot start"]


def test_without_dry_run_off_macos_exits_2_naming_the_macos_steps(
        dmg: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    code = dmg.main(["--python-runtime", str(fake_runtime(tmp_path)), "--identity", IDENTITY,
                     "--notary-profile", PROFILE])
    assert code == 2
    err = capsys.readouterr().err
    assert "this is not macOS" in err
    assert "--dry-run" in err
    for step in ("sign inside out", "dmgbuild runs hdiutil", "notarise", "staple"):
        assert step in err


@pytest.mark.skipif(sys.platform == "darwin", reason="a real build would start on macOS")
def test_without_dry_run_on_this_linux_machine_exits_2(tmp_path: Path) -> None:
    done = run_script("--python-runtime", str(fake_runtime(tmp_path)), "--identity", IDENTITY,
                      "--notary-profile", PROFILE)
    assert done.returncode == 2
    assert "this is not macOS" in done.stderr


# -- what the bundle holds ----------------------------------------------------------------

def test_info_plist_parses_and_carries_the_version(dmg: ModuleType) -> None:
    plist = plistlib.loads(dmg.info_plist_bytes("1.4.2"))
    assert plist["CFBundleShortVersionString"] == "1.4.2"
    assert plist["CFBundleVersion"] == "1.4.2"
    assert plist["CFBundleIdentifier"] == "cl.consulta.desk"
    assert plist["CFBundleExecutable"] == "consulta-desk"
    assert plist["CFBundlePackageType"] == "APPL"
    assert plist["LSMinimumSystemVersion"] == "13.0"
    assert plist["NSHighResolutionCapable"] is True
    assert plist["NSPrincipalClass"] == "NSApplication"


def test_the_launcher_runs_the_bundled_python_isolated(dmg: ModuleType,
                                                      tmp_path: Path) -> None:
    contents = tmp_path / "Consulta Desk.app" / "Contents"
    (contents / "MacOS").mkdir(parents=True)
    python = contents / "Resources" / "python" / "bin" / "python3.11"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$0" "$@"\n')
    python.chmod(0o755)
    launcher = contents / "MacOS" / "consulta-desk"
    launcher.write_text(dmg.LAUNCHER)
    launcher.chmod(0o755)
    done = subprocess.run([str(launcher), "--demo"], capture_output=True, text=True,
                          cwd="/", check=True, timeout=10)
    assert done.stdout.split() == [*str(python).split(), "-I", "-B", "-m", "desktop.ui.app",
                                   "--demo"]


def test_macho_headers_are_read_for_thin_and_universal_files(dmg: ModuleType,
                                                             tmp_path: Path) -> None:
    thin, fat, text = tmp_path / "thin", tmp_path / "fat", tmp_path / "text"
    thin.write_bytes(macho(ARM64, 6))
    fat.write_bytes(universal(X86_64, ARM64, filetype=8))
    text.write_text("#!/bin/sh\n")
    assert dmg.macho_arches(thin) == {"arm64"}
    assert dmg.macho_arches(fat) == {"arm64", "x86_64"}
    assert dmg.macho_arches(text) is None
    assert dmg.macho_filetype(thin) == 6
    assert dmg.macho_filetype(fat) == 8


def make_wheel(folder: Path, name: str, files: dict[str, bytes]) -> Path:
    dist = f"{name}-1.0.dist-info"
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{dist}/METADATA",
                         f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        archive.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                         "Root-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{dist}/RECORD", "".join(f"{p},,\n" for p in files)
                         + f"{dist}/METADATA,,\n{dist}/WHEEL,,\n{dist}/RECORD,,\n")
    return wheel


def test_lay_out_builds_a_signable_bundle_offline(dmg: ModuleType, tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "wheels").mkdir(parents=True)
    (work / "own-wheel").mkdir()
    framework = "PySide6/Qt/lib/QtCore.framework"
    make_wheel(work / "wheels", "PySide6_Essentials", {
        "PySide6/__init__.py": b"",
        "PySide6/QtCore.abi3.so": universal(X86_64, ARM64, filetype=8),
        f"{framework}/Resources/Info.plist": b"<plist/>",
        f"{framework}/Versions/A/QtCore": universal(X86_64, ARM64, filetype=6),
        f"{framework}/Versions/A/Resources/Info.plist": b"<plist/>",
        "PySide6/Designer.app/Contents/MacOS/Designer": macho(ARM64),
        "PySide6/qmlls": macho(ARM64),
        "PySide6/Qt/qml/x/objects-RelWithDebInfo/init.cpp.o": macho(ARM64, 1),
        "PySide6/Qt/qml/x/libplugin.a": b"!<arch>\n",
    })
    make_wheel(work / "own-wheel", "consulta", {"desktop/__init__.py": b""})
    config = dmg.Config(version="1.4.2", arch="arm64", identity="-", notary_profile=None,
                        runtime=fake_runtime(tmp_path), out=tmp_path / "out", work=work,
                        skip_notarize=True)
    dmg.lay_out(config)
    contents = config.app / "Contents"
    site = contents / "Resources" / "python" / "lib" / "python3.11" / "site-packages"
    assert plistlib.loads((contents / "Info.plist").read_bytes())[
        "CFBundleShortVersionString"] == "1.4.2"
    assert (contents / "MacOS" / "consulta-desk").stat().st_mode & 0o111
    assert (site / "desktop" / "__init__.py").is_file()
    assert not (contents / "Resources" / "python" / "bin" / "pip3").exists()
    assert not (site / "PySide6" / "Designer.app").exists()
    assert not (site / "PySide6" / "qmlls").exists()
    assert not list(site.rglob("*.o"))
    assert not list(site.rglob("*.a"))
    packages = (contents / "Resources" / "packages.txt").read_text().splitlines()
    assert packages[1:] == ["PySide6_Essentials==1.0", "consulta==1.0"]
    fw = site / framework
    assert (fw / "Versions" / "Current").readlink() == Path("A")
    assert (fw / "QtCore").readlink() == Path("Versions/Current/QtCore")
    assert (fw / "Resources").readlink() == Path("Versions/Current/Resources")
    assert (fw / "Resources" / "Info.plist").is_file()
    files, frameworks = dmg.signing_order(config.app)
    relative = [f.relative_to(contents).as_posix() for f in files]
    # the framework's binary is signed with its bundle, after every loose binary
    assert frameworks == [fw]
    assert f"Resources/python/lib/python3.11/site-packages/{framework}/Versions/A/QtCore" \
        not in relative
    assert relative[0].endswith("PySide6/QtCore.abi3.so")  # deepest first
    assert set(relative) == {
        "Resources/python/lib/python3.11/site-packages/PySide6/QtCore.abi3.so",
        "Resources/python/lib/libpython3.11.dylib",
        "Resources/python/bin/python3.11"}
    with pytest.raises(dmg.BuildError, match="lack the x86_64 code"):
        dmg.check_binaries(contents / "Resources" / "python", "x86_64")


def test_dmg_settings_hold_the_app_and_an_applications_link() -> None:
    namespace: dict[str, object] = {"defines": {"app": "/build/Consulta Desk.app"}}
    exec(compile((MACOS / "dmg_settings.py").read_text(), "dmg_settings.py", "exec"),  # noqa: S102
         namespace)
    assert namespace["files"] == ["/build/Consulta Desk.app"]
    assert namespace["symlinks"] == {"Applications": "/Applications"}
    assert namespace["format"] in {"UDZO", "ULFO"}
    assert set(namespace["icon_locations"]) == {"Consulta Desk.app",  # type: ignore[arg-type]
                                                "Applications"}


# -- the macOS pin files ------------------------------------------------------------------

def pinned(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


@pytest.mark.parametrize("path", MAC_PINS, ids=lambda p: p.name)
def test_mac_pins_hold_the_desktop_and_nothing_else(dmg: ModuleType, path: Path) -> None:
    names, problems = dmg.check_pins(path)
    assert problems == []
    assert names == pinned(path)
    assert {"pyside6-essentials", "shiboken6", "sqlcipher3", "keyring",
            "cryptography"} <= set(names)
    assert not set(names) & TEST_TOOLS, sorted(set(names) & TEST_TOOLS)
    assert not set(names) & SERVER_ONLY, sorted(set(names) & SERVER_ONLY)
    assert "pywin32-ctypes" not in names  # keyring's Windows backend
    assert "tzdata" not in names  # macOS has the time-zone database
    assert "uv pip compile installers/desktop-requirements.in" in path.read_text()


@pytest.mark.parametrize("path", MAC_PINS, ids=lambda p: p.name)
def test_mac_pins_cover_every_desktop_requirement(path: Path) -> None:
    wanted = set()
    for line in (ROOT / "installers" / "desktop-requirements.in").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and "win32" not in line:
            wanted.add(re.sub(r"[-_.]+", "-", re.split(r"[<>=!;\[\s]", line)[0]).lower())
    assert wanted
    assert wanted <= set(pinned(path)), sorted(wanted - set(pinned(path)))


def test_mac_pins_respect_the_pyside_ceiling() -> None:
    for path in MAC_PINS:
        major, minor = pinned(path)["pyside6-essentials"].split(".")[:2]
        assert (int(major), int(minor)) < (6, 12), path.name
