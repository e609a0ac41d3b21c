"""The signing step of installers/build-msi with each kind of key it accepts, on a small MSI
made with wixl: a PKCS#12 file (password from the environment), a PKCS#11 token (SoftHSM
standing in for the USB token or HSM a code-signing certificate lives on) and the
throwaway certificate of test builds; each result checked with osslsigncode verify."""

from __future__ import annotations

import argparse
import http.server
import importlib.util
import subprocess
import sys
import threading
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

import pytest

from tests.installers.tools import require

ROOT = Path(__file__).resolve().parents[2]
SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "482913"
SMALL_WXS = """<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="Signing check" Manufacturer="Consulta" Version="1.0.0"
           UpgradeCode="0C7E4C55-8D6A-4C1E-9E43-6B7B2D0F4A11" Language="1033">
    <Package InstallerVersion="500" Compressed="yes" InstallScope="perMachine"/>
    <Media Id="1" Cabinet="a.cab" EmbedCab="yes"/>
    <Directory Id="TARGETDIR" Name="SourceDir">
      <Directory Id="ProgramFiles64Folder"><Directory Id="INSTALLDIR" Name="Check">
        <Component Id="C1" Guid="*" Win64="yes">
          <File Id="F1" Source="a.txt" KeyPath="yes"/>
        </Component>
      </Directory></Directory>
    </Directory>
    <Feature Id="F" Level="1"><ComponentRef Id="C1"/></Feature>
  </Product>
</Wix>
"""




@pytest.fixture(scope="module")
def build_msi() -> ModuleType:
    loader = SourceFileLoader("build_msi", str(ROOT / "installers" / "build-msi"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # its dataclasses look themselves up there
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small_msi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("wixl", "osslsigncode", "openssl")
    folder = tmp_path_factory.mktemp("small-msi")
    (folder / "a.txt").write_text("signed content\n")
    (folder / "small.wxs").write_text(SMALL_WXS)
    subprocess.run(["wixl", "-a", "x64", "-o", "small.msi", "small.wxs"], cwd=folder,
                   check=True, capture_output=True)
    return folder / "small.msi"


def certificate(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:3072", "-sha256", "-days", "7",
                    "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-subj", f"/CN={name}/O=Consulta",
                    "-addext", "keyUsage=critical,digitalSignature",
                    "-addext", "extendedKeyUsage=codeSigning"], check=True, capture_output=True)
    return key, cert


def pfx_file(folder: Path, password: str) -> tuple[Path, Path]:
    key, cert = certificate(folder, "Consulta PFX Signing")
    pfx = folder / "codesign.pfx"
    subprocess.run(["openssl", "pkcs12", "-export", "-inkey", str(key), "-in", str(cert),
                    "-out", str(pfx), "-passout", f"pass:{password}"], check=True)
    return pfx, cert


def verified(msi: Path, cert: Path) -> str:
    done = subprocess.run(["osslsigncode", "verify", "-CAfile", str(cert), "-in", str(msi)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Signature verification: ok" in done.stdout
    return done.stdout


def options(**given: object) -> argparse.Namespace:
    base: dict[str, object] = {"throwaway_cert": False, "pfx": None, "pkcs11_module": None,
                               "pkcs11_engine": None, "pkcs11_cert": None, "pkcs11_key": None}
    return argparse.Namespace(**{**base, **given})


def test_a_pfx_signs_with_its_password_from_the_environment(
        build_msi: ModuleType, small_msi: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pfx, cert = pfx_file(tmp_path, "correct horse")
    monkeypatch.setenv("CONSULTA_SIGN_PASSWORD", "correct horse")
    signer = build_msi.chosen_signer(options(pfx=pfx), tmp_path)
    signed = tmp_path / "signed.msi"
    build_msi.sign(small_msi, signed, signer, None)
    report = verified(signed, cert)
    assert "Consulta PFX Signing" in report
    assert "SHA256" in report
    assert "correct horse" not in " ".join(signer.args)  # never on a command line


def test_a_wrong_pfx_password_stops_the_build_with_the_reason(
        build_msi: ModuleType, small_msi: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pfx, _ = pfx_file(tmp_path, "right")
    monkeypatch.setenv("CONSULTA_SIGN_PASSWORD", "wrong")
    signer = build_msi.chosen_signer(options(pfx=pfx), tmp_path)
    with pytest.raises(build_msi.BuildError, match="osslsigncode"):
        build_msi.sign(small_msi, tmp_path / "signed.msi", signer, None)
    assert not (tmp_path / "signed.msi").exists()


def test_a_pkcs11_token_signs_without_the_key_leaving_it(
        build_msi: ModuleType, small_msi: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    require("softhsm2-util", "pkcs11-tool")
    if not SOFTHSM.exists():
        require("libsofthsm2.so")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    config = tmp_path / "softhsm2.conf"
    config.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(config))
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "CodeSign",
                    "--pin", PIN, "--so-pin", "11223344"], check=True, capture_output=True)
    key, cert = certificate(tmp_path, "Consulta Token Signing")
    der_key, der_cert = tmp_path / "key.der", tmp_path / "cert.der"
    subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", str(key), "-outform",
                    "DER", "-out", str(der_key)], check=True)
    subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "DER", "-out",
                    str(der_cert)], check=True)
    for path, kind, label in ((der_key, "privkey", "signkey"), (der_cert, "cert", "signcert")):
        subprocess.run(["pkcs11-tool", "--module", str(SOFTHSM), "--token-label", "CodeSign",
                        "--login", "--pin", PIN, "--write-object", str(path), "--type", kind,
                        "--id", "01", "--label", label], check=True, capture_output=True)
    key.unlink()
    der_key.unlink()  # from here on the key exists only inside the token
    monkeypatch.setenv("CONSULTA_SIGN_PASSWORD", PIN)
    signer = build_msi.chosen_signer(options(
        pkcs11_module=SOFTHSM, pkcs11_cert="pkcs11:token=CodeSign;object=signcert",
        pkcs11_key="pkcs11:token=CodeSign;object=signkey"), tmp_path)
    signed = tmp_path / "signed.msi"
    build_msi.sign(small_msi, signed, signer, None)
    assert "Consulta Token Signing" in verified(signed, cert)
    assert PIN not in " ".join(signer.args)


