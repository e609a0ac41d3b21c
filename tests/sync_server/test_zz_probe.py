from __future__ import annotations

import httpx

from shared_models.enums import Role
from tests.factories import Factory


async def test_probe(app, factory: Factory) -> None:
    clinic = factory.clinic(patients=0)
    h = factory.headers(clinic.users[Role.ADMIN])
    t = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.9.9.9", 1))
    async with httpx.AsyncClient(transport=t, base_url="http://t") as client:
        for payload in [{"given_name": "A\x00", "family_name": "C"}, {"given_name": "A", "family_name": "C", "address": "x\x00"},
                        {"given_name": "A", "family_name": "C", "phone": ""}, {"given_name": "A", "family_name": "C", "phone": "+56 9 8765\x00 4321"},
                        {"given_name": "A", "family_name": "C", "email": "a\x00@b.cl"}, {"given_name": "A", "family_name": "C", "mrn": "A\x00"}]:
            r = await client.post("/api/v1/patients", headers=h, json=payload)
            print(payload, r.status_code, r.text[:300])
        r = await client.post("/api/v1/providers", headers=h, json={"display_name": "A\x00"})
        print(r.status_code, r.text)
        r = await client.post("/api/v1/providers", headers=h, json={"display_name": "A", "specialty": "\x00"})
        print(r.status_code, r.text)
        r = await client.post("/api/v1/auth/token", data={"username": "a\x00b", "password": "x"})
        print(r.status_code, r.text)
        r = await client.post("/api/v1/auth/token", data={"username": "ab", "password": "x\x00"})
        print(r.status_code, r.text)
        r = await client.get("/api/v1/patients", headers=h, params={"q": "\x00"})
        print(r.status_code, r.text[:200])
        r = await client.get("/api/v1/patients", headers=h, params={"q": "١٢٣"})
        print(r.status_code, r.text[:200])
        r = await client.get("/api/v1/patients", headers=h, params={"q": "12"*40})
        print(r.status_code, r.text[:200])
