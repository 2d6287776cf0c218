"""FastAPI demo: beta_mode as a dependency, the JSON API switching on it (flagsync.fastapi).

The flags' context comes from the app's own authentication (current_user below, named to
FlagSync with user=), never from headers the client sends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from flagsync.fastapi import FlagSync, RequestFlags

REPO = Path(__file__).resolve().parents[2]

# Demo-only stand-in for a real token check (OAuth2/JWT/session lookup).
DEMO_TOKENS = {
    "ann-token": {"id": 42, "email": "ann@example.com"},
    "carol-token": {"id": 43, "email": "carol@other.org"},
}


def current_user(
    cred: Annotated[
        HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))
    ],
) -> dict[str, Any] | None:
    """The app's authentication: the user of a valid bearer token, None when anonymous."""
    return DEMO_TOKENS.get(cred.credentials) if cred else None


# the snapshot `make run` writes, or e.g. "redis://127.0.0.1:6379/0?prefix=flagsync:quickstart"
flags = FlagSync(
    source=os.environ.get("FLAGSYNC_SOURCE", str(REPO / "var" / "flags.json")),
    user=current_user,
)
app = FastAPI(title="flagsync demo", lifespan=flags.lifespan)

ITEMS = [{"id": 1, "name": "stable"}, {"id": 2, "name": "experimental", "beta": True}]


@app.get("/items")
async def items(
    beta_mode: bool = Depends(flags.dependency("beta_mode")),
) -> dict[str, Any]:
    shown = ITEMS if beta_mode else [i for i in ITEMS if not i.get("beta")]
    return {"beta_mode": beta_mode, "items": shown}


@app.get("/checkout")
async def checkout(
    f: Annotated[RequestFlags, Depends(flags.request_flags)],
) -> dict[str, Any]:
    # the context is current_user's id and email (Authorization: Bearer ann-token)
    return {
        "button_color": f.get("checkout_button_color", "#000000"),
        "new_auth_flow": f.is_active("new_auth_flow"),
        "search_v2": f.is_active("search_v2_rollout"),
    }
