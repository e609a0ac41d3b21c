"""Clinic isolation: nothing one clinic's staff can send reads, finds or changes another
clinic's rows, over HTTP or as the app role underneath it (DESIGN §4).

The endpoints are enumerated from the application's routes and the tables from the
PostgreSQL catalog, so a new endpoint or table is covered without editing this file (or
the suite fails and says what it needs). Three clinics full of data are made once per
module; the randomized test draws clinic pairs, roles, endpoints, target ids and search
strings from them.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import string
import types
import typing
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import fastapi.routing
import httpx
import psycopg
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import errors, sql
from pydantic import BaseModel
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import URL

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import patient, provider
from sync_server.actions.clinics import scope
from sync_server.api.deps import clinic_context
from sync_server.core.config import APP_DB_ROLE
from sync_server.core.security import decode_token, encode_token
from tests.conftest import LiveServer, libpq, make_client
from tests.factories import PASSWORD, ClinicData, Factory
from tests.sync_server.test_rls_catalog import CLINIC_SETTING, isolated_tables

# Routes that run before any clinic is known. A new one must be reviewed and given a
# probe in the tests below before it joins this list.
PUBLIC_ROUTES = {
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/refresh"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    # The booking page: scoped by the clinic slug in the URL; probed in test_public_slots.py.
    ("GET", "/api/v1/public/{clinic_slug}/providers"),
    ("GET", "/api/v1/public/{clinic_slug}/providers/{provider_id}/slots"),
    # Self-booking and the manage token (which names its clinic and appointment); probed in
    # test_public_booking.py.
    ("POST", "/api/v1/public/{clinic_slug}/bookings"),
    ("GET", "/api/v1/public/{clinic_slug}/bookings/{appointment_id}"),
    ("POST", "/api/v1/public/{clinic_slug}/bookings/{appointment_id}/cancel"),
    ("POST", "/api/v1/public/{clinic_slug}/bookings/{appointment_id}/reschedule"),
    # The booking page over the same services; probed in test_public_booking.py and
    # tests/e2e/test_booking_page.py.
    ("GET", "/book/{clinic_slug}"),
    ("GET", "/book/{clinic_slug}/{provider_id:uuid}"),
    ("GET", "/book/{clinic_slug}/{provider_id:uuid}/{day}"),
    ("GET", "/book/{clinic_slug}/{provider_id:uuid}/{day}/details"),
    ("POST", "/book/{clinic_slug}/{provider_id:uuid}/{day}/details"),
    ("GET", "/book/{clinic_slug}/confirmed"),
    ("GET", "/book/{clinic_slug}/manage"),
    ("GET", "/book/{clinic_slug}/manage/cancel"),
    ("POST", "/book/{clinic_slug}/manage/cancel"),
    ("GET", "/book/{clinic_slug}/manage/reschedule"),
    ("POST", "/book/{clinic_slug}/manage/reschedule"),
    # A computer trading its one-time code for credentials; probed in test_devices.py.
    ("POST", "/api/v1/devices/enrol"),
    # Patients' text replies, posted and signed by the messaging provider, scoped by the
    # slug; probed in tests/sync_server/reminders/test_replies.py.
    ("POST", "/api/v1/public/{clinic_slug}/replies/{channel}"),
}

# GETs that answer one settings document of the caller's clinic rather than a list of
# rows, so they hold no row ids; that each clinic keeps its own is tested beside them
# (tests/sync_server/reminders/test_policy.py).
SETTINGS_DOCUMENTS = {"/api/v1/reminders/policy"}

# A valid body for each request model; fields that name another record (`*_id` UUIDs)
# are filled in with the target clinic's ids by the suite itself.
BASE_BODIES: dict[str, dict[str, Any]] = {
    "PatientCreate": {"given_name": "Nuevo", "family_name": "Paciente"},
    "PatientUpdate": {"given_name": "Intruso", "address": "Calle Falsa 123"},
    "ProviderCreate": {"display_name": "Dr. Intruso", "specialty": "Isolation"},
    "AppointmentCreate": {"start": "2031-03-03T09:00:00-03:00", "reason": "Control"},
    "AppointmentReschedule": {"start": "2031-03-03T09:30:00-03:00"},
    "AppointmentCancel": {"reason": "Intruso"},
    "AvailabilityRuleCreate": {"weekday": 0, "start_time": "09:00", "end_time": "12:00",
                               "slot_minutes": 30},
    "AvailabilityExceptionCreate": {"kind": "time_off", "starts_at": "2031-01-01T00:00:00Z",
                                    "ends_at": "2031-01-02T00:00:00Z"},
    "BookingPolicyUpdate": {"min_notice_minutes": 60},
    "DeviceCreate": {"name": "Recepción 2"},
    "DeviceRolloutCreate": {"name": "Recepción", "computers": 3},
    "ConflictResolve": {"keep": "lost"},
    "PaymentCreate": {"amount": "15000", "currency": "CLP", "method": "cash"},
    "PaymentVoid": {"reason": "Intruso"},
    "ReminderPolicy": {"offsets_minutes": [1440], "quiet_start": "21:00", "quiet_end": "08:00"},
    "PublicBookingCreate": {"start": "2031-03-03T09:00:00-03:00", "given_name": "Nueva",
                            "family_name": "Paciente", "phone": "+56 9 8765 4321",
                            "date_of_birth": "1985-03-02"},
    "PublicReschedule": {"start": "2031-03-03T09:30:00-03:00"},
    "PharmacyCreate": {"name": "Farmacia Intrusa", "address": "Calle Falsa 123",
                       "registry_number": lambda: f"ISO-{uuid.uuid4().hex[:8]}"},
    "PharmacyUpdate": {"name": "Farmacia Intrusa"},
    "PrescriptionRefuse": {"reason": "Intruso"},
    "SigningKeyRevoke": {"reason": "Intruso"},
    "SigningKeyRegister": {"id": "01900000-0000-7000-8000-0000000000aa",
                           "public_key": "-----BEGIN PUBLIC KEY-----\n" + "A" * 120
                           + "\n-----END PUBLIC KEY-----\n", "proof": "AAAAAAAAAAAA"},
    "LabOrderTransition": {"to": "cancelled", "reason": "Intruso"},
    "LabResultsEntry": {"results": [{"test_code": "cbc", "analyte": "hgb", "value": "13.1"}]},
    # Ids inside mutations are not top-level references; pushing another clinic's ids is
    # probed in test_sync_push.py.
    "PushRequest": {"mutations": [{
        "mutation_id": "01900000-0000-7000-8000-000000000001", "entity": "patient",
        "op": "upsert", "record_id": "01900000-0000-7000-8000-000000000002",
        "changes": {"given_name": "Empujado", "family_name": "Isolation"},
        "hlc": "1700000000000-000000-isolation"}]},
}

# A key registration carries a proof signed for the caller's own clinic and account, which
# a fixed body cannot hold: it is refused (422) before any record is looked up.
# tests/sync_server/test_signing_keys.py registers keys for real.
CALLER_BOUND_BODIES = {("POST", "/api/v1/signing-keys")}

# Text query parameters that are opaque tokens the server issued, not search text: probing
# them with another clinic's names would only test the token parser.
OPAQUE_QUERY_PARAMS = {"since"}

# Values for required query parameters that are not free text (time windows).
QUERY_VALUES: dict[str, str] = {
    "start": "2020-01-01T00:00:00Z",
    "end": "2020-02-01T00:00:00Z",
}

# Aliases for reference names that are not the table's name or its last word.
REFERENCE_TABLES: dict[str, str] = {}

OWN_ROWS_PER_TABLE = 4


# --- the clinics ----------------------------------------------------------------------------


def _letters(rng: random.Random, n: int = 9) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=n)).capitalize()


@dataclass
class Tenant:
    clinic: ClinicData
    ids: dict[str, list[uuid.UUID]]
    # Strings only this clinic's data holds: ids, slug, names, phones, record numbers.
    markers: frozenset[str]
    # (search text, id of the one patient it finds inside this clinic)
    probes: list[tuple[str, uuid.UUID]]

    @property
    def id(self) -> uuid.UUID:
        return self.clinic.id

    def user(self, role: Role) -> uuid.UUID:
        return self.clinic.users[role].id


@dataclass
class World:
    tenants: list[Tenant]
    tables: list[tuple[str, str]]
    owner: psycopg.Connection
    factory: Factory

    def snapshot(self, clinic_id: uuid.UUID) -> list[str]:
        """Every row of one clinic, as JSON text, read as the owner."""
        return sorted(_scoped_rows(self.owner, self.tables, clinic_id))

    def versions(self, clinic_id: uuid.UUID) -> list[tuple[str, int, int | None]]:
        return _versions(self.owner, self.tables, clinic_id)

    def headers(self, tenant: Tenant, role: Role) -> dict[str, str]:
        return self.factory.headers(tenant.clinic.users[role])


def _union(tables: list[tuple[str, str]], where: str) -> sql.Composed:
    return sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {name} || ':' || to_jsonb(t)::text FROM {t} t WHERE " + where).format(
            name=sql.Literal(table), t=sql.Identifier(table), col=sql.Identifier(column))
        for table, column in tables
    )


def _row_key(owner: psycopg.Connection, table: str) -> str:
    """The column that names a row: `id`, or for a table without one (a derived index such
    as patient_search_token) its first uuid column other than clinic_id."""
    columns = [name for (name,) in owner.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped AND atttypid = 'uuid'::regtype ORDER BY attnum", (table,))]
    return "id" if "id" in columns else next(c for c in columns if c != "clinic_id")


def _scoped_rows(owner: psycopg.Connection, tables: list[tuple[str, str]],
                 clinic_id: uuid.UUID, *, where: str = "{col} = %(c)s",
                 params: dict[str, Any] | None = None) -> list[str]:
    """One clinic's rows of `tables` matching `where`, as JSON text, read as the owner
    (scoped, in case the owner is not a superuser and FORCE ROW LEVEL SECURITY holds it)."""
    with owner.transaction():
        owner.execute("SELECT set_config(%s, %s, true)", (CLINIC_SETTING, str(clinic_id)))
        return [r for (r,) in owner.execute(_union(tables, where),
                                            {"c": clinic_id, **(params or {})})]


def _versions(owner: psycopg.Connection, tables: list[tuple[str, str]], clinic_id: uuid.UUID
              ) -> list[tuple[str, int, int | None]]:
    """(table, rows, newest row version) for one clinic. Every insert or update writes a
    row version with a newer transaction id and a delete lowers the count, so this changes
    whenever the clinic's rows do, at a fraction of the cost of reading them."""
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {name}, count(*), max(xmin::text::bigint) FROM {t} "
                "WHERE {col} = %(c)s").format(
            name=sql.Literal(table), t=sql.Identifier(table), col=sql.Identifier(column))
        for table, column in tables
    )
    with owner.transaction():
        owner.execute("SELECT set_config(%s, %s, true)", (CLINIC_SETTING, str(clinic_id)))
        return owner.execute(query, {"c": clinic_id}).fetchall()


