"""Notification channels, one family per file, registered by URL scheme.

``notifiers/<family>.py`` defines a :class:`notifiers.base.Sender` subclass decorated with
:func:`register`; URLs whose scheme no family claims go to apprise (``notifiers/apprise_channel.py``),
which carries email, Slack, Teams, Telegram and the rest. DingTalk, WeCom and Feishu/Lark have
senders of their own because apprise reports their rejected messages as sent. A notifier with
``format = "event"`` posts signed JSON documents to its http(s) URLs instead
(``notifiers/event_webhook.py``, chosen by :func:`sender_for`'s ``signing_secret``).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifiers.base import Sender

_BY_SCHEME: dict[str, type[Sender]] = {}
_NOT_FAMILIES = {"base", "event_webhook"}  # event_webhook is chosen by a notifier's format, not a scheme
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
        return (
            f"unknown scheme {scheme[:32]!r}{_did_you_mean(scheme)}; "
            f"use {ours} or one apprise knows (mailtos, json, slack, …)"
        )
    if scheme_only:
        return None
    try:
        sender_for(url)
    except ValueError as error:
        return f"{str(error).rstrip('.:; ')}{_did_you_mean(scheme)}{_EXPECTED.get(scheme, '')}"
    return None


_LIKELY_MEANT = {"wecom": "wecombot", "wxwork": "wecombot", "qywx": "wecombot", "ding": "dingtalk"}
"""Names people write for our chat robots that are not their schemes (``wecom`` is apprise's
name for Pushplus, whose error about its token would only confuse)."""
_COMMON_APPRISE = (
    "mailtos",
    "mailto",
    "json",
    "jsons",
    "slack",
    "workflows",
    "msteams",
    "tgram",
    "xml",
    "form",
)
_EMAIL_FORM = "; expected mailtos://user:password@smtp.host?to=someone@bank.example"
_EXPECTED = {"mailto": _EMAIL_FORM, "mailtos": _EMAIL_FORM}


def _did_you_mean(scheme: str) -> str:
    """``; did you mean wecombot://?`` for a scheme close to one of ours or of apprise's common ones."""
    if scheme in _BY_SCHEME or scheme in _COMMON_APPRISE:
        return ""
    candidates = [*sorted(_BY_SCHEME), *_COMMON_APPRISE]
    meant = _LIKELY_MEANT.get(scheme) or next(
        iter(difflib.get_close_matches(scheme, candidates, 1, 0.75)), None
    )
    return f"; did you mean {meant}://?" if meant else ""


def _apprise_knows(scheme: str) -> bool:
    from apprise.manager_plugins import NotificationManager

    return scheme in NotificationManager()


def family_of(url: str) -> type[Sender] | None:
    """The sender class of our own families that handles ``url``'s scheme; None for apprise's."""
    _load_families()
    return _BY_SCHEME.get(url.split("://", 1)[0].lower()) if "://" in url else None


def sender_for(url: str, *, signing_secret: str | None = None) -> Sender:
    """The sender for one configured URL; ValueError (without the secret-bearing URL) if unusable.

    ``signing_secret``: the URL belongs to a ``format = "event"`` notifier, whose receivers get
    signed JSON documents (:mod:`notifiers.event_webhook`) whatever the scheme.
    """
    if signing_secret is not None:
        from notifiers.event_webhook import SignedEventSender

        return SignedEventSender(url, signing_secret)
    _load_families()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    from notifiers.apprise_channel import AppriseSender

    cls = _BY_SCHEME.get(scheme, AppriseSender)
    return cls(url)
