"""Spanish and English for the booking page: which one a request gets, the Spanish text of
each English message, and dates and times written the way each language writes them.

The language is the `lang` query parameter (the page's switch, remembered in a cookie),
else the cookie, else the browser's Accept-Language, else Spanish.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

Lang = Literal["es", "en"]
LANGUAGES: tuple[Lang, ...] = ("es", "en")
DEFAULT: Lang = "es"
NAMES = {"es": "Español", "en": "English"}
LANG_COOKIE = "consulta_lang"

_WEEKDAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "es": ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
}
_MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre"],
}


def as_lang(value: str | None) -> Lang | None:
    if value == "es":
        return "es"
    if value == "en":
        return "en"
    return None


def from_accept_language(header: str | None) -> Lang | None:
    """The first of our languages in an Accept-Language header, by its q weights."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        ranked.append((-weight, position, tag.strip().lower().split("-")[0]))
    for negative_weight, _, primary in sorted(ranked):
        if negative_weight < 0 and (lang := as_lang(primary)) is not None:
            return lang
    return None


def translate(lang: Lang, message: str, /, **values: object) -> str:
    text = SPANISH.get(message, message) if lang == "es" else message
    return text.format(**values) if values else text


def day_label(day: date, lang: Lang, *, year: bool = False) -> str:
    weekday, month = _WEEKDAYS[lang][day.weekday()], _MONTHS[lang][day.month - 1]
    if lang == "es":
        return f"{weekday} {day.day} de {month}" + (f" de {day.year}" if year else "")
    return f"{weekday} {day.day} {month}" + (f" {day.year}" if year else "")


def time_label(at: datetime) -> str:
    """24-hour clock, as clinics in Latin America write appointment times."""
    return at.strftime("%H:%M")


def utc_offset(at: datetime) -> str:
    offset = at.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    # U+2212, which no line break separates from "UTC" or the digits.
    sign = "+" if minutes >= 0 else "\u2212"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def zone_label(zone: ZoneInfo, at: datetime) -> str:
    """`America/Santiago (UTC-3)`: the zone by name and its offset at `at`."""
    return f"{zone.key.replace('_', ' ')} ({utc_offset(at.astimezone(zone))})"


def when_label(at: datetime, zone: ZoneInfo, lang: Lang) -> str:
    """A date and time with its zone: `Tuesday 4 March 2025, 09:30 America/Santiago (UTC-3)`."""
    local = at.astimezone(zone)
    at_word = "a las" if lang == "es" else "at"
    return (f"{day_label(local.date(), lang, year=True)}, {at_word} {time_label(local)} "
            f"{zone_label(zone, local)}")


def duration_label(minutes: int, lang: Lang) -> str:
    hours, rest = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(translate(lang, "{n} hours" if hours != 1 else "{n} hour", n=hours))
    if rest or not hours:
        parts.append(translate(lang, "{n} minutes", n=rest))
    return " ".join(parts)


