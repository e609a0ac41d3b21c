"""Test data in one place: clinics, staff, providers, patients and their clinical records,
made as the owner."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Connection, Engine, Row, Table, func, insert, select, text, update

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.prescribing import FORMULARY_VERSION
from shared_models.search import search_document
from shared_models.signing import (
    fingerprint,
    generate_key,
    public_pem,
    sign_prescription,
    signing_time,
)
from shared_models.tables import (
    allergy,
    appointment,
    audit_event,
    availability_exception,
    availability_rule,
    clinical_note,
    condition,
    device,
    device_rollout,
    lab_order,
    lab_result,
    medication,
    patient,
    payment,
    pharmacy,
    prescription,
    prescription_item,
    provider,
    refresh_token,
    reminder,
    reminder_attempt,
    reminder_policy,
    signing_key,
    staff_user,
    sync_conflict,
    sync_mutation,
    vital_signs,
    web_booking,
)
from sync_server.actions.clinics import do_create_clinic, scope
from sync_server.actions.demo import fake_patient_rows
from sync_server.core.config import Settings
from sync_server.core.security import encode_token, hash_password

PASSWORD = "correct horse battery staple"
_PASSWORD_HASH = hash_password(PASSWORD)


@dataclass
class StaffUser:
    id: uuid.UUID
    clinic_id: uuid.UUID
    email: str
    role: Role


@dataclass
class ClinicData:
    id: uuid.UUID
    slug: str
    users: dict[Role, StaffUser] = field(default_factory=dict)
    provider_ids: list[uuid.UUID] = field(default_factory=list)
    patient_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass
class SigningKey:
    """A prescriber's registered key, with the private half a test signs with."""
    id: uuid.UUID
    clinic_id: uuid.UUID
    user_id: uuid.UUID
    private_key: ec.EllipticCurvePrivateKey
    public_key: str
    fingerprint: str


def item(position: int = 1, **values: Any) -> dict[str, Any]:
    """One prescription line (amoxicillin unless told otherwise), as signed and stored."""
    return {"position": position, "medicine_id": "amoxicillin", "medicine_name": "amoxicillin",
            "strength": "500 mg", "form": "capsule", "dose": "1 capsule", "route": "oral",
            "frequency": "every 8 hours", "duration_days": 7, "quantity": 21, "refills": 0,
            "instructions": None, **values}


