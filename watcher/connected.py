"""Connected-party alerts, decided without a database (pure).

When a check stores a party's new ties (see :mod:`watcher.connections`) and the risk listings that came
into force, two things may concern *other* watched parties that share a person or company with it:

- ``connected_party`` (warning): the party gained a legal representative, controller, actual
  controller, finance head or major shareholder (5 % or more) who already holds a key role at another
  active watched party. Reported once, in the party's own alert, when the tie first appears; the first
  tie of a check that links two parties by a controller also says whether it formed or grew a group
  (said once, however many members share the controller).
- ``connected_risk`` (the listing's severity one step lower): a dishonest-debtor, enforcement,
  abnormal-operation or bankruptcy listing of the party, or of its legal representative or actual
  controller, coming into force is reported to every other watched party sharing that person or
  company (and to the watched parties holding or held by the listed company).

Only strong links count: equal names without a matching identity (a *possible* link) never raise
either category. A finding becomes one stored change event (:func:`finding_change`) whose strings
:func:`read_link` reads back for presentation.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from watcher.connections import KEY_ROLES, Node, PartyTies, PortfolioIndex, Tie, TieRole
from watcher.diff import Change, listing_subject
from watcher.normalize import text_key
from watcher.record import Action, Category, Listing, ListingState, Party, RegistryRecord
from watcher.rules import LISTING_SEVERITY, Assessment
from watcher.vocabulary import Severity

# Roles whose new holder is worth a connected-party alert, and the stake that makes a shareholder major.
APPOINTED_ROLES: frozenset[TieRole] = frozenset(
    {
        TieRole.LEGAL_REPRESENTATIVE,
        TieRole.CONTROLLER,
        TieRole.ACTUAL_CONTROLLER,
        TieRole.FINANCE_HEAD,
        TieRole.SHAREHOLDER,
    }
)
MAJOR_STAKE = Decimal(5)
CONTROL_ROLES: frozenset[TieRole] = frozenset({TieRole.CONTROLLER, TieRole.ACTUAL_CONTROLLER})

# Listings whose coming into force concerns the parties sharing the listed company or person.
RISK_LISTINGS: frozenset[Category] = frozenset(
    {Category.DISHONEST_DEBTOR, Category.ENFORCEMENT, Category.ABNORMAL_OPERATION, Category.BANKRUPTCY}
)
# The roles a listing's party holds at the listed company.
_LISTED_ROLES: dict[Party, frozenset[TieRole]] = {
    Party.LEGAL_REPRESENTATIVE: frozenset({TieRole.LEGAL_REPRESENTATIVE}),
    Party.ACTUAL_CONTROLLER: frozenset({TieRole.ACTUAL_CONTROLLER, TieRole.CONTROLLER}),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One connected-party finding, recorded on ``party``'s history: ``name`` (the person or company
    at ``node``) holds ``roles_here`` at ``party`` and ``roles_there`` at ``other`` (empty: the node is
    that party itself). ``listing`` is the raised listing of ``other`` (``connected_risk`` only);
    ``group_before``/``group_after`` the size of the largest group ``party``'s group was made of before
    and its size after, when a controller link formed (before 0) or grew one; set on one finding of a
    check only (0: no group note)."""

    category: Category
    party: str
    other: str
    other_name: str
    node: Node
    name: str
    roles_here: frozenset[TieRole]
    roles_there: frozenset[TieRole]
    severity: Severity
    listing: Change | None = None
    since: date | None = None
    group_before: int = 0
    group_after: int = 0

    @property
    def joins_by_control(self) -> bool:
        return bool(self.roles_here & CONTROL_ROLES) and bool(self.roles_there & CONTROL_ROLES)


def already_own(finding: Finding, own: RegistryRecord | None) -> bool:
    """Whether the party a ``connected_risk`` finding is for holds the same listing in force on its own
    record (two companies sharing a legal representative each read the person-level lists): its own
    alert has told its officer already, a second message would only repeat it."""
    change = finding.listing
    if change is None or own is None or change.category not in RISK_LISTINGS:
        return False
    listings: tuple[Listing, ...] = own.listings(change.category) or ()
    return any(
        listing.state is ListingState.ACTIVE
        and listing_subject(listing) == change.subject
        and text_key(listing.party_name) == text_key(change.party_name)
        for listing in listings
    )


