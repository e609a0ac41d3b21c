"""`consulta-desk --demo`: the whole product on one computer. Starts the sync server on
the embedded PostgreSQL with the demo clinic (as a separate process, through its own
command), takes a one-time enrolment code for a front-desk computer, and hands the app
a receptionist's published demo sign-in."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from desktop.config import ConfigError

DEMO_EMAIL = "receptionist1@demo.consulta.local"
DEMO_PASSWORD = "consulta-demo"  # noqa: S105 - the demo's published sign-in
START_TIMEOUT_S = 120.0
CODE = re.compile(r"Enrolment code for .*?: (\S+)")


@dataclass
class DemoServer:
    url: str
    enrolment_code: str | None
    email: str
    password: str
    desk_folder: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _server_command() -> list[str]:
    found = shutil.which("consulta-server", path=str(Path(sys.executable).parent))
    if found:
        return [found]
    if importlib.util.find_spec("fastapi") is None:
        # The installers carry the desktop's packages only.
        raise ConfigError("The demo needs the Consulta server, which this installation does "
                          "not include. Run the demo from a source checkout (./scripts/demo).")
    return [sys.executable, "-m", "sync_server.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    # Our own installed command with fixed arguments.
    return subprocess.run(args, env=env, capture_output=True,  # noqa: S603
                          timeout=START_TIMEOUT_S, check=False)


def start_demo(folder: Path) -> DemoServer:
    """The demo server running on a loopback port, and where the demo desk keeps its data
    (`folder`/demo-desk; kept between runs, so the desk enrols once)."""
    # Reminders to demo patients are written to a folder instead of being sent.
    env = {**os.environ, "CONSULTA_DATA_DIR": str(folder / "demo-server"),
           "CONSULTA_ENV": "development",
           "CONSULTA_OUTBOX_DIR": str(folder / "demo-outbox")}
    command = _server_command()
    seeded = _run([*command, "demo", "--no-serve"], env)
    if seeded.returncode != 0:
        raise ConfigError("The demo server could not start: "
                          + seeded.stderr.decode(errors="replace")[-500:])
    desk_folder = folder / "demo-desk"
    code = None
    if not (desk_folder / "device.json").exists():
        issued = _run([*command, "enrol-device", "--clinic", "demo", "--name",
                       "Demo front desk"], env)
        match = CODE.search(issued.stdout.decode())
        if issued.returncode != 0 or match is None:
            raise ConfigError("The demo server did not issue an enrolment code.")
        code = match.group(1)
    port = _free_port()
    # Our own installed command with fixed arguments.
    process = subprocess.Popen([*command, "serve"],  # noqa: S603
                               env={**env, "CONSULTA_PORT": str(port)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError("The demo server stopped while starting.")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return DemoServer(url, code, DEMO_EMAIL, DEMO_PASSWORD, desk_folder, process)
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    raise ConfigError("The demo server did not become ready in time.")