class Factory:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def clinic(self, *, patients: int = 3, providers: int = 2, timezone: str = "America/Santiago",
               roles: tuple[Role, ...] = tuple(Role)) -> ClinicData:
        slug = f"c-{uuid.uuid4().hex[:10]}"
        with self.engine.begin() as conn:
            clinic_id = do_create_clinic(conn, slug=slug, name=f"Clinic {slug}",
                                         timezone=timezone, country="CL")
            data = ClinicData(id=clinic_id, slug=slug)
            scope(conn, clinic_id)
            for role in roles:
                user_id = uuid7()
                email = f"{role.value}-{slug}@example.test"
                conn.execute(insert(staff_user).values(
                    clinic_id=clinic_id, id=user_id, email=email, full_name=f"{role.value} user",
                    role=role.value, password_hash=_PASSWORD_HASH))
                data.users[role] = StaffUser(user_id, clinic_id, email, role)
            for i in range(providers):
                provider_id = uuid7()
                conn.execute(insert(provider).values(clinic_id=clinic_id, id=provider_id,
                                                     display_name=f"Dr. {i} {slug}"))
                data.provider_ids.append(provider_id)
            if patients:
                rows = fake_patient_rows(clinic_id, patients, seed=hash(slug) & 0xFFFF)
                conn.execute(insert(patient), rows)
                data.patient_ids.extend(r["id"] for r in rows)  # type: ignore[misc]
        return data

    def patient(self, clinic: ClinicData, *, given_name: str, family_name: str,
                phone: str | None = None, email: str | None = None, mrn: str | None = None
                ) -> uuid.UUID:
        """One patient with the given details, findable by search like a registered one."""
        patient_id = uuid7()
        mrn = mrn or f"T-{uuid.uuid4().hex[:10]}"
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            conn.execute(insert(patient).values(
                clinic_id=clinic.id, id=patient_id, mrn=mrn, given_name=given_name,
                family_name=family_name, phone=phone, email=email, preferred_channels=[],
                search_text=search_document(names=[given_name, family_name], phone=phone,
                                            mrn=mrn)))
        clinic.patient_ids.append(patient_id)
        return patient_id

    def populate(self, clinic: ClinicData) -> None:
        """A row in each remaining tenant table: a device, weekly hours, time off, an
        appointment (booked on the web), a refresh token, an audit event, sync bookkeeping,
        a note, a payment, a reminder policy, a failed reminder, the chart (an allergy, a
        condition, a medication, vital signs), a pharmacy, a prescriber's key, a prescription
        sent to the pharmacy and a lab order with a result. Needs a patient, a provider and a
        user in `clinic`."""
        now = datetime.now(UTC)
        user_id = next(iter(clinic.users.values())).id
        doctor_id = _user_id(clinic, Role.DOCTOR)
        provider_id, patient_id = clinic.provider_ids[0], clinic.patient_ids[0]
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            device_id = uuid7()
            conn.execute(insert(device).values(
                clinic_id=clinic.id, id=device_id, name=f"Front desk {clinic.slug}",
                enrolled_at=now))
            conn.execute(insert(device_rollout).values(
                clinic_id=clinic.id, id=uuid7(), name=f"Rollout {clinic.slug}",
                code_hash=uuid7().hex * 2, expires_at=now + timedelta(days=1), computers=4))
            conn.execute(insert(availability_rule).values(
                clinic_id=clinic.id, id=uuid7(), provider_id=provider_id, weekday=0,
                start_time=time(9), end_time=time(13), slot_minutes=30))
            conn.execute(insert(availability_exception).values(
                clinic_id=clinic.id, id=uuid7(), provider_id=provider_id, kind="time_off",
                starts_at=now + timedelta(days=7), ends_at=now + timedelta(days=8),
                reason=f"Congress {clinic.slug}"))
            appointment_id = uuid7()
            conn.execute(insert(appointment).values(
                clinic_id=clinic.id, id=appointment_id, patient_id=patient_id,
                provider_id=provider_id, starts_at=now + timedelta(days=1),
                ends_at=now + timedelta(days=1, minutes=30), status="booked",
                reason=f"Check-up {clinic.slug}", created_by=user_id))
            conn.execute(insert(refresh_token).values(
                clinic_id=clinic.id, id=uuid7(), family_id=uuid7(), user_id=user_id,
                device_id=device_id, issued_at=now, expires_at=now + timedelta(days=30)))
            conn.execute(insert(audit_event).values(
                clinic_id=clinic.id, id=uuid7(), actor_user_id=user_id,
                actor_device_id=device_id, action="patient.read", entity="patient",
                entity_id=patient_id))
            mutation_id = uuid7()
            conn.execute(insert(sync_mutation).values(
                clinic_id=clinic.id, mutation_id=mutation_id, device_id=device_id,
                user_id=user_id, result={"status": "applied"}))
            conn.execute(insert(sync_conflict).values(
                clinic_id=clinic.id, id=uuid7(), entity="patient", record_id=patient_id,
                field="phone", kept=f"kept-{clinic.slug}", lost=f"lost-{clinic.slug}",
                winner="device", mutation_id=mutation_id, device_id=device_id,
                user_id=user_id))
            conn.execute(insert(clinical_note).values(
                clinic_id=clinic.id, id=uuid7(), patient_id=patient_id, author_id=user_id,
                body=f"Draft note {clinic.slug}"))
            conn.execute(insert(payment).values(
                clinic_id=clinic.id, id=uuid7(), appointment_id=appointment_id,
                patient_id=patient_id, amount_minor=15000, currency="CLP", method="card",
                reference=f"Voucher {clinic.slug}", received_by=user_id, received_at=now,
                receipt_number=f"T-{clinic.slug}"))
            conn.execute(insert(web_booking).values(
                clinic_id=clinic.id, appointment_id=appointment_id,
                phone_key=uuid.uuid4().hex, request_id=uuid7()))
            conn.execute(insert(reminder_policy).values(
                clinic_id=clinic.id, offsets_minutes=[1440], quiet_start=time(22),
                quiet_end=time(7), templates={}, updated_by=user_id))
            reminder_id = uuid7()
            conn.execute(insert(reminder).values(
                clinic_id=clinic.id, id=reminder_id, appointment_id=appointment_id,
                patient_id=patient_id, kind="reminder", offset_minutes=1440,
                appointment_starts_at=now + timedelta(days=1), due_at=now, next_attempt_at=now,
                status="dead", attempts=3, refused_channels=[], channel="sms",
                last_error=f"sms: provider answered 500 {clinic.slug}"))
            conn.execute(insert(reminder_attempt).values(
                clinic_id=clinic.id, id=uuid7(), reminder_id=reminder_id, channel="sms",
                attempted_at=now, outcome="temporary_failure", error="sms: provider answered 500"))
            conn.execute(insert(allergy).values(
                clinic_id=clinic.id, id=uuid7(), patient_id=patient_id,
                substance=f"Penicilina {clinic.slug}", formulary_ref="class:penicillin",
                reaction="Urticaria", severity="moderate", recorded_by=doctor_id))
            conn.execute(insert(condition).values(
                clinic_id=clinic.id, id=uuid7(), patient_id=patient_id,
                description=f"Hipertensión esencial {clinic.slug}", code="I10",
                onset_date=now.date() - timedelta(days=400), recorded_by=doctor_id))
            conn.execute(insert(vital_signs).values(
                clinic_id=clinic.id, id=uuid7(), patient_id=patient_id,
                appointment_id=appointment_id, measured_at=now, systolic_mmhg=128,
                diastolic_mmhg=82, heart_rate_bpm=72, temperature_c=36.6, spo2_pct=98,
                weight_kg=70.5, height_cm=168.0, recorded_by=doctor_id))
            pharmacy_id = _insert_pharmacy(conn, clinic.id, name=f"Farmacia {clinic.slug}",
                                           registry_number=f"REG-{clinic.slug}")
            # The clinic's pharmacist works at it, so their incoming list has a row.
            conn.execute(update(staff_user).where(
                staff_user.c.id == _user_id(clinic, Role.PHARMACIST),
                staff_user.c.pharmacy_id.is_(None)).values(pharmacy_id=pharmacy_id))
            key = _insert_signing_key(conn, clinic.id, doctor_id, status="active",
                                      approved_by=user_id)
            prescription_id = _insert_prescription(
                conn, key, patient_id=patient_id, items=[item(instructions=clinic.slug)],
                status="sent", pharmacy_id=pharmacy_id, appointment_id=appointment_id,
                notes=f"Control en 7 días {clinic.slug}", acknowledgements=[])
            conn.execute(insert(medication).values(
                clinic_id=clinic.id, id=uuid7(), patient_id=patient_id,
                medicine_id="amoxicillin", name="amoxicillin", dose=f"500 mg c/8 h {clinic.slug}",
                started_on=now.date(), prescription_id=prescription_id, recorded_by=doctor_id))
            order_id = _insert_lab_order(conn, clinic.id, patient_id=patient_id,
                                         ordered_by=doctor_id, tests=["cbc"],
                                         status="processing",
                                         clinical_info=f"Control anual {clinic.slug}")
            _insert_lab_result(conn, clinic.id, order_id, patient_id=patient_id,
                               entered_by=_user_id(clinic, Role.LAB_TECH))

    def pharmacy(self, clinic: ClinicData, *, name: str | None = None,
                 registry_number: str | None = None, active: bool = True) -> uuid.UUID:
        """One pharmacy in the clinic's directory."""
        tag = uuid.uuid4().hex[:8]
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            return _insert_pharmacy(conn, clinic.id, name=name or f"Farmacia {tag}",
                                    registry_number=registry_number or f"REG-{tag}",
                                    active=active)

    def signing_key(self, clinic: ClinicData, user: StaffUser | None = None, *,
                    status: str = "active") -> SigningKey:
        """A fresh key registered for `user` (the clinic's doctor unless told), approved by
        the clinic's admin when active, revoked by them when revoked."""
        user_id = user.id if user is not None else _user_id(clinic, Role.DOCTOR)
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            return _insert_signing_key(conn, clinic.id, user_id, status=status,
                                       approved_by=_user_id(clinic, Role.ADMIN))

    def prescription(self, clinic: ClinicData, key: SigningKey | None = None, *,
                     patient_id: uuid.UUID | None = None,
                     items: list[dict[str, Any]] | None = None, status: str = "signed",
                     pharmacy_id: uuid.UUID | None = None,
                     appointment_id: uuid.UUID | None = None, notes: str | None = None,
                     acknowledgements: list[dict[str, Any]] | None = None) -> uuid.UUID:
        """A prescription signed with `key` (a new active key of the clinic's doctor unless
        given) over its items (one line of `item()` unless given), stored in `status`; a
        status that needs a pharmacy gets a new one unless `pharmacy_id` is given."""
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            if key is None:
                key = _insert_signing_key(conn, clinic.id, _user_id(clinic, Role.DOCTOR),
                                          status="active",
                                          approved_by=_user_id(clinic, Role.ADMIN))
            if pharmacy_id is None and status in _ROUTED:
                tag = uuid.uuid4().hex[:8]
                pharmacy_id = _insert_pharmacy(conn, clinic.id, name=f"Farmacia {tag}",
                                               registry_number=f"REG-{tag}")
            return _insert_prescription(
                conn, key, patient_id=patient_id or clinic.patient_ids[0],
                items=items if items is not None else [item()], status=status,
                pharmacy_id=pharmacy_id, appointment_id=appointment_id, notes=notes,
                acknowledgements=acknowledgements or [])

    def lab_order(self, clinic: ClinicData, *, patient_id: uuid.UUID | None = None,
                  ordered_by: uuid.UUID | None = None, tests: list[str] | None = None,
                  status: str = "ordered", results: int = 0) -> uuid.UUID:
        """A lab order (a complete blood count unless told) in `status`, with up to three
        complete-blood-count results (which need a sample: not for an order still `ordered`),
        entered before a completed or cancelled order closed."""
        patient_id = patient_id or clinic.patient_ids[0]
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            order_id = _insert_lab_order(
                conn, clinic.id, patient_id=patient_id,
                ordered_by=ordered_by or _user_id(clinic, Role.DOCTOR),
                tests=tests or ["cbc"], status=status if status not in _CLOSED else "processing")
            for analyte in _CBC[:results]:
                _insert_lab_result(conn, clinic.id, order_id, patient_id=patient_id,
                                   entered_by=_user_id(clinic, Role.LAB_TECH), analyte=analyte)
            if status in _CLOSED:
                # Results go in while the order is open; the order closes after them.
                conn.execute(update(lab_order).where(lab_order.c.id == order_id).values(
                    status=status, status_changed_at=datetime.now(UTC),
                    completed_at=datetime.now(UTC) if status == "completed" else None))
        return order_id

    def weekly_hours(self, clinic: ClinicData, provider_id: uuid.UUID, *,
                     weekdays: tuple[int, ...] = tuple(range(7)), start: time = time(8),
                     end: time = time(20), slot_minutes: int = 30, buffer_minutes: int = 0,
                     break_start: time | None = None, break_end: time | None = None) -> None:
        """Working hours for a provider on each of `weekdays` (clinic wall-clock time)."""
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            conn.execute(insert(availability_rule), [
                {"clinic_id": clinic.id, "id": uuid7(), "provider_id": provider_id,
                 "weekday": day, "start_time": start, "end_time": end,
                 "slot_minutes": slot_minutes, "buffer_minutes": buffer_minutes,
                 "break_start": break_start, "break_end": break_end}
                for day in weekdays
            ])

    def extra_hours(self, clinic: ClinicData, provider_id: uuid.UUID, *, starts_at: datetime,
                    ends_at: datetime, slot_minutes: int) -> None:
        """Hours outside the weekly rules when `provider_id` sees patients."""
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            conn.execute(insert(availability_exception).values(
                clinic_id=clinic.id, id=uuid7(), provider_id=provider_id, kind="extra_hours",
                starts_at=starts_at, ends_at=ends_at, slot_minutes=slot_minutes))

    def appointment(self, clinic: ClinicData, provider_id: uuid.UUID, patient_id: uuid.UUID,
                    *, starts_at: datetime, minutes: int = 30, status: str = "booked"
                    ) -> uuid.UUID:
        """One appointment written straight to the table (the overlap trigger still runs)."""
        appointment_id = uuid7()
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            conn.execute(insert(appointment).values(
                clinic_id=clinic.id, id=appointment_id, patient_id=patient_id,
                provider_id=provider_id, starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=minutes), status=status))
        return appointment_id

    def appointments(self, clinic: ClinicData) -> dict[uuid.UUID, Row[Any]]:
        """Every appointment of `clinic` as stored, tombstones included, by id."""
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            rows = conn.execute(select(appointment).where(appointment.c.clinic_id == clinic.id))
            return {row.id: row for row in rows}

    def overlapping_appointments(self, clinic: ClinicData, *,
                                 conn: Connection | None = None) -> list[Row[Any]]:
        """Pairs of active appointments of one provider of `clinic` whose times overlap:
        what the database must never hold. On `conn` if given (an open transaction)."""
        if conn is not None:
            return list(conn.execute(_OVERLAPS, {"clinic": clinic.id}).all())
        with self.engine.begin() as own:
            scope(own, clinic.id)
            return list(own.execute(_OVERLAPS, {"clinic": clinic.id}).all())

    def user(self, clinic: ClinicData, role: Role, *, email: str | None = None,
             active: bool = True) -> StaffUser:
        user_id = uuid7()
        email = email or f"{role.value}-{uuid.uuid4().hex[:6]}@example.test"
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            conn.execute(insert(staff_user).values(
                clinic_id=clinic.id, id=user_id, email=email, full_name="Extra user",
                role=role.value, password_hash=_PASSWORD_HASH, is_active=active))
        return StaffUser(user_id, clinic.id, email, role)

    def token(self, user: StaffUser, *, lifetime: timedelta = timedelta(minutes=15),
              now: datetime | None = None) -> str:
        return encode_token(
            key=self.settings.signing_key(), kind="access", user_id=user.id,
            clinic_id=user.clinic_id, role=user.role, token_id=uuid7(), lifetime=lifetime,
            now=now or datetime.now(UTC),
        )

    def headers(self, user: StaffUser) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    def deactivate(self, user: StaffUser) -> None:
        """Switch an account off, as the clinic admin would; its tokens stay signed."""
        with self.engine.begin() as conn:
            scope(conn, user.clinic_id)
            conn.execute(update(staff_user).where(staff_user.c.id == user.id)
                         .values(is_active=False))

    def tombstone(self, table: Table, clinic: ClinicData, row_id: uuid.UUID) -> None:
        """Mark a synced row deleted (`deleted_at`), as a delete arriving by sync would."""
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            conn.execute(update(table).where(table.c.id == row_id)
                         .values(deleted_at=datetime.now(UTC)))

    def count(self, table: Table, clinic: ClinicData) -> int:
        """How many rows of `table` belong to `clinic`, tombstones included."""
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            return int(conn.execute(select(func.count()).select_from(table)
                                    .where(table.c.clinic_id == clinic.id)).scalar_one())

    def row(self, table: Table, clinic: ClinicData, row_id: uuid.UUID) -> dict[str, Any]:
        """One row of `table` as stored, to compare before and after a refused change."""
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            return dict(conn.execute(select(table).where(table.c.id == row_id)).one()._mapping)

    def audit_events(self, clinic: ClinicData, *, action: str | None = None) -> list[Row[Any]]:
        """The clinic's audit events, oldest first, optionally only one action's."""
        stmt = select(audit_event).where(audit_event.c.clinic_id == clinic.id)
        if action is not None:
            stmt = stmt.where(audit_event.c.action == action)
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            return list(conn.execute(stmt.order_by(audit_event.c.id)).all())


