"""The database's tenant guarantees read from the PostgreSQL catalog of the migrated schema:
forced row-level security on every table with `clinic_id`, an app role that owns and
bypasses nothing, security-invoker views, and keys that never cross clinics (DESIGN §4).

Tables are enumerated from `pg_class`, never listed by hand, so a table added by a later
migration is checked the day it appears. Each checker is also run against deliberately
broken probe objects (created in a transaction that is rolled back) to prove that it
catches what it is meant to catch.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.types.json import Jsonb
from sqlalchemy.engine import URL

from sync_server.core.config import APP_DB_ROLE
from tests.conftest import libpq
from tests.factories import ClinicData, Factory

CLINIC_SETTING = "app.clinic_id"

_TENANT_TABLES = """
    SELECT c.relname
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
      AND a.attname = 'clinic_id' AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY c.relname
"""


def tenant_tables(conn: psycopg.Connection) -> list[str]:
    """Every ordinary or partitioned table in `public` that has a `clinic_id` column."""
    return [name for (name,) in conn.execute(_TENANT_TABLES)]


def isolated_tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(table, column its policy compares with the clinic setting): the tenant tables, plus
    `clinic` itself, whose rows are isolated on `id`."""
    return [(t, "clinic_id") for t in tenant_tables(conn)] + [("clinic", "id")]


@dataclass(frozen=True)
class Policy:
    name: str
    command: str
    permissive: bool
    applies_to_app: bool
    using: str | None
    check: str | None


def _policies(conn: psycopg.Connection, table: str) -> list[Policy]:
    rows = conn.execute(
        """
        SELECT p.polname, p.polcmd, p.polpermissive,
               EXISTS (SELECT 1 FROM unnest(p.polroles) r
                       WHERE r = 0 OR pg_has_role(%s, r, 'MEMBER')),
               pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
        FROM pg_policy p
        WHERE p.polrelid = (
            SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relname = %s)
        """,
        (APP_DB_ROLE, table),
    ).fetchall()
    return [Policy(*row) for row in rows]


def _compares_clinic(expr: str | None, column: str) -> bool:
    if expr is None or CLINIC_SETTING not in expr:
        return False
    # The column itself, not the 'app.clinic_id' inside the string literal.
    unquoted = re.sub(r"'[^']*'", "''", expr)
    return re.search(rf"\b{re.escape(column)}\b", unquoted) is not None


def rls_gaps(conn: psycopg.Connection) -> list[str]:
    """What is wrong with row-level security on the isolated tables, one line per fault."""
    gaps: list[str] = []
    for table, column in isolated_tables(conn):
        enabled, forced = conn.execute(
            """
            SELECT c.relrowsecurity, c.relforcerowsecurity
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relname = %s
            """,
            (table,),
        ).fetchone() or (False, False)
        if not enabled:
            gaps.append(f"{table}: ROW LEVEL SECURITY not enabled")
        if not forced:
            gaps.append(f"{table}: ROW LEVEL SECURITY not forced")
        policies = _policies(conn, table)
        if not any(
            p.command == "*" and p.permissive and p.applies_to_app
            and _compares_clinic(p.using, column)
            and (p.check is None or _compares_clinic(p.check, column))
            for p in policies
        ):
            gaps.append(f"{table}: no policy for the app role comparing {column} "
                        f"with {CLINIC_SETTING}")
        # Permissive policies are OR-ed: one that ignores the clinic opens every row.
        gaps.extend(
            f"{table}: policy {p.name} lets the app role past the clinic check"
            for p in policies
            if p.permissive and p.applies_to_app
            and not (_compares_clinic(p.using, column) if p.using is not None
                     else _compares_clinic(p.check, column))
        )
    return gaps


def view_gaps(conn: psycopg.Connection) -> tuple[list[str], list[str]]:
    """(every view and materialized view in `public`, the ones that would bypass RLS).

    A view runs with its owner's rights unless it is `security_invoker`; a materialized
    view holds a copy that row-level security never filters, so the app may not read one.
    """
    rows = conn.execute(
        """
        SELECT c.relname, c.relkind, coalesce(c.reloptions, '{}'),
               has_table_privilege(%s, c.oid, 'SELECT')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm')
        ORDER BY c.relname
        """,
        (APP_DB_ROLE,),
    ).fetchall()
    gaps: list[str] = []
    for name, kind, options, app_can_read in rows:
        if kind == "m":
            if app_can_read:
                gaps.append(f"{name}: materialized view readable by {APP_DB_ROLE}")
            continue
        settings = dict(opt.split("=", 1) for opt in options)
        if settings.get("security_invoker", "false").lower() not in {"true", "on", "yes", "1"}:
            gaps.append(f"{name}: view is not security_invoker")
    return [name for name, *_ in rows], gaps


