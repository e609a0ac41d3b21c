"""Addenda: what is added to a signed note is a note of its own, written by any doctor,
attached for good to a signed note of the same patient."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import clinical_note
from tests.factories import ClinicData, Factory
from tests.sync_server.test_sync_pull import pull_all
from tests.sync_server.test_sync_push import mutation, push

LAPTOP = HybridClock("addlaptop")


def clinic_with_doctors(factory: Factory) -> tuple[ClinicData, dict[str, str], dict[str, str]]:
    """A clinic and the sign-ins of two of its doctors."""
    clinic = factory.clinic(patients=2, providers=1)
    colleague = factory.user(clinic, Role.DOCTOR)
    return clinic, factory.headers(clinic.users[Role.DOCTOR]), factory.headers(colleague)


async def note(client: httpx.AsyncClient, headers: dict[str, str], patient_id: uuid.UUID,
               body: str, *, sign: bool, addendum_to: uuid.UUID | None = None
               ) -> tuple[uuid.UUID, dict[str, Any]]:
    note_id = uuid7()
    changes: dict[str, Any] = {"patient_id": str(patient_id), "body": body}
    if addendum_to is not None:
        changes["addendum_to"] = str(addendum_to)
    [result] = await push(client, headers, [mutation(
        "clinical_note", "sign" if sign else "upsert", note_id, changes,
        hlc=LAPTOP.now().pack())])
    assert result["status"] == "applied", result
    return note_id, result


async def test_any_doctor_adds_an_addendum_to_a_signed_note(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, author, colleague = clinic_with_doctors(factory)
    signed_id, signed = await note(client, author, clinic.patient_ids[0], "Faringitis.",
                                   sign=True)
    added_id, added = await note(client, colleague, clinic.patient_ids[0],
                                 "Cultivo faríngeo negativo.", sign=False,
                                 addendum_to=signed_id)
    assert added["record"]["addendum_to"] == str(signed_id)
    assert added["record"]["status"] == "draft"
    stored = factory.row(clinical_note, clinic, added_id)
    assert stored["author_id"] != factory.row(clinical_note, clinic, signed_id)["author_id"]
    [event] = [e for e in factory.audit_events(clinic, action="note.create")
               if e.entity_id == added_id]
    assert event.detail == {"addendum_to": str(signed_id)}
    # A draft of its author like any other: edited, then signed, by them alone.
    [refused] = await push(client, author, [mutation(
        "clinical_note", "upsert", added_id, {"body": "Otro texto."},
        base_version=added["server_version"])])
    assert refused["code"] == "not_author"
    [done] = await push(client, colleague, [mutation(
        "clinical_note", "sign", added_id, {"body": "Cultivo faríngeo negativo. Alta."},
        base_version=added["server_version"])])
    assert done["status"] == "applied"
    assert done["record"]["status"] == "signed"
    assert done["record"]["addendum_to"] == str(signed_id)
    # The note it adds to is untouched.
    assert factory.row(clinical_note, clinic, signed_id)["server_version"] == \
        signed["server_version"]
    changes, _ = await pull_all(client, author, None)
    pulled = {c["id"]: c["record"] for c in changes if c["entity"] == "clinical_note"}
    assert pulled[str(added_id)]["addendum_to"] == str(signed_id)


async def test_an_addendum_signed_in_its_first_push_is_stored_signed(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, author, colleague = clinic_with_doctors(factory)
    signed_id, _ = await note(client, author, clinic.patient_ids[0], "Control.", sign=True)
    added_id, added = await note(client, colleague, clinic.patient_ids[0], "Adenda.",
                                 sign=True, addendum_to=signed_id)
    stored = factory.row(clinical_note, clinic, added_id)
    assert (stored["status"], stored["addendum_to"]) == ("signed", signed_id)
    assert added["record"]["signed_at"]


@pytest.mark.parametrize(("target", "says"), [
    ("draft", "still a draft"),
    ("discarded", "does not exist"),
    ("other_patient", "another patient"),
    ("other_clinic", "does not exist"),
    ("unknown", "does not exist"),
])
async def test_an_addendum_to_anything_but_a_signed_note_of_the_patient_is_refused(
    client: httpx.AsyncClient, factory: Factory, target: str, says: str
) -> None:
    clinic, author, colleague = clinic_with_doctors(factory)
    patient_id = clinic.patient_ids[0]
    if target == "draft":
        target_id, _ = await note(client, author, patient_id, "Borrador.", sign=False)
    elif target == "discarded":
        target_id, _ = await note(client, author, patient_id, "Borrado.", sign=False)
        [gone] = await push(client, author, [mutation("clinical_note", "delete", target_id,
                                                      {})])
        assert gone["status"] == "applied"
    elif target == "other_patient":
        target_id, _ = await note(client, author, clinic.patient_ids[1], "Otro.", sign=True)
    elif target == "other_clinic":
        other = factory.clinic(patients=1, providers=1)
        target_id, _ = await note(client, factory.headers(other.users[Role.DOCTOR]),
                                  other.patient_ids[0], "Ajena.", sign=True)
    else:
        target_id = uuid7()
    before = factory.count(clinical_note, clinic)
    [refused] = await push(client, colleague, [mutation(
        "clinical_note", "upsert", uuid7(),
        {"patient_id": str(patient_id), "body": "Adenda.", "addendum_to": str(target_id)})])
    assert (refused["status"], refused["code"]) == ("rejected", "addendum_target")
    assert says in refused["reason"]
    assert "Adenda." not in refused["reason"]
    assert factory.count(clinical_note, clinic) == before
    assert [e for e in factory.audit_events(clinic, action="note.create")
            if e.detail is not None] == []


async def test_an_addendum_stays_attached_to_its_note_and_a_note_never_becomes_one(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, author, colleague = clinic_with_doctors(factory)
    patient_id = clinic.patient_ids[0]
    first_id, _ = await note(client, author, patient_id, "Primera.", sign=True)
    second_id, _ = await note(client, author, patient_id, "Segunda.", sign=True)
    added_id, added = await note(client, colleague, patient_id, "Adenda.", sign=False,
                                 addendum_to=first_id)
    plain_id, plain = await note(client, colleague, patient_id, "Nota.", sign=False)
    added_before = factory.row(clinical_note, clinic, added_id)
    plain_before = factory.row(clinical_note, clinic, plain_id)
    [moved, became, same] = await push(client, colleague, [
        mutation("clinical_note", "upsert", added_id,
                 {"body": "Adenda movida.", "addendum_to": str(second_id)},
                 base_version=added["server_version"]),
        mutation("clinical_note", "upsert", plain_id,
                 {"body": "Nota.", "addendum_to": str(first_id)},
                 base_version=plain["server_version"]),
        # Sending the note it already adds to along with an edit changes nothing about it.
        mutation("clinical_note", "upsert", added_id,
                 {"body": "Adenda corregida.", "addendum_to": str(first_id)},
                 base={"body": "Adenda."}, base_version=added["server_version"]),
    ])
    assert [(r["status"], r["code"]) for r in (moved, became)] == [
        ("rejected", "addendum_target"), ("rejected", "addendum_target")]
    assert "start a new addendum" in moved["reason"]
    assert factory.row(clinical_note, clinic, plain_id) == plain_before
    assert same["status"] == "applied"
    after = factory.row(clinical_note, clinic, added_id)
    assert (after["body"], after["addendum_to"]) == ("Adenda corregida.",
                                                     added_before["addendum_to"])
