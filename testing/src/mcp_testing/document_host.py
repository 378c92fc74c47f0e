"""An https host for client ID metadata documents: each path answers what the test put there.

Tests place a JSON document (or a redirect, an oversized body, a slow answer) at a path and
read back the request log to check that the auth service asked exactly once, or never.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send


@dataclass
class Answer:
    status_code: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    dribble_seconds: float = 0.0  # send the body one byte at a time, this long apart (a hostile host)


@dataclass
class DocumentHost:
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def put_json(self, path: str, document: dict[str, Any], **headers: str) -> None:
        self.answers[path] = Answer(
            body=json.dumps(document).encode(), headers={"content-type": "application/json", **headers}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        self.requests.append(request.url.path)
        answer = self.answers.get(request.url.path, Answer(status_code=404, body=b"not found"))
        if answer.delay_seconds:
            await asyncio.sleep(answer.delay_seconds)
        if answer.dribble_seconds:
            await StreamingResponse(_dribble(answer), answer.status_code, answer.headers)(
                scope, receive, send
            )
            return
        await Response(answer.body, answer.status_code, answer.headers)(scope, receive, send)


async def _dribble(answer: Answer) -> AsyncIterator[bytes]:
    for index in range(len(answer.body)):
        yield answer.body[index : index + 1]
        await asyncio.sleep(answer.dribble_seconds)