def _make_tenant(factory: Factory, owner: psycopg.Connection, tables: list[tuple[str, str]],
                 rng: random.Random) -> Tenant:
    clinic = factory.clinic(patients=6, providers=2)
    probes: list[tuple[str, uuid.UUID]] = []
    markers = {clinic.slug}
    for _ in range(3):
        given_name, family_name = _letters(rng), _letters(rng)
        national = f"9{rng.randrange(10**8):08d}"
        phone = f"+56{national}"
        mrn = f"R-{rng.randrange(10**8):08d}"
        email = f"{given_name.lower()}.{family_name.lower()}@example.test"
        patient_id = factory.patient(clinic, given_name=given_name, family_name=family_name,
                                     phone=phone, email=email, mrn=mrn)
        markers |= {given_name, family_name, phone, mrn, email}
        probes += [(q, patient_id) for q in (
            given_name, family_name.upper(), f"{family_name} {given_name}", phone,
            f"+56 {national[0]} {national[1:5]} {national[5:]}", national, mrn)]
    factory.populate(clinic)
    ids: dict[str, list[uuid.UUID]] = {}
    for table, column in tables:
        with owner.transaction():
            owner.execute("SELECT set_config(%s, %s, true)", (CLINIC_SETTING, str(clinic.id)))
            key = _row_key(owner, table)
            query = sql.SQL("SELECT {key} FROM {} WHERE {} = %s ORDER BY {key}").format(
                sql.Identifier(table), sql.Identifier(column), key=sql.Identifier(key))
            ids[table] = [i for (i,) in owner.execute(query, (clinic.id,))]
    markers |= {str(i) for rows in ids.values() for i in rows}
    markers |= {u.email for u in clinic.users.values()}
    return Tenant(clinic, ids, frozenset(markers), probes)


