"""Screenshots of the prescribing screens with demo data, rendered offscreen into
`docs/screenshots/`: runs with no arguments.

- `prescription_form.png`: a prescription for a patient allergic to penicillins who takes
  warfarin; amoxicillin raises the allergy warning (its reason typed) and ibuprofen the
  interaction with warfarin (its reason still missing), so "Firmar…" waits.
- `pharmacy.png`: the pharmacist's workspace with a prescription whose signature verifies.

The form reads a real encrypted store in a temporary folder. The pharmacy's server is
stood in for by a small object that answers the one request the workspace makes with a
prescription signed for real, so no database server is needed.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: python scripts/screenshots_prescribing.py
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pyotp  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from desktop.operations.signing import (  # noqa: E402
    confirm_key,
    create_key,
    mark_registered,
)
from desktop.session import Session  # noqa: E402
from desktop.store.database import open_store  # noqa: E402
from desktop.ui import i18n  # noqa: E402
from desktop.ui.desk import ClinicInfo, Desk  # noqa: E402
from desktop.ui.pharmacy import PharmacyView  # noqa: E402
from desktop.ui.prescription_form import PrescriptionForm  # noqa: E402
from desktop.ui.qt import QApplication, QWidget  # noqa: E402
from desktop.ui.tasks import Tasks  # noqa: E402
from shared_models import signing  # noqa: E402
from shared_models.clock import HybridClock  # noqa: E402
from shared_models.ids import uuid7  # noqa: E402
from shared_models.prescribing import FORMULARY_VERSION  # noqa: E402
from shared_models.tables import allergy, medication, patient, pharmacy  # noqa: E402

OUT = REPO_ROOT / "docs" / "screenshots"
SIZE = (1280, 800)
CLINIC = ClinicInfo(name="Clínica Andes", timezone=ZoneInfo("America/Santiago"), country="CL")
# The demo key is thrown away with its temporary store.
PASSWORD = secrets.token_urlsafe(12)
PHARMACIES = (
    ("Farmacia Cruz Verde Providencia", "Av. Providencia 2124, Providencia", "RF-13-0451"),
    ("Farmacias Ahumada Ñuñoa", "Av. Irarrázaval 3050, Ñuñoa", "RF-13-0872"),
    ("Salcobrand Las Condes", "Av. Apoquindo 4501, Las Condes", "RF-13-1203"),
    ("Farmacia Dr. Simi Santiago Centro", "Estado 360, Santiago", "RF-13-0099"),
)


def wait_until(app: QApplication, done: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError("the screen did not finish loading")
        app.processEvents()
        time.sleep(0.01)
    for _ in range(20):  # let layouts settle before the picture
        app.processEvents()


def save(widget: QWidget, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    if not widget.grab().save(str(path)):
        raise RuntimeError(f"could not write {path}")
    return path


def prescription_form(app: QApplication, tasks: Tasks, folder: Path) -> Path:
    engine = open_store(folder / "doctora.db", os.urandom(32))
    session = Session(email="dra.rojas@clinicaandes.cl", user_id=uuid7(), clinic_id=uuid7(),
                      role="doctor", online=False)
    clinic_id, patient_id = session.clinic_id, uuid7()
    with engine.begin() as conn:
        conn.execute(insert(patient).values(
            clinic_id=clinic_id, id=patient_id, mrn="P-004217", given_name="Valentina",
            family_name="Muñoz Contreras", date_of_birth=date(1958, 5, 17),
            preferred_channels=["whatsapp"]))
        conn.execute(insert(allergy).values(
            clinic_id=clinic_id, id=uuid7(), patient_id=patient_id, substance="Penicilina",
            formulary_ref="class:penicillin", reaction="Urticaria generalizada",
            severity="moderate", status="active"))
        conn.execute(insert(medication).values(
            clinic_id=clinic_id, id=uuid7(), patient_id=patient_id, medicine_id="warfarin",
            name="warfarina", dose="5 mg al día", status="active"))
        conn.execute(insert(pharmacy), [
            {"clinic_id": clinic_id, "id": uuid7(), "name": name, "address": address,
             "registry_number": registry, "is_active": True}
            for name, address, registry in PHARMACIES])
    enrolment = create_key(engine, clinic_id=clinic_id, user_id=session.user_id,
                           email=session.email, password=PASSWORD)
    confirm_key(engine, session.user_id, pyotp.TOTP(enrolment.totp_secret).now())
    mark_registered(engine, session.user_id, "active")

    desk = Desk(tasks=tasks, engine=engine, session=session, clock=HybridClock("doctora"),
                clinic=CLINIC)
    form = PrescriptionForm(desk, patient_id)
    form.resize(*SIZE)
    form.show()
    wait_until(app, lambda: form.key_loaded and form.pharmacy_results.count() > 1)
    form.add_medicine("amoxicillin")
    form.add_medicine("ibuprofen")
    wait_until(app, lambda: not form.checking and len(form.warning_rows) == 2)
    amoxicillin, ibuprofen = form.lines
    amoxicillin.strength.setCurrentText("500 mg")
    amoxicillin.dose.setText("1 cápsula")
    amoxicillin.frequency.setEditText("cada 8 horas")
    amoxicillin.duration.setValue(7)
    amoxicillin.quantity.setValue(21)
    amoxicillin.instructions.setText("Tomar con alimentos")
    ibuprofen.strength.setCurrentText("400 mg")
    ibuprofen.dose.setText("1 comprimido")
    ibuprofen.frequency.setEditText("si es necesario")
    ibuprofen.duration.setValue(5)
    ibuprofen.quantity.setValue(10)
    allergy_row = next(r for r in form.warning_rows if r.warning.kind == "allergy")
    allergy_row.reason.setText("Prueba cutánea negativa en 2024; toleró amoxicilina")
    form.pharmacy_search.setText("providencia")
    wait_until(app, lambda: form.pharmacy_results.count() == 2)
    form.pharmacy_results.setCurrentRow(1)
    wait_until(app, lambda: True)
    path = save(form, "prescription_form.png")
    form.close()
    tasks.wait()
    engine.dispose()
    return path


class DemoPharmacyServer:
    """Answers the pharmacy workspace's list request with prescriptions signed with a real
    key, as the server would send them."""

    def __init__(self) -> None:
        self.key = signing.generate_key()
        self.key_id, self.clinic_id = uuid7(), uuid7()
        amoxicillin = {
            "medicine_id": "amoxicillin", "medicine_name": "amoxicilina", "strength": "500 mg",
            "form": "capsule", "dose": "1 cápsula", "route": "oral",
            "frequency": "cada 8 horas", "duration_days": 7, "quantity": 21, "refills": 0,
            "instructions": "Tomar con alimentos"}
        paracetamol = {
            "medicine_id": "paracetamol", "medicine_name": "paracetamol", "strength": "500 mg",
            "form": "tablet", "dose": "1 comprimido", "route": "oral",
            "frequency": "cada 6 horas", "duration_days": 5, "quantity": 20, "refills": 0,
            "instructions": "Si hay fiebre o dolor"}
        losartan = {
            "medicine_id": "losartan", "medicine_name": "losartán", "strength": "50 mg",
            "form": "tablet", "dose": "1 comprimido", "route": "oral",
            "frequency": "una vez al día", "duration_days": 90, "quantity": 90, "refills": 2,
            "instructions": None}
        self.data = [
            self._signed("Valentina Muñoz Contreras", "Dra. Ana Rojas", 25, "sent",
                         [amoxicillin, paracetamol],
                         notes="Paciente anticoagulada: evitar AINE de venta libre.",
                         acknowledgements=[{
                             "kind": "allergy", "medicines": ["amoxicillin", "class:penicillin"],
                             "reason": "Prueba cutánea negativa en 2024; toleró amoxicilina"}]),
            self._signed("Jorge Fuentes Araya", "Dr. Tomás Vidal", 70, "received", [losartan]),
            self._signed("Camila Rojas Pérez", "Dra. Ana Rojas", 130, "sent", [paracetamol]),
        ]

    def _signed(self, patient_name: str, prescriber: str, minutes_ago: int, status: str,
                lines: list[dict[str, Any]], *, notes: str | None = None,
                acknowledgements: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        signed_at = signing.signing_time(datetime.now(UTC) - timedelta(minutes=minutes_ago))
        record: dict[str, Any] = {
            "id": str(uuid7()), "clinic_id": str(self.clinic_id), "patient_id": str(uuid7()),
            "prescriber_id": str(uuid7()), "appointment_id": None,
            "signed_at": signed_at.isoformat(), "formulary_version": FORMULARY_VERSION,
            "notes": notes, "acknowledgements": acknowledgements or [],
            "signing_key_id": str(self.key_id)}
        items = [{"position": n, **line} for n, line in enumerate(lines, start=1)]
        record["signature"] = signing.sign_prescription(self.key, record, items)
        return {**record, "patient_name": patient_name, "patient_date_of_birth": "1958-05-17",
                "prescriber_name": prescriber, "public_key": signing.public_pem(self.key),
                "pharmacy_id": str(uuid7()), "status": status, "status_changed_at": None,
                "status_reason": None, "items": items, "server_version": 1,
                "server_check": {"valid": True, "key_status": "active",
                                 "message": "The doctor's signature matches this "
                                            "prescription."}}

    def request(self, method: str, path: str, **_kwargs: Any) -> Any:
        if (method, path) != ("GET", "/api/v1/prescriptions/incoming"):
            raise RuntimeError(f"the demo answers the list only, not {method} {path}")
        return {"data": self.data, "has_more": False, "next_offset": None}


def pharmacy_view(app: QApplication, tasks: Tasks, folder: Path) -> Path:
    engine = open_store(folder / "farmacia.db", os.urandom(32))
    session = Session(email="qf.soto@cruzverde.cl", user_id=uuid7(), clinic_id=uuid7(),
                      role="pharmacist", online=True)
    desk = Desk(tasks=tasks, engine=engine, session=session, clock=HybridClock("farmacia"),
                clinic=CLINIC, server=DemoPharmacyServer())  # type: ignore[arg-type]
    view = PharmacyView(desk)
    view.resize(*SIZE)
    view.show()
    wait_until(app, lambda: view.table.rowCount() == 3 and view.current is not None)
    path = save(view, "pharmacy.png")
    view.close()
    tasks.wait()
    engine.dispose()
    return path


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    i18n.set_language("es")
    tasks = Tasks()
    with tempfile.TemporaryDirectory(prefix="consulta-shots-") as folder:
        for path in (prescription_form(app, tasks, Path(folder)),
                     pharmacy_view(app, tasks, Path(folder))):
            print(f"{path.relative_to(REPO_ROOT)}  {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
