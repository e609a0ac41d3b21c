"""A long chart in a local store, for the chart benchmark and for tests and screens that
need a patient with years of history.

`fill_chart` gives one patient notes (some with addenda, a few drafts), prescriptions
with their items, lab orders with results (some out of range), and the chart's lists and
vital signs, written as a pull would leave them. `fill_other_patients` adds a crowd of
patients with a few notes each, so a query that is not served by an index shows it.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert, select

from shared_models import lab_tests, prescribing
from shared_models.ids import uuid7
from shared_models.tables import (
    allergy,
    clinical_note,
    condition,
    lab_order,
    lab_result,
    medication,
    patient,
    prescription,
    prescription_item,
    vital_signs,
)

# Every few notes has addenda; a few are drafts of the doctor who reads the chart.
ADDENDA_EVERY = 8
DRAFTS = 3
ABNORMAL_SHARE = 0.2
_SENTENCES = (
    "Paciente refiere cefalea intermitente de predominio vespertino desde hace dos semanas.",
    "Niega fiebre, pérdida de peso o síntomas urinarios.",
    "Tensión arterial controlada con el tratamiento actual; adherencia referida como buena.",
    "A la exploración, abdomen blando, depresible, sin dolor a la palpación.",
    "Se solicita perfil lipídico y hemoglobina glucosilada para el próximo control.",
    "Se refuerzan medidas higiénico-dietéticas y actividad física regular.",
    "Auscultación cardiopulmonar sin hallazgos patológicos.",
    "Control en cuatro semanas o antes si aparecen signos de alarma.",
)


@dataclass(frozen=True)
class ChartFill:
    """What was written: the doctor whose drafts are among the notes, and the counts."""

    patient_id: uuid.UUID
    doctor_id: uuid.UUID
    notes: int
    addenda: int
    prescriptions: int
    items: int
    labs: int
    results: int


def _stamps(count: int, *, rng: random.Random, end: datetime, step_days: float
            ) -> list[datetime]:
    """`count` instants going back from `end`, oldest first, about `step_days` apart."""
    at, out = end, []
    for _ in range(count):
        at -= timedelta(days=step_days * rng.uniform(0.5, 1.5), minutes=rng.randint(0, 600))
        out.append(at)
    return out[::-1]


def _body(rng: random.Random, sentences: int) -> str:
    return "\n".join(rng.choice(_SENTENCES) for _ in range(sentences))


def _sync(at: datetime, version: int) -> dict[str, Any]:
    return {"server_version": version, "created_at": at, "updated_at": at}


def _ensure_patient(conn: Connection, clinic_id: uuid.UUID, patient_id: uuid.UUID) -> None:
    if conn.execute(select(patient.c.id).where(patient.c.id == patient_id)).first() is None:
        conn.execute(insert(patient).values(
            clinic_id=clinic_id, id=patient_id, mrn=f"MRN-{patient_id.hex[-8:]}",
            given_name="Xóchitl", family_name="Ramírez Núñez",
            date_of_birth=date(1961, 4, 17), sex="female", preferred_channels=[]))


def _bulk(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(table), list(rows))


def fill_chart(engine: Engine, clinic_id: uuid.UUID, patient_id: uuid.UUID, *,
               notes: int = 200, prescriptions: int = 100, labs: int = 50,
               doctor_id: uuid.UUID | None = None, seed: int = 8) -> ChartFill:
    """One patient's long history; the patient is created when not in the store yet.
    `doctor_id` writes the drafts and most notes (another doctor writes the rest)."""
    rng = random.Random(seed)
    doctor = doctor_id or uuid7()
    colleague = uuid7()
    now = datetime.now(UTC)
    version = iter(range(1, 10_000_000))
    with engine.begin() as conn:
        _ensure_patient(conn, clinic_id, patient_id)
        note_rows, addenda = _notes(clinic_id, patient_id, doctor, colleague, notes, rng, now,
                                    version)
        _bulk(conn, clinical_note, note_rows)
        script_rows, item_rows = _prescriptions(clinic_id, patient_id, doctor, prescriptions,
                                                rng, now, version)
        _bulk(conn, prescription, script_rows)
        _bulk(conn, prescription_item, item_rows)
        order_rows, result_rows = _labs(clinic_id, patient_id, doctor, labs, rng, now, version)
        _bulk(conn, lab_order, order_rows)
        _bulk(conn, lab_result, result_rows)
        _lists(conn, clinic_id, patient_id, doctor, rng, now, version)
    return ChartFill(patient_id=patient_id, doctor_id=doctor, notes=notes, addenda=addenda,
                     prescriptions=prescriptions, items=len(item_rows), labs=labs,
                     results=len(result_rows))


def _notes(clinic_id: uuid.UUID, patient_id: uuid.UUID, doctor: uuid.UUID,
           colleague: uuid.UUID, count: int, rng: random.Random, now: datetime,
           version: Any) -> tuple[list[dict[str, Any]], int]:
    rows: list[dict[str, Any]] = []
    addenda = 0
    for n, at in enumerate(_stamps(count, rng=rng, end=now, step_days=9)):
        draft = n >= count - DRAFTS
        note_id = uuid7()
        rows.append({
            "clinic_id": clinic_id, "id": note_id, "patient_id": patient_id,
            "author_id": doctor if draft or n % 3 else colleague, "addendum_to": None,
            "status": "draft" if draft else "signed", "body": _body(rng, rng.randint(4, 12)),
            "signed_at": None if draft else at + timedelta(minutes=20),
            **_sync(at, next(version))})
        if draft or n % ADDENDA_EVERY:
            continue
        for k in range(rng.randint(1, 2)):
            later = at + timedelta(days=k + 1)
            rows.append({
                "clinic_id": clinic_id, "id": uuid7(), "patient_id": patient_id,
                "author_id": doctor, "addendum_to": note_id, "status": "signed",
                "body": _body(rng, 2), "signed_at": later, **_sync(later, next(version))})
            addenda += 1
    return rows, addenda


def _prescriptions(clinic_id: uuid.UUID, patient_id: uuid.UUID, doctor: uuid.UUID,
                   count: int, rng: random.Random, now: datetime, version: Any
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    medicines = prescribing.formulary().medicines
    scripts: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    key_id, pharmacy_id = uuid7(), uuid7()
    for at in _stamps(count, rng=rng, end=now, step_days=18):
        script_id = uuid7()
        status = rng.choice(("signed", "dispensed", "dispensed", "cancelled"))
        scripts.append({
            "clinic_id": clinic_id, "id": script_id, "patient_id": patient_id,
            "prescriber_id": doctor, "signed_at": at,
            "formulary_version": prescribing.formulary().version, "acknowledgements": [],
            "signing_key_id": key_id,
            "signature": base64.b64encode(rng.randbytes(71)).decode(),
            "status": status, "pharmacy_id": pharmacy_id if status == "dispensed" else None,
            **_sync(at, next(version))})
        for position, medicine in enumerate(rng.sample(medicines, rng.randint(1, 3)), 1):
            items.append({
                "clinic_id": clinic_id, "id": uuid7(), "prescription_id": script_id,
                "position": position, "medicine_id": medicine.id,
                "medicine_name": medicine.name_en, "strength": medicine.strengths[0],
                "form": medicine.forms[0], "dose": "1", "route": medicine.routes[0],
                "frequency": "every 12 hours", "duration_days": rng.choice((5, 7, 30)),
                "quantity": rng.randint(10, 60), **_sync(at, next(version))})
    return scripts, items


def _value(analyte: lab_tests.Analyte, rng: random.Random, abnormal: bool) -> str:
    if analyte.normal_text is not None:
        return "positive" if abnormal else analyte.normal_text
    low = analyte.low if analyte.low is not None else 0.0
    high = analyte.high if analyte.high is not None else low + 10.0
    if abnormal:
        return f"{high * 1.4:.1f}"
    return f"{rng.uniform(low, high):.1f}"


def _labs(clinic_id: uuid.UUID, patient_id: uuid.UUID, doctor: uuid.UUID, count: int,
          rng: random.Random, now: datetime, version: Any
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    tests = lab_tests.catalogue().tests
    orders: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for at in _stamps(count, rng=rng, end=now, step_days=30):
        order_id = uuid7()
        chosen = rng.sample(tests, rng.randint(1, 3))
        done = at + timedelta(days=2)
        orders.append({
            "clinic_id": clinic_id, "id": order_id, "patient_id": patient_id,
            "ordered_by": doctor, "tests": [t.code for t in chosen], "priority": "routine",
            "status": "completed", "status_changed_at": done, "completed_at": done,
            **_sync(at, next(version))})
        abnormal = rng.random() < ABNORMAL_SHARE
        for test in chosen:
            for n, analyte in enumerate(test.analytes):
                value = _value(analyte, rng, abnormal and n == 0)
                results.append({
                    "clinic_id": clinic_id, "id": uuid7(), "lab_order_id": order_id,
                    "patient_id": patient_id, "test_code": test.code, "analyte": analyte.id,
                    "value": value, "value_numeric": lab_tests.parse_number(value),
                    "unit": analyte.unit, "ref_low": analyte.low, "ref_high": analyte.high,
                    "flag": lab_tests.flag(value, low=analyte.low, high=analyte.high,
                                           critical_low=analyte.critical_low,
                                           critical_high=analyte.critical_high,
                                           normal_text=analyte.normal_text),
                    "entered_by": uuid7(), "entered_at": done, **_sync(done, next(version))})
    return orders, results


def _lists(conn: Connection, clinic_id: uuid.UUID, patient_id: uuid.UUID, doctor: uuid.UUID,
           rng: random.Random, now: datetime, version: Any) -> None:
    common = {"clinic_id": clinic_id, "patient_id": patient_id, "recorded_by": doctor}
    _bulk(conn, allergy, [
        {**common, "id": uuid7(), "substance": substance, "formulary_ref": ref,
         "severity": severity, **_sync(now, next(version))}
        for substance, ref, severity in (("Penicilina", "class:penicillin", "severe"),
                                         ("Ibuprofeno", "ibuprofen", "moderate"),
                                         ("Látex", None, "mild"))])
    _bulk(conn, condition, [
        {**common, "id": uuid7(), "description": text, "code": code,
         **_sync(now, next(version))}
        for text, code in (("Hipertensión arterial esencial", "I10"),
                           ("Diabetes mellitus tipo 2", "E11.9"),
                           ("Dislipidemia mixta", "E78.2"),
                           ("Hipotiroidismo", "E03.9"))])
    _bulk(conn, medication, [
        {**common, "id": uuid7(), "medicine_id": medicine.id, "name": medicine.name_en,
         "dose": medicine.strengths[0], **_sync(now, next(version))}
        for medicine in rng.sample(prescribing.formulary().medicines, 6)])
    _bulk(conn, vital_signs, [
        {**common, "id": uuid7(), "measured_at": at, "systolic_mmhg": rng.randint(110, 150),
         "diastolic_mmhg": rng.randint(65, 95), "heart_rate_bpm": rng.randint(58, 96),
         "weight_kg": round(rng.uniform(68, 74), 1), **_sync(at, next(version))}
        for at in _stamps(30, rng=rng, end=now, step_days=40)])


def fill_other_patients(engine: Engine, clinic_id: uuid.UUID, *, count: int = 2000,
                        notes_each: int = 3, seed: int = 9) -> None:
    """`count` more patients of the clinic with a few signed notes each."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    doctor = uuid7()
    people: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for n in range(count):
        person = uuid7()
        people.append({"clinic_id": clinic_id, "id": person, "mrn": f"MRN-O{n:06d}",
                       "given_name": f"Paciente{n}", "family_name": "Prueba",
                       "preferred_channels": []})
        for at in _stamps(notes_each, rng=rng, end=now, step_days=60):
            notes.append({"clinic_id": clinic_id, "id": uuid7(), "patient_id": person,
                          "author_id": doctor, "status": "signed", "body": _body(rng, 5),
                          "signed_at": at, **_sync(at, n + 1)})
    with engine.begin() as conn:
        _bulk(conn, patient, people)
        _bulk(conn, clinical_note, notes)
