"""respx at the level of the HTTP policy's transport, where the policy sends its requests.

The policy hands requests straight to its keep-alive transport (not through httpx's client), so
respx's own mockers, which patch httpcore's pool or the client, would not see them.
``respx.mock(using=TRANSPORT)`` patches ``KeepAliveTransport.handle_async_request`` and answers with
an unread copy of the mocked response, as a transport would: the policy reads bodies with
``aiter_raw()`` to cap them.
"""

from __future__ import annotations

import httpx
from respx.mocks import Mocker
from respx.models import clone_response

TRANSPORT = "watcher-transport"


class _TransportMocker(Mocker):
    name = TRANSPORT
    targets = ["sources.http.transport.KeepAliveTransport"]
    target_methods = ["handle_async_request"]

    @classmethod
    def mock(cls, spec):
        async def handle_async_request(transport, request: httpx.Request) -> httpx.Response:
            response = await cls.async_handler(request)
            return clone_response(response, request)

        return handle_async_request
