"""Request dependencies as `Annotated` aliases.

`CurrentClinic` is the only way a route reaches tenant data: it authenticates the bearer
token, opens one transaction as the app role, scopes it to the caller's clinic for
row-level security, re-checks that the account is still active, and commits when the
route returns (before the response is sent) or rolls back if it raised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncEngine

from shared_models.enums import Role
from sync_server.actions.devices import check_device
from sync_server.core.config import Settings
from sync_server.core.errors import NotAuthenticated, PermissionDenied
from sync_server.core.security import TokenClaims, decode_token
from sync_server.db.tenancy import set_clinic
from sync_server.lib.context import ClinicContext
from sync_server.lib.public_booking import public_context
from sync_server.lib.staff import check_active_role

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


@dataclass(frozen=True, slots=True)
class RequestMeta:
    client_addr: str | None


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_request_meta(request: Request) -> RequestMeta:
    return RequestMeta(client_addr=request.client.host if request.client else None)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# Only the sign-in endpoints take the engine directly; with no clinic set, row-level
# security shows them no tenant rows, so all they can use is the login function.
PreAuthEngine = Annotated[AsyncEngine, Depends(get_engine)]
RequestMetaDep = Annotated[RequestMeta, Depends(get_request_meta)]


async def get_claims(
    settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> TokenClaims:
    if not token:
        raise NotAuthenticated(
            "Sign in first: this endpoint needs an 'Authorization: Bearer <token>' header.",
            code="not_authenticated",
        )
    return decode_token(token, key=settings.signing_key(), kind="access")


async def clinic_context(
    engine: PreAuthEngine,
    claims: Annotated[TokenClaims, Depends(get_claims)],
    meta: RequestMetaDep,
) -> AsyncIterator[ClinicContext]:
    async with engine.connect() as conn, conn.begin():
        await set_clinic(conn, claims.clinic_id)
        role = await check_active_role(conn, claims.user_id)
        if claims.device_id is not None:
            await check_device(conn, claims.device_id)
        yield ClinicContext(
            conn=conn,
            clinic_id=claims.clinic_id,
            user_id=claims.user_id,
            role=role,
            device_id=claims.device_id,
            client_addr=meta.client_addr,
        )


CurrentClinic = Annotated[ClinicContext, Depends(clinic_context, scope="function")]


async def public_clinic_context(
    engine: PreAuthEngine, clinic_slug: str, meta: RequestMetaDep
) -> AsyncIterator[ClinicContext]:
    """The booking page's context: the clinic named in the URL, no signed-in user
    (`lib.public_booking.public_context`: an unknown slug is a 404 naming nothing else)."""
    async with public_context(engine, clinic_slug, client_addr=meta.client_addr) as ctx:
        yield ctx


PublicClinic = Annotated[ClinicContext, Depends(public_clinic_context, scope="function")]


def require_roles(*roles: Role) -> Any:
    """A dependency that admits only `roles`; 403 with the roles that may, otherwise."""
    allowed = frozenset(roles)

    async def gate(ctx: CurrentClinic) -> ClinicContext:
        if ctx.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise PermissionDenied(
                f"Your role ({ctx.role}) cannot do this; it needs one of: {names}.",
                details={"required_roles": sorted(r.value for r in allowed)},
            )
        return ctx

    # Kept on the gate so tests can call every endpoint as a role it admits.
    gate.allowed_roles = allowed  # type: ignore[attr-defined]
    dependency: Callable[..., Any] = gate
    return Depends(dependency)


AnyStaff = CurrentClinic
AdminOnly = Annotated[ClinicContext, require_roles(Role.ADMIN)]
FrontDesk = Annotated[ClinicContext, require_roles(Role.ADMIN, Role.RECEPTIONIST, Role.DOCTOR)]
Cashier = Annotated[ClinicContext, require_roles(Role.ADMIN, Role.RECEPTIONIST)]
# The front office without clinical staff: reminder failures and their retries.
FrontOffice = Annotated[ClinicContext, require_roles(Role.ADMIN, Role.RECEPTIONIST)]
# Clinical content (charts, prescriptions' content, results) is for the roles that treat,
# dispense or measure, each through its own endpoints (minimum necessary).
DoctorOnly = Annotated[ClinicContext, require_roles(Role.DOCTOR)]
PharmacistOnly = Annotated[ClinicContext, require_roles(Role.PHARMACIST)]
# A signed prescription: its prescriber and the clinic's doctors, and the pharmacist it was
# sent to (each action narrows further). Signing keys: their owner and the admin.
DoctorOrPharmacist = Annotated[ClinicContext, require_roles(Role.DOCTOR, Role.PHARMACIST)]
AdminOrDoctor = Annotated[ClinicContext, require_roles(Role.ADMIN, Role.DOCTOR)]
LabTechOnly = Annotated[ClinicContext, require_roles(Role.LAB_TECH)]
