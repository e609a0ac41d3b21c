"""The patient booking page in a real browser (Debian's Chromium, headless) against a real
server and database: the whole flow, a lost race, the manage link, JavaScript off, a
phone-sized screen, both languages, keyboard use, and axe-core on every step.

One browser serves the module; each test opens its own contexts (separate cookie jars,
like separate people).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from sync_server.core.config import Settings
from sync_server.core.signed import issue_manage_token
from tests.conftest import LiveServer
from tests.factories import ClinicData, Factory

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
AXE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}
MOBILE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); the "
                    "booking page's browser tests need it and never download a browser")
    return path


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core from the npm registry, installed outside the package tree (CI's .ci/run
    installs it; otherwise it is installed here when npm is at hand)."""
    if not AXE_JS.exists() and shutil.which("npm"):
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix",
                        str(AXE_DIR), "axe-core@4"], check=True, capture_output=True)
    if not AXE_JS.exists():
        pytest.fail(f"axe-core is missing: run `npm install --prefix {AXE_DIR} axe-core@4`")
    return AXE_JS.read_text()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium: str) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Contexts a test opens (append to the list), all closed after it."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def person(browser: Browser, contexts: list[BrowserContext], *, locale: str = "es-CL",
           **options: Any) -> Page:
    # bypass_csp lets the test inject axe-core; the page itself never runs inline script.
    context = browser.new_context(locale=locale, bypass_csp=True, **options)
    context.set_default_timeout(10_000)
    contexts.append(context)
    return context.new_page()


@pytest.fixture
def clinic(factory: Factory) -> ClinicData:
    data = factory.clinic(patients=0, providers=2)
    for provider_id in data.provider_ids:
        factory.weekly_hours(data, provider_id)
    return data


