"""Screenshots of the doctor's workspace, for review: runs with no arguments.

Fills a new encrypted store (in a temporary folder) with a day of a Chilean clinic, opens
the consultation workspace offscreen with the real workers, and saves into
`docs/screenshots/`:

- `chart.png`: today's queue and the chart of a patient with allergies, conditions,
  medications, vital signs and a timeline of notes (one with an addendum, one draft), a
  dispensed prescription and a lab order with results out of range;
- `note_editor.png`: the note editor on a draft being written, saved on this computer.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: python scripts/screenshots_doctor.py
    sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import Engine, insert  # noqa: E402

from desktop.session import Session  # noqa: E402
from desktop.store.database import open_store  # noqa: E402
from desktop.ui import i18n  # noqa: E402
from desktop.ui.consultation import ConsultationView  # noqa: E402
from desktop.ui.desk import ClinicInfo, Desk  # noqa: E402
from desktop.ui.note_editor import NoteEditor  # noqa: E402
from desktop.ui.qt import QApplication, Qt  # noqa: E402
from desktop.ui.tasks import Tasks  # noqa: E402
from shared_models.clock import Hlc, HybridClock  # noqa: E402
from shared_models.ids import uuid7  # noqa: E402
from shared_models.tables import (  # noqa: E402
    allergy,
    appointment,
    clinical_note,
    condition,
    lab_order,
    lab_result,
    medication,
    patient,
    pharmacy,
    prescription,
    prescription_item,
    provider,
    vital_signs,
)

OUT = REPO_ROOT / "docs" / "screenshots"
SIZE = (1280, 800)
ZONE = ZoneInfo("America/Santiago")
CLINIC = ClinicInfo(name="Centro Médico Los Andes", timezone=ZONE, country="CL")
QUEUE = (  # (given, family, born, sex, local time, status, minutes waiting)
    ("Carolina", "Muñoz Sepúlveda", date(1984, 7, 21), "female", "09:00", "completed", None),
    ("Javier", "Contreras Rojas", date(1991, 2, 3), "male", "09:30", "in_progress", None),
    ("María José", "Fuentes Araya", date(1967, 11, 9), "female", "10:00", "checked_in", 18),
    ("Benjamín", "Soto Navarro", date(2019, 5, 30), "male", "10:30", "checked_in", 6),
    ("Francisca", "Reyes Morales", date(1975, 3, 14), "female", "11:00", "booked", None),
    ("Ignacio", "Pizarro Vega", date(1958, 9, 1), "male", "11:30", "booked", None),
)


def wait_for(app: QApplication, done: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError("the screen did not finish loading")
        app.processEvents()
        time.sleep(0.01)
    for _ in range(20):  # let layouts settle before grabbing
        app.processEvents()


def seed(engine: Engine, clinic_id: uuid.UUID, doctor_id: uuid.UUID
         ) -> tuple[uuid.UUID, uuid.UUID]:
    """Today's queue, and the chart of the first patient waiting (returned, with the id of
    a draft note to show in the editor)."""
    now = datetime.now(UTC)
    today = now.astimezone(ZONE).date()
    colleague = uuid7()
    rows: list[tuple[Any, dict[str, Any]]] = []

    def add(table: Any, **values: Any) -> uuid.UUID:
        values.setdefault("id", uuid7())
        rows.append((table, {"clinic_id": clinic_id, **values}))
        return uuid.UUID(str(values["id"]))

    mine = add(provider, display_name="Dra. Valentina Rojas", specialty="Medicina general",
               user_id=doctor_id)
    add(provider, display_name="Dr. Tomás Vidal", specialty="Medicina interna",
        user_id=colleague)
    chosen = None
    for n, (given, family, born, sex, at, status, waiting) in enumerate(QUEUE, 31):
        pid = add(patient, mrn=f"P-{n:06d}", given_name=given, family_name=family,
                  date_of_birth=born, sex=sex, preferred_channels=["whatsapp"])
        hour, minute = map(int, at.split(":"))
        starts = datetime(today.year, today.month, today.day, hour, minute, tzinfo=ZONE)
        stamps = {}
        if waiting is not None:
            arrived = now - timedelta(minutes=waiting)
            stamps = {"status": Hlc(int(arrived.timestamp() * 1000), 0, "desk").pack()}
        add(appointment, patient_id=pid, provider_id=mine, starts_at=starts,
            ends_at=starts + timedelta(minutes=30), status=status, field_stamps=stamps,
            reason="Control de hipertensión" if given == "María José" else None)
        if given == "María José":
            chosen = pid
    assert chosen is not None

    def ago(**delta: float) -> datetime:
        return now - timedelta(**delta)

    add(allergy, patient_id=chosen, substance="Penicilina", formulary_ref="class:penicillin",
        reaction="Urticaria generalizada", severity="severe", status="active")
    add(allergy, patient_id=chosen, substance="Sulfas", reaction="Exantema", severity="moderate",
        status="active")
    add(condition, patient_id=chosen, description="Hipertensión arterial esencial", code="I10",
        onset_date=date(2016, 4, 1), status="active")
    add(condition, patient_id=chosen, description="Diabetes mellitus tipo 2", code="E11.9",
        onset_date=date(2020, 8, 15), status="active")
    add(condition, patient_id=chosen, description="Colecistitis aguda", code="K81.0",
        onset_date=date(2012, 2, 10), status="resolved")
    add(medication, patient_id=chosen, medicine_id="losartan", name="Losartán 50 mg",
        dose="1 comprimido cada 12 horas", status="active", started_on=date(2016, 4, 1))
    add(medication, patient_id=chosen, medicine_id="metformin", name="Metformina 850 mg",
        dose="1 comprimido con desayuno y cena", status="active", started_on=date(2020, 8, 15))
    add(vital_signs, patient_id=chosen, measured_at=ago(minutes=12), systolic_mmhg=148,
        diastolic_mmhg=92, heart_rate_bpm=78, temperature_c=36.6, spo2_pct=97, weight_kg=71.5)
    add(vital_signs, patient_id=chosen, measured_at=ago(days=34), systolic_mmhg=152,
        diastolic_mmhg=95, heart_rate_bpm=81, weight_kg=72.8)
    add(vital_signs, patient_id=chosen, measured_at=ago(days=97), systolic_mmhg=139,
        diastolic_mmhg=88, heart_rate_bpm=74, weight_kg=73.4)

    draft = add(clinical_note, patient_id=chosen, author_id=doctor_id, status="draft",
                created_at=ago(minutes=5), body=(
                    "Control de hipertensión y diabetes.\n\n"
                    "Refiere buena adherencia a losartán y metformina. Cefalea occipital "
                    "ocasional, sin dolor torácico ni disnea.\n\n"
                    "PA 148/92 mmHg, FC 78 lpm, peso 71,5 kg.\n"
                    "HbA1c 8,4 %: sobre la meta.\n\n"
                    "Plan: ajustar tratamiento antihipertensivo, reforzar dieta y "))
    signed_at = ago(days=34)
    note = add(clinical_note, patient_id=chosen, author_id=doctor_id, status="signed",
               created_at=signed_at, signed_at=signed_at, body=(
                   "Control crónico. PA 152/95 mmHg, sin síntomas de alarma.\n"
                   "Se solicitan exámenes de control y se inicia amlodipino."))
    add(clinical_note, patient_id=chosen, author_id=doctor_id, status="signed",
        addendum_to=note, created_at=ago(days=33), signed_at=ago(days=33),
        body="Paciente informa haber retirado amlodipino en farmacia.")
    add(clinical_note, patient_id=chosen, author_id=colleague, status="signed",
        created_at=ago(days=97), signed_at=ago(days=97),
        body="Consulta por tos de 5 días, afebril. Faringitis viral: manejo sintomático.")
    shop = add(pharmacy, name="Farmacia Ahumada Providencia",
               address="Av. Providencia 2124, Providencia", registry_number="F-13-0042")
    script = add(prescription, patient_id=chosen, prescriber_id=doctor_id,
                 signed_at=ago(days=34), formulary_version="2026.1", acknowledgements=[],
                 signing_key_id=uuid7(), signature="MEUCIQ", pharmacy_id=shop,
                 status="dispensed", status_changed_at=ago(days=33))
    add(prescription_item, prescription_id=script, position=1, medicine_id="amlodipine",
        medicine_name="Amlodipino", strength="5 mg", form="tablet", dose="1 comprimido",
        route="oral", frequency="una vez al día", duration_days=30, quantity=30, refills=2)
    order = add(lab_order, patient_id=chosen, ordered_by=doctor_id,
                tests=["hba1c", "lipids", "glucose"], priority="routine",
                clinical_info="Control de diabetes", status="completed",
                created_at=ago(days=34, minutes=-5), completed_at=ago(days=2))
    for code, analyte, value, unit, low, high, flag in (
            ("hba1c", "hba1c", "8.4", "%", 4.0, 5.6, "high"),
            ("lipids", "chol", "212", "mg/dL", None, 200.0, "high"),
            ("lipids", "ldl", "138", "mg/dL", None, 130.0, "high"),
            ("lipids", "hdl", "46", "mg/dL", 40.0, None, "normal"),
            ("lipids", "tg", "142", "mg/dL", None, 150.0, "normal"),
            ("glucose", "glucose", "162", "mg/dL", 70.0, 99.0, "high")):
        add(lab_result, lab_order_id=order, patient_id=chosen, test_code=code, analyte=analyte,
            value=value, value_numeric=float(value), unit=unit, ref_low=low, ref_high=high,
            flag=flag, entered_by=uuid7(), entered_at=ago(days=2))
    with engine.begin() as conn:
        for table, values in rows:
            conn.execute(insert(table).values(**values))
    return chosen, draft


def main() -> int:
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    i18n.set_language("es")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        engine = open_store(Path(folder) / "desk.db", os.urandom(32))
        clinic_id, doctor_id = uuid7(), uuid7()
        patient_id, draft_id = seed(engine, clinic_id, doctor_id)
        tasks = Tasks()
        session = Session(email="vrojas@cmlosandes.cl", user_id=doctor_id,
                          clinic_id=clinic_id, role="doctor", online=True)
        desk = Desk(tasks=tasks, engine=engine, session=session, clock=HybridClock("laptop"),
                    clinic=CLINIC)

        view = ConsultationView(desk)
        view.resize(*SIZE)
        view.show()
        wait_for(app, lambda: view.queue.list.count() == len(QUEUE))
        loaded: list[bool] = []
        view.chart.timeline_loaded.connect(lambda: loaded.append(True))
        waiting = next(i for i, e in enumerate(view.queue.entries)
                       if e.appointment["patient_id"] == patient_id)
        view.queue.list.setCurrentRow(waiting)
        view.open_chart(patient_id, view.queue.entries[waiting].appointment["id"])
        wait_for(app, lambda: bool(loaded))
        timeline = view.chart.timeline
        signed = next(timeline.topLevelItem(i) for i in range(timeline.topLevelItemCount())
                      if timeline.topLevelItem(i).childCount() == 1
                      and timeline.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)[0]
                      == "note")
        timeline.setCurrentItem(signed)
        wait_for(app, lambda: True)
        view.grab().save(str(OUT / "chart.png"))

        editor = NoteEditor(desk, draft_id)
        editor.resize(980, 640)
        editor.show()
        wait_for(app, lambda: editor.editable)
        editor.body.insertPlainText("control en 3 meses con exámenes.")
        wait_for(app, lambda: editor.status.text().startswith("Guardado"), seconds=10)
        editor.grab().save(str(OUT / "note_editor.png"))
        editor.request_close()
        wait_for(app, lambda: not editor.isVisible())
        view.close()
        tasks.wait(10_000)
        engine.dispose()
    for name in ("chart.png", "note_editor.png"):
        path = OUT / name
        print(f"{path.relative_to(REPO_ROOT)}  {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
