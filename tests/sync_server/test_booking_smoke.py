"""The booking service end to end in-process: book a free slot, lose a taken one with
alternatives, reschedule, and walk the day's states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from shared_models.enums import Role
from tests.factories import Factory


async def test_book_conflict_reschedule_and_the_days_states(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=2, providers=1)
    provider_id = clinic.provider_ids[0]
    factory.weekly_hours(clinic, provider_id)
    desk = factory.headers(clinic.users[Role.RECEPTIONIST])
    now = datetime.now(UTC)
    slots = await client.get(f"/api/v1/providers/{provider_id}/slots", headers=desk,
                             params={"start": now.isoformat(),
                                     "end": (now + timedelta(days=3)).isoformat()})
    assert slots.status_code == 200, slots.text
    free = slots.json()["data"]
    assert slots.json()["timezone"] == "America/Santiago"
    assert len(free) > 10
    first = free[0]["start"]

    booked = await client.post("/api/v1/appointments", headers=desk, json={
        "patient_id": str(clinic.patient_ids[0]), "provider_id": str(provider_id),
        "start": first})
    assert booked.status_code == 201, booked.text
    taken = await client.post("/api/v1/appointments", headers=desk, json={
        "patient_id": str(clinic.patient_ids[1]), "provider_id": str(provider_id),
        "start": first})
    assert taken.status_code == 409, taken.text
    error = taken.json()["error"]
    assert error["code"] == "slot_taken"
    assert len(error["details"]["alternatives"]) == 3
    assert first not in [a["start"] for a in error["details"]["alternatives"]]

    appointment_id = booked.json()["id"]
    moved = await client.post(f"/api/v1/appointments/{appointment_id}/reschedule",
                              headers=desk, json={"start": free[1]["start"]})
    assert moved.status_code == 200, moved.text
    retry = await client.post("/api/v1/appointments", headers=desk, json={
        "patient_id": str(clinic.patient_ids[1]), "provider_id": str(provider_id),
        "start": first})
    assert retry.status_code == 201, retry.text

    checked_in = await client.post(f"/api/v1/appointments/{appointment_id}/check-in",
                                   headers=desk)
    assert checked_in.json()["status"] == "checked_in"
    refused = await client.post(f"/api/v1/appointments/{appointment_id}/start", headers=desk)
    assert refused.status_code == 403
    doctor = factory.headers(clinic.users[Role.DOCTOR])
    started = await client.post(f"/api/v1/appointments/{appointment_id}/start", headers=doctor)
    assert started.json()["status"] == "in_progress"
    again = await client.post(f"/api/v1/appointments/{appointment_id}/check-in", headers=desk)
    assert again.status_code == 409
    assert again.json()["error"]["details"]["current_status"] == "in_progress"