@pytest.fixture(scope="module")
def owner_db(db_urls: tuple[URL, URL]) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq(db_urls[0]), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def world(factory: Factory, owner_db: psycopg.Connection) -> World:
    tables = isolated_tables(owner_db)
    rng = random.Random(20240611)
    tenants = [_make_tenant(factory, owner_db, tables, rng) for _ in range(3)]
    texts = {t.id: "\n".join(_scoped_rows(owner_db, tables, t.id)) for t in tenants}
    for tenant in tenants:
        # Drop anything that by chance also occurs in another clinic's data.
        others = [text for cid, text in texts.items() if cid != tenant.id]
        tenant.markers = frozenset(m for m in tenant.markers
                                   if not any(m in text for text in others))
        empty = [t for t, rows in tenant.ids.items() if not rows]
        assert not empty, f"no rows made in {empty}: extend Factory.populate"
    return World(tenants, tables, owner_db, factory)


# --- the endpoints --------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    tenant: bool
    path_params: tuple[str, ...]
    text_query_params: tuple[str, ...]
    body_model: type[BaseModel] | None
    required_query_params: tuple[str, ...] = ()
    # The roles the endpoint's role gate admits; None when any signed-in staff may call it.
    roles: frozenset[Role] | None = None

    @property
    def caller(self) -> Role:
        """The role to call it as: the admin where admitted, else one it admits."""
        if self.roles is None or Role.ADMIN in self.roles:
            return Role.ADMIN
        return sorted(self.roles)[0]

    @property
    def references(self) -> tuple[str, ...]:
        """Body fields that name another record by id."""
        if self.body_model is None:
            return ()
        return tuple(name for name, f in self.body_model.model_fields.items()
                     if name.endswith("_id") and uuid.UUID in _types(f.annotation))


def _types(annotation: Any) -> set[Any]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return set(typing.get_args(annotation))
    return {annotation}


def _needs_clinic(dependant: Any) -> bool:
    return any(d.call is clinic_context or _needs_clinic(d) for d in dependant.dependencies)


def _gate_roles(dependant: Any) -> frozenset[Role] | None:
    for d in dependant.dependencies:
        roles = getattr(d.call, "allowed_roles", None) or _gate_roles(d)
        if roles is not None:
            return frozenset(roles)
    return None


