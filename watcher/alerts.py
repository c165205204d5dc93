"""Alerts as people see them: views for rendering, and (later) their lifecycle."""

from __future__ import annotations

from sqlmodel import Session, col, select

from watcher.models import Alert, Borrower, ChangeEvent, Delivery
from watcher.record import Action, Category
from watcher.render import AlertView, ChangeLine
from watcher.rules import Severity


def alert_view(session: Session, alert_id: int, *, window_days: int) -> AlertView:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise KeyError(f"no alert #{alert_id}")
    borrower = session.get(Borrower, alert.borrower_id)
    assert borrower is not None
    events = session.exec(
        select(ChangeEvent).where(ChangeEvent.alert_id == alert_id).order_by(col(ChangeEvent.id))
    )
    return AlertView(
        alert_id=alert.id,
        borrower_id=borrower.id,
        borrower_name=borrower.name,
        severity=Severity(alert.severity),
        source=alert.source,
        detected_at=alert.created_at,
        changes=tuple(
            ChangeLine(Category(e.category), Action(e.action), e.subject, e.before, e.after, e.effective_date)
            for e in events
        ),
        occasions_in_window=alert.occasions_in_window,
        window_days=window_days,
        recommend_early_repayment=alert.recommend_early_repayment,
        signatory_mismatch=alert.signatory_mismatch,
        legal_rep_on_file=borrower.legal_rep_on_file,
    )


def delivery_targets_of(session: Session, alert_id: int) -> list[str]:
    return list(
        session.exec(select(Delivery.target).where(Delivery.alert_id == alert_id).order_by(Delivery.id))
    )