def key_gaps(conn: psycopg.Connection) -> list[str]:
    """Keys on tenant tables that leave out `clinic_id`, and foreign keys that do not map
    it onto the parent's `clinic_id` (or onto `clinic.id`)."""
    constraints = conn.execute(
        """
        SELECT c.relname, con.conname, con.contype, con.conkey, con.confkey, a.attnum,
               (SELECT ra.attnum FROM pg_attribute ra
                WHERE ra.attrelid = con.confrelid
                  AND ra.attname = CASE WHEN con.confrelid = 'public.clinic'::regclass
                                        THEN 'id' ELSE 'clinic_id' END)
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'clinic_id'
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND con.contype IN ('p', 'u', 'f', 'x')
        ORDER BY c.relname, con.conname
        """
    ).fetchall()
    gaps: list[str] = []
    for table, name, kind, key, ref_key, clinic_col, ref_clinic_col in constraints:
        if clinic_col not in key:
            gaps.append(f"{table}.{name}: key leaves out clinic_id")
        elif kind == "f" and ref_key[key.index(clinic_col)] != ref_clinic_col:
            gaps.append(f"{table}.{name}: foreign key does not match clinic_id to the "
                        "parent's clinic")
    # A unique index made without a constraint (CREATE UNIQUE INDEX) is just as global.
    indexes = conn.execute(
        """
        SELECT c.relname, i.relname, x.indkey::int2[], a.attnum
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class c ON c.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'clinic_id'
        WHERE n.nspname = 'public' AND x.indisunique
        ORDER BY c.relname, i.relname
        """
    ).fetchall()
    gaps.extend(
        f"{table}.{index}: unique index leaves out clinic_id"
        for table, index, columns, clinic_col in indexes
        if clinic_col not in columns
    )
    return gaps


@pytest.fixture
def owner_conn(db_urls: tuple[URL, URL]) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq(db_urls[0]), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def clinics(factory: Factory) -> tuple[ClinicData, ClinicData]:
    """Two clinics with a row in every tenant table, so that "no rows" means filtered."""
    pair = (factory.clinic(), factory.clinic())
    for clinic in pair:
        factory.populate(clinic)
    return pair


def _owner_rows(owner: psycopg.Connection, table: str, column: str, clinic_id: uuid.UUID
                ) -> list[dict[str, object]]:
    """One clinic's rows as JSON objects, read as the owner (scoped, in case the owner is
    not a superuser and FORCE ROW LEVEL SECURITY applies to it too)."""
    with owner.transaction():
        owner.execute("SELECT set_config(%s, %s, true)", (CLINIC_SETTING, str(clinic_id)))
        query = sql.SQL("SELECT to_jsonb(t) FROM {} t WHERE {} = %s").format(
            sql.Identifier(table), sql.Identifier(column))
        return [row for (row,) in owner.execute(query, (clinic_id,))]


# --- forced row-level security ------------------------------------------------------------


def test_every_table_with_clinic_id_has_forced_rls_and_a_clinic_policy(
    owner_conn: psycopg.Connection,
) -> None:
    tables = tenant_tables(owner_conn)
    assert {"patient", "staff_user", "audit_event"} <= set(tables), tables
    gaps = rls_gaps(owner_conn)
    assert not gaps, "tables open to other clinics:\n" + "\n".join(gaps)


def test_rls_check_catches_open_unforced_leaky_and_partitioned_tables(
    owner_conn: psycopg.Connection,
) -> None:
    policy = ("CREATE POLICY {t}_iso ON {t} USING (clinic_id = "
              "NULLIF(current_setting('app.clinic_id', true), '')::uuid)")
    with owner_conn.transaction(force_rollback=True):
        owner_conn.execute("CREATE TABLE probe_open (clinic_id uuid)")
        owner_conn.execute("CREATE TABLE probe_unforced (clinic_id uuid)")
        owner_conn.execute("ALTER TABLE probe_unforced ENABLE ROW LEVEL SECURITY")
        owner_conn.execute(policy.format(t="probe_unforced"))
        owner_conn.execute("CREATE TABLE probe_leaky (clinic_id uuid)")
        owner_conn.execute("ALTER TABLE probe_leaky ENABLE ROW LEVEL SECURITY")
        owner_conn.execute("ALTER TABLE probe_leaky FORCE ROW LEVEL SECURITY")
        owner_conn.execute(policy.format(t="probe_leaky"))
        owner_conn.execute("CREATE POLICY probe_leaky_all ON probe_leaky FOR SELECT "
                           "USING (true)")
        owner_conn.execute("CREATE TABLE probe_parted (clinic_id uuid) "
                           "PARTITION BY HASH (clinic_id)")
        gaps = rls_gaps(owner_conn)
    assert [g for g in gaps if g.startswith("probe_")] == [
        "probe_leaky: policy probe_leaky_all lets the app role past the clinic check",
        "probe_open: ROW LEVEL SECURITY not enabled",
        "probe_open: ROW LEVEL SECURITY not forced",
        "probe_open: no policy for the app role comparing clinic_id with app.clinic_id",
        "probe_parted: ROW LEVEL SECURITY not enabled",
        "probe_parted: ROW LEVEL SECURITY not forced",
        "probe_parted: no policy for the app role comparing clinic_id with app.clinic_id",
        "probe_unforced: ROW LEVEL SECURITY not forced",
    ]