def listing_key(finding: Finding) -> tuple[str, str] | None:
    """What identifies a ``connected_risk`` finding's listing for one party: its category and text
    (the same court case read through two shared people, or from two listed companies, is one)."""
    change = finding.listing
    if change is None:
        return None
    return change.category.value, change.after or change.subject


def once_per_listing(findings: Sequence[Finding], heard: Set[tuple[str, str, str]]) -> list[Finding]:
    """The findings a party should still hear: one per (party, listing), none it has heard already
    (``heard``: (party, category, listing text) of its stored connected-risk lines)."""
    kept: list[Finding] = []
    seen = set(heard)
    for finding in findings:
        key = listing_key(finding)
        if key is not None:
            if (finding.party, *key) in seen:
                continue
            seen.add((finding.party, *key))
        kept.append(finding)
    return kept


def one_step_lower(severity: Severity) -> Severity:
    """A connected party's risk is a step below the listed party's own (critical → high …)."""
    order = (Severity.INFO, Severity.WARNING, Severity.HIGH, Severity.CRITICAL)
    return order[max(severity.rank - 1, 0)]


def _alerting(tie: Tie) -> bool:
    """A tie that makes its holder one of the party's decision makers or major owners."""
    if tie.role not in APPOINTED_ROLES:
        return False
    return tie.role is not TieRole.SHAREHOLDER or (tie.stake is not None and tie.stake >= MAJOR_STAKE)


def connected_findings(
    checked: PartyTies,
    old_ties: Iterable[Tie] | None,
    others: PortfolioIndex,
    raised: Sequence[Change],
) -> tuple[Finding, ...]:
    """What ``checked``'s new ties (against ``old_ties``, as stored before this check; None when the
    party was never indexed, so nothing is known to be new) and its listings ``raised`` in this check
    mean for the other parties of ``others`` (the active neighbourhood). ``others`` may hold
    ``checked.party`` itself: it is never reported to itself."""
    findings: list[Finding] = []
    if old_ties is not None:
        findings.extend(_new_connections(checked, frozenset(old_ties), others))
    findings.extend(_shared_risks(checked, others, raised))
    return tuple(findings)


def _gained(checked: PartyTies, old_ties: Iterable[Tie]) -> dict[Node, list[Tie]]:
    """The strong alerting ties of ``checked`` whose node it did not hold in such a role before."""
    held_before = {tie.node for tie in old_ties if _alerting(tie)}
    gained: dict[Node, list[Tie]] = defaultdict(list)
    for tie in checked.ties:
        if tie.node.basis.strong and _alerting(tie) and tie.node not in held_before:
            gained[tie.node].append(tie)
    return gained


def may_join_by_control(checked: PartyTies, old_ties: Iterable[Tie]) -> bool:
    """Whether ``checked`` gained a controller, so that a finding may say a group formed or grew (the
    group as it was must then be read before the new ties replace the old)."""
    return any(tie.role in CONTROL_ROLES for ties in _gained(checked, old_ties).values() for tie in ties)


def _new_connections(
    checked: PartyTies, old_ties: frozenset[Tie], others: PortfolioIndex
) -> Iterable[Finding]:
    for node, ties in sorted(_gained(checked, old_ties).items()):
        here = frozenset(tie.role for tie in ties)
        since = max((tie.since for tie in ties if tie.since is not None), default=None)
        for other, there in _holders(others, node, exclude=checked.party, roles=KEY_ROLES):
            yield Finding(
                Category.CONNECTED_PARTY,
                checked.party,
                other,
                others.name(other),
                node,
                ties[0].name,
                here,
                there,
                Severity.WARNING,
                since=since,
            )


def _holders(
    index: PortfolioIndex, node: Node, *, exclude: str, roles: frozenset[TieRole] | None = None
) -> list[tuple[str, frozenset[TieRole]]]:
    """The other parties tied to a strong ``node`` (in one of ``roles``), each with its roles there."""
    if not node.basis.strong:
        return []
    by_party: dict[str, set[TieRole]] = defaultdict(set)
    for tie in index.ties_at(node):
        if tie.party != exclude and (roles is None or tie.role in roles):
            by_party[tie.party].add(tie.role)
    return [(party, frozenset(found)) for party, found in sorted(by_party.items())]


