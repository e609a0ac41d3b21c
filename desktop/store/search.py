"""Finding patients in the local store as the receptionist types.

An FTS5 index holds each patient's search document: folded names, the phone's digit
forms and the record number, the same words the server matches (shared_models.search).
Triggers keep it in step with the patient table whatever writes it (a pulled page, a
local edit); they compute the document through `consulta_search_document`, which every
connection of the store registers (database.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, Engine, Row, select, text

from shared_models.search import query_terms, search_document
from shared_models.tables import patient

MAX_RESULTS = 50


def document(given: str | None, family: str | None, phone: str | None, mrn: str | None
             ) -> str:
    return search_document(names=[given, family], phone=phone,
                           mrn=None if (mrn or "").startswith("LOCAL-") else mrn)


INDEX_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS patient_fts USING fts5(doc, tokenize='unicode61')",
    "CREATE TRIGGER IF NOT EXISTS patient_fts_insert AFTER INSERT ON patient BEGIN "
    "INSERT INTO patient_fts(rowid, doc) VALUES (new.rowid, consulta_search_document("
    "new.given_name, new.family_name, new.phone, new.mrn)); END",
    "CREATE TRIGGER IF NOT EXISTS patient_fts_update AFTER UPDATE OF given_name, "
    "family_name, phone, mrn ON patient BEGIN "
    "DELETE FROM patient_fts WHERE rowid = old.rowid; "
    "INSERT INTO patient_fts(rowid, doc) VALUES (new.rowid, consulta_search_document("
    "new.given_name, new.family_name, new.phone, new.mrn)); END",
    "CREATE TRIGGER IF NOT EXISTS patient_fts_delete AFTER DELETE ON patient BEGIN "
    "DELETE FROM patient_fts WHERE rowid = old.rowid; END",
)


def create_index(conn: Connection) -> None:
    for statement in INDEX_DDL:
        conn.exec_driver_sql(statement)


def rebuild_index(conn: Connection) -> None:
    """Index every patient already in the store (for stores older than the index)."""
    conn.exec_driver_sql("DELETE FROM patient_fts")
    conn.exec_driver_sql(
        "INSERT INTO patient_fts(rowid, doc) SELECT rowid, consulta_search_document("
        "given_name, family_name, phone, mrn) FROM patient")


def _match(terms: list[str]) -> str:
    # Each term as a quoted prefix: whatever was typed is data, never FTS syntax.
    return " ".join('"' + t.replace('"', '""') + '"*' for t in terms)


def search_patients(engine: Engine, q: str, *, limit: int = MAX_RESULTS) -> list[Row[Any]]:
    """Live patients matching every typed word by prefix, in name order; with nothing
    typed, the first patients by name."""
    terms = query_terms(q)
    stmt = select(patient).where(patient.c.deleted_at.is_(None))
    if terms:
        stmt = stmt.where(text("patient.rowid IN (SELECT rowid FROM patient_fts "
                               "WHERE patient_fts MATCH :match)").bindparams(
                                   match=_match(terms)))
    stmt = stmt.order_by(patient.c.family_name, patient.c.given_name, patient.c.id).limit(limit)
    with engine.connect() as conn:
        return list(conn.execute(stmt))


def patient_by_id(engine: Engine, patient_id: uuid.UUID) -> Row[Any] | None:
    with engine.connect() as conn:
        return conn.execute(select(patient).where(patient.c.id == patient_id)).first()