def check_axe(page: Page, axe_source: str, step: str) -> None:
    """No serious or critical axe-core violations on the page as it stands."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))}))")
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert blocking == [], f"{step}: {blocking}"


def phone() -> str:
    return f"+56 9 8{uuid.uuid4().int % 10**7:07d}"


def fill_form(page: Page, *, given: str = "Rosa", family: str = "Pérez Soto",
              number: str | None = None) -> None:
    page.fill("#given_name", given)
    page.fill("#family_name", family)
    page.fill("#phone", number or phone())
    page.fill("#dob_day", "2")
    page.fill("#dob_month", "3")
    page.fill("#dob_year", "1985")
    page.fill("#reason", "Control")
    page.check("#reminders")


def open_form(page: Page, base: str, data: ClinicData, *, day: int = 0) -> str:
    """Walk to the form for the first free time on the provider's `day`-th free day;
    returns that time."""
    page.goto(f"{base}/book/{data.slug}")
    page.click(".card >> nth=0")
    page.click(f".day >> nth={day}")
    page.click(".time >> nth=0")
    return page.input_value("input[name=start]")


def book_by_api(base: str, data: ClinicData, *, nth: int = 0) -> dict[str, Any]:
    now = datetime.now(UTC)
    provider = data.provider_ids[0]
    with httpx.Client(base_url=base) as http:
        free = http.get(f"/api/v1/public/{data.slug}/providers/{provider}/slots", params={
            "start": (now + timedelta(hours=3)).isoformat(),
            "end": (now + timedelta(days=3)).isoformat()}).json()["data"]
        booked = http.post(f"/api/v1/public/{data.slug}/bookings", json={
            "provider_id": str(provider), "start": free[nth]["start"], "given_name": "Ana",
            "family_name": "Soto", "phone": phone(), "date_of_birth": "1990-01-02"})
    assert booked.status_code == 201, booked.text
    body: dict[str, Any] = booked.json()
    return body


# --- the flow ---------------------------------------------------------------------------


def test_a_patient_books_every_step_in_spanish_with_no_serious_accessibility_issue(
    live_server: LiveServer, browser: Browser, contexts: list[BrowserContext],
    clinic: ClinicData, factory: Factory, axe_source: str,
) -> None:
    page = person(browser, contexts, locale="es-CL")
    page.goto(f"{live_server.url}/book/{clinic.slug}")
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator("h1").inner_text() == "Reservar una hora"
    check_axe(page, axe_source, "providers")
    page.click(".card >> nth=0")
    assert page.locator("h1").inner_text() == "Elija un día"
    check_axe(page, axe_source, "days")
    page.click(".day >> nth=0")
    assert "America/Santiago (UTC" in page.locator(".tz").inner_text()
    check_axe(page, axe_source, "times")
    page.click(".time >> nth=0")
    assert "America/Santiago" in page.locator(".summary").inner_text()
    check_axe(page, axe_source, "form")

    page.click("button[type=submit]")  # nothing filled in
    summary = page.locator(".error-summary")
    assert summary.is_visible()
    assert "Escriba su nombre." in summary.inner_text()
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert page.get_attribute("#given_name", "aria-invalid") == "true"
    assert "given_name-error" in (page.get_attribute("#given_name", "aria-describedby") or "")
    check_axe(page, axe_source, "form with errors")
    summary.locator("a[href='#phone']").click()
    assert page.evaluate("document.activeElement.id") == "phone"

    fill_form(page)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/confirmed\?token="))
    assert page.locator("h1").inner_text() == "Su hora está reservada"
    link = page.locator("#manage-link").inner_text()
    assert f"/book/{clinic.slug}/manage?token=" in link
    check_axe(page, axe_source, "confirmation")

    booked = [a for a in factory.appointments(clinic).values() if a.source == "web"]
    assert len(booked) == 1
    assert booked[0].reason == "Control"
    page.reload()  # Post/Redirect/Get: reloading shows the same page, books nothing more
    assert len(factory.appointments(clinic)) == 1


def test_two_people_choosing_the_same_time_one_gets_it_the_other_keeps_the_form(
    live_server: LiveServer, browser: Browser, contexts: list[BrowserContext],
    clinic: ClinicData, factory: Factory, axe_source: str,
) -> None:
    first = person(browser, contexts, locale="en-US")
    second = person(browser, contexts, locale="en-US")
    start = open_form(first, live_server.url, clinic)
    assert open_form(second, live_server.url, clinic) == start
    fill_form(first, given="Rosa")
    fill_form(second, given="Lucía", family="Rojas", number="+56 9 8765 4321")

    first.click("button[type=submit]")
    first.wait_for_url(re.compile(r".*/confirmed\?token="))
    second.click("button[type=submit]")

    assert "just taken by someone else" in second.locator(".error-summary").inner_text()
    offered = second.locator("input[name=start]").evaluate_all("els => els.map(e => e.value)")
    assert offered
    assert start not in offered
    assert second.input_value("#given_name") == "Lucía"
    assert second.input_value("#family_name") == "Rojas"
    assert second.input_value("#phone") == "+56 9 8765 4321"
    assert second.input_value("#dob_year") == "1985"
    assert second.is_checked("#reminders")
    check_axe(second, axe_source, "form after a lost race")

    second.check("input[name=start] >> nth=0")
    second.click("button[type=submit]")
    second.wait_for_url(re.compile(r".*/confirmed\?token="))
    assert len(factory.appointments(clinic)) == 2
    assert factory.overlapping_appointments(clinic) == []


def test_the_manage_link_reschedules_and_then_cancels(
    live_server: LiveServer, browser: Browser, contexts: list[BrowserContext],
    clinic: ClinicData, factory: Factory, axe_source: str,
) -> None:
    booked = book_by_api(live_server.url, clinic)
    page = person(browser, contexts, locale="en-GB")
    page.goto(f"{live_server.url}/book/{clinic.slug}/manage?token={booked['manage_token']}")
    assert page.locator("h1").inner_text() == "Your appointment"
    check_axe(page, axe_source, "manage")

    page.click("text=Change time")
    check_axe(page, axe_source, "reschedule days")
    page.click(".day >> nth=1")
    check_axe(page, axe_source, "reschedule times")
    new_start = page.locator("input[name=start] >> nth=2").get_attribute("value")
    page.check("input[name=start] >> nth=2")
    page.click("button[type=submit]")
    assert "Your appointment was moved" in page.locator(".notice").inner_text()
    stored = factory.appointments(clinic)[uuid.UUID(booked["appointment_id"])]
    assert new_start is not None
    assert stored.starts_at == datetime.fromisoformat(new_start)

    page.click("text=Cancel appointment")
    assert page.locator("h1").inner_text() == "Cancel this appointment?"
    check_axe(page, axe_source, "cancel confirmation")
    page.click("text=Yes, cancel it")
    assert "Your appointment is cancelled." in page.locator(".notice").inner_text()
    assert page.locator(".badge").inner_text() == "Cancelled"
    assert page.locator("text=Change time").count() == 0
    assert factory.appointments(clinic)[stored.id].status == "cancelled"


def test_expired_and_tampered_links_are_refused_with_a_clear_page(
    live_server: LiveServer, browser: Browser, contexts: list[BrowserContext],
    clinic: ClinicData, settings: Settings, axe_source: str,
) -> None:
    booked = book_by_api(live_server.url, clinic)
    expired = issue_manage_token(settings, clinic_id=clinic.id,
                                 appointment_id=uuid.UUID(booked["appointment_id"]),
                                 expires_at=datetime.now(UTC) - timedelta(minutes=1))
    page = person(browser, contexts, locale="es-MX")
    answer = page.goto(f"{live_server.url}/book/{clinic.slug}/manage?token={expired}")
    assert answer is not None
    assert answer.status == 410
    assert page.locator("h1").inner_text() == "Enlace vencido"
    check_axe(page, axe_source, "expired link")
    token = booked["manage_token"]
    tampered = token[:12] + ("A" if token[12] != "A" else "B") + token[13:]
    answer = page.goto(f"{live_server.url}/book/{clinic.slug}/manage?token={tampered}")
    assert answer is not None
    assert answer.status == 403
    assert page.locator("h1").inner_text() == "Enlace no válido"
    page.click("text=English")
    assert page.locator("h1").inner_text() == "Link not valid"


def test_booking_works_with_javascript_switched_off(
    live_server: LiveServer, browser: Browser, contexts: list[BrowserContext],
    clinic: ClinicData, factory: Factory,
) -> None:
    page = person(browser, contexts, locale="en-US", java_script_enabled=False)
    open_form(page, live_server.url, clinic, day=1)  # a day ahead: outside the cut-off
    fill_form(page)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/confirmed\?token="))
    page.click("#manage-link")
    page.click("text=Cancel appointment")
    page.click("text=Yes, cancel it")
    assert "Your appointment is cancelled." in page.locator(".notice").inner_text()
    assert [a.status for a in factory.appointments(clinic).values()] == ["cancelled"]


def test_a_phone_sized_screen_has_no_sideways_scrolling_and_large_targets(
    live_server: LiveServer, browser: Browser, contexts: list[BrowserContext],
    clinic: ClinicData, factory: Factory, axe_source: str,
) -> None:
    page = person(browser, contexts, locale="es-CL", viewport=MOBILE, is_mobile=True,
                  has_touch=True)

    def tap(selector: str) -> None:
        with page.expect_navigation():
            page.tap(selector)

    def fits(step: str) -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= MOBILE["width"], f"{step}: {width}px wide"

    page.goto(f"{live_server.url}/book/{clinic.slug}")
    fits("providers")
    tap(".card >> nth=0")
    fits("days")
    tap(".day >> nth=0")
    fits("times")
    heights = page.locator(".time").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().height)")
    assert min(heights) >= 44
    tap(".time >> nth=0")
    fits("form")
    check_axe(page, axe_source, "form on a phone")
    fill_form(page)
    tap("button[type=submit]")
    page.wait_for_url(re.compile(r".*/confirmed\?token="))
    fits("confirmation")
    assert len(factory.appointments(clinic)) == 1


def test_language_follows_the_browser_and_the_switch_is_remembered(
    live_server: LiveServer, browser: Browser, contexts: list[BrowserContext],
    clinic: ClinicData,
) -> None:
    page = person(browser, contexts, locale="en-US")
    page.goto(f"{live_server.url}/book/{clinic.slug}")
    assert page.locator("h1").inner_text() == "Book an appointment"
    page.click("nav >> text=Español")
    assert page.locator("html").get_attribute("lang") == "es"
    page.click(".card >> nth=0")
    assert page.locator("h1").inner_text() == "Elija un día"
    assert re.search(r"(lunes|martes|miércoles|jueves|viernes|sábado|domingo)",
                     page.locator(".days").inner_text().lower())


def test_the_page_can_be_used_with_the_keyboard_alone(
    live_server: LiveServer, browser: Browser, contexts: list[BrowserContext],
    clinic: ClinicData,
) -> None:
    page = person(browser, contexts, locale="en-US")
    page.goto(f"{live_server.url}/book/{clinic.slug}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "card"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*/book/{clinic.slug}/[0-9a-f-]{{36}}$"))
    page.focus(".day >> nth=0")
    page.keyboard.press("Enter")
    page.focus(".time >> nth=0")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/details\?start=.*"))
    page.focus("#given_name")
    order = []
    for _ in range(9):
        order.append(page.evaluate("document.activeElement.id || document.activeElement.name"))
        page.keyboard.press("Tab")
    assert order == ["given_name", "family_name", "phone", "email", "dob_day", "dob_month",
                     "dob_year", "reason", "reminders"]
    assert page.evaluate("document.activeElement.type") == "submit"  # the honeypot is skipped