# --- the app role -------------------------------------------------------------------------


def test_app_role_has_no_superuser_bypassrls_createrole_or_createdb(
    owner_conn: psycopg.Connection,
) -> None:
    row = owner_conn.execute(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
        "WHERE rolname = %s",
        (APP_DB_ROLE,),
    ).fetchone()
    assert row is not None, f"role {APP_DB_ROLE} does not exist"
    assert dict(zip(("superuser", "bypassrls", "createrole", "createdb"), row, strict=True)) == {
        "superuser": False, "bypassrls": False, "createrole": False, "createdb": False}


def test_app_role_owns_nothing_and_cannot_act_as_an_owner(
    owner_conn: psycopg.Connection,
) -> None:
    owned = owner_conn.execute(
        """
        WITH app AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
        SELECT 'relation ' || c.relkind::text, c.relname FROM pg_class c, app
            WHERE c.relowner = app.oid
        UNION ALL SELECT 'function', p.proname FROM pg_proc p, app WHERE p.proowner = app.oid
        UNION ALL SELECT 'schema', n.nspname FROM pg_namespace n, app
            WHERE n.nspowner = app.oid
        UNION ALL SELECT 'type', t.typname FROM pg_type t, app WHERE t.typowner = app.oid
        UNION ALL SELECT 'database', d.datname FROM pg_database d, app WHERE d.datdba = app.oid
        """,
        {"role": APP_DB_ROLE},
    ).fetchall()
    assert owned == []
    # A member of the owning role could ALTER TABLE ... DISABLE ROW LEVEL SECURITY.
    owners = owner_conn.execute(
        """
        SELECT DISTINCT r.rolname, pg_has_role(%s, r.oid, 'MEMBER')
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_roles r ON r.oid = c.relowner
        WHERE n.nspname = 'public'
        """,
        (APP_DB_ROLE,),
    ).fetchall()
    assert owners, "found no owned objects in public: the query is broken"
    assert [name for name, member in owners if member] == []
    can_create = owner_conn.execute(
        "SELECT has_schema_privilege(%s, 'public', 'CREATE'), "
        "has_database_privilege(%s, current_database(), 'CREATE')",
        (APP_DB_ROLE, APP_DB_ROLE),
    ).fetchone()
    assert can_create == (False, False)


def test_app_role_has_no_update_delete_or_truncate_privilege_on_audit_event(
    owner_conn: psycopg.Connection,
) -> None:
    privileges = owner_conn.execute(
        """
        SELECT has_table_privilege(%(r)s, 'audit_event', 'UPDATE'),
               has_table_privilege(%(r)s, 'audit_event', 'DELETE'),
               has_table_privilege(%(r)s, 'audit_event', 'TRUNCATE'),
               has_any_column_privilege(%(r)s, 'audit_event', 'UPDATE'),
               has_table_privilege(%(r)s, 'audit_event', 'INSERT'),
               has_table_privilege(%(r)s, 'audit_event', 'SELECT')
        """,
        {"r": APP_DB_ROLE},
    ).fetchone()
    assert privileges == (False, False, False, False, True, True)