# English message -> Spanish. A test checks every message the templates and pages use
# has its entry here.
SPANISH: dict[str, str] = {
    # frame
    "Error": "Error",
    "Skip to main content": "Saltar al contenido principal",
    "Language": "Idioma",
    "Times are in the clinic's time zone: {zone}.": "Los horarios están en la zona horaria de "
    "la clínica: {zone}.",
    "There is a problem": "Hay un problema",
    "Step {n} of {total}": "Paso {n} de {total}",
    "(optional)": "(opcional)",
    "With": "Con",
    "When": "Cuándo",
    "Where": "Dónde",
    "Status": "Estado",
    # step 1
    "Book an appointment": "Reservar una hora",
    "Choose who you would like to see.": "Elija con quién quiere atenderse.",
    "Next free day: {day}": "Próximo día libre: {day}",
    "No free times in the next two weeks": "Sin horas libres en las próximas dos semanas",
    "No one is taking online bookings at the moment. Please call the clinic.":
        "Por ahora nadie recibe reservas en línea. Llame a la clínica, por favor.",
    "Already booked? Open the link you received when you booked to cancel or change your "
    "appointment.": "¿Ya reservó? Abra el enlace que recibió al reservar para cancelar o "
    "cambiar su hora.",
    # step 2
    "Choose a day": "Elija un día",
    "Back to providers": "Volver a los profesionales",
    "There are no free times in these dates.": "No hay horas libres en estas fechas.",
    "More dates": "Más fechas",
    "Earlier dates": "Fechas anteriores",
    "Later dates": "Fechas posteriores",
    "1 free time": "1 hora libre",
    "{n} free times": "{n} horas libres",
    # step 3
    "Choose a time": "Elija una hora",
    "Back to days": "Volver a los días",
    "Times in clinic time: {zone}.": "Horas en el horario de la clínica: {zone}.",
    "Morning": "Mañana",
    "Afternoon": "Tarde",
    "Evening": "Noche",
    "There are no free times left on this day.": "Ya no quedan horas libres este día.",
    "Choose another day": "Elegir otro día",
    "That time is no longer free. Please choose another.":
        "Esa hora ya no está libre. Elija otra, por favor.",
    # step 4
    "Your details": "Sus datos",
    "Back to times": "Volver a las horas",
    "Change time": "Cambiar hora",
    "About you": "Sobre usted",
    "First name": "Nombre",
    "Last name": "Apellidos",
    "Mobile phone": "Teléfono móvil",
    "With area code, for example {example}": "Con código de área, por ejemplo {example}",
    "E-mail": "Correo electrónico",
    "Date of birth": "Fecha de nacimiento",
    "For example, 27 3 1985": "Por ejemplo, 27 3 1985",
    "Day": "Día",
    "Month": "Mes",
    "Year": "Año",
    "Reason for the visit": "Motivo de la consulta",
    "A few words are enough, for example: check-up, sore throat.":
        "Bastan unas palabras, por ejemplo: control, dolor de garganta.",
    "Reminders": "Recordatorios",
    "Send me reminders of my appointment by text message (and by e-mail if I gave one).":
        "Envíenme recordatorios de mi hora por mensaje de texto (y por correo si lo di).",
    "Leave this field empty": "Deje este campo vacío",
    "The clinic uses these details only to arrange your care.":
        "La clínica usa estos datos solo para organizar su atención.",
    "Book appointment": "Reservar hora",
    # form errors
    "{label} contains a character that is not allowed. Remove it and try again.":
        "{label} tiene un carácter no permitido. Quítelo e inténtelo de nuevo.",
    "Enter your first name.": "Escriba su nombre.",
    "Enter your last name.": "Escriba sus apellidos.",
    "Enter your mobile phone number.": "Escriba su teléfono móvil.",
    "{label} must be {n} characters or fewer.": "{label}: use como máximo {n} caracteres.",
    "Enter your date of birth.": "Escriba su fecha de nacimiento.",
    "Date of birth must be a real date, with the year in four digits, for example 27 3 1985.":
        "La fecha de nacimiento debe ser una fecha real, con el año en cuatro cifras, por "
        "ejemplo 27 3 1985.",
    "Date of birth must be in the past.": "La fecha de nacimiento debe estar en el pasado.",
    "Date of birth must be after 1900.": "La fecha de nacimiento debe ser posterior a 1900.",
    "Enter a mobile phone number with its area code, for example {example}.":
        "Escriba un teléfono móvil con su código de área, por ejemplo {example}.",
    "Enter an e-mail address like name@example.com, or leave it empty.":
        "Escriba un correo como nombre@ejemplo.com, o déjelo vacío.",
    "Choose a time.": "Elija una hora.",
    "Check this answer.": "Revise esta respuesta.",
    "Sorry, that time was just taken by someone else. Choose another time below; your "
    "details are kept.": "Lo sentimos: otra persona acaba de reservar esa hora. Elija otra "
    "hora más abajo; sus datos se mantienen.",
    "That time can no longer be booked online. Choose another time below; your details are "
    "kept.": "Esa hora ya no se puede reservar en línea. Elija otra hora más abajo; sus "
    "datos se mantienen.",
    "This phone number already has the most upcoming appointments booked online that the "
    "clinic allows ({cap}). Cancel one with its link, or call the clinic.":
        "Este teléfono ya tiene el máximo de horas futuras reservadas en línea que permite "
        "la clínica ({cap}). Cancele una con su enlace o llame a la clínica.",
    "Too many bookings were tried from this device or network in a short time. Try again "
    "in {minutes} minutes, or call the clinic.": "Se intentaron demasiadas reservas desde "
    "este dispositivo o red en poco tiempo. Inténtelo de nuevo en {minutes} minutos o llame "
    "a la clínica.",
    "Too many bookings were tried with this phone number in a short time. Try again in "
    "{minutes} minutes, or call the clinic.": "Se intentaron demasiadas reservas con este "
    "teléfono en poco tiempo. Inténtelo de nuevo en {minutes} minutos o llame a la clínica.",
    "This booking looks automated and was not sent. If you are a person, leave the field "
    "marked 'Leave this field empty' blank and send it again, or call the clinic.":
        "Esta reserva parece automática y no se envió. Si usted es una persona, deje vacío "
        "el campo 'Deje este campo vacío' y envíela de nuevo, o llame a la clínica.",
    "This form was open for too long or your browser blocked its cookie. Check your details "
    "and send it again.": "Este formulario estuvo abierto demasiado tiempo o su navegador "
    "bloqueó su cookie. Revise sus datos y envíelo de nuevo.",
    "This form was already used for another booking. Check your details and send it again.":
        "Este formulario ya se usó para otra reserva. Revise sus datos y envíelo de nuevo.",
    # confirmation and manage
    "Your appointment is booked": "Su hora está reservada",
    "We look forward to seeing you.": "Le esperamos.",
    "Keep this link": "Guarde este enlace",
    "Open it to see, change or cancel your appointment, up to {cutoff} before it starts.":
        "Ábralo para ver, cambiar o cancelar su hora, hasta {cutoff} antes de que empiece.",
    "Anyone with this link can change your appointment: share it only with people you trust.":
        "Cualquier persona con este enlace puede cambiar su hora: compártalo solo con "
        "personas de confianza.",
    "Book another appointment": "Reservar otra hora",
    "Your appointment": "Su hora",
    "You can change or cancel it online until {deadline}.":
        "Puede cambiarla o cancelarla en línea hasta el {deadline}.",
    "Cancel appointment": "Cancelar hora",
    "Online changes closed at {deadline}. To change or cancel, call the clinic.":
        "Los cambios en línea cerraron el {deadline}. Para cambiar o cancelar, llame a la "
        "clínica.",
    "Your link": "Su enlace",
    "Keep this page's address: it is your link to this appointment.":
        "Guarde la dirección de esta página: es su enlace a esta hora.",
    "Your appointment is cancelled.": "Su hora está cancelada.",
    "Your appointment was moved. This page has a new link: keep it.":
        "Su hora fue cambiada. Esta página tiene un enlace nuevo: guárdelo.",
    "Cancel this appointment?": "¿Cancelar esta hora?",
    "Back to your appointment": "Volver a su hora",
    "Yes, cancel it": "Sí, cancelarla",
    "No, keep it": "No, mantenerla",
    "Change your appointment": "Cambiar su hora",
    "Now: {when}": "Ahora: {when}",
    "Choose a new time": "Elija una nueva hora",
    "Choose another time": "Elija otra hora",
    "Move my appointment": "Cambiar mi hora",
    "Booked": "Reservada",
    "Pending": "Pendiente",
    "Cancelled": "Cancelada",
    "Checked in": "Recibido en la clínica",
    "In progress": "En atención",
    "Completed": "Atendida",
    "Missed": "No asistió",
    "Not confirmed": "No confirmada",
    "This appointment can no longer be changed online. To change it, call the clinic.":
        "Esta hora ya no se puede cambiar en línea. Para cambiarla, llame a la clínica.",
    "Online changes close {cutoff} before the appointment, and that time has passed. Call "
    "the clinic to change or cancel it.": "Los cambios en línea cierran {cutoff} antes de "
    "la hora, y ese plazo ya pasó. Llame a la clínica para cambiarla o cancelarla.",
    "{n} hours": "{n} horas",
    "{n} hour": "{n} hora",
    "{n} minutes": "{n} minutos",
    # error pages
    "Clinic not found": "Clínica no encontrada",
    "We could not find this clinic. Check the address of the page.":
        "No encontramos esta clínica. Revise la dirección de la página.",
    "Not found": "No encontrado",
    "This page does not exist. Start again from the clinic's booking page.":
        "Esta página no existe. Empiece de nuevo desde la página de reservas de la clínica.",
    "Link not valid": "Enlace no válido",
    "This link is not valid: it may be incomplete or changed. Open the link exactly as you "
    "received it, or contact the clinic.": "Este enlace no es válido: puede estar incompleto "
    "o alterado. Ábralo tal como lo recibió o contacte a la clínica.",
    "Link expired": "Enlace vencido",
    "This link has expired: it worked until the day after the appointment. To book again "
    "or ask about a visit, contact the clinic.": "Este enlace venció: servía hasta el día "
    "después de la hora. Para reservar de nuevo o consultar por una visita, contacte a la "
    "clínica.",
    "Appointment not found": "Hora no encontrada",
    "This appointment is no longer in the clinic's calendar. Contact the clinic if you need "
    "to see someone.": "Esta hora ya no está en la agenda de la clínica. Contacte a la "
    "clínica si necesita atención.",
    "Something went wrong": "Algo salió mal",
    "The page could not be shown just now. Try again in a moment, or call the clinic.":
        "La página no se pudo mostrar ahora. Inténtelo de nuevo en un momento o llame a la "
        "clínica.",
    "Go to the clinic's booking page": "Ir a la página de reservas de la clínica",
    "Online booking": "Reservas en línea",
}