def _routes(app: FastAPI) -> Iterator[tuple[str, Any]]:
    """(full path, route) for every route, through included routers."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    if iterate is None:  # FastAPI versions that copy included routes into app.routes
        for route in app.routes:
            yield route.path, route  # type: ignore[attr-defined]
        return
    for context in iterate(app.routes):
        yield context.path, context


def endpoints(app: FastAPI) -> list[Endpoint]:
    found: list[Endpoint] = []
    for path, route in _routes(app):
        dependant = getattr(route, "dependant", None)
        if dependant is None:  # the OpenAPI document and its viewers
            continue
        bodies = [f.field_info.annotation for f in dependant.body_params]
        for method in sorted(route.methods - {"HEAD"}):
            found.append(Endpoint(
                method=method,
                path=path,
                tenant=_needs_clinic(dependant),
                path_params=tuple(f.name for f in dependant.path_params),
                text_query_params=tuple(f.name for f in dependant.query_params
                                        if str in _types(f.field_info.annotation)
                                        and f.name not in OPAQUE_QUERY_PARAMS),
                body_model=bodies[0] if len(bodies) == 1 else None,
                required_query_params=tuple(
                    f.name for f in dependant.query_params
                    if f.field_info.is_required() and str not in _types(f.field_info.annotation)),
                roles=_gate_roles(dependant),
            ))
    return found


def table_for(reference: str, world: World) -> str:
    """The table a `<name>_id` parameter points into: `<name>`, or one ending `_<name>`."""
    stem = reference.removesuffix("_id")
    if stem in REFERENCE_TABLES:
        return REFERENCE_TABLES[stem]
    names = [t for t, _ in world.tables]
    matches = [t for t in names if t == stem or t.endswith(f"_{stem}")]
    assert len(matches) == 1, (
        f"cannot tell which table {reference!r} points into ({matches}); "
        "add it to REFERENCE_TABLES")
    return matches[0]


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None

    def supplied(self) -> str:
        """What the caller sent: values echoed back from it reveal nothing."""
        return " ".join((self.path, json.dumps(self.params, ensure_ascii=False),
                         json.dumps(self.body, ensure_ascii=False)))

    def send_async(self, client: httpx.AsyncClient, headers: dict[str, str]
                   ) -> Coroutine[Any, Any, httpx.Response]:
        return client.request(self.method, self.path, params=self.params, json=self.body,
                              headers=headers)

    def send(self, client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
        return client.request(self.method, self.path, params=self.params, json=self.body,
                              headers=headers)


def build_call(endpoint: Endpoint, world: World, *, target: Callable[[str], uuid.UUID],
               query: str | None = None) -> Call:
    """A request to `endpoint` whose ids all come from `target(table)`."""
    path = endpoint.path
    for param in endpoint.path_params:
        path = path.replace(f"{{{param}}}", str(target(table_for(param, world))))
    params = {name: query for name in endpoint.text_query_params if query is not None}
    for name in endpoint.required_query_params:
        assert name in QUERY_VALUES, f"add a value for the query parameter {name} to QUERY_VALUES"
        params[name] = QUERY_VALUES[name]
    body = None
    if endpoint.body_model is not None:
        name = endpoint.body_model.__name__
        assert name in BASE_BODIES, f"add a valid {name} body to BASE_BODIES"
        # A callable value is made anew per request (a field that must be unique).
        body = {k: v() if callable(v) else v for k, v in BASE_BODIES[name].items()}
        for reference in endpoint.references:
            body[reference] = str(target(table_for(reference, world)))
    return Call(endpoint.method, path, params, body)


def allowed_statuses(endpoint: Endpoint, role: Role) -> set[int]:
    """What a request naming another clinic's (or no) record may answer."""
    if endpoint.path_params and endpoint.references:
        ok = {404, 422}
    elif endpoint.path_params:
        ok = {404}
    elif endpoint.references:
        ok = {404, 422}
    elif endpoint.method == "GET":
        ok = {200}
    else:
        ok = {200, 201}
    if (endpoint.method, endpoint.path) in CALLER_BOUND_BODIES:
        ok = ok | {422}
    # A role the endpoint admits gets an answer about the record; others may be turned
    # away first.
    return ok if role is endpoint.caller else ok | {403}


def leaks(response: httpx.Response, victim: Tenant, call: Call) -> list[str]:
    """The victim's markers in the response that the request did not itself contain."""
    text = response.text + " " + " ".join(f"{k}: {v}" for k, v in response.headers.items())
    supplied = call.supplied()
    return sorted(m for m in victim.markers if m in text and m not in supplied)


def foreign_leaks(response: httpx.Response, world: World, actor: Tenant, call: Call
                  ) -> list[str]:
    """Markers of every clinic but the caller's in the response (target or bystander)."""
    return [m for t in world.tenants if t is not actor for m in leaks(response, t, call)]


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _named_ids(call: Call) -> list[uuid.UUID]:
    """The ids a request names, in its path or its body."""
    values = [*call.path.split("/"), *(str(v) for v in (call.body or {}).values())]
    return [uuid.UUID(v) for v in values if _is_uuid(v)]


def _normalised(response: httpx.Response, call: Call) -> tuple[int, str]:
    text = response.text
    for named in _named_ids(call):
        text = text.replace(str(named), "<id>")
    return response.status_code, text


