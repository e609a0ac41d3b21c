"""The booking page's handlers: thin, like the API's routes. Each reads the request, calls
the booking service or its reads, and renders a template; errors become pages, not JSON.

Steps: `/book/{clinic}` (providers) → `/{provider}` (days with free times) → `/{day}`
(times) → `/{day}/details` (the form) → `/confirmed` (with the manage link). The manage
link opens `/book/{clinic}/manage?token=...` to cancel or reschedule. Every form is
posted, then redirected (Post/Redirect/Get) when it succeeded, or shown again with what
was typed when it did not. Nothing needs JavaScript.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from shared_models.enums import AppointmentStatus
from shared_models.scheduling import Interval, Slot
from shared_models.schemas.public_booking import PublicBooking
from sync_server.actions.providers import list_providers
from sync_server.actions.public_booking import (
    do_public_book,
    do_public_cancel,
    do_public_reschedule,
    managed_booking,
)
from sync_server.api.deps import (
    PreAuthEngine,
    PublicClinic,
    RequestMetaDep,
    SettingsDep,
)
from sync_server.core.config import Settings
from sync_server.core.errors import (
    Conflict,
    ConsultaError,
    InvalidInput,
    NotFound,
    TooManyRequests,
)
from sync_server.core.signed import form_token, form_token_valid
from sync_server.lib.context import ClinicContext
from sync_server.lib.public_booking import (
    DAYS_PAGE,
    access_bookable_provider,
    clinic_info,
    day_slots,
    last_bookable_day,
    open_days,
    public_context,
)
from sync_server.lib.scheduling import ClinicSchedule, free_slots_by_provider
from sync_server.web.cache import PageCache
from sync_server.web.forms import BookingForm, check_booking_form, phone_example, read_form
from sync_server.web.i18n import (
    LANG_COOKIE,
    NAMES,
    Lang,
    as_lang,
    day_label,
    duration_label,
    from_accept_language,
    time_label,
    translate,
    when_label,
    zone_label,
)

STATIC_DIR = Path(__file__).parent / "static"
# The stylesheet's address changes with its content, so browsers may cache it for long.
CSS_URL = "/static/booking.css?v=" + hashlib.sha256(
    (STATIC_DIR / "booking.css").read_bytes()).hexdigest()[:10]
FORM_COOKIE = "consulta_form"
LANG_COOKIE_SECONDS = 365 * 24 * 3600
NEXT_FREE_LOOKAHEAD = timedelta(days=14)
# A provider with no free time in the first page of days: look this many pages further.
EMPTY_PAGES_SKIPPED = 6
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Free times change by the minute, and manage pages hold a link that opens the
    # appointment: nothing here is kept by any cache.
    "Cache-Control": "no-store",
}
TONES = [(0x0B, 0x4F, 0x8A), (0x1E, 0x6B, 0x34), (0x9C, 0x14, 0x58), (0x6A, 0x3D, 0x9A),
         (0xA3, 0x44, 0x00), (0x00, 0x64, 0x6E), (0x8A, 0x1C, 0x1C), (0x3C, 0x46, 0x50)]
TITLES = {"dr", "dra", "lic", "lcda", "lcdo", "mr", "mrs", "ms", "mx", "prof"}
STATUS_LABELS = {
    AppointmentStatus.BOOKED: "Booked", AppointmentStatus.PENDING: "Pending",
    AppointmentStatus.CANCELLED: "Cancelled", AppointmentStatus.CHECKED_IN: "Checked in",
    AppointmentStatus.IN_PROGRESS: "In progress", AppointmentStatus.COMPLETED: "Completed",
    AppointmentStatus.NO_SHOW: "Missed", AppointmentStatus.REJECTED: "Not confirmed",
}

TEMPLATES = Environment(
    loader=PackageLoader("sync_server.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined, extensions=["jinja2.ext.do"], trim_blocks=True,
    lstrip_blocks=True,
)


def request_language(request: Request) -> tuple[Lang, bool]:
    """(language, whether it was chosen with the switch just now and must be remembered)."""
    chosen = as_lang(request.query_params.get("lang"))
    if chosen is not None:
        return chosen, True
    remembered = as_lang(request.cookies.get(LANG_COOKIE))
    if remembered is not None:
        return remembered, False
    return from_accept_language(request.headers.get("accept-language")) or "es", False


@dataclass
class Page:
    """One request's language, anti-forgery secret and the way it renders a template."""

    request: Request
    settings: Settings
    lang: Lang
    remember_lang: bool
    secret: str
    new_secret: bool

    def t(self, message: str, /, **values: object) -> str:
        return translate(self.lang, message, **values)

    def csrf(self) -> str:
        return form_token(self.settings, self.secret, now=datetime.now(UTC))

    def csrf_ok(self, token: object) -> bool:
        return not self.new_secret and form_token_valid(
            self.settings, self.secret, str(token) if token else None, now=datetime.now(UTC))

    def switch_url(self, path_and_query: str | None = None) -> str:
        other = "en" if self.lang == "es" else "es"
        if path_and_query is None:
            params = {k: v for k, v in self.request.query_params.items() if k != "lang"}
            path_and_query = self.request.url.path + (f"?{urlencode(params)}" if params else "")
        joiner = "&" if "?" in path_and_query else "?"
        return f"{path_and_query}{joiner}lang={other}"

    def render(self, template: str, *, status: int = 200,
               headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
        return self.respond(self.body(template, **context), status=status, headers=headers)

    def body(self, template: str, *, title: str, clinic_name: str, slug: str | None,
             zone: ZoneInfo | None, switch_to: str | None = None, **context: Any) -> str:
        other = "en" if self.lang == "es" else "es"
        return TEMPLATES.get_template(template).render(
            _=self.t, lang=self.lang, other_lang=other, other_lang_name=NAMES[other],
            switch_url=self.switch_url(switch_to), title=title, clinic_name=clinic_name,
            slug=slug, zone_name=zone_label(zone, datetime.now(UTC)) if zone else "",
            css_url=CSS_URL, **{"errors": [], **context})

    def respond(self, body: str, *, status: int = 200, headers: dict[str, str] | None = None
                ) -> HTMLResponse:
        response = HTMLResponse(body, status_code=status,
                                headers={**SECURITY_HEADERS, **(headers or {})})
        secure = self.request.url.scheme == "https"
        if self.remember_lang:
            response.set_cookie(LANG_COOKIE, self.lang, max_age=LANG_COOKIE_SECONDS,
                                path="/book", samesite="lax", httponly=True, secure=secure)
        if self.new_secret:
            response.set_cookie(FORM_COOKIE, self.secret, path="/book", samesite="lax",
                                httponly=True, secure=secure)
        return response


async def get_page(request: Request, settings: SettingsDep) -> Page:
    lang, remember = request_language(request)
    secret = request.cookies.get(FORM_COOKIE, "")
    new = not (16 <= len(secret) <= 64)
    return Page(request, settings, lang, remember,
                secrets.token_urlsafe(24) if new else secret, new)


PageDep = Annotated[Page, Depends(get_page)]


def page_cache(request: Request) -> PageCache:
    """This server process's memory of rendered listings (one per application)."""
    state = request.app.state
    if not hasattr(state, "booking_pages"):
        state.booking_pages = PageCache()
    cache: PageCache = state.booking_pages
    return cache


async def cached(page: Page, key: tuple[str, ...], render: Callable[[], Awaitable[str]]
                 ) -> Response:
    """A listing page, reused for `booking_page_cache_seconds` by every visitor who asks
    for the same one in the same language (it holds nothing of the visitor)."""
    body = await page_cache(page.request).get(
        (*key, page.lang), page.settings.booking_page_cache_seconds, render)
    return page.respond(body)


# --- errors as pages ----------------------------------------------------------------------

_ERROR_TEXT = {
    "clinic_not_found": ("Clinic not found",
                         "We could not find this clinic. Check the address of the page."),
    "invalid_manage_link": ("Link not valid", "This link is not valid: it may be incomplete or "
                            "changed. Open the link exactly as you received it, or contact the "
                            "clinic."),
    "manage_token_missing": ("Link not valid", "This link is not valid: it may be incomplete "
                             "or changed. Open the link exactly as you received it, or contact "
                             "the clinic."),
    "manage_link_expired": ("Link expired", "This link has expired: it worked until the day "
                            "after the appointment. To book again or ask about a visit, "
                            "contact the clinic."),
    "appointment_gone": ("Appointment not found", "This appointment is no longer in the "
                         "clinic's calendar. Contact the clinic if you need to see someone."),
}
_NOT_FOUND = ("Not found", "This page does not exist. Start again from the clinic's booking "
              "page.")
_SOMETHING_WRONG = ("Something went wrong", "The page could not be shown just now. Try again "
                    "in a moment, or call the clinic.")


def error_page(request: Request, exc: ConsultaError) -> HTMLResponse:
    lang, _ = request_language(request)
    if exc.code in _ERROR_TEXT:
        title, message = _ERROR_TEXT[exc.code]
    elif exc.http_status == 404:
        title, message = _NOT_FOUND
    else:
        title, message = _SOMETHING_WRONG
    slug = request.path_params.get("clinic_slug")
    body = TEMPLATES.get_template("error.html").render(
        _=lambda m, /, **v: translate(lang, m, **v), lang=lang,
        other_lang="en" if lang == "es" else "es",
        other_lang_name=NAMES["en" if lang == "es" else "es"],
        switch_url=f"{request.url.path}?" + urlencode(
            {**{k: v for k, v in request.query_params.items() if k != "lang"},
             "lang": "en" if lang == "es" else "es"}),
        title=translate(lang, title), message=translate(lang, message),
        clinic_name=translate(lang, "Online booking"),
        slug=None if exc.code == "clinic_not_found" or not slug or "\x00" in slug else slug,
        zone_name="", css_url=CSS_URL, errors=[])
    return HTMLResponse(body, status_code=exc.http_status,
                        headers={**SECURITY_HEADERS, **exc.headers})


class PageRoute(APIRoute):
    """A route whose errors are answered as a page in the patient's language."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except ConsultaError as exc:
                return error_page(request, exc)
            except RequestValidationError:
                return error_page(request, NotFound("No such page.", code="page_not_found"))

        return guarded


router = APIRouter(prefix="/book", route_class=PageRoute, include_in_schema=False)


# --- what the templates show -------------------------------------------------------------


@dataclass(frozen=True)
class ProviderCard:
    id: uuid.UUID
    name: str
    specialty: str | None
    initials: str
    tone: int
    next_day: str | None = None


def provider_card(row: Any, *, next_day: str | None = None) -> ProviderCard:
    words = [w for w in row.display_name.split() if w.rstrip(".").lower() not in TITLES]
    initials = "".join(w[0] for w in (words[:1] + words[-1:] if len(words) > 1 else words))
    if row.color:
        rgb = tuple(int(row.color[i:i + 2], 16) for i in (1, 3, 5))
        tone = min(range(len(TONES)),
                   key=lambda i: sum((a - b) ** 2 for a, b in zip(TONES[i], rgb, strict=True)))
    else:
        tone = row.id.int % len(TONES)
    return ProviderCard(row.id, row.display_name, row.specialty, initials.upper() or "?",
                        tone, next_day)


@dataclass(frozen=True)
class BookingView:
    provider_name: str
    specialty: str | None
    when: str
    status: str
    status_label: str
    can_change: bool
    change_until: str


def booking_view(page: Page, booking: PublicBooking) -> BookingView:
    zone = ZoneInfo(booking.timezone)
    return BookingView(
        provider_name=booking.provider_name, specialty=booking.specialty,
        when=when_label(booking.start, zone, page.lang), status=booking.status.value,
        status_label=page.t(STATUS_LABELS[booking.status]), can_change=booking.can_change,
        change_until=when_label(booking.change_until, zone, page.lang))


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise NotFound("No such day.", code="page_not_found") from None


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def count_label(page: Page, n: int) -> str:
    return page.t("1 free time") if n == 1 else page.t("{n} free times", n=n)


def time_groups(page: Page, slots: list[Slot], zone: ZoneInfo, url: Callable[[Slot], str]
                ) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, str]]] = {}
    for slot in slots:
        hour = slot.start.astimezone(zone).hour
        name = "Morning" if hour < 12 else "Afternoon" if hour < 18 else "Evening"
        groups.setdefault(name, []).append(
            {"label": time_label(slot.start.astimezone(zone)), "url": url(slot)})
    return [{"label": page.t(name), "times": times} for name, times in groups.items()]


def time_choices(page: Page, slots: list[Slot], zone: ZoneInfo, day: date
                 ) -> list[dict[str, Any]]:
    """Radio choices: the time alone on `day`, with its date on any other day."""
    choices: list[dict[str, Any]] = []
    for slot in sorted(set(slots), key=lambda s: s.start):
        local = slot.start.astimezone(zone)
        dated = local.date() != day
        label = time_label(local)
        if dated:
            label = f"{day_label(local.date(), page.lang)}, {label}"
        choices.append({"value": local.isoformat(), "label": label, "dated": dated})
    return choices


def quoted(value: str) -> str:
    return urlencode({"": value})[1:]


# --- step 1: providers ---------------------------------------------------------------------


@router.get("/{clinic_slug}")
async def providers_page(page: PageDep, engine: PreAuthEngine, meta: RequestMetaDep,
                         clinic_slug: str) -> Response:
    async def render() -> str:
        async with public_context(engine, clinic_slug, client_addr=meta.client_addr) as ctx:
            now = datetime.now(UTC)
            info = await clinic_info(ctx)
            schedule = info.schedule
            rows = [p for p in (await list_providers(ctx)).data if p.is_active]
            free = await free_slots_by_provider(
                ctx, schedule, [p.id for p in rows], Interval(now, now + NEXT_FREE_LOOKAHEAD),
                now=now)
        cards = [provider_card(p, next_day=day_label(free[p.id][0].start.astimezone(
            schedule.zone).date(), page.lang) if free[p.id] else None) for p in rows]
        return page.body("providers.html", title=page.t("Book an appointment"),
                         clinic_name=info.name, slug=info.slug, zone=schedule.zone,
                         providers=cards, switch_to=f"/book/{info.slug}")

    return await cached(page, (clinic_slug, "providers"), render)


# --- step 2: days --------------------------------------------------------------------------


async def days_listing(ctx: ClinicContext, page: Page, schedule: ClinicSchedule,
                       provider_id: uuid.UUID, first_text: str | None,
                       day_url: Callable[[date], str], page_url: Callable[[date], str]
                       ) -> dict[str, Any]:
    """The days with free times from `first_text` (or today) on, and the pager's links."""
    now = datetime.now(UTC)
    today = now.astimezone(schedule.zone).date()
    try:
        first = max(date.fromisoformat(first_text), today) if first_text else today
    except ValueError:
        first = today
    last = last_bookable_day(schedule, now)
    by_day = await open_days(ctx, schedule, provider_id, first=first, now=now)
    skipped = 0
    while not by_day and not first_text and skipped < EMPTY_PAGES_SKIPPED and \
            first + timedelta(days=DAYS_PAGE) <= last:
        first += timedelta(days=DAYS_PAGE)
        skipped += 1
        by_day = await open_days(ctx, schedule, provider_id, first=first, now=now)
    days = [{"label": capitalised(day_label(d, page.lang)),
             "count_label": count_label(page, len(s)),
             "url": day_url(d)} for d, s in sorted(by_day.items())]
    after = first + timedelta(days=DAYS_PAGE)
    return {
        "days": days,
        "earlier_url": page_url(max(today, first - timedelta(days=DAYS_PAGE)))
        if first > today else None,
        "later_url": page_url(after) if after <= last else None,
    }


@router.get("/{clinic_slug}/{provider_id:uuid}")
async def days_page(page: PageDep, engine: PreAuthEngine, meta: RequestMetaDep,
                    clinic_slug: str, provider_id: uuid.UUID) -> Response:
    first = page.request.query_params.get("from", "")[:10]

    async def render() -> str:
        async with public_context(engine, clinic_slug, client_addr=meta.client_addr) as ctx:
            info = await clinic_info(ctx)
            card = provider_card(await access_bookable_provider(ctx, provider_id))
            base = f"/book/{info.slug}/{provider_id}"
            listing = await days_listing(
                ctx, page, info.schedule, provider_id, first or None,
                day_url=lambda d: f"{base}/{d.isoformat()}",
                page_url=lambda d: f"{base}?from={d.isoformat()}")
        return page.body("days.html", title=page.t("Choose a day"), clinic_name=info.name,
                         slug=info.slug, zone=info.schedule.zone, provider=card, manage=False,
                         back_url=f"/book/{info.slug}",
                         back_label=page.t("Back to providers"), notice=None,
                         switch_to=f"{base}?from={quoted(first)}" if first else base,
                         **listing)

    return await cached(page, (clinic_slug, "days", str(provider_id), first), render)


# --- step 3: times -------------------------------------------------------------------------


async def times_response(ctx: ClinicContext, page: Page, provider_id: uuid.UUID, day: date,
                         *, notice: str | None = None, status: int = 200) -> Response:
    return page.respond(await times_body(ctx, page, provider_id, day, notice=notice),
                        status=status)


async def times_body(ctx: ClinicContext, page: Page, provider_id: uuid.UUID, day: date, *,
                     notice: str | None = None) -> str:
    info = await clinic_info(ctx)
    schedule = info.schedule
    card = provider_card(await access_bookable_provider(ctx, provider_id))
    slots = await day_slots(ctx, schedule, provider_id, day, now=datetime.now(UTC))
    base = f"/book/{info.slug}/{provider_id}"
    groups = time_groups(page, slots, schedule.zone, lambda s: (
        f"{base}/{day.isoformat()}/details?start={quoted(s.start.astimezone(schedule.zone).isoformat())}"))
    return page.body("times.html", title=page.t("Choose a time"), clinic_name=info.name,
                     slug=info.slug, zone=schedule.zone, provider=card, groups=groups,
                     day_label=day_label(day, page.lang, year=True), back_url=base,
                     notice=notice, switch_to=f"{base}/{day.isoformat()}")


@router.get("/{clinic_slug}/{provider_id:uuid}/{day}")
async def times_page(page: PageDep, engine: PreAuthEngine, meta: RequestMetaDep,
                     clinic_slug: str, provider_id: uuid.UUID, day: str) -> Response:
    the_day = parse_day(day)

    async def render() -> str:
        async with public_context(engine, clinic_slug, client_addr=meta.client_addr) as ctx:
            return await times_body(ctx, page, provider_id, the_day)

    return await cached(page, (clinic_slug, "times", str(provider_id), the_day.isoformat()),
                        render)


# --- step 4: the form ----------------------------------------------------------------------


async def form_response(ctx: ClinicContext, page: Page, provider_id: uuid.UUID, day: date,
                        form: BookingForm, *, status: int = 200, notice: str | None = None,
                        offer: list[Slot] | None = None,
                        headers: dict[str, str] | None = None) -> Response:
    """The form, filled with what was typed; with `offer`, the time is chosen again from
    those free times (the one asked for went, or can no longer be booked)."""
    info = await clinic_info(ctx)
    schedule = info.schedule
    card = provider_card(await access_bookable_provider(ctx, provider_id))
    base = f"/book/{info.slug}/{provider_id}/{day.isoformat()}"
    try:
        start = datetime.fromisoformat(form.values.get("start", ""))
        when = when_label(start, schedule.zone, page.lang) if start.tzinfo else ""
    except ValueError:
        when = ""
    if not form.values.get("request_id"):
        form.values["request_id"] = str(uuid.uuid4())
    times = time_choices(page, offer, schedule.zone, day) if offer is not None else []
    return page.render(
        "details.html", title=page.t("Your details"), clinic_name=info.name, slug=info.slug,
        zone=schedule.zone, provider=card, status=status, notice=notice, headers=headers,
        values=form.values, field_errors=form.errors, errors=form.error_list(), times=times,
        when=when, csrf=page.csrf(), action=f"{base}/details", back_url=base,
        day_label=capitalised(day_label(day, page.lang, year=True)),
        phone_example=phone_example(info.country),
        switch_to=f"{base}/details?start={quoted(form.values.get('start', ''))}")


@router.get("/{clinic_slug}/{provider_id:uuid}/{day}/details")
async def details_page(ctx: PublicClinic, page: PageDep, provider_id: uuid.UUID, day: str
                       ) -> Response:
    the_day = parse_day(day)
    schedule = (await clinic_info(ctx)).schedule
    start_text = page.request.query_params.get("start", "")
    try:
        start = datetime.fromisoformat(start_text)
    except ValueError:
        start = None
    free = await day_slots(ctx, schedule, provider_id, the_day, now=datetime.now(UTC))
    if start is None or start.tzinfo is None or all(s.start != start for s in free):
        return await times_response(
            ctx, page, provider_id, the_day,
            notice=page.t("That time is no longer free. Please choose another."))
    return await form_response(ctx, page, provider_id, the_day,
                               BookingForm({"start": start_text}))


def _minutes(exc: TooManyRequests) -> int:
    return max(1, math.ceil(int(exc.details.get("retry_after_seconds", 60)) / 60))


@router.post("/{clinic_slug}/{provider_id:uuid}/{day}/details")
async def book(request: Request, page: PageDep, engine: PreAuthEngine, settings: SettingsDep,
               meta: RequestMetaDep, clinic_slug: str, provider_id: uuid.UUID, day: str
               ) -> Response:
    the_day = parse_day(day)
    raw = await request.form()
    form = read_form(raw)

    async def again(status: int, *, notice: str | None = None, offer_times: bool = False,
                    alternatives: list[Slot] | None = None,
                    headers: dict[str, str] | None = None) -> Response:
        async with public_context(engine, clinic_slug, client_addr=meta.client_addr) as ctx:
            offer = None
            if offer_times:
                schedule = (await clinic_info(ctx)).schedule
                offer = await day_slots(ctx, schedule, provider_id, the_day,
                                        now=datetime.now(UTC)) + (alternatives or [])
            return await form_response(ctx, page, provider_id, the_day, form, status=status,
                                       notice=notice, offer=offer, headers=headers)

    async with public_context(engine, clinic_slug, client_addr=meta.client_addr) as ctx:
        info = await clinic_info(ctx)
        await access_bookable_provider(ctx, provider_id)
    schedule = info.schedule
    if not page.csrf_ok(raw.get("csrf")):
        return await again(400, notice=page.t(
            "This form was open for too long or your browser blocked its cookie. Check your "
            "details and send it again."))
    data = check_booking_form(form, provider_id=provider_id, region=info.country,
                              language=page.lang, t=page.t,
                              today=datetime.now(UTC).astimezone(schedule.zone).date())
    if data is None:
        return await again(422, offer_times="start" in form.errors)
    try:
        booking = await do_public_book(engine, settings, clinic_slug=clinic_slug, data=data,
                                       client_addr=meta.client_addr,
                                       honeypot=str(raw.get("website") or ""))
    except TooManyRequests as exc:
        if exc.details.get("limit") == "address":
            notice = page.t("Too many bookings were tried from this device or network in a "
                            "short time. Try again in {minutes} minutes, or call the clinic.",
                            minutes=_minutes(exc))
        else:
            notice = page.t("Too many bookings were tried with this phone number in a short "
                            "time. Try again in {minutes} minutes, or call the clinic.",
                            minutes=_minutes(exc))
        return await again(429, headers=exc.headers, notice=notice)
    except (InvalidInput, Conflict) as exc:
        return await _refused(page, form, exc, again)
    page_cache(request).forget(clinic_slug)
    return RedirectResponse(f"/book/{clinic_slug}/confirmed?token={booking.manage_token}",
                            status_code=303)


def _slots_of(details: dict[str, Any]) -> list[Slot]:
    return [Slot(datetime.fromisoformat(a["start"]), datetime.fromisoformat(a["end"]))
            for a in details.get("alternatives", [])]


async def _refused(page: Page, form: BookingForm, exc: InvalidInput | Conflict,
                   again: Callable[..., Coroutine[Any, Any, Response]]) -> Response:
    """The form again, saying in the patient's language why the booking was refused."""
    if exc.code == "slot_taken":
        form.errors["start"] = page.t("Sorry, that time was just taken by someone else. "
                                      "Choose another time below; your details are kept.")
        form.values["start"] = ""
        return await again(409, offer_times=True, alternatives=_slots_of(exc.details))
    if exc.code.startswith("slot_"):
        form.errors["start"] = page.t("That time can no longer be booked online. Choose "
                                      "another time below; your details are kept.")
        form.values["start"] = ""
        return await again(422, offer_times=True, alternatives=_slots_of(exc.details))
    if exc.code == "invalid_phone":
        form.errors["phone"] = page.t("Enter a mobile phone number with its area code, for "
                                      "example {example}.", example="+52 55 1234 5678")
        return await again(422)
    if exc.code == "too_many_upcoming_bookings":
        form.errors["phone"] = page.t(
            "This phone number already has the most upcoming appointments booked online that "
            "the clinic allows ({cap}). Cancel one with its link, or call the clinic.",
            cap=page.settings.booking_pending_per_phone)
        return await again(409)
    if exc.code == "looks_automated":
        form.errors["website"] = page.t(
            "This booking looks automated and was not sent. If you are a person, leave the "
            "field marked 'Leave this field empty' blank and send it again, or call the "
            "clinic.")
        return await again(422)
    if exc.code == "form_already_used":
        form.values["request_id"] = ""
        return await again(409, notice=page.t("This form was already used for another "
                                              "booking. Check your details and send it again."))
    raise exc


# --- after booking: the confirmation and the manage link -----------------------------------


def manage_url(request: Request, slug: str, token: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/book/{slug}/manage?token={token}"


def _token(page: Page) -> str:
    return page.request.query_params.get("token", "")


@router.get("/{clinic_slug}/confirmed")
async def confirmed_page(ctx: PublicClinic, page: PageDep, settings: SettingsDep) -> Response:
    booking = await managed_booking(ctx, settings, _token(page))
    info = await clinic_info(ctx)
    schedule = info.schedule
    return page.render(
        "confirmed.html", title=page.t("Your appointment is booked"), clinic_name=info.name,
        slug=info.slug, zone=schedule.zone, booking=booking_view(page, booking),
        manage_url=manage_url(page.request, info.slug, booking.manage_token),
        cutoff=duration_label(schedule.policy.cancel_cutoff_minutes, page.lang))


async def manage_response(ctx: ClinicContext, page: Page, settings: Settings, token: str, *,
                          status: int = 200, done: str | None = None,
                          errors: list[dict[str, str]] | None = None) -> Response:
    booking = await managed_booking(ctx, settings, token)
    info = await clinic_info(ctx)
    schedule = info.schedule
    quoted_token = quoted(token)
    notices = {"cancelled": page.t("Your appointment is cancelled."),
               "rescheduled": page.t("Your appointment was moved. This page has a new link: "
                                     "keep it.")}
    return page.render(
        "manage.html", title=page.t("Your appointment"), clinic_name=info.name,
        slug=info.slug, zone=schedule.zone, status=status, errors=errors or [],
        booking=booking_view(page, booking), done=notices.get(done or ""),
        new_link=done == "rescheduled", manage_url=manage_url(page.request, info.slug, token),
        cancel_url=f"/book/{info.slug}/manage/cancel?token={quoted_token}",
        reschedule_url=f"/book/{info.slug}/manage/reschedule?token={quoted_token}",
        switch_to=f"/book/{info.slug}/manage?token={quoted_token}")


def _change_refused(page: Page, exc: Conflict, schedule: ClinicSchedule
                    ) -> list[dict[str, str]]:
    if exc.code == "past_change_cutoff":
        message = page.t("Online changes close {cutoff} before the appointment, and that time "
                         "has passed. Call the clinic to change or cancel it.",
                         cutoff=duration_label(schedule.policy.cancel_cutoff_minutes,
                                               page.lang))
    else:
        message = page.t("This appointment can no longer be changed online. To change it, "
                         "call the clinic.")
    return [{"target": "main", "message": message}]


@router.get("/{clinic_slug}/manage")
async def manage_page(ctx: PublicClinic, page: PageDep, settings: SettingsDep) -> Response:
    return await manage_response(ctx, page, settings, _token(page),
                                 done=page.request.query_params.get("done"))


@router.get("/{clinic_slug}/manage/cancel")
async def cancel_page(ctx: PublicClinic, page: PageDep, settings: SettingsDep) -> Response:
    token = _token(page)
    booking = await managed_booking(ctx, settings, token)
    info = await clinic_info(ctx)
    schedule = info.schedule
    if not booking.can_change:
        return await manage_response(ctx, page, settings, token, status=409, errors=[{
            "target": "main", "message": page.t("This appointment can no longer be changed "
                                                "online. To change it, call the clinic.")}])
    back = f"/book/{info.slug}/manage?token={quoted(token)}"
    return page.render("cancel.html", title=page.t("Cancel this appointment?"),
                       clinic_name=info.name, slug=info.slug, zone=schedule.zone,
                       booking=booking_view(page, booking), token=token, csrf=page.csrf(),
                       back_url=back, switch_to=f"/book/{info.slug}/manage/cancel?token="
                       f"{quoted(token)}")


async def _posted(request: Request) -> tuple[str, dict[str, str]]:
    raw = await request.form()
    fields = {k: str(v) for k, v in raw.items() if isinstance(v, str)}
    return fields.get("token", ""), fields


def _form_expired(page: Page) -> list[dict[str, str]]:
    return [{"target": "main", "message": page.t(
        "This form was open for too long or your browser blocked its cookie. Check your "
        "details and send it again.")}]


@router.post("/{clinic_slug}/manage/cancel")
async def cancel(request: Request, page: PageDep, engine: PreAuthEngine, settings: SettingsDep,
                 meta: RequestMetaDep, clinic_slug: str) -> Response:
    token, fields = await _posted(request)
    if not page.csrf_ok(fields.get("csrf")):
        async with public_context(engine, clinic_slug, client_addr=meta.client_addr) as ctx:
            return await manage_response(ctx, page, settings, token, status=400,
                                         errors=_form_expired(page))
    try:
        async with public_context(engine, clinic_slug, client_addr=meta.client_addr) as ctx:
            await do_public_cancel(ctx, settings, token)
    except Conflict as exc:
        async with public_context(engine, clinic_slug, client_addr=meta.client_addr) as ctx:
            errors = _change_refused(page, exc, (await clinic_info(ctx)).schedule)
            return await manage_response(ctx, page, settings, token, status=409, errors=errors)
    page_cache(request).forget(clinic_slug)
    return RedirectResponse(f"/book/{clinic_slug}/manage?token={quoted(token)}&done=cancelled",
                            status_code=303)


async def reschedule_response(ctx: ClinicContext, page: Page, settings: Settings, token: str,
                              *, day_text: str | None, status: int = 200,
                              notice: str | None = None,
                              field_errors: dict[str, str] | None = None) -> Response:
    booking = await managed_booking(ctx, settings, token)
    info = await clinic_info(ctx)
    schedule = info.schedule
    if not booking.can_change:
        return await manage_response(ctx, page, settings, token, status=409, errors=[{
            "target": "main", "message": page.t("This appointment can no longer be changed "
                                                "online. To change it, call the clinic.")}])
    card = provider_card(await access_bookable_provider(ctx, booking.provider_id))
    manage = f"/book/{info.slug}/manage?token={quoted(token)}"
    here = f"/book/{info.slug}/manage/reschedule?token={quoted(token)}"
    common: dict[str, Any] = {"title": page.t("Change your appointment"), "clinic_name": info.name,
              "slug": info.slug, "zone": schedule.zone, "provider": card, "status": status}
    if not day_text:
        listing = await days_listing(
            ctx, page, schedule, booking.provider_id, page.request.query_params.get("from"),
            day_url=lambda d: f"{here}&day={d.isoformat()}",
            page_url=lambda d: f"{here}&from={d.isoformat()}")
        return page.render("days.html", manage=True, back_url=manage,
                           back_label=page.t("Back to your appointment"), notice=notice,
                           switch_to=here, **common, **listing)
    day = parse_day(day_text)
    slots = await day_slots(ctx, schedule, booking.provider_id, day, now=datetime.now(UTC))
    errors = [{"target": "start-group", "message": m} for m in (field_errors or {}).values()]
    return page.render(
        "reschedule.html", booking=booking_view(page, booking), token=token, csrf=page.csrf(),
        day=day.isoformat(), day_label=day_label(day, page.lang, year=True),
        times=time_choices(page, slots, schedule.zone, day), back_url=here,
        back_label=page.t("Back to days"), notice=notice, field_errors=field_errors or {},
        errors=errors, switch_to=f"{here}&day={day.isoformat()}", **common)


@router.get("/{clinic_slug}/manage/reschedule")
async def reschedule_page(ctx: PublicClinic, page: PageDep, settings: SettingsDep) -> Response:
    return await reschedule_response(ctx, page, settings, _token(page),
                                     day_text=page.request.query_params.get("day"))


@router.post("/{clinic_slug}/manage/reschedule")
async def reschedule(request: Request, page: PageDep, engine: PreAuthEngine,
                     settings: SettingsDep, meta: RequestMetaDep, clinic_slug: str) -> Response:
    token, fields = await _posted(request)
    day_text = fields.get("day", "")

    async def again(status: int, **kwargs: Any) -> Response:
        async with public_context(engine, clinic_slug, client_addr=meta.client_addr) as ctx:
            return await reschedule_response(ctx, page, settings, token, day_text=day_text,
                                             status=status, **kwargs)

    if not page.csrf_ok(fields.get("csrf")):
        return await again(400, notice=_form_expired(page)[0]["message"])
    try:
        start = datetime.fromisoformat(fields.get("start", ""))
        if start.tzinfo is None:
            raise ValueError(fields.get("start"))
    except ValueError:
        return await again(422, field_errors={"start": page.t("Choose a time.")})
    try:
        async with public_context(engine, clinic_slug, client_addr=meta.client_addr) as ctx:
            moved = await do_public_reschedule(ctx, settings, token, start)
    except InvalidInput as exc:
        if not exc.code.startswith("slot_"):
            raise
        return await again(422, field_errors={"start": page.t("Choose a time.")}, notice=page.t(
            "That time can no longer be booked online. Choose another time below; your "
            "details are kept."))
    except Conflict as exc:
        if exc.code == "slot_taken":
            return await again(409, field_errors={"start": page.t("Choose a time.")},
                               notice=page.t("That time is no longer free. Please choose "
                                             "another."))
        async with public_context(engine, clinic_slug, client_addr=meta.client_addr) as ctx:
            errors = _change_refused(page, exc, (await clinic_info(ctx)).schedule)
            return await manage_response(ctx, page, settings, token, status=409, errors=errors)
    page_cache(request).forget(clinic_slug)
    return RedirectResponse(
        f"/book/{clinic_slug}/manage?token={quoted(moved.manage_token)}&done=rescheduled",
        status_code=303)