def _shared_risks(checked: PartyTies, others: PortfolioIndex, raised: Sequence[Change]) -> Iterable[Finding]:
    for change in raised:
        if change.category not in RISK_LISTINGS or not change.raises_listing:
            continue
        severity = one_step_lower(LISTING_SEVERITY[change.category])
        for node, name, roles_listed in _listed_nodes(checked, others, change):
            for other, roles_other in _holders(others, node, exclude=checked.party):
                yield Finding(
                    Category.CONNECTED_RISK,
                    other,
                    checked.party,
                    checked.name,
                    node,
                    name,
                    roles_other,
                    roles_listed,
                    severity,
                    listing=change,
                )
        if change.party in (None, Party.COMPANY):
            yield from _holdings_listed(checked, others, change, severity)


def _listed_nodes(
    checked: PartyTies, others: PortfolioIndex, change: Change
) -> list[tuple[Node, str, frozenset[TieRole]]]:
    """The node a listing is against (the company's own, or its listed person's) with that node's
    name and roles at the listed company; none when the person is known by name only."""
    if change.party in (None, Party.COMPANY):
        return [] if checked.own is None else [(checked.own, checked.name, frozenset())]
    wanted = _LISTED_ROLES.get(change.party, frozenset())
    key = text_key(change.party_name)
    ties = [tie for tie in checked.ties if tie.name_key == key and tie.node.basis.strong]
    named = [tie for tie in ties if tie.role in wanted] or ties
    nodes = sorted({tie.node for tie in named})
    return [
        (
            node,
            next(t.name for t in named if t.node == node),
            frozenset(t.role for t in ties if t.node == node),
        )
        for node in nodes
    ]


def _holdings_listed(
    checked: PartyTies, others: PortfolioIndex, change: Change, severity: Severity
) -> Iterable[Finding]:
    """A listed company's watched shareholders and controllers learn of it too (their holding)."""
    for other in sorted(others.parties - {checked.party}):
        own = others.own(other)
        roles = frozenset(tie.role for tie in checked.ties if own is not None and tie.node == own)
        if own is not None and roles:
            yield Finding(
                Category.CONNECTED_RISK,
                other,
                checked.party,
                checked.name,
                own,
                others.name(other),
                frozenset(),
                roles,
                severity,
                listing=change,
            )


def with_groups(
    findings: Sequence[Finding],
    index: PortfolioIndex,
    checked: PartyTies,
    old_ties: Iterable[Tie],
    group_before: frozenset[str] = frozenset(),
) -> tuple[Finding, ...]:
    """Mark the first controller link of a check that formed or grew ``checked``'s group with the
    group's size before and after (said once per check, however many members the party now shares a
    controller with). ``index`` is the stored state after this check holding ``checked.party``'s group
    whole; ``group_before`` the party's group as it was (it may hold parties the party has just left).
    The size before is that of the largest group the party's group is made of with ``old_ties``
    instead (0 when they were all alone: a group formed)."""
    first = next(
        (n for n, f in enumerate(findings) if f.category is Category.CONNECTED_PARTY and f.joins_by_control),
        None,
    )
    if first is None:
        return tuple(findings)
    after_group = index.group_of(checked.party)
    before = max(_largest_group_before(after_group, index, checked, old_ties), len(group_before))
    if len(after_group) <= before:
        return tuple(findings)
    marked = replace(findings[first], group_before=before, group_after=len(after_group))
    return (*findings[:first], marked, *findings[first + 1 :])


def _largest_group_before(
    members: frozenset[str], index: PortfolioIndex, checked: PartyTies, old_ties: Iterable[Tie]
) -> int:
    """The size of the largest group among ``members`` when ``checked.party`` still had ``old_ties``."""
    before_index = index.copy()
    before_index.set_party(checked.party, own=checked.own, name=checked.name, ties=frozenset(old_ties))
    return max((len(before_index.group_of(p)) for p in members), default=0)