_ROUTED = frozenset({"sent", "received", "dispensed", "refused"})
_CLOSED = frozenset({"completed", "cancelled"})


def _user_id(clinic: ClinicData, role: Role) -> uuid.UUID:
    """The clinic's user with `role`, or its first user when it has none."""
    user = clinic.users.get(role) or next(iter(clinic.users.values()))
    return user.id


def _insert_pharmacy(conn: Connection, clinic_id: uuid.UUID, *, name: str,
                     registry_number: str, active: bool = True) -> uuid.UUID:
    pharmacy_id = uuid7()
    conn.execute(insert(pharmacy).values(
        clinic_id=clinic_id, id=pharmacy_id, name=name, address="Av. Providencia 1234",
        registry_number=registry_number, phone="+56 2 2345 6789", is_active=active))
    return pharmacy_id


def _insert_signing_key(conn: Connection, clinic_id: uuid.UUID, user_id: uuid.UUID, *,
                        status: str, approved_by: uuid.UUID) -> SigningKey:
    private_key = generate_key()
    pem = public_pem(private_key)
    key = SigningKey(uuid7(), clinic_id, user_id, private_key, pem, fingerprint(pem))
    now = datetime.now(UTC)
    conn.execute(insert(signing_key).values(
        clinic_id=clinic_id, id=key.id, user_id=user_id, public_key=pem,
        fingerprint=key.fingerprint, status=status,
        approved_at=now if status != "pending" else None,
        approved_by=approved_by if status != "pending" else None,
        revoked_at=now if status == "revoked" else None,
        revoked_by=approved_by if status == "revoked" else None,
        revoke_reason="Lost laptop" if status == "revoked" else None))
    return key


