"""What every console request works with: the deployment (:class:`Console`) and the request's own
context (:class:`Ctx`: who signed in, their session, language and form)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request

from watcher.config import Config
from watcher.console.auth import LoginThrottle
from watcher.console.i18n import LANGUAGES, TEXT
from watcher.models import ConsoleSession, User, utcnow
from watcher.redaction import redact_optional
from watcher.store import Store
from watcher.vocabulary import Language

TEMPLATES = Path(__file__).with_name("templates")
LANGUAGE_COOKIE = "watcher_lang"


@dataclass
class Console:
    """What every request needs: the deployment's store and config, the throttle, the templates.

    ``secure_cookies`` marks the cookies Secure (``[console] secure_cookies`` for the address served).
    """

    store: Store
    config: Config
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    clock: Callable[[], datetime] = utcnow
    secure_cookies: bool = False

    def __post_init__(self) -> None:
        settings = self.config.console
        self.secret = settings.secret_key.get_secret_value() if settings.secret_key is not None else ""
        self.proxies = settings.proxy_networks
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # Error texts stored by a check or a delivery: secrets from the environment never reach a page.
        self.templates.filters["redacted"] = redact_optional


@dataclass
class Ctx:
    """One request's signed-in user and their session, language and (for POST) form."""

    console: Console
    request: Request
    user: User | None
    lang: Language
    form: FormData | None = None
    login: ConsoleSession | None = None

    def t(self, key: str, **values: Any) -> str:
        text = TEXT[self.lang][key]
        return text.format(**values) if values else text

    def field(self, name: str) -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else ""


def console_of(request: Request) -> Console:
    """The deployment this request reached (``create_app`` keeps it in the app's state)."""
    console: Console = request.app.state.console
    return console


def choose_language(request: Request, config: Config, user: User | None) -> Language:
    """``?lang=``, then the language cookie, then the user's preference, then their officer's
    ``[officers.<id>] language``, then [watcher] language."""
    officer = config.officers.get(user.officer_id) if user is not None and user.officer_id else None
    for candidate in (
        request.query_params.get("lang"),
        request.cookies.get(LANGUAGE_COOKIE),
        user.language if user is not None else None,
        officer.language if officer is not None else None,
    ):
        if candidate in LANGUAGES:
            return Language(candidate)
    return Language(config.watcher.language)
