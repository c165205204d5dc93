"""A response that passed the policy, and what its status means to a source."""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx

from sources.base import load_json, looks_like_challenge
from watcher.errors import AuthError, BlockedError, NotFoundError, ParseError, TransientError


class HttpResponse:
    """A response that passed the policy: complete, within the size cap, decoded.

    ``text`` is the body for mapping: it raises a ParseError when the body is not valid in its charset
    (``charset_error``), so such a body can never become data. ``preview`` is the same text with bad
    bytes replaced, for diagnostics only (challenge pages, error messages of failed requests).
    """

    __slots__ = ("status", "url", "headers", "preview", "charset_error", "_context")

    def __init__(
        self,
        status: int,
        url: str,
        headers: httpx.Headers,
        text: str,
        *,
        charset_error: str | None = None,
        context: Mapping[str, str | None] | None = None,
    ) -> None:
        self.status = status
        self.url = url
        self.headers = headers
        self.preview = text
        self.charset_error = charset_error
        self._context = dict(context or {})

    @property
    def text(self) -> str:
        if self.charset_error is not None:
            raise ParseError(self.charset_error, **self._context)
        return self.preview

    def __repr__(self) -> str:
        return f"HttpResponse(status={self.status}, url={self.url!r})"


def raise_for_status(
    response: HttpResponse,
    *,
    what: str,
    context: dict,
    not_found: str | None = None,
    status_says_missing: bool = True,
) -> None:
    """The common meaning of final statuses; sources handle their own special cases first.

    ``status_says_missing=False`` for a vendor that says "no such company" in its own envelope
    (Qichacha, Tianyancha's lists): there a 404 or 410 means the path is not there (moved, or a wrong
    ``base_url``), a parse error that must not read as a borrower that is gone.
    """
    status = response.status
    if 200 <= status < 300:
        if not response.text.strip():
            raise ParseError(f"{what}: empty body with HTTP {status}", **context)
        return
    if looks_like_challenge(response.preview):
        raise BlockedError(f"{what}: HTTP {status} with a captcha or challenge page", **context)
    if status in (401, 403):
        raise AuthError(f"{what}: HTTP {status}: the source refused our credentials", **context)
    if status in (404, 410) and not status_says_missing:
        raise ParseError(f"{what}: HTTP {status}: the endpoint is not there", **context)
    if status in (404, 410):
        raise NotFoundError(not_found or f"{what}: HTTP {status}", **context)
    raise ParseError(f"{what}: unexpected HTTP {status}", **context)


def registry_answer(response: HttpResponse, *, what: str, context: dict) -> object:
    """The JSON body of a non-2xx answer that states a fact (a removed unit, "no such list").

    A status code alone is never a fact: in place of the registry's own body, an empty answer is a
    transient failure, a captcha or challenge page is blocked, anything else that is not JSON is a
    parse error. The caller then checks that the JSON is the registry's answer it expects.
    """
    label = f"{what} (HTTP {response.status})"
    if not response.preview.strip():
        raise TransientError(f"{label}: empty body instead of the registry's answer", **context)
    return load_json(response.text, what=label, **context)


def error_message(response: HttpResponse) -> str:
    """The ``message`` of a JSON error body, or the status's reason phrase when there is none."""
    reason = httpx.codes.get_reason_phrase(response.status) or f"HTTP {response.status}"
    try:
        body = json.loads(response.preview)
    except ValueError:
        return reason
    message = body.get("message") if isinstance(body, dict) else None
    return " ".join(message.split()) if isinstance(message, str) and message.strip() else reason
