"""The `dev` upstream's sign-in page (only routed when AUTH_UPSTREAM=dev, on loopback)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from mcp_auth_server.endpoints.dependencies import RuntimeDep
from mcp_auth_server.web.pages import render

router = APIRouter()


@router.get("/upstream/dev/login", include_in_schema=False)
async def dev_login(request: Request, runtime: RuntimeDep) -> Response:
    return render(
        runtime.templates,
        "dev_login.html",
        state=request.query_params.get("state", ""),
        action=runtime.url("/callback"),
    )
