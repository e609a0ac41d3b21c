"""Clinical note drafts over sync: both texts of a draft edited on two computers survive,
a signed note never changes (not even by the database owner), only the author writes a
draft, and the front desk never receives a note."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import clinical_note, sync_conflict
from sync_server.actions.clinics import scope
from tests.factories import ClinicData, Factory, expect_error
from tests.sync_server.test_sync_pull import pull_all
from tests.sync_server.test_sync_push import mutation, push

LAPTOP = HybridClock("laptop")
TABLET = HybridClock("tablet")


def doctor(factory: Factory) -> tuple[ClinicData, dict[str, str]]:
    clinic = factory.clinic(patients=1, providers=1)
    return clinic, factory.headers(clinic.users[Role.DOCTOR])


async def _draft(client: httpx.AsyncClient, headers: dict[str, str], clinic: ClinicData,
                 body: str) -> tuple[str, int]:
    note_id = uuid7()
    [result] = await push(client, headers, [mutation(
        "clinical_note", "upsert", note_id,
        {"patient_id": str(clinic.patient_ids[0]), "body": body}, hlc=LAPTOP.now().pack())])
    assert result["status"] == "applied", result
    return str(note_id), result["server_version"]


async def test_a_draft_edited_offline_on_two_computers_keeps_both_texts(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    note_id, version = await _draft(client, headers, clinic, "Dolor lumbar.")
    earlier = LAPTOP.now().pack()  # the laptop edits first, offline...
    later = TABLET.now().pack()  # ...then the tablet, also offline
    [tablet] = await push(client, headers, [mutation(
        "clinical_note", "upsert", note_id, {"body": "Dolor lumbar. Sin fiebre."},
        base_version=version, hlc=later)])
    [laptop] = await push(client, headers, [mutation(
        "clinical_note", "upsert", note_id, {"body": "Dolor lumbar de 3 días."},
        base_version=version, hlc=earlier)])
    assert tablet["status"] == "applied"
    assert laptop["status"] == "conflict"
    [kept] = laptop["conflicts"]
    assert kept["winner"] == "server"
    # The later text is the note; the earlier one is a draft of its own attached to it.
    assert laptop["record"]["body"] == "Dolor lumbar. Sin fiebre."
    copy = factory.row(clinical_note, clinic, kept["lost"]["conflict_copy"])
    assert copy["body"] == "Dolor lumbar de 3 días."
    assert str(copy["conflict_of"]) == note_id
    assert copy["status"] == "draft"
    with factory.engine.connect() as conn:
        rows = conn.execute(select(sync_conflict).where(
            sync_conflict.c.record_id == note_id)).all()
    # The conflict record points at the copy; the note's text is not duplicated there.
    assert [(r.entity, r.field, r.kept, r.lost) for r in rows] == [
        ("clinical_note", "body", None, {"conflict_copy": kept["lost"]["conflict_copy"]})]


async def test_signing_fixes_the_text_the_doctor_saw_and_keeps_a_newer_draft(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    note_id, version = await _draft(client, headers, clinic, "Control anual.")
    seen = LAPTOP.now().pack()
    [other] = await push(client, headers, [mutation(
        "clinical_note", "upsert", note_id, {"body": "Control anual. Pendiente ECG."},
        base_version=version, hlc=TABLET.now().pack())])
    [signed] = await push(client, headers, [mutation(
        "clinical_note", "sign", note_id, {"body": "Control anual. Todo normal."},
        base_version=version, hlc=seen)])
    assert other["status"] == "applied"
    assert signed["status"] == "conflict"
    assert signed["record"]["status"] == "signed"
    assert signed["record"]["body"] == "Control anual. Todo normal."
    copy = factory.row(clinical_note, clinic, signed["conflicts"][0]["lost"]["conflict_copy"])
    assert copy["body"] == "Control anual. Pendiente ECG."


async def test_a_signed_note_never_changes_and_a_late_edit_is_kept_beside_it(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    note_id, version = await _draft(client, headers, clinic, "Texto final.")
    [signed] = await push(client, headers, [mutation(
        "clinical_note", "sign", note_id, {}, base_version=version)])
    assert signed["status"] == "applied"
    assert signed["record"]["signed_at"]
    # Another computer, not yet aware of the signature, edits the draft and signs it.
    [late, resign] = await push(client, headers, [
        mutation("clinical_note", "upsert", note_id, {"body": "Texto final. Y algo más."},
                 base={"body": "Texto final."}, base_version=version),
        mutation("clinical_note", "sign", note_id, {"body": "Texto final."},
                 base_version=version)])
    assert (late["status"], late["conflicts"][0]["winner"]) == ("conflict", "server")
    assert late["record"]["body"] == "Texto final."
    copy = factory.row(clinical_note, clinic, late["conflicts"][0]["lost"]["conflict_copy"])
    assert (copy["body"], copy["status"]) == ("Texto final. Y algo más.", "draft")
    assert resign["status"] == "applied"  # the same text signed twice is one signature
    [refused] = await push(client, headers, [mutation(
        "clinical_note", "delete", note_id, {}, base_version=signed["server_version"])])
    assert (refused["status"], refused["code"]) == ("rejected", "note_signed")
    assert "addendum" in refused["reason"]
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        edit = update(clinical_note).where(clinical_note.c.id == note_id).values(body="SQL")
        with pytest.raises(DBAPIError, match="signed note cannot change"):
            conn.execute(edit)
    assert factory.row(clinical_note, clinic, note_id)["body"] == "Texto final."


async def test_only_the_author_writes_a_draft_and_only_doctors_write_notes(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    note_id, version = await _draft(client, headers, clinic, "Mío.")
    colleague = factory.user(clinic, Role.DOCTOR)
    [refused] = await push(client, factory.headers(colleague), [mutation(
        "clinical_note", "upsert", note_id, {"body": "Ajeno."}, base_version=version)])
    assert refused["code"] == "not_author"
    [desk] = await push(client, factory.headers(clinic.users[Role.RECEPTIONIST]), [mutation(
        "clinical_note", "upsert", uuid7(), {"patient_id": str(clinic.patient_ids[0]),
                                              "body": "Recepción."})])
    assert desk["code"] == "role_not_allowed"
    assert factory.row(clinical_note, clinic, note_id)["body"] == "Mío."
    assert factory.count(clinical_note, clinic) == 1


@pytest.mark.parametrize(("changes", "code"), [
    ({"body": "Sin paciente."}, "patient_required"),
    ({"patient_id": "not-a-uuid", "body": "x"}, "invalid_change"),
    ({"patient_id": None, "body": "a\x00b"}, "invalid_change"),
    ({"body": "x" * 100_001}, "invalid_change"),
    ({"body": "x", "signature": "extra field"}, "invalid_change"),
])
async def test_bad_drafts_are_refused_clearly_and_nothing_is_stored(
    client: httpx.AsyncClient, factory: Factory, changes: dict[str, object], code: str
) -> None:
    clinic, headers = doctor(factory)
    [refused] = await push(client, headers, [mutation("clinical_note", "upsert", uuid7(),
                                                      changes)])
    assert (refused["status"], refused["code"]) == ("rejected", code)
    assert refused["reason"]
    assert factory.count(clinical_note, clinic) == 0


async def test_a_draft_for_a_patient_of_another_clinic_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    other = factory.clinic(patients=1, providers=1)
    [refused] = await push(client, headers, [mutation(
        "clinical_note", "upsert", uuid7(), {"patient_id": str(other.patient_ids[0]),
                                              "body": "x"})])
    assert refused["code"] == "unknown_reference"
    assert factory.count(clinical_note, clinic) == factory.count(clinical_note, other) == 0


async def test_doctors_pull_notes_and_the_front_desk_never_does(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    note_id, _ = await _draft(client, headers, clinic, "Solo para médicos.")
    doctor_changes, _ = await pull_all(client, headers, None)
    assert note_id in {c["id"] for c in doctor_changes if c["entity"] == "clinical_note"}
    for role in (Role.RECEPTIONIST, Role.ADMIN, Role.LAB_TECH, Role.PHARMACIST):
        changes, _ = await pull_all(client, factory.headers(clinic.users[role]), None)
        assert "clinical_note" not in {c["entity"] for c in changes}, role
        assert "Solo para médicos." not in str(changes)


async def test_a_malformed_note_batch_is_refused_whole(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _clinic, headers = doctor(factory)
    bad = mutation("clinical_note", "publish", uuid7(), {})
    response = await client.post("/api/v1/sync/push", headers=headers,
                                 json={"mutations": [bad]})
    expect_error(response, 422, "invalid_input")