def cross_clinic_calls(endpoint: Endpoint, world: World, actor: Tenant, victim: Tenant
                       ) -> list[tuple[Call, Call | None]]:
    """Requests from `actor` aimed at `victim`, each (when it names an id) with a twin that
    names an unknown id instead: the two answers must not tell B's rows from no rows."""
    names = endpoint.path_params + endpoint.references
    if names:
        calls: list[tuple[Call, Call | None]] = []
        for name in names:
            aimed = table_for(name, world)

            def pick(table: str, chosen: uuid.UUID, aimed: str = aimed) -> uuid.UUID:
                # The other ids are the actor's own: its parent record, B's child record.
                return chosen if table == aimed else actor.ids[table][0]

            for victim_id in victim.ids[aimed][:OWN_ROWS_PER_TABLE]:
                unknown = uuid.uuid4()
                calls.append((
                    build_call(endpoint, world, target=lambda t, v=victim_id: pick(t, v)),
                    build_call(endpoint, world, target=lambda t, u=unknown: pick(t, u)),
                ))
        return calls
    calls = [(build_call(endpoint, world, target=lambda t: uuid.uuid4()), None)]
    if endpoint.method == "GET" and endpoint.text_query_params:
        calls += [(build_call(endpoint, world, target=lambda t: uuid.uuid4(), query=q), None)
                  for q, _ in victim.probes]
    return calls


# --- the database underneath -------------------------------------------------------------


def _privileges(owner: psycopg.Connection, table: str) -> dict[str, bool]:
    return {p: bool(owner.execute("SELECT has_table_privilege(%s, %s, %s)",
                                  (APP_DB_ROLE, table, p)).fetchone()[0])  # type: ignore[index]
            for p in ("SELECT", "INSERT", "UPDATE", "DELETE")}


def _scoped(conn: psycopg.Connection, clinic_id: uuid.UUID) -> None:
    conn.execute("SELECT set_config('app.clinic_id', %s, true)", (str(clinic_id),))


def _no_cross_references(world: World) -> list[str]:
    """Rows of any clinic that mention another clinic's ids (in any column, JSON included)."""
    found: list[str] = []
    for tenant in world.tenants:
        foreign = "|".join(str(i) for other in world.tenants if other is not tenant
                           for rows in other.ids.values() for i in rows)
        found += _scoped_rows(world.owner, world.tables, tenant.id,
                              where="{col} = %(c)s AND to_jsonb(t)::text ~ %(f)s",
                              params={"f": foreign})
    return found


# --- every endpoint, deterministically ------------------------------------------------------


def test_every_route_is_clinic_scoped_or_a_reviewed_public_route(app: FastAPI) -> None:
    found = endpoints(app)
    public = {(e.method, e.path) for e in found if not e.tenant}
    assert public == PUBLIC_ROUTES, (
        "routes without CurrentClinic changed; review them for clinic isolation: "
        f"new {sorted(public - PUBLIC_ROUTES)}, gone {sorted(PUBLIC_ROUTES - public)}")
    scoped = {(e.method, e.path) for e in found if e.tenant}
    assert {("GET", "/api/v1/patients/{patient_id}"), ("PATCH", "/api/v1/patients/{patient_id}"),
            ("GET", "/api/v1/patients"), ("POST", "/api/v1/providers")} <= scoped


async def test_every_clinic_endpoint_answers_another_clinics_ids_with_404_and_lists_none(
    app: FastAPI, client: httpx.AsyncClient, world: World,
) -> None:
    a, b = world.tenants[0], world.tenants[1]
    own = {str(i) for rows in a.ids.values() for i in rows}
    before = world.snapshot(b.id)
    failures: list[str] = []
    exercised: set[tuple[str, str]] = set()
    for endpoint in (e for e in endpoints(app) if e.tenant):
        headers = world.headers(a, endpoint.caller)
        for call, twin in cross_clinic_calls(endpoint, world, a, b):
            exercised.add((endpoint.method, endpoint.path))
            response = await call.send_async(client, headers)
            label = f"{endpoint.caller} {call.method} {call.path} {call.params or ''}"
            if response.status_code not in allowed_statuses(endpoint, endpoint.caller):
                failures.append(f"{label}: {response.status_code} {response.text[:300]}")
            if found := foreign_leaks(response, world, a, call):
                failures.append(f"{label}: the answer holds another clinic's {found}")
            if twin is not None:
                other = await twin.send_async(client, headers)
                if _normalised(response, call) != _normalised(other, twin):
                    failures.append(f"{label}: answered unlike an unknown id: "
                                    f"{response.text[:200]} vs {other.text[:200]}")
            if call.method == "GET" and not call.params and not endpoint.path_params and \
                    endpoint.path not in SETTINGS_DOCUMENTS and \
                    not any(i in response.text for i in own):
                failures.append(f"{label}: lists none of clinic A's own rows either")
    assert len(exercised) == len([e for e in endpoints(app) if e.tenant])
    assert not failures, "\n".join(failures)
    assert world.snapshot(b.id) == before
    assert _no_cross_references(world) == []


