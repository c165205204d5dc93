"""Who may see which parties: one rule for the console's users and the API's tokens.

An officer sees the parties whose ``officer`` is their ``officer_id``, and the guarantors, pledgors
and borrowers securing those (whose alerts reach that officer); a reviewer (a console reviewer, an
API token without an officer) sees every party. Applied in SQL (:func:`scoped`), so no page, export
or endpoint can forget it by filtering too late.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, false
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, or_, select
from sqlmodel.sql.expression import SelectOfScalar

from watcher.models import Alert, AlertBorrower, Borrower, SecuresLink

OFFICER, REVIEWER = "officer", "reviewer"
ROLES = (OFFICER, REVIEWER)

_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])
"""A SELECT that keeps its own type (entity, scalar or columns) through the conditions added to it."""


class Viewer(Protocol):
    """Whoever reads: a console ``User`` or an API token's principal."""

    @property
    def role(self) -> str: ...

    @property
    def officer_id(self) -> str | None: ...


def sees_all(viewer: Viewer) -> bool:
    return viewer.role == REVIEWER


def officers_parties(officer_id: str) -> ColumnElement[bool]:
    """Borrower is the officer's own, or a party securing one of the officer's borrowers (a guarantor,
    a pledgor, or a borrower guaranteeing it)."""
    secured = aliased(Borrower)
    securing = (
        select(SecuresLink.party_id)
        .join(secured, col(secured.id) == col(SecuresLink.borrower_id))
        .where(col(secured.officer) == officer_id)
    )
    return or_(col(Borrower.officer) == officer_id, col(Borrower.id).in_(securing))


def scoped(query: _Query, viewer: Viewer) -> _Query:
    """``query`` (which involves Borrower) limited to the parties ``viewer`` may see."""
    if sees_all(viewer):
        return query
    if not viewer.officer_id:
        return query.where(false())
    return query.where(officers_parties(viewer.officer_id))


def can_see(session: Session, viewer: Viewer, borrower: Borrower) -> bool:
    if sees_all(viewer) or (viewer.officer_id is not None and borrower.officer == viewer.officer_id):
        return True
    if viewer.officer_id is None:
        return False
    visible = session.exec(scoped(select(Borrower.id), viewer).where(col(Borrower.id) == borrower.id)).first()
    return visible is not None


def source_alerts_listing(viewer: Viewer) -> SelectOfScalar[int]:
    """Alerts about a whole source (no single borrower) that list one of ``viewer``'s parties."""
    return (
        select(AlertBorrower.alert_id)
        .join(Borrower, col(Borrower.id) == col(AlertBorrower.borrower_id))
        .where(officers_parties(viewer.officer_id) if viewer.officer_id else false())
    )


def visible_alerts(query: _Query, viewer: Viewer) -> _Query:
    """``query`` (of Alert, with Borrower outer-joined on the alert's borrower) limited to the alerts
    ``viewer`` may see: those of their parties, and those about a whole source that list one."""
    if sees_all(viewer):
        return query
    return query.where(
        or_(
            officers_parties(viewer.officer_id) if viewer.officer_id else false(),
            col(Alert.borrower_id).is_(None) & col(Alert.id).in_(source_alerts_listing(viewer)),
        )
    )


def visible_alert(session: Session, viewer: Viewer, alert_id: int) -> Alert | None:
    """The alert if ``viewer`` may see it, else None (whether or not it exists)."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        return None
    if alert.borrower_id is None:
        if sees_all(viewer):
            return alert
        listed = session.exec(source_alerts_listing(viewer).where(AlertBorrower.alert_id == alert_id)).first()
        return alert if listed is not None and viewer.officer_id else None
    borrower = session.get(Borrower, alert.borrower_id)
    return alert if borrower is not None and can_see(session, viewer, borrower) else None


def may_handle(viewer: Viewer, alert: Alert) -> bool:
    """Whether ``viewer``, who sees ``alert``, may acknowledge or close it: an alert about a whole
    source lists other officers' parties too, so only a reviewer handles it."""
    return alert.borrower_id is not None or sees_all(viewer)
