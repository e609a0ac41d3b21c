"""Registering, changing, reading and searching patients; every one is audited."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared_models.ids import uuid7
from shared_models.schemas.patients import (
    PatientCreate,
    PatientPublic,
    PatientsPublic,
    PatientUpdate,
)
from shared_models.search import query_terms, search_document
from shared_models.tables import clinic, patient
from sync_server.actions import audit
from sync_server.core.errors import Conflict
from sync_server.lib.context import ClinicContext
from sync_server.lib.patients import access_patient, check_phone, search_statement
from sync_server.lib.stamps import WriteStamp, server_stamp, stamp_fields

MRN_PREFIX = "P-"
MAX_PAGE = 100
# `_next_mrn` skips numbers typed by hand; one typed in a concurrent request can still win
# the race, so the insert is retried with the next number up to this many times.
MRN_ATTEMPTS = 50


def to_public(row: Row[Any]) -> PatientPublic:
    return PatientPublic.model_validate(row._mapping, from_attributes=False)


async def _clinic_country(ctx: ClinicContext) -> str:
    country: str = (
        await ctx.conn.execute(select(clinic.c.country).where(clinic.c.id == ctx.clinic_id))
    ).scalar_one()
    return country


async def _next_mrn(ctx: ClinicContext) -> str:
    """The next generated record number that no hand-typed one has taken already."""
    while True:
        number = (
            await ctx.conn.execute(
                update(clinic)
                .where(clinic.c.id == ctx.clinic_id)
                .values(next_mrn=clinic.c.next_mrn + 1)
                .returning(clinic.c.next_mrn - 1)
            )
        ).scalar_one()
        mrn = f"{MRN_PREFIX}{number:06d}"
        taken = (
            await ctx.conn.execute(
                select(patient.c.id).where(
                    patient.c.clinic_id == ctx.clinic_id, patient.c.mrn == mrn
                )
            )
        ).first()
        if taken is None:
            return mrn


async def do_create_patient(
    ctx: ClinicContext, data: PatientCreate, *, patient_id: uuid.UUID | None = None,
    stamp: WriteStamp | None = None, needs_review: bool = False,
) -> PatientPublic:
    """Register a patient; a device pushing one made offline brings its own id and stamp.
    `needs_review` flags one registered by the patient on the booking page for the desk."""
    values = data.model_dump(exclude={"mrn"})
    fields = sorted(data.model_fields_set | ({"needs_review"} if needs_review else set()))
    values.update(stamp_fields(None, fields, stamp or server_stamp()), needs_review=needs_review)
    # A blank phone is no phone: stored as NULL, like one never given.
    values["phone"] = (
        check_phone(data.phone, region=await _clinic_country(ctx)) if data.phone else None
    )
    values["email"] = str(data.email).lower() if data.email else None
    patient_id = patient_id or uuid7()
    for _attempt in range(MRN_ATTEMPTS):
        mrn = data.mrn or await _next_mrn(ctx)
        values.update(
            clinic_id=ctx.clinic_id,
            id=patient_id,
            mrn=mrn,
            search_text=search_document(
                names=[values["given_name"], values["family_name"]], phone=values["phone"],
                mrn=mrn,
            ),
        )
        try:
            async with ctx.conn.begin_nested():
                row = (
                    await ctx.conn.execute(insert(patient).values(**values).returning(patient))
                ).one()
            break
        except IntegrityError as exc:
            if "uq_patient_clinic_id_mrn" not in str(exc.orig):
                raise
            if data.mrn:
                raise Conflict(
                    f"Record number {data.mrn} is already used by another patient of this "
                    "clinic. Leave it empty to get the next free one.",
                    code="mrn_taken",
                    details={"field": "mrn"},
                ) from exc
    else:  # every number tried was taken by concurrent hand-typed record numbers
        raise Conflict("Could not assign a free record number; try again.", code="mrn_taken")
    await audit.record(ctx, action="patient.create", entity="patient", entity_id=patient_id)
    return to_public(row)


async def do_update_patient(
    ctx: ClinicContext, patient_id: uuid.UUID, data: PatientUpdate, *,
    stamp: WriteStamp | None = None,
) -> PatientPublic:
    current = await access_patient(ctx, patient_id, for_update=True)
    if data.expected_version is not None and data.expected_version != current.server_version:
        raise Conflict(
            "Someone else changed this patient since you opened it. Reload to see their "
            "changes, then apply yours again.",
            code="stale_version",
            details={"current_version": current.server_version},
        )
    changes = data.model_dump(exclude_unset=True, exclude={"expected_version"})
    for required in ("given_name", "family_name", "sex", "preferred_language",
                     "preferred_channels"):
        if required in changes and changes[required] is None:
            del changes[required]
    if "phone" in changes:
        changes["phone"] = (
            check_phone(changes["phone"], region=await _clinic_country(ctx))
            if changes["phone"] else None
        )
    if changes.get("email"):
        changes["email"] = str(changes["email"]).lower()
    if not changes:
        return to_public(current)
    merged = {**current._mapping, **changes}
    fields = sorted(changes)
    changes["search_text"] = search_document(
        names=[merged["given_name"], merged["family_name"]], phone=merged["phone"],
        mrn=merged["mrn"],
    )
    changes.update(stamp_fields(current.field_stamps, fields, stamp or server_stamp()))
    row = (
        await ctx.conn.execute(
            update(patient)
            .where(patient.c.id == patient_id)
            .values(**changes)
            .returning(patient)
        )
    ).one()
    await audit.record(
        ctx, action="patient.update", entity="patient", entity_id=patient_id,
        detail={"fields": fields},
    )
    return to_public(row)


async def do_read_patient(ctx: ClinicContext, patient_id: uuid.UUID) -> PatientPublic:
    row = await access_patient(ctx, patient_id)
    await audit.record(ctx, action="patient.read", entity="patient", entity_id=patient_id)
    return to_public(row)


async def do_search_patients(
    ctx: ClinicContext, *, q: str | None, limit: int, offset: int
) -> PatientsPublic:
    stmt = search_statement(query_terms(q or ""), limit=limit, offset=offset)
    rows = (await ctx.conn.execute(stmt)).all()
    has_more = len(rows) > limit
    page = [to_public(r) for r in rows[:limit]]
    await audit.record(
        ctx, action="patient.search", entity="patient",
        detail={"returned": [str(p.id) for p in page], "offset": offset},
    )
    return PatientsPublic(
        data=page, has_more=has_more, next_offset=offset + limit if has_more else None
    )
