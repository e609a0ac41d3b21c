"""The booking page's two languages: every message it can show has its Spanish text, the
browser's preference is read by weight, and dates read naturally in each language."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from jinja2 import Environment
from jinja2.ext import extract_from_ast

from sync_server.web import forms, i18n, pages
from sync_server.web.i18n import SPANISH, day_label, from_accept_language, when_label
from tests.factories import Factory

WEB = Path(pages.__file__).parent
TRANSLATING_CALLS = {"t", "translate", "_"}


def _python_messages(path: Path) -> set[str]:
    """English literals passed to `t(...)`, `page.t(...)` or `translate(lang, ...)`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
            node.func, "id", None)
        if name not in TRANSLATING_CALLS:
            continue
        for arg in node.args[:2]:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and \
                    arg.value not in ("es", "en"):
                found.add(arg.value)
    return found


def _template_messages() -> set[str]:
    env = Environment(extensions=["jinja2.ext.do"], autoescape=True)
    found = set()
    for template in (WEB / "templates").glob("*.html"):
        tree = env.parse(template.read_text())
        for _, _, message in extract_from_ast(tree, gettext_functions=("_",)):
            if isinstance(message, str):
                found.add(message)
    return found


def test_every_message_of_the_booking_page_has_its_spanish_text() -> None:
    messages = _template_messages() | _python_messages(WEB / "pages.py") | \
        _python_messages(WEB / "forms.py")
    messages |= {m for pair in pages._ERROR_TEXT.values() for m in pair}
    messages |= set(pages._NOT_FOUND) | set(pages._SOMETHING_WRONG)
    messages |= set(pages.STATUS_LABELS.values()) | {"Morning", "Afternoon", "Evening"}
    assert len(messages) > 100
    missing = sorted(m for m in messages if m not in SPANISH)
    assert missing == [], missing
    assert forms.TEXT_FIELDS  # the form module is among the sources read


@pytest.mark.parametrize(("header", "expected"), [
    ("es-CL,es;q=0.9,en;q=0.8", "es"),
    ("en-US,en;q=0.9", "en"),
    ("fr-FR,fr;q=0.9,en;q=0.5,es;q=0.4", "en"),
    ("pt-BR;q=1, es;q=0.2, en;q=0.3", "en"),
    ("de", None),
    ("", None),
    ("es;q=0", None),
])
def test_the_browser_language_is_chosen_by_its_weights(header: str, expected: str | None
                                                       ) -> None:
    assert from_accept_language(header) == expected


def test_dates_and_times_read_naturally_with_their_zone() -> None:
    assert day_label(date(2026, 3, 3), "es") == "martes 3 de marzo"
    assert day_label(date(2026, 3, 3), "en", year=True) == "Tuesday 3 March 2026"
    at = datetime(2026, 3, 9, 12, 30, tzinfo=UTC)
    assert when_label(at, ZoneInfo("America/Santiago"), "es") == (
        "lunes 9 de marzo de 2026, a las 09:30 America/Santiago (UTC\u22123)")
    assert when_label(at, ZoneInfo("Asia/Kolkata"), "en") == (
        "Monday 9 March 2026, at 18:00 Asia/Kolkata (UTC+5:30)")
    assert i18n.duration_label(90, "es") == "1 hora 30 minutos"
    assert i18n.duration_label(120, "en") == "2 hours"


async def test_the_switch_sets_a_remembered_language(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = factory.clinic(patients=0, providers=1)
    english = await client.get(f"/book/{data.slug}", params={"lang": "en"},
                               headers={"Accept-Language": "es"})
    assert '<html lang="en">' in english.text
    assert "consulta_lang=en" in english.headers["set-cookie"]
    # The client keeps the cookie, as a browser would.
    later = await client.get(f"/book/{data.slug}", headers={"Accept-Language": "es"})
    assert "Book an appointment" in later.text


async def test_pages_refuse_another_clinics_provider_and_unknown_pages_in_the_language(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    a, b = factory.clinic(patients=0, providers=1), factory.clinic(patients=0, providers=1)
    crossed = await client.get(f"/book/{a.slug}/{b.provider_ids[0]}",
                               headers={"Accept-Language": "es"})
    assert crossed.status_code == 404
    assert "No encontrado" in crossed.text
    assert str(b.provider_ids[0]) not in crossed.text.replace(
        f"/book/{a.slug}/{b.provider_ids[0]}", "")
    unknown = await client.get("/book/no-such-clinic", headers={"Accept-Language": "en"})
    assert unknown.status_code == 404
    assert "Clinic not found" in unknown.text
    bad_day = await client.get(f"/book/{a.slug}/{a.provider_ids[0]}/not-a-day")
    assert bad_day.status_code == 404
    for response in (crossed, unknown, bad_day):
        assert response.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
