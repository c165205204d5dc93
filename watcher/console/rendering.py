"""Turning a page's values into HTML: the templates' shared context (labels in the user's language,
times in the user's zone with its offset, the CSRF token, the one-time message), links and redirect
targets."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from watcher.change_line import ChangeLine
from watcher.console import queries
from watcher.console.auth import take_flash
from watcher.console.change_scope import PartyScope
from watcher.console.context import LANGUAGE_COOKIE, Ctx, console_of
from watcher.console.i18n import (
    ACTION_LABEL,
    AUDIT_ACTION_LABEL,
    AUDIT_DETAIL_LABEL,
    AUDIT_REASON_LABEL,
    CATEGORY_LABEL,
    LANGUAGES,
    LISTING_ACTION_LABEL,
    LISTING_STATE_LABEL,
    PARTY_LABEL,
    SECTION_LABEL,
    SEVERITY_LABEL,
    SIGNAL_LABEL,
    STATUS_LABEL,
    TEXT,
)
from watcher.console.identity import ensure_csrf, session_id_of
from watcher.console.risk import money_text
from watcher.labels import ALERT_KIND_LABEL, signatory_text
from watcher.presentation import DisplayLine, change_text, display_lines
from watcher.record import LISTING_CATEGORIES, ListingState, Party
from watcher.render import PARTY_ROLE_LABEL, party_heading
from watcher.units import format_moment
from watcher.vocabulary import AlertKind, AlertStatus, AlertStatusFilter, Language


def local_path(target: str | None) -> str:
    """A redirect target only if it stays on this site (no scheme, no host, no ``//``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def href(path: str, **params: Any) -> str:
    query = urlencode({key: value for key, value in params.items() if value not in (None, "")})
    return f"{path}?{query}" if query else path


def _label(labels: Mapping[Any, str], value: str) -> str:
    """The label of a stored vocabulary value (the labels are keyed by the members, which equal their
    stored strings); a value without one shows as it is."""
    return labels.get(value, value)


def change_line_of(change: Any) -> ChangeLine:
    """A stored change event, a history row or an alert's change line as the presentation reads it."""
    return change if isinstance(change, ChangeLine) else ChangeLine.of(change)


def grouped_rows(
    events: Any, lang: Language, scope: PartyScope | None = None
) -> list[tuple[Any, DisplayLine]]:
    """Timeline rows: the events of one check (one alert, one detection time) read as grouped lines,
    each with the first event it stands for (its detection time, alert and snapshot)."""
    rows: list[tuple[Any, DisplayLine]] = []
    batch: list[Any] = []

    def flush() -> None:
        changes = [change_line_of(event) for event in batch]
        if scope is not None:
            changes = [scope.line(change) for change in changes]
        lines = display_lines(changes, lang, dated=False)
        rows.extend((batch[line.parts[0]], line) for line in lines)
        batch.clear()

    for event in events:
        if batch and (event.alert_id, event.detected_at) != (batch[0].alert_id, batch[0].detected_at):
            flush()
        batch.append(event)
    if batch:
        flush()
    return rows


_DETAIL_TIMES = frozenset({"inactive_since", "deactivated_at"})


def audit_detail(
    detail: str,
    lang: Language,
    zone: tzinfo,
    source_name: Callable[[str], str] = str,
    scope: PartyScope | None = None,
) -> str:
    """An audit entry's JSON detail for a person: its keys as words, severities, kinds, signals and
    sources by their labels, times in the reader's zone, secured borrowers the reader may not see
    only counted (``scope``); a value of another shape as it is."""
    try:
        parsed = json.loads(detail)
    except ValueError:
        return detail
    if not isinstance(parsed, dict):
        return detail
    keys = AUDIT_DETAIL_LABEL[lang]

    def shown(key: str, value: Any) -> str:
        if key == "secures" and scope is not None:
            return scope.secured_ids(
                value,
                _LIST_SEPARATOR[lang].join,
                lambda count, after_names: TEXT[lang][
                    "secures_hidden" if after_names else "secures_hidden_only"
                ].format(count=count),
            )
        return _detail_value(key, value, lang, zone, source_name)

    return "; ".join(
        f"{keys.get(key, key)}: {shown(key, value)}"
        for key, value in parsed.items()
        if value not in ("", None, [])
    )


_LIST_SEPARATOR = {Language.ZH_CN: "、", Language.EN: ", "}


def _detail_value(
    key: str, value: Any, lang: Language, zone: tzinfo, source_name: Callable[[str], str]
) -> str:
    if isinstance(value, list):
        return _LIST_SEPARATOR[lang].join(_detail_value(key, item, lang, zone, source_name) for item in value)
    text = str(value)
    value_labels: dict[str, Mapping[Any, str]] = {
        "severity": SEVERITY_LABEL[lang],
        "kind": ALERT_KIND_LABEL[lang],
        "signals": SIGNAL_LABEL[lang],
        "reason": AUDIT_REASON_LABEL[lang],  # a reason typed by a person stays as typed
        "role": PARTY_ROLE_LABEL[lang],  # a party's role; a console user's role is shown as stored
    }
    if key == "source":
        return source_name(text)
    if key in _DETAIL_TIMES:
        try:
            return format_moment(datetime.fromisoformat(text), zone)
        except ValueError:
            return text
    return _label(value_labels.get(key, {}), text)


def _take_flash(ctx: Ctx) -> str | None:
    session_id = session_id_of(ctx.request)
    if ctx.login is None or ctx.login.flash is None or session_id is None:
        return None
    with ctx.console.store.transaction() as session:
        return take_flash(session, session_id)


def render(ctx: Ctx, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    request, console = ctx.request, ctx.console
    zone = reader_zone(ctx)
    lang = ctx.lang

    def when(value: datetime | None) -> str:
        return format_moment(value, zone) if value is not None else ""

    def switch_language(target: str) -> str:
        params = dict(request.query_params)
        params["lang"] = target
        return href(request.url.path, **params)

    def generic_subject(category: str, subject: str) -> bool:
        return subject == category.replace("_", " ")

    def action_label(action: str, category: str = "") -> str:
        """Risk listings are listed and lifted, people added and removed."""
        labels = LISTING_ACTION_LABEL if category in LISTING_CATEGORIES else ACTION_LABEL
        return _label(labels[lang], action)

    scope = party_scope(ctx)

    def scoped_line(change: Any) -> ChangeLine:
        return scope.line(change_line_of(change))

    def officer_name(officer_id: str | None) -> str:
        officers = console.config.officers
        return officers[officer_id].name if officer_id in officers else ""

    html = console.templates.get_template(template).render(
        t=ctx.t,
        lang=lang,
        languages=LANGUAGES,
        user=ctx.user,
        sees_all=ctx.user is not None and queries.sees_all(ctx.user),
        csrf_token=ensure_csrf(request),
        flash=_take_flash(ctx),
        path=request.url.path,
        when=when,
        href=href,
        switch_language=switch_language,
        severity_label=lambda value: _label(SEVERITY_LABEL[lang], value),
        category_label=lambda value: _label(CATEGORY_LABEL[lang], value),
        action_label=action_label,
        audit_action_label=lambda value: _label(AUDIT_ACTION_LABEL[lang], value),
        party_label=lambda value: _label(PARTY_LABEL[lang], value),
        listing_state_label=lambda value: _label(LISTING_STATE_LABEL[lang], value),
        section_label=lambda value: _label(SECTION_LABEL[lang], value),
        signal_label=lambda value: _label(SIGNAL_LABEL[lang], value),
        audit_detail=lambda detail: audit_detail(
            detail, lang, zone, lambda key: console.config.source_display_name(key, lang), scope
        ),
        money_text=money_text,
        ListingState=ListingState,
        Party=Party,
        status_label=lambda value: _label(STATUS_LABEL[lang], value),
        generic_subject=generic_subject,
        change_lines=lambda changes: display_lines([scoped_line(c) for c in changes], lang),
        grouped_rows=lambda events: grouped_rows(events, lang, scope),
        change_line_text=lambda change: change_text(scoped_line(change), lang, dated=False),
        signatory_line=lambda on_file, registry: signatory_text(on_file, registry, lang),
        party_heading=lambda view: party_heading(view, lang),
        party_role_label=lambda value: _label(PARTY_ROLE_LABEL[lang], value),
        officer_name=officer_name,
        source_name=lambda key: console.config.source_display_name(key, lang),
        zone=str(zone),
        AlertKind=AlertKind,
        AlertStatus=AlertStatus,
        AlertStatusFilter=AlertStatusFilter,
        Language=Language,
        **values,
    )
    return HTMLResponse(html, status_code=status_code)


def reader_zone(ctx: Ctx) -> ZoneInfo:
    """The zone of the times a page shows: the signed-in officer's own, else ``[watcher] timezone``."""
    officer = ctx.user.officer_id if ctx.user is not None else None
    return ctx.console.config.zone_for(officer)


def party_scope(ctx: Ctx) -> PartyScope:
    """The parties the signed-in reader may see, for the change lines and exports of one request."""
    return PartyScope(ctx.console.store, ctx.user, ctx.t("hidden_party"))


def error_page(ctx: Ctx, status_code: int, message: str) -> HTMLResponse:
    return render(ctx, "error.html", status_code, code=status_code, message=message)


def remember_language(request: Request, response: Response) -> None:
    """A language chosen with ``?lang=`` is kept in a cookie for the next pages."""
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            chosen,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="lax",
            secure=console_of(request).secure_cookies,
        )