def _insert_prescription(conn: Connection, key: SigningKey, *, patient_id: uuid.UUID,
                         items: list[dict[str, Any]], status: str,
                         pharmacy_id: uuid.UUID | None, appointment_id: uuid.UUID | None,
                         notes: str | None, acknowledgements: list[dict[str, Any]]
                         ) -> uuid.UUID:
    prescription_id = uuid7()
    row: dict[str, Any] = {
        "clinic_id": key.clinic_id, "id": prescription_id, "patient_id": patient_id,
        "prescriber_id": key.user_id, "appointment_id": appointment_id,
        "signed_at": signing_time(), "formulary_version": FORMULARY_VERSION, "notes": notes,
        "acknowledgements": acknowledgements, "signing_key_id": key.id}
    row["signature"] = sign_prescription(key.private_key, row, items)
    conn.execute(insert(prescription).values(
        **row, pharmacy_id=pharmacy_id, status=status,
        status_changed_at=None if status == "signed" else datetime.now(UTC),
        status_changed_by=None if status == "signed" else key.user_id))
    conn.execute(insert(prescription_item), [
        {**line, "clinic_id": key.clinic_id, "id": uuid7(), "prescription_id": prescription_id}
        for line in items])
    return prescription_id


def _insert_lab_order(conn: Connection, clinic_id: uuid.UUID, *, patient_id: uuid.UUID,
                      ordered_by: uuid.UUID, tests: list[str], status: str,
                      clinical_info: str | None = None) -> uuid.UUID:
    order_id = uuid7()
    now = datetime.now(UTC)
    conn.execute(insert(lab_order).values(
        clinic_id=clinic_id, id=order_id, patient_id=patient_id, ordered_by=ordered_by,
        tests=tests, clinical_info=clinical_info, status=status,
        status_changed_at=None if status == "ordered" else now,
        completed_at=now if status == "completed" else None))
    return order_id


