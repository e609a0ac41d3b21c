"""The booking form: read what was typed, check each field with a message a patient can
act on (in their language), and turn it into the booking service's request.

Checked here rather than left to the schema so each message sits beside its own field;
the schema (`PublicBookingCreate`) checks again behind it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import ValidationError

from shared_models.schemas.patients import EARLIEST_BIRTH_DATE
from shared_models.schemas.public_booking import PublicBookingCreate

TEXT_FIELDS = ("start", "given_name", "family_name", "phone", "email", "dob_day",
               "dob_month", "dob_year", "reason", "request_id")
MAX_LENGTHS = {"given_name": 100, "family_name": 100, "phone": 32, "email": 254,
               "reason": 500, "dob_day": 2, "dob_month": 2, "dob_year": 4}
# Where the error summary sends focus for each field's message.
TARGETS = {"dob": "dob_day", "start": "start-group"}

Translate = Callable[..., str]


@dataclass
class BookingForm:
    """What was typed (kept to fill the form again) and what is wrong with it."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def error_list(self) -> list[dict[str, str]]:
        order = ["start", "given_name", "family_name", "phone", "email", "dob", "reason",
                 "website"]
        return [{"target": TARGETS.get(name, name), "message": self.errors[name]}
                for name in sorted(self.errors, key=lambda n: order.index(n)
                                   if n in order else len(order))]


def read_form(raw: Mapping[str, object]) -> BookingForm:
    values = {name: str(raw.get(name) or "") for name in TEXT_FIELDS}
    if raw.get("reminders"):
        values["reminders"] = "yes"
    return BookingForm(values)


def _text(form: BookingForm, name: str, label: str, t: Translate, *,
          missing: str | None = None) -> str:
    """The field's text; `missing` is the message when it is required and left empty."""
    value = form.values.get(name, "").strip()
    if "\x00" in value:
        form.errors[name] = t("{label} contains a character that is not allowed. Remove it "
                              "and try again.", label=label)
    elif missing and not value:
        form.errors[name] = missing
    elif len(value) > MAX_LENGTHS[name]:
        form.errors[name] = t("{label} must be {n} characters or fewer.", label=label,
                              n=MAX_LENGTHS[name])
    return value


def _birth_date(form: BookingForm, t: Translate, today: date) -> date | None:
    parts = [form.values.get(p, "").strip() for p in ("dob_day", "dob_month", "dob_year")]
    if not any(parts):
        form.errors["dob"] = t("Enter your date of birth.")
        return None
    if not all(p.isdigit() and p.isascii() for p in parts) or len(parts[2]) != 4:
        form.errors["dob"] = t("Date of birth must be a real date, with the year in four "
                               "digits, for example 27 3 1985.")
        return None
    try:
        born = date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError:
        form.errors["dob"] = t("Date of birth must be a real date, with the year in four "
                               "digits, for example 27 3 1985.")
        return None
    if born > today:
        form.errors["dob"] = t("Date of birth must be in the past.")
    elif born < EARLIEST_BIRTH_DATE:
        form.errors["dob"] = t("Date of birth must be after 1900.")
    return born


def check_booking_form(form: BookingForm, *, provider_id: uuid.UUID, region: str,
                       language: str, t: Translate, today: date) -> PublicBookingCreate | None:
    """The service request, or None with `form.errors` filled in."""
    given = _text(form, "given_name", t("First name"), t, missing=t("Enter your first name."))
    family = _text(form, "family_name", t("Last name"), t, missing=t("Enter your last name."))
    phone = _text(form, "phone", t("Mobile phone"), t,
                  missing=t("Enter your mobile phone number."))
    if phone and "phone" not in form.errors:
        try:
            valid = phonenumbers.is_valid_number(phonenumbers.parse(phone, region))
        except phonenumbers.NumberParseException:
            valid = False
        if not valid:
            form.errors["phone"] = t("Enter a mobile phone number with its area code, for "
                                     "example {example}.", example=phone_example(region))
    email = _text(form, "email", t("E-mail"), t)
    if email and "email" not in form.errors:
        try:
            validate_email(email, check_deliverability=False)
        except EmailNotValidError:
            form.errors["email"] = t("Enter an e-mail address like name@example.com, or leave "
                                     "it empty.")
    born = _birth_date(form, t, today)
    reason = _text(form, "reason", t("Reason for the visit"), t)
    start_text = form.values.get("start", "")
    try:
        start = datetime.fromisoformat(start_text)
        if start.tzinfo is None:
            raise ValueError(start_text)
    except ValueError:
        form.errors["start"] = t("Choose a time.")
        start = None
    try:
        request_id = uuid.UUID(form.values.get("request_id", ""))
    except ValueError:
        request_id = None
    if form.errors or born is None or start is None:
        return None
    try:
        return PublicBookingCreate(
            provider_id=provider_id, start=start, given_name=given, family_name=family,
            phone=phone, email=email or None, date_of_birth=born, reason=reason or None,
            reminders=bool(form.values.get("reminders")), language=language,
            request_id=request_id)
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "start"
            name = "dob" if name == "date_of_birth" else name
            form.errors.setdefault(name, t("Check this answer."))
        return None


def phone_example(region: str) -> str:
    example = phonenumbers.example_number_for_type(region,
                                                   phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return "+52 55 1234 5678"
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