def test_app_role_update_or_delete_of_its_own_audit_event_is_refused(
    app_conn: psycopg.Connection, owner_conn: psycopg.Connection,
    clinics: tuple[ClinicData, ClinicData],
) -> None:
    clinic = clinics[0]
    event_id = uuid.uuid4()
    with app_conn.transaction(force_rollback=True):
        app_conn.execute("SELECT set_config('app.clinic_id', %s, true)", (str(clinic.id),))
        # The row is in the caller's own clinic and visible: only the privilege stops it.
        app_conn.execute(
            "INSERT INTO audit_event (clinic_id, id, action, entity) "
            "VALUES (%s, %s, 'probe', 'patient')",
            (clinic.id, event_id),
        )
        assert app_conn.execute("SELECT count(*) FROM audit_event WHERE id = %s",
                                (event_id,)).fetchone() == (1,)
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"), \
                app_conn.transaction():
            app_conn.execute("UPDATE audit_event SET action = 'tampered' WHERE id = %s",
                             (event_id,))
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"), \
                app_conn.transaction():
            app_conn.execute("DELETE FROM audit_event WHERE id = %s", (event_id,))
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"), \
                app_conn.transaction():
            app_conn.execute("DELETE FROM audit_event WHERE clinic_id = %s", (clinic.id,))
    existing = _owner_rows(owner_conn, "audit_event", "clinic_id", clinic.id)
    assert existing, "the populated clinic has audit events"
    assert all(row["action"] != "tampered" for row in existing)


# --- views --------------------------------------------------------------------------------


def test_every_view_is_security_invoker(owner_conn: psycopg.Connection) -> None:
    views, gaps = view_gaps(owner_conn)
    listed = owner_conn.execute(
        "SELECT table_name FROM information_schema.views WHERE table_schema = 'public' "
        "UNION ALL SELECT matviewname FROM pg_matviews WHERE schemaname = 'public'"
    ).fetchall()
    assert sorted(views) == sorted(name for (name,) in listed)
    assert not gaps, f"views that bypass row-level security (of {views}):\n" + "\n".join(gaps)


def test_view_check_catches_definer_views_and_readable_materialized_views(
    owner_conn: psycopg.Connection,
) -> None:
    with owner_conn.transaction(force_rollback=True):
        owner_conn.execute("CREATE VIEW probe_definer AS SELECT id FROM patient")
        owner_conn.execute("CREATE VIEW probe_invoker WITH (security_invoker = true) AS "
                           "SELECT id FROM patient")
        owner_conn.execute("CREATE VIEW probe_invoker_on WITH (security_invoker = on) AS "
                           "SELECT id FROM patient")
        owner_conn.execute("CREATE MATERIALIZED VIEW probe_copy AS SELECT id FROM patient")
        owner_conn.execute(
            sql.SQL("GRANT SELECT ON probe_copy TO {}").format(sql.Identifier(APP_DB_ROLE)))
        views, gaps = view_gaps(owner_conn)
    assert {"probe_definer", "probe_invoker", "probe_invoker_on", "probe_copy"} <= set(views)
    assert [g for g in gaps if g.startswith("probe_")] == [
        f"probe_copy: materialized view readable by {APP_DB_ROLE}",
        "probe_definer: view is not security_invoker",
    ]


# --- keys ---------------------------------------------------------------------------------


def test_every_key_and_foreign_key_on_a_tenant_table_includes_clinic_id(
    owner_conn: psycopg.Connection,
) -> None:
    checked = owner_conn.execute(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
        "AND conrelid = 'public.appointment'::regclass"
    ).fetchone()
    assert checked == (2,), "appointment's parents are patient and provider"
    gaps = key_gaps(owner_conn)
    assert not gaps, "keys that reach across clinics:\n" + "\n".join(gaps)


def test_key_check_catches_global_uniques_and_foreign_keys_that_skip_the_clinic(
    owner_conn: psycopg.Connection,
) -> None:
    with owner_conn.transaction(force_rollback=True):
        owner_conn.execute(
            """
            CREATE TABLE probe_keys (
                clinic_id uuid NOT NULL, id uuid NOT NULL, email text, code text,
                user_id uuid, other_clinic uuid,
                CONSTRAINT probe_keys_pk PRIMARY KEY (id),
                CONSTRAINT probe_keys_email UNIQUE (email),
                CONSTRAINT probe_keys_swapped FOREIGN KEY (user_id, clinic_id)
                    REFERENCES staff_user (clinic_id, id),
                CONSTRAINT probe_keys_elsewhere FOREIGN KEY (other_clinic, user_id)
                    REFERENCES staff_user (clinic_id, id),
                CONSTRAINT probe_keys_good FOREIGN KEY (clinic_id, user_id)
                    REFERENCES staff_user (clinic_id, id)
            )
            """
        )
        owner_conn.execute("CREATE UNIQUE INDEX probe_keys_code ON probe_keys (lower(code))")
        gaps = key_gaps(owner_conn)
    assert [g for g in gaps if g.startswith("probe_")] == [
        "probe_keys.probe_keys_elsewhere: key leaves out clinic_id",
        "probe_keys.probe_keys_email: key leaves out clinic_id",
        "probe_keys.probe_keys_pk: key leaves out clinic_id",
        "probe_keys.probe_keys_swapped: foreign key does not match clinic_id to the "
        "parent's clinic",
        "probe_keys.probe_keys_code: unique index leaves out clinic_id",
        "probe_keys.probe_keys_email: unique index leaves out clinic_id",
        "probe_keys.probe_keys_pk: unique index leaves out clinic_id",
    ]


