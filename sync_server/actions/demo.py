"""The demo clinic: providers with weekly hours, patients and two accounts per role.

Seeding is idempotent: running it again adds only what is missing.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, time, timedelta

from sqlalchemy import Connection, func, insert, select

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.search import search_document
from shared_models.tables import availability_rule, clinic, patient, provider, staff_user
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
    return accounts
