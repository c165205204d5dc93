"""One alert as the signed webhook's JSON document: for systems, not people.

The alert's facts, its changes as rows with the history's jsonl field names (so the pushed
document and the events feed read the same), and a gap alert's borrowers. Registry text is data:
as stored, never escaped for a body format. Nothing in it depends on when it is sent, so a retry
posts the same bytes; only the alert's ``status`` follows the alert (acknowledged or closed since).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlmodel import Session, col, select

from notifiers.event_webhook import EVENT_SCHEMA_VERSION
from watcher.models import Alert, Borrower, ChangeEvent
from watcher.store import HistoryRow, SecuringParty
from watcher.vocabulary import AlertKind, PartyRole

EVENT_TYPE = "alert"
_EVENT_NAMESPACE = uuid.UUID("6f1c2a4e-1b7d-5e3a-9c0f-0d2b8e4a7c11")
"""Fixed: event ids are UUID 5 names in it, the same for an alert and target on every attempt."""


def event_id(alert: Alert, target: str) -> str:
    """Stable per alert and target, so a receiver can drop a retried or resent duplicate; the
    alert's creation time is part of it, so a database rebuilt from scratch does not reuse ids."""
    name = f"{alert.id}|{alert.created_at.isoformat()}|{target}"
    return str(uuid.uuid5(_EVENT_NAMESPACE, name))


def alert_event(session: Session, alert_id: int, target: str) -> dict[str, Any]:
    """The document for ``target`` about alert ``alert_id``."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise KeyError(f"no alert #{alert_id}")
    detail = json.loads(alert.detail or "{}")
    borrower = session.get(Borrower, alert.borrower_id) if alert.borrower_id else None
    document: dict[str, Any] = {
        "schema_version": EVENT_SCHEMA_VERSION,
        "type": EVENT_TYPE,
        "event_id": event_id(alert, target),
        "alert": alert_fields(alert, borrower, detail),
        "changes": change_rows(session, alert),
        "gap": None if AlertKind(alert.kind).about_changes else gap_fields(detail),
    }
    return document


def alert_fields(alert: Alert, borrower: Borrower | None, detail: dict[str, Any]) -> dict[str, Any]:
    """The alert's facts (the document's ``alert``; the API's alert resource reads the same)."""
    party = detail.get("party") or {}
    if not party and len(detail.get("borrowers", [])) == 1 and borrower is not None:
        party = detail["borrowers"][0]  # a gap alert of one party keeps its role there
    role = party.get("role") or (borrower.role if borrower is not None else None)
    return {
        "id": alert.id,
        "kind": alert.kind,
        "severity": alert.severity,
        "status": alert.status,
        "created_at": alert.created_at.isoformat(),
        "source": alert.source,
        "borrower_id": borrower.id if borrower is not None else None,
        "borrower_name": borrower.name if borrower is not None else None,
        "party_role": role,
        "officer": borrower.officer if borrower is not None else None,
        "secures": _secures(party),
        "occasions_in_window": alert.occasions_in_window,
        "recommend_early_repayment": alert.recommend_early_repayment,
        "signatory_mismatch": alert.signatory_mismatch,
    }


def _secures(party: dict[str, Any]) -> list[dict[str, Any]]:
    """The watched borrowers a guarantor or pledgor (or a borrower in a guarantee circle) secures."""
    securing = SecuringParty.from_detail(party)
    if securing is None:
        return []
    return [{"borrower_id": b.borrower_id, "name": b.name, "officer": b.officer} for b in securing.secures]


def change_rows(session: Session, alert: Alert) -> list[dict[str, Any]]:
    """The alert's change events as history rows (``watcher history --format jsonl``), plus
    ``key_person``: whether the change counts towards the key-person window."""
    rows = session.exec(
        select(ChangeEvent, Borrower.name)
        .join(Borrower, col(Borrower.id) == col(ChangeEvent.borrower_id))
        .where(ChangeEvent.alert_id == alert.id)
        .order_by(col(ChangeEvent.id))
    )
    return [
        {**HistoryRow.of(event, name, alert.severity).as_json(), "key_person": event.key_person}
        for event, name in rows
    ]


def gap_fields(detail: dict[str, Any]) -> dict[str, Any]:
    """A monitoring gap or recovery: since when, what failed, which parties; or a change feed's."""
    return {
        "source": detail.get("source"),
        "since": detail.get("since"),
        "error_kind": detail.get("error_kind"),
        "feed": detail.get("feed"),
        "feed_error": detail.get("error") if detail.get("feed") else None,
        "borrowers": [
            {
                "borrower_id": entry.get("id"),
                "borrower_name": entry.get("name"),
                "officer": entry.get("officer"),
                "failing_since": entry.get("since"),
                "error_kind": entry.get("error_kind"),
                "party_role": entry.get("role") or PartyRole.BORROWER.value,
                "secures": _secures(entry),
            }
            for entry in detail.get("borrowers", [])
        ],
    }
