"""respx at the level of httpx's client, so mocks intercept whatever transport the client uses.

respx's own ``using="httpx"`` hands the client the mocked response already read, as no transport
would, and ``aiter_raw()`` (how the HTTP policy reads a body, to cap it) then raises StreamConsumed.
``respx.mock(using=UNREAD_HTTPX)`` hands over an unread copy of it instead.
"""

from __future__ import annotations

import httpx
from respx.mocks import HTTPXMocker
from respx.models import clone_response

UNREAD_HTTPX = "httpx-unread"


class _UnreadHTTPXMocker(HTTPXMocker):
    name = UNREAD_HTTPX

    @classmethod
    async def async_handler(cls, httpx_request: httpx.Request) -> httpx.Response:
        response = await super().async_handler(httpx_request)
        return clone_response(response, httpx_request)
