"""What the API refuses before a request reaches validation, and how it names unknown keys.

- Bodies over a maximum size get a 413: a declared Content-Length is judged before any byte
  is read, and a chunked body is counted as it arrives, so neither is held in memory whole.
  The connection stays open: the server (uvicorn) discards what the client still sends of
  that body, so the client reads the 413 rather than a reset connection.
- JSON is decoded strictly (pydantic's decoder): invalid UTF-8 bytes and lone surrogates such
  as "\\ud800" are a 422 json_invalid, rather than strings that no encoder can write later.
- A key the schema does not declare is named only when it is short and looks like an
  identifier: a key can itself be personal data, so a response or log line never repeats it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

import pydantic_core
from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A key is named back when it is at most this long, an identifier, and holds no run of four
# digits (an account, phone or id number is not a field name).
SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
DIGIT_RUN = re.compile(r"[0-9]{4}")


def too_large_message(max_bytes: int) -> str:
    return (
        f"request body over the limit of {max_bytes:,} bytes (LOAN_DEFAULT_API_MAX_BODY_BYTES); "
        "send fewer applications per request"
    )


class BodyTooLarge(HTTPException):
    """Raised while the body is being read, once more than the limit has arrived."""

    def __init__(self, max_bytes: int):
        super().__init__(status_code=413, detail=too_large_message(max_bytes))


class BodyLimit:
    """ASGI middleware: refuses HTTP request bodies over `max_bytes` with a JSON 413."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException, so FastAPI's body reading passes it on as a 413.
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": too_large_message(self.max_bytes)}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class StrictJSONRequest(Request):
    """A request whose JSON body must be valid UTF-8 without lone surrogates."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = pydantic_core.from_json(await self.body())
            except ValueError as error:
                # FastAPI turns a JSONDecodeError into a 422 json_invalid; its message gives
                # the line and column only, never the text.
                raise json.JSONDecodeError(str(error), "", 0) from None
        return self._json


class StrictJSONRoute(APIRoute):
    """A route that reads its JSON body with StrictJSONRequest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict


def is_safe_key(key: str) -> bool:
    """Whether an undeclared key may be named back: short, an identifier, no long number."""
    return SAFE_KEY.fullmatch(key) is not None and DIGIT_RUN.search(key) is None


def key_name(key: str) -> str:
    """A safe key as it is (every declared field is one), any other by its length only."""
    if is_safe_key(key):
        return key
    return f"an unknown field ({len(key)} characters)"