def with_own_findings(assessment: Assessment, findings: Sequence[Finding]) -> Assessment:
    """The party's assessment with its own connected-party findings: at least their severity. They
    are not key-person changes and count toward no occasion."""
    levels = [f.severity for f in findings]
    if assessment.severity is not None:
        levels.append(assessment.severity)
    if not levels:
        return assessment
    return replace(assessment, severity=max(levels, key=lambda level: level.rank))


def risk_assessment(severity: Severity) -> Assessment:
    """The assessment of an alert raised on another party only by a connected risk."""
    return Assessment(
        severity=severity,
        occasions=(),
        occasions_in_window=0,
        recommend_early_repayment=False,
        signatory_mismatch=None,
        signatory_warning=False,
    )


# -- stored as one change event ---------------------------------------------------------------------

_LINK = re.compile(
    r"^(?P<other_name>.*?) \[(?P<other>[^\[\]]*)\]: (?P<roles>[a-z_,]*)"
    r"(?: \| (?P<category>[a-z_]+): (?P<listing>.*?))?"
    r"(?: \| group (?P<before>\d+) -> (?P<after>\d+))?$",
    re.DOTALL,
)


def _codes(roles: frozenset[TieRole]) -> str:
    return ",".join(role.value for role in TieRole if role in roles)


def finding_change(finding: Finding) -> Change:
    """The change event a finding is stored as: ``subject`` the linking person or company, ``before``
    the roles it holds at this party, ``after`` "<other party name> [<id>]: <roles there>", followed
    for a connected risk by " | <listing category>: <listing>" and for a group formed or grown by
    " | group <size before> -> <size after>"; ``party``/``party_name`` say against whom the listing is."""
    after = f"{finding.other_name} [{finding.other}]: {_codes(finding.roles_there)}"
    listing = finding.listing
    if listing is not None:
        after += f" | {listing.category.value}: {listing.after or listing.subject}"
    if finding.group_after:
        after += f" | group {finding.group_before} -> {finding.group_after}"
    return Change(
        finding.category,
        Action.ADDED,
        finding.name,
        _codes(finding.roles_here),
        after,
        effective_date=listing.effective_date if listing is not None else finding.since,
        party=listing.party if listing is not None else None,
        party_name=listing.party_name if listing is not None else "",
        first_seen=listing.first_seen if listing is not None else False,
    )


@dataclass(frozen=True, slots=True)
class LinkValue:
    """A stored connected-party change read back: the other party, roles on both sides, the listing."""

    other: str
    other_name: str
    roles_here: frozenset[TieRole]
    roles_there: frozenset[TieRole]
    listing_category: Category | None = None
    listing: str = ""
    group_before: int = 0
    group_after: int = 0


def hide_other(before: str | None, after: str | None, label: str = "") -> str | None:
    """A stored ``after`` with the other party's id removed and its name replaced by ``label`` (still
    in the shape :func:`read_link` reads; an empty label leaves the wording to the reader's language)."""
    link = read_link(before, after)
    if link is None or not link.other or after is None:
        return after
    rest = after[len(link.other_name) :].replace(f" [{link.other}]", " []", 1)
    if link.other_name:  # a listing's text naming the party too
        rest = rest.replace(link.other_name, label or "…")
    return label + rest


def _roles(text: str) -> frozenset[TieRole] | None:
    codes = [code for code in text.split(",") if code]
    known = {role.value: role for role in TieRole}
    if any(code not in known for code in codes):
        return None
    return frozenset(known[code] for code in codes)


def read_link(before: str | None, after: str | None) -> LinkValue | None:
    """A stored connected-party change's values, or None when they are not in the shape
    :func:`finding_change` writes (then they are shown as they are)."""
    match = _LINK.match(after or "")
    here, there = _roles(before or ""), _roles(match["roles"]) if match else None
    if match is None or here is None or there is None:
        return None
    category = match["category"]
    if category is not None and category not in {c.value for c in RISK_LISTINGS}:
        return None
    return LinkValue(
        other=match["other"],
        other_name=match["other_name"],
        roles_here=here,
        roles_there=there,
        listing_category=Category(category) if category else None,
        listing=match["listing"] or "",
        group_before=int(match["before"] or 0),
        group_after=int(match["after"] or 0),
    )
