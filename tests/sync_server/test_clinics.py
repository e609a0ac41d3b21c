"""GET /api/v1/clinic: what staff computers need to show times and read phone numbers."""

from __future__ import annotations

import httpx

from shared_models.enums import Role
from tests.factories import Factory, expect_error


async def test_staff_read_their_clinics_zone_and_country(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0, timezone="America/Mexico_City")
    for role in Role:
        response = await client.get("/api/v1/clinic", headers=factory.headers(clinic.users[role]))
        assert response.status_code == 200, role
        body = response.json()
        assert (body["id"], body["timezone"]) == (str(clinic.id), "America/Mexico_City")
        assert len(body["country"]) == 2
    expect_error(await client.get("/api/v1/clinic"), 401, "not_authenticated")