# (analyte, value, unit, reference low, reference high) of a normal complete blood count.
_CBC = (("hgb", 13.5, "g/dL", 12.0, 17.5), ("hct", 41.0, "%", 36.0, 52.0),
        ("wbc", 7.2, "10^3/µL", 4.0, 11.0))


def _insert_lab_result(conn: Connection, clinic_id: uuid.UUID, order_id: uuid.UUID, *,
                       patient_id: uuid.UUID, entered_by: uuid.UUID,
                       analyte: tuple[str, float, str, float, float] = _CBC[0]) -> uuid.UUID:
    name, value, unit, low, high = analyte
    result_id = uuid7()
    conn.execute(insert(lab_result).values(
        clinic_id=clinic_id, id=result_id, lab_order_id=order_id, patient_id=patient_id,
        test_code="cbc", analyte=name, value=f"{value:g}", value_numeric=value, unit=unit,
        ref_low=low, ref_high=high, flag="normal", entered_by=entered_by,
        entered_at=datetime.now(UTC)))
    return result_id


_OVERLAPS = text(
    "SELECT a.id AS first_id, b.id AS second_id, a.provider_id, "
    "a.starts_at AS first_start, b.starts_at AS second_start "
    "FROM appointment a JOIN appointment b "
    "ON b.clinic_id = a.clinic_id AND b.provider_id = a.provider_id "
    "AND a.id < b.id AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at "
    "WHERE a.clinic_id = :clinic "
    "AND a.status IN ('pending', 'booked', 'checked_in', 'in_progress') "
    "AND b.status IN ('pending', 'booked', 'checked_in', 'in_progress') "
    "AND a.deleted_at IS NULL AND b.deleted_at IS NULL"
)


def expect_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert `response` is the server's one error shape with `status` and `code`; return
    its `error` object for further checks on the message and details."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str), error
    assert error["message"].strip(), error
    assert isinstance(error["details"], dict), error
    return error
