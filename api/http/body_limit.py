"""The operator's cap on a request body (`TPC_MAX_BODY_BYTES`): a declared Content-Length
over it is refused before anything is read, and a body sent without one (chunked) is counted
as it streams in and refused as soon as it passes the cap, so no request can make the server
buffer more than the limit."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.errors import error_response
from domain.errors import PayloadTooLarge


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than the server's limit of {max_bytes} bytes "
        "(TPC_MAX_BODY_BYTES)"
    )


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(413, str(too_large(self.max_bytes)))
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised in the endpoint that reads the body: answered as a JSON 413.
                    raise too_large(self.max_bytes)
            return message

        await self.app(scope, counted, send)