def _owner_patient(owner_engine: Engine, tenant: Tenant, patient_id: uuid.UUID) -> dict[str, Any]:
    with owner_engine.begin() as conn:
        scope(conn, tenant.id)
        row = conn.execute(select(patient).where(patient.c.id == patient_id)).one()
    return dict(row._mapping)


async def test_patching_another_clinics_patient_is_404_and_leaves_it_unchanged(
    client: httpx.AsyncClient, world: World, owner_engine: Engine,
) -> None:
    a, b = world.tenants[0], world.tenants[1]
    victim_id = b.probes[0][1]
    before = _owner_patient(owner_engine, b, victim_id)
    response = await client.patch(
        f"/api/v1/patients/{victim_id}", headers=world.headers(a, Role.ADMIN),
        json={"given_name": "Intruso", "phone": "+56 9 1111 2222", "expected_version":
              before["server_version"]})
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "patient_not_found"
    assert before["given_name"] not in response.text
    assert before["family_name"] not in response.text
    assert _owner_patient(owner_engine, b, victim_id) == before


async def test_not_found_for_another_clinics_patient_reveals_nothing_an_unknown_id_does_not(
    client: httpx.AsyncClient, world: World, owner_engine: Engine,
) -> None:
    a, b = world.tenants[0], world.tenants[1]
    headers = world.headers(a, Role.RECEPTIONIST)
    victim_id, unknown_id = b.probes[0][1], uuid7()
    victim = _owner_patient(owner_engine, b, victim_id)
    foreign = await client.get(f"/api/v1/patients/{victim_id}", headers=headers)
    unknown = await client.get(f"/api/v1/patients/{unknown_id}", headers=headers)
    assert foreign.status_code == unknown.status_code == 404
    for value in ("given_name", "family_name", "phone", "mrn", "email"):
        assert victim[value] not in foreign.text
    assert foreign.text.replace(str(victim_id), "?") == unknown.text.replace(str(unknown_id), "?")
    assert set(foreign.headers) == set(unknown.headers)


async def test_linking_another_clinics_doctor_to_a_provider_is_422_and_creates_nothing(
    client: httpx.AsyncClient, world: World, owner_engine: Engine,
) -> None:
    a, b = world.tenants[0], world.tenants[1]
    doctor_id = b.user(Role.DOCTOR)

    def providers_linked() -> tuple[int, int]:
        counts = []
        for tenant in (a, b):
            with owner_engine.begin() as conn:
                scope(conn, tenant.id)
                counts.append(conn.execute(
                    select(func.count()).select_from(provider)
                    .where(provider.c.clinic_id == tenant.id)).scalar_one())
        with owner_engine.begin() as conn:
            scope(conn, b.id)
            linked = conn.execute(select(func.count()).select_from(provider)
                                  .where(provider.c.user_id == doctor_id)).scalar_one()
        return counts[0] + counts[1], linked

    before = providers_linked()
    response = await client.post(
        "/api/v1/providers", headers=world.headers(a, Role.ADMIN),
        json={"display_name": "Dr. Prestado", "user_id": str(doctor_id)})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "user_not_found"
    assert leaks(response, b, Call("POST", "/api/v1/providers",
                                   body={"user_id": str(doctor_id)})) == []
    assert providers_linked() == before
    assert before[1] == 0


async def test_search_by_another_clinics_name_phone_or_record_number_finds_nothing(
    client: httpx.AsyncClient, world: World,
) -> None:
    a, b = world.tenants[0], world.tenants[1]
    as_a, as_b = world.headers(a, Role.RECEPTIONIST), world.headers(b, Role.RECEPTIONIST)
    for query, patient_id in b.probes:
        own = await client.get("/api/v1/patients", headers=as_b, params={"q": query})
        assert str(patient_id) in [p["id"] for p in own.json()["data"]], (query, own.text)
        foreign = await client.get("/api/v1/patients", headers=as_a, params={"q": query})
        assert foreign.status_code == 200
        assert foreign.json()["data"] == [], (query, foreign.text)