# --- failing closed -----------------------------------------------------------------------


def _count_visible(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    return int(row.fetchone()[0])  # type: ignore[index]


def test_app_role_sees_no_rows_anywhere_when_no_clinic_is_set(
    app_conn: psycopg.Connection, owner_conn: psycopg.Connection,
    clinics: tuple[ClinicData, ClinicData],
) -> None:
    tables = isolated_tables(owner_conn)
    empty = {t for t, c in tables if not _owner_rows(owner_conn, t, c, clinics[0].id)}
    assert not empty, f"populate() made no rows in {sorted(empty)}: the check would be vacuous"
    with app_conn.transaction(force_rollback=True):
        seen = {t: _count_visible(app_conn, t) for t, _ in tables}
    assert seen == dict.fromkeys(seen, 0)


@pytest.mark.parametrize("value", ["", "00000000-0000-0000-0000-000000000000"])
def test_app_role_sees_no_rows_anywhere_with_an_empty_or_unknown_clinic(
    app_conn: psycopg.Connection, owner_conn: psycopg.Connection,
    clinics: tuple[ClinicData, ClinicData], value: str,
) -> None:
    tables = isolated_tables(owner_conn)
    with app_conn.transaction(force_rollback=True):
        app_conn.execute("SELECT set_config('app.clinic_id', %s, true)", (value,))
        seen = {t: _count_visible(app_conn, t) for t, _ in tables}
    assert seen == dict.fromkeys(seen, 0)


def test_app_role_query_fails_when_the_clinic_setting_is_not_a_uuid(
    app_conn: psycopg.Connection, clinics: tuple[ClinicData, ClinicData],
) -> None:
    with app_conn.transaction(force_rollback=True):
        app_conn.execute("SELECT set_config('app.clinic_id', 'everyone', true)")
        with pytest.raises(errors.InvalidTextRepresentation), app_conn.transaction():
            app_conn.execute("SELECT count(*) FROM patient")


def test_clinic_context_ends_with_its_transaction(
    app_conn: psycopg.Connection, clinics: tuple[ClinicData, ClinicData],
) -> None:
    # Pooled connections are reused by the next request: the setting must not linger.
    with app_conn.transaction():
        app_conn.execute("SELECT set_config('app.clinic_id', %s, true)", (str(clinics[0].id),))
        assert _count_visible(app_conn, "patient") == len(clinics[0].patient_ids)
    with app_conn.transaction(force_rollback=True):
        assert _count_visible(app_conn, "patient") == 0


def test_app_role_cannot_write_a_row_of_clinic_b_while_scoped_to_clinic_a(
    app_conn: psycopg.Connection, owner_conn: psycopg.Connection,
    clinics: tuple[ClinicData, ClinicData],
) -> None:
    a, b = clinics
    refused: dict[str, str] = {}
    for table, column in isolated_tables(owner_conn):
        # A copy of one of B's rows under a new id, rebuilt from JSON by the database.
        row = _owner_rows(owner_conn, table, column, b.id)[0]
        row["id"] = str(uuid.uuid4())
        if column == "id":
            row["slug"] = f"probe-{uuid.uuid4().hex[:8]}"
        insert = sql.SQL(
            "INSERT INTO {t} SELECT * FROM jsonb_populate_record(NULL::{t}, %s::jsonb)"
        ).format(t=sql.Identifier(table))
        with app_conn.transaction(force_rollback=True):
            app_conn.execute("SELECT set_config('app.clinic_id', %s, true)", (str(a.id),))
            try:
                app_conn.execute(insert, (Jsonb(row),))
            except errors.InsufficientPrivilege as exc:
                refused[table] = str(exc)
            else:
                refused[table] = "ACCEPTED"
    # Tables the app may insert into must refuse by policy; the others by privilege.
    expected = {
        t: "new row violates row-level security policy"
        if owner_conn.execute("SELECT has_table_privilege(%s, %s, 'INSERT')",
                              (APP_DB_ROLE, t)).fetchone() == (True,)
        else "permission denied"
        for t in refused
    }
    assert {"patient", "audit_event"} <= {t for t, m in expected.items() if "policy" in m}
    wrong = {t: refused[t] for t, why in expected.items() if why not in refused[t]}
    assert not wrong, f"rows for clinic B not refused as expected: {wrong}"
