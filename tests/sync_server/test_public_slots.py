"""The booking page's API: a clinic's providers and free slots by slug, without sign-in,
and nothing of another clinic through it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.factories import Factory, expect_error


def _window(days: int = 3) -> dict[str, str]:
    now = datetime.now(UTC)
    return {"start": now.isoformat(), "end": (now + timedelta(days=days)).isoformat()}


async def test_patient_sees_providers_and_free_slots_in_the_clinic_zone_without_sign_in(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=2, timezone="America/Mexico_City")
    factory.weekly_hours(clinic, clinic.provider_ids[0])
    providers = await client.get(f"/api/v1/public/{clinic.slug}/providers")
    assert providers.status_code == 200, providers.text
    listed = providers.json()["data"]
    assert {p["id"] for p in listed} == {str(i) for i in clinic.provider_ids}
    assert all(set(p) == {"id", "display_name", "specialty", "color"} for p in listed)

    slots = await client.get(
        f"/api/v1/public/{clinic.slug}/providers/{clinic.provider_ids[0]}/slots",
        params=_window())
    body = slots.json()
    assert body["timezone"] == "America/Mexico_City"
    assert body["data"]
    assert all(s["start"].endswith("-06:00") for s in body["data"])
    earliest = datetime.fromisoformat(body["data"][0]["start"])
    assert earliest >= datetime.now(UTC) + timedelta(minutes=59)  # the clinic's notice


async def test_unknown_clinic_slug_is_404_naming_only_the_slug(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    factory.clinic(patients=0)
    error = expect_error(await client.get("/api/v1/public/no-such-clinic/providers"),
                         404, "clinic_not_found")
    assert "no-such-clinic" in error["message"]


async def test_another_clinics_provider_is_not_found_through_this_clinics_page(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    a = factory.clinic(patients=0, providers=1)
    b = factory.clinic(patients=0, providers=1)
    factory.weekly_hours(b, b.provider_ids[0])
    own = await client.get(
        f"/api/v1/public/{b.slug}/providers/{b.provider_ids[0]}/slots", params=_window())
    assert own.status_code == 200
    assert own.json()["data"]
    crossed = await client.get(
        f"/api/v1/public/{a.slug}/providers/{b.provider_ids[0]}/slots", params=_window())
    expect_error(crossed, 404, "provider_not_found")
    listed = (await client.get(f"/api/v1/public/{a.slug}/providers")).json()["data"]
    assert str(b.provider_ids[0]) not in {p["id"] for p in listed}


async def test_public_slots_refuse_a_bad_window_clearly(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=1)
    now = datetime.now(UTC)
    path = f"/api/v1/public/{clinic.slug}/providers/{clinic.provider_ids[0]}/slots"
    backwards = await client.get(path, params={"start": now.isoformat(),
                                               "end": (now - timedelta(days=1)).isoformat()})
    expect_error(backwards, 422, "invalid_window")
    naive = await client.get(path, params={"start": "2030-01-01T09:00:00",
                                           "end": "2030-01-02T09:00:00"})
    error = expect_error(naive, 422, "invalid_input")
    assert "start" in error["message"]