async def test_registering_a_patient_with_another_clinics_record_number_and_phone_succeeds(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    # Record numbers are unique per clinic: a clash with B must not surface as a conflict.
    a, b = factory.clinic(patients=0), factory.clinic(patients=0)
    mrn, phone = f"H-{uuid.uuid4().hex[:8]}", "+56 9 8765 4321"
    b_id = factory.patient(b, given_name="Ofelia", family_name="Quiroz", phone="+56987654321",
                           mrn=mrn)
    response = await client.post(
        "/api/v1/patients", headers=factory.headers(a.users[Role.RECEPTIONIST]),
        json={"given_name": "Otra", "family_name": "Persona", "mrn": mrn, "phone": phone})
    assert response.status_code == 201, response.text
    assert str(b_id) not in response.text
    assert "Ofelia" not in response.text
    assert "Quiroz" not in response.text


# --- routes that run before a clinic is known -----------------------------------------------


async def test_sign_in_naming_another_clinic_is_refused_without_revealing_it(
    app: FastAPI, world: World,
) -> None:
    a, b = world.tenants[0], world.tenants[1]
    # Its own address, so these failures do not count against other tests' logins.
    async with make_client(app, client_addr="198.51.100.23") as client:
        for user, slug in ((a.clinic.users[Role.ADMIN], b.clinic.slug),
                           (b.clinic.users[Role.ADMIN], a.clinic.slug)):
            response = await client.post("/api/v1/auth/token", data={
                "username": user.email, "password": PASSWORD, "client_id": slug})
            assert response.status_code == 401, response.text
            assert response.json()["error"]["code"] == "bad_credentials"
            assert "access_token" not in response.text
        signed_in = await client.post("/api/v1/auth/token", data={
            "username": a.clinic.users[Role.ADMIN].email, "password": PASSWORD,
            "client_id": a.clinic.slug})
    assert signed_in.status_code == 200, signed_in.text
    assert leaks(signed_in, b, Call("POST", "")) == []


async def test_refresh_issues_tokens_for_the_callers_own_clinic_only(
    app: FastAPI, world: World, settings: Any,
) -> None:
    a, b = world.tenants[0], world.tenants[1]
    async with make_client(app, client_addr="198.51.100.24") as client:
        pair = (await client.post("/api/v1/auth/token", data={
            "username": a.clinic.users[Role.DOCTOR].email, "password": PASSWORD,
            "client_id": a.clinic.slug})).json()
        refreshed = await client.post("/api/v1/auth/refresh",
                                      json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert leaks(refreshed, b, Call("POST", "")) == []
    claims = decode_token(refreshed.json()["access_token"], key=settings.signing_key(),
                          kind="access")
    assert (claims.clinic_id, claims.user_id) == (a.id, a.user(Role.DOCTOR))


async def test_token_naming_another_clinic_for_a_user_of_this_one_is_refused(
    client: httpx.AsyncClient, world: World, settings: Any,
) -> None:
    a, b = world.tenants[0], world.tenants[1]
    token = encode_token(key=settings.signing_key(), kind="access", user_id=a.user(Role.ADMIN),
                         clinic_id=b.id, role=Role.ADMIN, token_id=uuid7(),
                         lifetime=timedelta(minutes=5), now=datetime.now(UTC))
    response = await client.get("/api/v1/patients", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert leaks(response, b, Call("GET", "")) == []


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_health_probes_reveal_no_clinic_data(
    client: httpx.AsyncClient, world: World, path: str,
) -> None:
    response = await client.get(path, headers=world.headers(world.tenants[0], Role.ADMIN))
    assert response.status_code == 200
    for tenant in world.tenants:
        assert leaks(response, tenant, Call("GET", path)) == []


# --- the app role under the HTTP layer ------------------------------------------------------


def test_app_role_scoped_to_one_clinic_sees_exactly_its_own_rows_in_every_table(
    app_conn: psycopg.Connection, world: World,
) -> None:
    for a, b in itertools.permutations(world.tenants, 2):
        for table, column in world.tables:
            count = sql.SQL(
                "SELECT count(*) FILTER (WHERE {c} = %(b)s), count(*) FILTER (WHERE {c} = %(a)s),"
                " count(*) FROM {t}").format(t=sql.Identifier(table), c=sql.Identifier(column))
            with app_conn.transaction(force_rollback=True):
                _scoped(app_conn, a.id)
                of_b, of_a, total = app_conn.execute(count, {"a": a.id, "b": b.id}).fetchone()
            owner_sees_a = len([r for r in _scoped_rows(world.owner, [(table, column)], a.id)])
            owner_sees_b = len([r for r in _scoped_rows(world.owner, [(table, column)], b.id)])
            assert owner_sees_b > 0, f"{table}: clinic B has no rows, the check is vacuous"
            assert (table, of_b, of_a, total) == (table, 0, owner_sees_a, owner_sees_a)


def test_app_role_scoped_to_one_clinic_cannot_update_delete_or_claim_anothers_rows(
    app_conn: psycopg.Connection, world: World,
) -> None:
    a, b = world.tenants[0], world.tenants[1]
    before = world.snapshot(b.id)
    checked = []
    for table, column in world.tables:
        may = _privileges(world.owner, table)
        t, c = sql.Identifier(table), sql.Identifier(column)
        k = sql.Identifier(_row_key(world.owner, table))
        with app_conn.transaction(force_rollback=True):
            _scoped(app_conn, a.id)
            if may["UPDATE"]:
                touched = app_conn.execute(
                    sql.SQL("UPDATE {t} SET {c} = {c} WHERE {k} = ANY(%s)").format(t=t, c=c, k=k),
                    (b.ids[table],)).rowcount
                assert (table, touched) == (table, 0)
                # Moving one of A's own rows into B is refused by the policy's WITH CHECK.
                with pytest.raises(errors.InsufficientPrivilege,
                                   match="row-level security"), app_conn.transaction():
                    app_conn.execute(sql.SQL("UPDATE {t} SET {c} = %s WHERE {k} = %s").format(
                        t=t, c=c, k=k), (b.id, a.ids[table][0]))
                checked.append(table)
            if may["DELETE"]:
                gone = app_conn.execute(sql.SQL("DELETE FROM {t} WHERE {c} = %s").format(
                    t=t, c=c), (b.id,)).rowcount
                assert (table, gone) == (table, 0)
    assert {"patient", "clinic", "staff_user"} <= set(checked)
    assert world.snapshot(b.id) == before


# --- randomized -----------------------------------------------------------------------------

EXAMPLES = int(os.environ.get("ISOLATION_EXAMPLES", "500"))

_VARIANTS: list[Callable[[str], str]] = [
    str, str.upper, str.lower, lambda s: s[: max(3, len(s) // 2)], lambda s: f"  {s} ",
]


@dataclass(frozen=True)
class SqlProbe:
    """A statement the app role runs scoped to the actor, aimed at the victim's rows."""

    table: str
    column: str
    kind: str  # "read" a row by id, "find" rows by clinic, "update" a row by id


def _run_sql_probe(conn: psycopg.Connection, probe: SqlProbe, *, actor: Tenant,
                   victim: Tenant, target: uuid.UUID, may_update: bool) -> None:
    t, c = sql.Identifier(probe.table), sql.Identifier(probe.column)
    k = sql.Identifier(_row_key(conn, probe.table))
    with conn.transaction(force_rollback=True):
        _scoped(conn, actor.id)
        if probe.kind == "read":
            rows = conn.execute(sql.SQL("SELECT to_jsonb(x)::text FROM {t} x WHERE {k} = %s")
                                .format(t=t, k=k), (target,)).fetchall()
            assert rows == [], probe
        elif probe.kind == "find":
            found = conn.execute(sql.SQL("SELECT count(*) FROM {t} WHERE {c} = %s")
                                 .format(t=t, c=c), (victim.id,)).fetchone()
            assert found == (0,), probe
        elif may_update:
            touched = conn.execute(sql.SQL("UPDATE {t} SET {c} = {c} WHERE {k} = %s")
                                   .format(t=t, c=c, k=k), (target,)).rowcount
            assert touched == 0, probe
        else:
            with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
                conn.execute(sql.SQL("UPDATE {t} SET {c} = {c} WHERE {k} = %s")
                             .format(t=t, c=c, k=k), (target,))


def test_random_cross_clinic_requests_never_return_or_change_another_clinics_data(
    live_server: LiveServer, world: World, db_urls: tuple[URL, URL],
) -> None:
    http_ops = [e for e in endpoints(live_server.server.config.app) if e.tenant]
    sql_ops = [SqlProbe(t, c, kind) for t, c in world.tables
               for kind in ("read", "find", "update")]
    may_update = {t: _privileges(world.owner, t)["UPDATE"] for t, _ in world.tables}
    pairs = list(itertools.permutations(world.tenants, 2))
    ran: list[Endpoint | SqlProbe] = []

    with httpx.Client(base_url=live_server.url, timeout=30) as http, \
            psycopg.connect(libpq(db_urls[1])) as app_db:

        def check(pair: tuple[Tenant, Tenant], role: Role, op: Endpoint | SqlProbe,
                  unknown: bool, pick: Callable[[list[Any], str], Any]) -> None:
            actor, victim = pair
            ran.append(op)

            def target(table: str) -> uuid.UUID:
                if unknown:
                    return uuid.uuid4()
                return pick(victim.ids[table], f"{table} id")

            if isinstance(op, SqlProbe):
                _run_sql_probe(app_db, op, actor=actor, victim=victim,
                               target=target(op.table), may_update=may_update[op.table])
                return
            query = None
            if op.text_query_params:
                texts = sorted({q for q, _ in victim.probes} | victim.markers)
                variant = pick([None, *_VARIANTS], "query variant")
                query = None if variant is None else variant(pick(texts, "query"))
            call = build_call(op, world, target=target, query=query)
            before = world.versions(victim.id)
            response = call.send(http, world.headers(actor, role))
            assert response.status_code in allowed_statuses(op, role), (
                f"{role} {call.method} {call.path} {call.params}: {response.status_code} "
                f"{response.text[:300]}")
            assert foreign_leaks(response, world, actor, call) == [], response.text[:500]
            assert world.versions(victim.id) == before, f"{call} changed the other clinic"

        @settings(max_examples=EXAMPLES, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])
        @given(data=st.data(), pair=st.sampled_from(pairs), role=st.sampled_from(list(Role)),
               op=st.one_of(st.sampled_from(http_ops), st.sampled_from(sql_ops)),
               unknown=st.booleans())
        def attempt(data: st.DataObject, pair: tuple[Tenant, Tenant], role: Role,
                    op: Endpoint | SqlProbe, unknown: bool) -> None:
            check(pair, role, op, unknown,
                  lambda options, label: data.draw(st.sampled_from(options), label=label))

        attempt()
        # Every endpoint is probed at least once more, whatever the random draw skipped.
        rng = random.Random(EXAMPLES)
        covered = {op for op in ran if isinstance(op, Endpoint)}
        for op in http_ops:
            if op not in covered:
                check(rng.choice(pairs), rng.choice(list(Role)), op, rng.random() < 0.5,
                      lambda options, _label: rng.choice(options))

    assert len(ran) >= EXAMPLES
    assert {op for op in ran if isinstance(op, Endpoint)} == set(http_ops)
    assert _no_cross_references(world) == []
