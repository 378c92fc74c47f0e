"""Liveness (`/healthz`) and readiness (`/readyz`: database reachable, signing key loaded)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from mcp_auth_server.endpoints.dependencies import RuntimeDep

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    checks = {"database": "ok", "signing_key": "ok"}
    try:
        async with runtime.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; the reason is reported, not raised
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        runtime.keyring.signer()
    except RuntimeError as exc:
        checks["signing_key"] = str(exc)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503
    )
