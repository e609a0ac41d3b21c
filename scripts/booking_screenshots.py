"""Screenshots of every step of the patient booking page, at a desktop and a mobile width,
for review: runs with no arguments.

Starts an embedded PostgreSQL in a temporary folder, seeds the demo clinic, serves the
app on a loopback port, walks the steps in Debian's Chromium (headless; never a
downloaded browser) and saves full-page PNGs into `screenshots/` (git-ignored):
`<width>-<nn>-<step>.png`.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import create_engine, select

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: python scripts/booking_screenshots.py
    sys.path.insert(0, str(REPO_ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from shared_models.tables import clinic  # noqa: E402
from sync_server.actions.demo import DEMO_SLUG, seed_demo  # noqa: E402
from sync_server.core.config import Settings  # noqa: E402
from sync_server.core.signed import issue_manage_token  # noqa: E402
from sync_server.db import bootstrap  # noqa: E402
from sync_server.db.embedded import embedded_url, start_embedded  # noqa: E402
from sync_server.db.migrate import upgrade  # noqa: E402
from sync_server.db.urls import app_role_url  # noqa: E402
from sync_server.main import create_app  # noqa: E402

OUT = REPO_ROOT / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "mobile": {"width": 390, "height": 844}}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def demo_server(workdir: Path) -> Iterator[tuple[str, Settings, uuid.UUID]]:
    """The app on a loopback port over a fresh, migrated, seeded embedded database:
    (its address, its settings, the demo clinic's id)."""
    pg = start_embedded(workdir)
    try:
        owner = embedded_url(pg, "consulta_screens")
        bootstrap.ensure_database(owner)
        bootstrap.ensure_app_role(owner, password=None)
        upgrade(owner)
        engine = create_engine(owner)
        with engine.begin() as conn:
            seed_demo(conn)
            clinic_id = conn.execute(select(clinic.c.id)
                                     .where(clinic.c.slug == DEMO_SLUG)).scalar_one()
        engine.dispose()
        settings = Settings(env="development", data_dir=workdir,
                            secret_key=secrets.token_urlsafe(48))  # type: ignore[arg-type]
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings, app_role_url(owner, None)),
                                               host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}", settings, clinic_id
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        pg.cleanup()


def shoot(page: Page, width: str, n: int, step: str) -> None:
    path = OUT / f"{width}-{n:02d}-{step}.png"
    page.screenshot(path=str(path), full_page=True)
    print(path.relative_to(REPO_ROOT))


def fill_details(page: Page, *, phone: str) -> None:
    page.fill("#given_name", "Rosa")
    page.fill("#family_name", "Pérez Soto")
    page.fill("#phone", phone)
    page.fill("#email", "rosa@example.com")
    page.fill("#dob_day", "2")
    page.fill("#dob_month", "3")
    page.fill("#dob_year", "1985")
    page.fill("#reason", "Control anual")
    page.check("#reminders")


def walk(page: Page, base: str, width: str, settings: Settings, clinic_id: uuid.UUID) -> None:
    n = 0
    page.goto(f"{base}/book/{DEMO_SLUG}?lang=es")
    shoot(page, width, n := n + 1, "providers")
    page.click(".card >> nth=0")
    shoot(page, width, n := n + 1, "days")
    page.click(".day >> nth=1")
    shoot(page, width, n := n + 1, "times")
    page.click(".time >> nth=0")
    shoot(page, width, n := n + 1, "details")

    page.fill("#given_name", "")
    page.fill("#phone", "123")
    page.fill("#dob_day", "31")
    page.fill("#dob_month", "2")
    page.fill("#dob_year", "1985")
    page.click("button[type=submit]")
    shoot(page, width, n := n + 1, "details-errors")

    # Someone else takes the time while the form is open.
    start = page.input_value("input[name=start]")
    provider_id = re.search(r"/book/[^/]+/([0-9a-f-]{36})/", page.url)
    assert provider_id is not None
    taken = httpx.post(f"{base}/api/v1/public/{DEMO_SLUG}/bookings", json={
        "provider_id": provider_id.group(1), "start": start, "given_name": "Otra",
        "family_name": "Persona", "phone": f"+52 55 {secrets.randbelow(10**8):08d}",
        "date_of_birth": "1970-01-01"})
    assert taken.status_code == 201, taken.text
    fill_details(page, phone=f"55 {secrets.randbelow(10**8):08d}")
    page.click("button[type=submit]")
    shoot(page, width, n := n + 1, "details-slot-taken")

    page.check("input[name=start] >> nth=0")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/confirmed\?token=.*"))
    shoot(page, width, n := n + 1, "confirmed")

    page.click("#manage-link")
    shoot(page, width, n := n + 1, "manage")
    manage = page.url
    page.click("text=Cambiar hora")
    shoot(page, width, n := n + 1, "reschedule-days")
    page.click(".day >> nth=2")
    shoot(page, width, n := n + 1, "reschedule-times")
    page.check("input[name=start] >> nth=1")
    page.click("button[type=submit]")
    shoot(page, width, n := n + 1, "rescheduled")
    page.click("text=Cancelar hora")
    shoot(page, width, n := n + 1, "cancel-confirm")
    page.click("button[type=submit]")
    shoot(page, width, n := n + 1, "cancelled")

    token = manage.split("token=")[1]
    expired = issue_manage_token(settings, clinic_id=clinic_id,
                                 appointment_id=uuid.uuid4(),
                                 expires_at=datetime.now(UTC) - timedelta(days=1))
    page.goto(f"{base}/book/{DEMO_SLUG}/manage?token={expired}")
    shoot(page, width, n := n + 1, "link-expired")
    page.goto(f"{base}/book/{DEMO_SLUG}/manage?token={token[:-3]}xyz")
    shoot(page, width, n := n + 1, "link-invalid")
    page.goto(f"{base}/book/{DEMO_SLUG}?lang=en")
    shoot(page, width, n := n + 1, "providers-english")


def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("Debian's chromium is needed: apt-get install chromium")
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="consulta-screens-") as tmp, \
            demo_server(Path(tmp)) as (base, settings, clinic_id), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for width, viewport in VIEWPORTS.items():
                context = browser.new_context(viewport=viewport,  # type: ignore[arg-type]
                                              locale="es-MX", is_mobile=width == "mobile",
                                              device_scale_factor=1)
                walk(context.new_page(), base, width, settings, clinic_id)
                context.close()
        finally:
            browser.close()
    print(f"saved in {OUT.relative_to(REPO_ROOT)}/", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    main()
