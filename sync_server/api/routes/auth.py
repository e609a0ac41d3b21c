"""Staff sign-in and token refresh."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from shared_models.schemas.auth import RefreshRequest, TokenPair
from sync_server.actions.auth import do_login, do_refresh
from sync_server.api.deps import PreAuthEngine, RequestMetaDep, SettingsDep
from sync_server.api.errors import ERROR_RESPONSES

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)


@router.post("/token")
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    engine: PreAuthEngine,
    settings: SettingsDep,
    meta: RequestMetaDep,
) -> TokenPair:
    """Sign in with e-mail (as `username`) and password. On an enrolled computer,
    `client_id` / `client_secret` are its device id and secret; elsewhere `client_id` may
    name the clinic when one e-mail has accounts in several."""
    return await do_login(
        engine,
        settings=settings,
        email=form.username,
        password=form.password,
        client_id=form.client_id,
        client_secret=form.client_secret,
        client_addr=meta.client_addr,
    )


@router.post("/refresh")
async def refresh(body: RefreshRequest, engine: PreAuthEngine, settings: SettingsDep) -> TokenPair:
    """Exchange a refresh token for a new pair; the old refresh token stops working."""
    return await do_refresh(engine, settings=settings, token=body.refresh_token)