def test_the_throwaway_certificate_signs_and_keeps_no_key(
        build_msi: ModuleType, small_msi: Path, tmp_path: Path) -> None:
    signer = build_msi.chosen_signer(options(throwaway_cert=True), tmp_path)
    signed = tmp_path / "signed.msi"
    build_msi.sign(small_msi, signed, signer, None)
    assert "Consulta Test Code Signing" in verified(signed, signer.ca_file)
    assert not (tmp_path / "throwaway-cert" / "key.pem").exists()


TSA_CONFIG = """[ tsa ]
default_tsa = local
[ local ]
serial = {serial}
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ess_cert_id_alg = sha256
"""


class TimestampAuthority(http.server.BaseHTTPRequestHandler):
    """A local RFC 3161 time-stamping server (openssl ts) in place of the CA's."""

    folder: Path

    def do_POST(self) -> None:
        query = self.rfile.read(int(self.headers["Content-Length"]))
        request, reply = self.folder / "request.tsq", self.folder / "reply.tsr"
        request.write_bytes(query)
        subprocess.run(["openssl", "ts", "-reply", "-config", str(self.folder / "tsa.cnf"),
                        "-queryfile", str(request), "-inkey", str(self.folder / "tsa.key"),
                        "-signer", str(self.folder / "tsa.pem"), "-out", str(reply)],
                       check=True, capture_output=True)
        body = reply.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_a_timestamp_server_countersigns_the_signature(
        build_msi: ModuleType, small_msi: Path, tmp_path: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "7",
                    "-nodes", "-keyout", str(tmp_path / "tsa.key"),
                    "-out", str(tmp_path / "tsa.pem"), "-subj", "/CN=Consulta Test TSA",
                    "-addext", "extendedKeyUsage=critical,timeStamping"],
                   check=True, capture_output=True)
    (tmp_path / "serial").write_text("01\n")
    (tmp_path / "tsa.cnf").write_text(TSA_CONFIG.format(serial=tmp_path / "serial"))
    handler = type("Handler", (TimestampAuthority,), {"folder": tmp_path})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        signer = build_msi.chosen_signer(options(throwaway_cert=True), tmp_path)
        signed = tmp_path / "signed.msi"
        build_msi.sign(small_msi, signed, signer, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    done = subprocess.run(["osslsigncode", "verify", "-CAfile", str(signer.ca_file),
                           "-TSA-CAfile", str(tmp_path / "tsa.pem"), "-in", str(signed)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Timestamp Server Signature verification: ok" in done.stdout
    assert "Consulta Test TSA" in done.stdout
