from __future__ import annotations

import httpx

from shared_models.enums import Role
from tests.factories import Factory


async def test_receptionist_registers_and_finds_patient_by_accented_name(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    headers = factory.headers(clinic.users[Role.RECEPTIONIST])
    created = await client.post("/api/v1/patients", headers=headers, json={
        "given_name": "Iñés", "family_name": "Núñez Peña", "phone": "+56 9 8765 4321"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["mrn"] == "P-000001"
    assert body["phone"] == "+56987654321"
    found = await client.get("/api/v1/patients", headers=headers, params={"q": "NUNEZ ines"})
    assert [p["id"] for p in found.json()["data"]] == [body["id"]]
