"""Notification channels, one family per file, registered by URL scheme.

``notifiers/<family>.py`` defines a :class:`notifiers.base.Sender` subclass decorated with
:func:`register`; URLs whose scheme no family claims go to apprise (``notifiers/apprise_channel.py``),
which carries email, Slack, Teams, Telegram and the rest. DingTalk, WeCom and Feishu/Lark have
senders of their own because apprise reports their rejected messages as sent.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifiers.base import Sender

_BY_SCHEME: dict[str, type[Sender]] = {}
_NOT_FAMILIES = {"base"}
_loaded = False


def register(*schemes: str):
    """Class decorator: this sender handles URLs with these schemes."""

    def decorate(cls: type[Sender]) -> type[Sender]:
        cls.schemes = schemes
        for scheme in schemes:
            _BY_SCHEME[scheme] = cls
        return cls

    return decorate


def _load_families() -> None:
    global _loaded
    if not _loaded:
        for info in pkgutil.iter_modules(__path__):
            if info.name not in _NOT_FAMILIES and not info.name.startswith("_"):
                importlib.import_module(f"notifiers.{info.name}")
        _loaded = True


def url_problem(url: str, *, scheme_only: bool = False) -> str | None:
    """Why no channel can send to ``url``, or None; never repeats the URL's secrets.

    ``scheme_only`` when the rest of the URL is not known yet (an unset ``${ENV}`` in it): only
    the scheme is judged, our families' and apprise's.
    """
    scheme, separator, _ = url.partition("://")
    if not separator or not scheme:
        return "not a channel URL; expected scheme://…, e.g. mailtos://… or dingtalk://…"
    if "${" in scheme:
        return None
    scheme = scheme.lower()
    _load_families()
    if scheme not in _BY_SCHEME and not _apprise_knows(scheme):
        ours = ", ".join(sorted(_BY_SCHEME))
        return f"unknown scheme {scheme[:32]!r}; use {ours} or one apprise knows (mailtos, json, slack, …)"
    if scheme_only:
        return None
    try:
        sender_for(url)
    except ValueError as error:
        return str(error)
    return None


def _apprise_knows(scheme: str) -> bool:
    from apprise.manager_plugins import NotificationManager

    return scheme in NotificationManager()


def family_of(url: str) -> type[Sender] | None:
    """The sender class of our own families that handles ``url``'s scheme; None for apprise's."""
    _load_families()
    return _BY_SCHEME.get(url.split("://", 1)[0].lower()) if "://" in url else None


def sender_for(url: str) -> Sender:
    """The sender for one configured URL; ValueError (without the secret-bearing URL) if unusable."""
    _load_families()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    from notifiers.apprise_channel import AppriseSender

    cls = _BY_SCHEME.get(scheme, AppriseSender)
    return cls(url)
