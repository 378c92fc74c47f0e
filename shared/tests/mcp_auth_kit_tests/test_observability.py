"""Request ids are honoured or minted and echoed; logs are JSON lines; metrics carry route templates."""

from __future__ import annotations

import io
import json
import logging

import httpx
from fastapi import FastAPI

from mcp_auth_kit import ObservabilityMiddleware, metrics_endpoint, setup_json_logging
from mcp_auth_kit.observability import JsonFormatter, current_request_id


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str | None]:
        logging.getLogger("test.items").info("looked up", extra={"item_id": item_id})
        return {"request_id": current_request_id()}

    app.add_route("/metrics", metrics_endpoint)
    app.add_middleware(ObservabilityMiddleware)
    return app


async def get(app: FastAPI, path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path, headers=headers)


async def test_incoming_request_id_is_honoured_and_echoed() -> None:
    response = await get(make_app(), "/items/1", **{"X-Request-Id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json() == {"request_id": "abc-123"}


async def test_unsafe_request_id_is_replaced() -> None:
    response = await get(make_app(), "/items/1", **{"X-Request-Id": 'x", "level": "forged'})
    assert response.headers["x-request-id"] != 'x", "level": "forged'
    assert len(response.headers["x-request-id"]) == 32


async def test_metrics_label_routes_by_template() -> None:
    app = make_app()
    await get(app, "/items/42")
    await get(app, "/no/such/path")
    metrics = (await get(app, "/metrics")).text
    assert 'http_requests_total{method="GET",route="/items/{item_id}",status="200"}' in metrics
    assert 'http_requests_total{method="GET",route="<unmatched>",status="404"}' in metrics
    assert "/items/42" not in metrics
    assert (
        'http_request_duration_seconds_bucket{le="0.0005",method="GET",route="/items/{item_id}"}' in metrics
    )


async def test_logs_are_json_lines_with_the_request_id_and_no_query_string() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    setup_json_logging(stream=stream)
    try:
        await get(make_app(), "/items/7?access_token=leak", **{"X-Request-Id": "req-7"})
    finally:
        root.handlers, root.level = saved[0], saved[1]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    looked_up = next(line for line in lines if line["message"] == "looked up")
    access = next(line for line in lines if line["logger"] == "mcp_auth_kit.access")
    assert looked_up["request_id"] == "req-7"
    assert looked_up["item_id"] == "7"
    assert access["message"] == "GET /items/7 200"
    assert access["route"] == "/items/{item_id}"
    ours = [
        line for line in lines if not line["logger"].startswith("httpx")
    ]  # the test's own client logs URLs
    assert "leak" not in json.dumps(ours)


def test_formatter_includes_exceptions() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.formatter")
    logger.addHandler(handler)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    entry = json.loads(stream.getvalue())
    assert entry["level"] == "ERROR"
    assert "RuntimeError: boom" in entry["exception"]
