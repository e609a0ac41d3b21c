"""Enumerations whose values travel over the wire and live in both databases."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    RECEPTIONIST = "receptionist"
    DOCTOR = "doctor"
    LAB_TECH = "lab_tech"
    PHARMACIST = "pharmacist"


class AppointmentStatus(StrEnum):
    PENDING = "pending"
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    REJECTED = "rejected"


# Appointments in these states hold their slot; the overlap guarantee covers only them.
ACTIVE_APPOINTMENT_STATUSES = frozenset(
    {
        AppointmentStatus.PENDING,
        AppointmentStatus.BOOKED,
        AppointmentStatus.CHECKED_IN,
        AppointmentStatus.IN_PROGRESS,
    }
)


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"


class ExceptionKind(StrEnum):
    TIME_OFF = "time_off"
    EXTRA_HOURS = "extra_hours"
