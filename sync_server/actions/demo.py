"""The demo clinic: providers with weekly hours, patients, two accounts per role, a
pharmacy directory and the charts of a few patients.

Seeding is idempotent: running it again adds only what is missing.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, func, insert, select, update

from shared_models import lab_tests
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.search import search_document
from shared_models.tables import (
    allergy,
    availability_rule,
    clinic,
    clinical_note,
    condition,
    lab_order,
    lab_result,
    medication,
    patient,
    pharmacy,
    provider,
    staff_user,
    vital_signs,
)
from sync_server.actions.clinics import do_create_clinic, do_create_user, find_clinic, scope

DEMO_SLUG = "demo"
DEMO_PASSWORD = "consulta-demo"  # noqa: S105 - the demo's published sign-in, refused in production
DEMO_PATIENTS = 200

GIVEN = ["María", "José", "Juan", "Ana", "Luis", "Carmen", "Jorge", "Lucía", "Sofía", "Pedro",
         "Valentina", "Diego", "Camila", "Andrés", "Fernanda", "Miguel", "Isabel", "Raúl",
         "Gabriela", "Tomás", "Ximena", "Ángel", "Renata", "Emilio", "Paula", "Iñaki"]
FAMILY = ["González", "Rodríguez", "Hernández", "López", "Martínez", "Pérez", "García",
          "Sánchez", "Ramírez", "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Núñez",
          "Muñoz", "Rojas", "Vargas", "Castillo", "Jiménez", "Ortiz", "Morales", "Peña",
          "Álvarez", "Ibáñez", "Cárdenas"]

PROVIDERS = [
    ("Dra. Elena Ruiz", "Medicina familiar", "#2E7D32", [0, 1, 2, 3, 4]),
    ("Dr. Martín Soto", "Pediatría", "#1565C0", [0, 2, 4, 5]),
    ("Dra. Paula Herrera", "Ginecología", "#AD1457", [1, 3, 4]),
]
HOURS = [(time(9), time(13)), (time(15), time(18))]
PHARMACIES = [
    ("Farmacia del Ahorro Roma", "Av. Álvaro Obregón 120, Roma Norte, CDMX", "COFEPRIS-09-0001",
     "+525555110001"),
    ("Farmacias Similares Centro", "Av. 5 de Mayo 32, Centro, CDMX", "COFEPRIS-09-0002",
     "+525555110002"),
    ("Farmacia San Pablo Condesa", "Av. Tamaulipas 88, Condesa, CDMX", "COFEPRIS-09-0003",
     "+525555110003"),
]
# The charts the demo doctor finds filled in: (allergy, condition, medication) per patient.
CHARTS = [
    (("Penicilina", "class:penicillin", "Urticaria generalizada", "severe"),
     ("Hipertensión arterial esencial", "I10"), ("losartan", "Losartán", "50 mg cada 24 h")),
    (None, ("Diabetes mellitus tipo 2", "E11.9"), ("metformin", "Metformina", "850 mg cada 12 h")),
    (("Ácido acetilsalicílico", "aspirin", "Broncoespasmo", "moderate"),
     ("Asma", "J45.9"), ("salbutamol", "Salbutamol inhalado", "2 disparos si hay falta de aire")),
]


@dataclass(frozen=True)
class DemoAccount:
    email: str
    role: Role


def fake_patient_rows(clinic_id: uuid.UUID, count: int, *, seed: int, start_mrn: int = 1
                      ) -> list[dict[str, object]]:
    """Plausible patients for demos, tests and benchmarks (deterministic per seed)."""
    rng = random.Random(seed)  # noqa: S311 - made-up demo data, not secrets
    rows: list[dict[str, object]] = []
    for i in range(count):
        given = rng.choice(GIVEN)
        family = f"{rng.choice(FAMILY)} {rng.choice(FAMILY)}"
        phone = f"+5255{rng.randrange(10**8):08d}"
        mrn = f"P-{start_mrn + i:06d}"
        rows.append(
            {
                "clinic_id": clinic_id,
                "id": uuid7(),
                "mrn": mrn,
                "given_name": given,
                "family_name": family,
                "date_of_birth": date(1940, 1, 1) + timedelta(days=rng.randrange(80 * 365)),
                "sex": rng.choice(["female", "male"]),
                "phone": phone,
                "email": None,
                "preferred_language": "es",
                "preferred_channels": ["whatsapp", "sms"],
                "search_text": search_document(names=[given, family], phone=phone, mrn=mrn),
            }
        )
    return rows


def seed_demo(conn: Connection) -> list[DemoAccount]:
    clinic_id = find_clinic(conn, DEMO_SLUG)
    if clinic_id is None:
        clinic_id = do_create_clinic(
            conn, slug=DEMO_SLUG, name="Clínica Demo", timezone="America/Mexico_City"
        )
    scope(conn, clinic_id)

    accounts: list[DemoAccount] = []
    existing = set(conn.execute(select(staff_user.c.email)).scalars())
    for role in Role:
        for n in (1, 2):
            email = f"{role.value.replace('_', '')}{n}@demo.consulta.local"
            accounts.append(DemoAccount(email, role))
            if email not in existing:
                do_create_user(conn, clinic_id=clinic_id, email=email,
                               full_name=f"Demo {role.value} {n}", role=role,
                               password=DEMO_PASSWORD)

    have = set(conn.execute(select(provider.c.display_name)).scalars())
    for name, specialty, color, weekdays in PROVIDERS:
        if name in have:
            continue
        provider_id = uuid7()
        conn.execute(insert(provider).values(clinic_id=clinic_id, id=provider_id,
                                             display_name=name, specialty=specialty,
                                             color=color))
        conn.execute(
            insert(availability_rule),
            [
                {"clinic_id": clinic_id, "id": uuid7(), "provider_id": provider_id,
                 "weekday": day, "start_time": start, "end_time": end, "slot_minutes": 30}
                for day in weekdays
                for start, end in HOURS
            ],
        )

    count = conn.execute(select(func.count()).select_from(patient)).scalar_one()
    if count < DEMO_PATIENTS:
        rows = fake_patient_rows(clinic_id, DEMO_PATIENTS - count, seed=count,
                                 start_mrn=count + 1)
        conn.execute(insert(patient), rows)
        conn.execute(clinic.update().where(clinic.c.id == clinic_id)
                     .values(next_mrn=DEMO_PATIENTS + 1))
    _seed_clinical(conn, clinic_id)
    return accounts


def _user(conn: Connection, email: str) -> uuid.UUID:
    user_id: uuid.UUID = conn.execute(
        select(staff_user.c.id).where(staff_user.c.email == email)).scalar_one()
    return user_id


def _seed_clinical(conn: Connection, clinic_id: uuid.UUID) -> None:
    """Pharmacies, the first doctor's own provider, the first pharmacist's pharmacy, and a
    few charts: once (a clinic that has any pharmacy already has them)."""
    if conn.execute(select(pharmacy.c.id).limit(1)).first() is not None:
        return
    pharmacy_ids = []
    for name, address, registry, phone in PHARMACIES:
        pharmacy_ids.append(uuid7())
        conn.execute(insert(pharmacy).values(clinic_id=clinic_id, id=pharmacy_ids[-1],
                                             name=name, address=address,
                                             registry_number=registry, phone=phone))
    doctor = _user(conn, "doctor1@demo.consulta.local")
    lab = _user(conn, "labtech1@demo.consulta.local")
    conn.execute(update(staff_user).where(staff_user.c.email == "pharmacist1@demo.consulta.local")
                 .values(pharmacy_id=pharmacy_ids[0]))
    conn.execute(update(provider).where(provider.c.display_name == PROVIDERS[0][0])
                 .values(user_id=doctor))
    patients = conn.execute(select(patient.c.id).order_by(patient.c.mrn)
                            .limit(len(CHARTS))).scalars().all()
    now = datetime.now(UTC).replace(microsecond=0)
    for n, (patient_id, (allergic, ill, takes)) in enumerate(zip(patients, CHARTS, strict=False)):
        common = {"clinic_id": clinic_id, "patient_id": patient_id, "recorded_by": doctor}
        if allergic is not None:
            substance, ref, reaction, severity = allergic
            conn.execute(insert(allergy).values(id=uuid7(), substance=substance,
                                                formulary_ref=ref, reaction=reaction,
                                                severity=severity, **common))
        conn.execute(insert(condition).values(id=uuid7(), description=ill[0], code=ill[1],
                                              onset_date=date(2019 + n, 3, 1), **common))
        conn.execute(insert(medication).values(id=uuid7(), medicine_id=takes[0], name=takes[1],
                                               dose=takes[2], started_on=date(2020 + n, 5, 1),
                                               **common))
        conn.execute(insert(vital_signs).values(
            id=uuid7(), measured_at=now - timedelta(days=30), systolic_mmhg=138 - 4 * n,
            diastolic_mmhg=86 - 2 * n, heart_rate_bpm=76, temperature_c=36.5, spo2_pct=97,
            weight_kg=72.0 + 3 * n, height_cm=165.0, **common))
        conn.execute(insert(clinical_note).values(
            clinic_id=clinic_id, id=uuid7(), patient_id=patient_id, author_id=doctor,
            status="signed", signed_at=now - timedelta(days=30),
            body=(f"Control de {ill[0].lower()}.\nRefiere buena adherencia al tratamiento. "
                  "Exploración sin hallazgos relevantes.\nPlan: continuar tratamiento, "
                  "laboratorios de control y cita en 4 semanas.")))
        _seed_lab(conn, clinic_id, patient_id, doctor=doctor, lab=lab, now=now, high=n == 1)


def _seed_lab(conn: Connection, clinic_id: uuid.UUID, patient_id: uuid.UUID, *,
              doctor: uuid.UUID, lab: uuid.UUID, now: datetime, high: bool) -> None:
    """A completed blood glucose and HbA1c, out of range for one patient. Results go in
    while the order is processing; the database refuses them once it is completed."""
    order_id = uuid7()
    conn.execute(insert(lab_order).values(
        clinic_id=clinic_id, id=order_id, patient_id=patient_id, ordered_by=doctor,
        tests=["glucose", "hba1c"], status="processing", status_changed_at=now,
        status_changed_by=lab))
    for code, analyte_id, value in (("glucose", "glucose", "162" if high else "91"),
                                    ("hba1c", "hba1c", "7.8" if high else "5.3")):
        spec = lab_tests.analyte(code, analyte_id)
        conn.execute(insert(lab_result).values(
            clinic_id=clinic_id, id=uuid7(), lab_order_id=order_id, patient_id=patient_id,
            test_code=code, analyte=analyte_id, value=value,
            value_numeric=lab_tests.parse_number(value), unit=spec.unit, ref_low=spec.low,
            ref_high=spec.high,
            flag=lab_tests.flag(value, low=spec.low, high=spec.high,
                                critical_low=spec.critical_low,
                                critical_high=spec.critical_high),
            entered_by=lab, entered_at=now - timedelta(days=2)))
    conn.execute(update(lab_order).where(lab_order.c.id == order_id).values(
        status="completed", completed_at=now - timedelta(days=2), status_changed_by=lab))
