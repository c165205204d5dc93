"""How risk listings and connected-party/-risk changes read (pure): the lines that quote a listing.

Split from :mod:`watcher.presentation`, which groups changes into lines and reads every other
category: a listing's own line ("失信被执行人 列入 针对 法定代表人 X: …") and a connected change's
("关联风险：法定代表人 周明远 同时任 X 的实际控制人，X 失信被执行人 列入: …"), whose values
:func:`watcher.connected.read_link` reads back from the strings
:func:`watcher.connected.finding_change` stored.
"""

from __future__ import annotations

from watcher.change_line import ChangeLine
from watcher.connected import LinkValue, read_link
from watcher.connections import most_significant
from watcher.labels import (
    CATEGORY_ACTION_LABEL,
    CATEGORY_LABEL,
    INSOLVENCY_ACTION_LABEL,
    INSOLVENCY_LABEL,
    INSOLVENCY_PROCEDURES,
    LISTING_ACTION_LABEL,
    PARTY_LABEL,
    REGISTRY_TERM_LABEL,
    WORDS,
    Escape,
    bracket,
    shown_value,
    tie_roles_label,
)
from watcher.normalize import text_key
from watcher.record import Action, Category, Party
from watcher.vocabulary import Language

CONNECTED = frozenset({Category.CONNECTED_PARTY, Category.CONNECTED_RISK})
_PROCEDURE_KEYS = {text_key(word) for word in INSOLVENCY_PROCEDURES}
_FACT_SEP = " · "  # how listing_diff.listing_text joins a listing's facts


def listing_text(change: ChangeLine, language: Language, escape: Escape) -> str:
    """A risk listing: what happened, against whom, and its facts (which name its case number)."""
    if change.category is Category.BANKRUPTCY and text_key(change.subject) in _PROCEDURE_KEYS:
        return _proceeding_text(change, language, escape)
    words = WORDS[language]
    actions = CATEGORY_ACTION_LABEL[language].get(change.category, {})
    action = actions.get(change.action) or LISTING_ACTION_LABEL[language][change.action]
    label = f"{CATEGORY_LABEL[language][change.category]} {action}"
    if change.party not in (None, Party.COMPANY):
        assert change.party is not None
        label += words["against"].format(
            role=PARTY_LABEL[language][change.party], name=escape(change.party_name) or words["none"]
        )
    if change.action is Action.ADDED:
        detail = shown_value(_terms(change.after or change.subject, language), language, escape)
    elif change.action is Action.REMOVED:
        detail = shown_value(_terms(change.before or change.subject, language), language, escape)
    else:
        before, after = (
            shown_value(_terms(change.before, language), language, escape),
            shown_value(_terms(change.after, language), language, escape),
        )
        detail = f"{before} → {after}"
    return f"{label}: {detail}"


def _terms(text: str | None, language: Language) -> str | None:
    """A listing's facts with the registry's coded words in the reader's language, the code kept in
    brackets in Chinese ("债权人自愿清算（creditors-voluntary-liquidation）")."""
    if not text:
        return text
    labels = REGISTRY_TERM_LABEL[language]
    parts = []
    for part in text.split(_FACT_SEP):
        label = labels.get(part.strip())
        if label is None:
            parts.append(part)
        elif language == Language.ZH_CN and "-" in part:
            parts.append(f"{label}（{part.strip()}）")
        else:
            parts.append(label)
    return _FACT_SEP.join(parts)


def _proceeding_text(change: ChangeLine, language: Language, escape: Escape) -> str:
    """A French collective proceeding: "破产程序（Redressement judiciaire）立案: Tribunal … · 2026-03-01";
    the procedure is named once, in the registry's words, and left out of the facts after it."""
    label = INSOLVENCY_LABEL[language] + bracket(language, escape(change.subject))
    label += " " if language == Language.EN else ""
    label += INSOLVENCY_ACTION_LABEL[language][change.action]

    def facts(text: str | None) -> str:
        kept = [part for part in (text or "").split(_FACT_SEP) if text_key(part) != text_key(change.subject)]
        return shown_value(_FACT_SEP.join(kept), language, escape)

    if change.action is Action.ADDED:
        detail = facts(change.after)
    elif change.action is Action.REMOVED:
        detail = facts(change.after or change.before)
    else:
        detail = f"{facts(change.before)} → {facts(change.after)}"
    return f"{label}: {detail}"


def connected_text(change: ChangeLine, language: Language, escape: Escape) -> str | None:
    """ "关联风险：法定代表人 周明远 同时任 X 的实际控制人，X 失信被执行人 列入: …": the parties, the
    person or company linking them, their roles, and the listing; None when the values are not in
    the shape :func:`watcher.connected.finding_change` writes."""
    link = read_link(change.before, change.after)
    if link is None:
        return None
    words = WORDS[language]
    here = tie_roles_label(most_significant(link.roles_here), language)
    there = tie_roles_label(most_significant(link.roles_there), language)
    values = {
        "category": CATEGORY_LABEL[language][change.category],
        "name": escape(change.subject),
        "other": _other(link, language, escape),
        "roles_here": f"{here} " if here else "",
        "roles_there": there,
    }
    if not there:
        values["roles_here"] = here
        text = words["link_itself"].format(**values)
    elif not here:
        text = words["link_holder"].format(**values)
    else:
        text = words["link"].format(**values)
    if link.group_after:
        template = words["group_formed"] if link.group_before < 2 else words["group_grown"]
        text += template.format(before=link.group_before, after=link.group_after)
    if link.listing_category is not None:
        text += words["listing_of"].format(
            other=values["other"], listing=_listed(change, link, language, escape)
        )
    return text


def _other(link: LinkValue, language: Language, escape: Escape) -> str:
    """The other party by name (else id), or as hidden when the reader may not see it (name and id
    taken out by :func:`watcher.connected.hide_other`)."""
    return escape(link.other_name) or escape(link.other) or WORDS[language]["hidden_party"]


def _listed(change: ChangeLine, link: LinkValue, language: Language, escape: Escape) -> str:
    assert link.listing_category is not None
    listing = ChangeLine(
        link.listing_category,
        Action.ADDED,
        link.listing,
        None,
        link.listing,
        None,
        party=change.party,
        party_name=change.party_name,
    )
    return listing_text(listing, language, escape)


def connected_value(change: ChangeLine, value: str, language: Language, escape: Escape) -> str | None:
    """A side of a connected-party change in words: the roles here (before), the other party (after)."""
    link = read_link(change.before, change.after) if change.category in CONNECTED else None
    if link is None:
        return None
    if value == change.before:
        return tie_roles_label(link.roles_here, language) or "–"
    return _connected_side(change, link, language, escape)


def _connected_side(change: ChangeLine, link: LinkValue, language: Language, escape: Escape) -> str:
    """The other party of a connected-party change, with its roles (and the listing) in words."""
    roles = tie_roles_label(link.roles_there, language)
    text = _other(link, language, escape) + (bracket(language, roles) if roles else "")
    if link.listing_category is not None:
        text += WORDS[language]["clause_sep"] + _listed(change, link, language, escape)
    return text
