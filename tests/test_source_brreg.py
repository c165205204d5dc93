"""Brønnøysund (issue 16 point 4): signing authority (signatur, prokura) and dated status changes.

The mapping from the register's JSON (respx only for the HTTP mapping), the diff and rules of the
new section, the signatory on file compared with it, an upgraded database's first check (no false
"signing authority added"), both languages, and ``watcher check`` end to end against a Brønnøysund
stand-in on 127.0.0.1 with the officer's robot on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from sources.base import record_of
from sources.brreg import BrregOptions, BrregSource
from tests import strategies as S
from tests.loopback import QuietHandler, serve
from tests.mocking import TRANSPORT
from tests.test_dispatch import DING_SECRET, DING_TOKEN, officer
from tests.test_trust_sources import API, ORGNR, ROLES, UNIT, Answer, Deployment, Registry
from watcher.change_line import ChangeLine
from watcher.diff import Change, diff
from watcher.evaluate import Outcome, StoredState, evaluate
from watcher.labels import CATEGORY_LABEL
from watcher.models import Alert, Borrower, ChangeEvent, Snapshot
from watcher.normalize import content_hash, normalize_record, person_key
from watcher.presentation import change_severity, display_lines
from watcher.record import (
    KEY_PERSON_CATEGORIES,
    Action,
    Category,
    ChangeLogEntry,
    CompanyStatus,
    Person,
    RegistryRecord,
    Role,
    record_as_dict,
    record_from_dict,
)
from watcher.rules import RuleSettings, signatory_mismatch
from watcher.store import open_store
from watcher.vocabulary import Language, Severity

pytest_plugins = ["tests.receivers"]  # chat_receiver_factory

FIXTURES = Path(__file__).parent / "fixtures" / "registries" / "no_brreg"
BRREG_URL = "https://data.brreg.no/enhetsregisteret/api"
ZH, EN = Language.ZH_CN, Language.EN
MARCH_2 = date(2026, 3, 2)


def text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def parse(roller: str | None = "roller_signing_t0.json", enhet: str = "enhet.json") -> RegistryRecord:
    raw = {"enhet": text(enhet)} | ({} if roller is None else {"roller": text(roller)})
    return record_of(BrregSource.map_raw, raw, source="no", registry_id=ORGNR)


def signing(record: RegistryRecord) -> dict[str, str]:
    assert record.signing_authority is not None
    return {person.name: person.role_text for person in record.signing_authority}


def as_before_the_upgrade(record: RegistryRecord) -> RegistryRecord:
    """The record as the mapping before issue 16 stored it: no signing section, no status date,
    signature and procuration groups logged as managers' only."""
    log = tuple(
        replace(entry, categories=entry.categories - {Category.SIGNING_AUTHORITY})
        for entry in record.change_log or ()
    )
    status = None if record.status is None else replace(record.status, since=None)
    return replace(record, signing_authority=None, change_log=log, status=status)


# -- mapping ----------------------------------------------------------------------------------------


def test_signature_and_procuration_holders_are_the_signing_authority():
    record = parse()

    assert signing(record) == {
        "Ingrid Haugland": "Signatur i fellesskap",
        "Lars Erik Nygaard": "Signatur i fellesskap",
        "Kari Nordmann": "Prokura hver for seg",
        "BRYGGEN FORVALTNING AS": "Prokura hver for seg",
    }
    assert record.signing_authority is not None
    by_name = {person.name: person for person in record.signing_authority}
    assert by_name["BRYGGEN FORVALTNING AS"].key == "id:915830005"  # an entity, keyed by its orgnr
    assert by_name["Kari Nordmann"].key == "nb:kari nordmann|1981-06-21"
    # Daglig leder is still the legal representative; the holders stay officers as before.
    assert record.legal_representative is not None and record.legal_representative.name == "Magnus Solheim"
    assert record.people is not None
    assert {p.name for p in record.people} >= {"Kari Nordmann", "BRYGGEN FORVALTNING AS"}
    log = {entry.item: entry for entry in record.change_log or ()}
    assert log["PROK sistEndret"].categories == {Category.MANAGER, Category.SIGNING_AUTHORITY}
    assert log["SIGN sistEndret"].date == date(2023, 3, 14)
    assert Category.SIGNING_AUTHORITY not in log["STYR sistEndret"].categories


def test_a_company_without_signature_or_procuration_has_an_empty_known_section():
    record = parse("roller_t0.json")
    assert record.signing_authority == ()


def test_unknown_roles_leave_the_signing_authority_unknown():
    record = parse(roller=None)
    assert record.signing_authority is None and record.people is None


@pytest.mark.parametrize("code", ["SIGN", "SIFE", "SIHV", "PROK", "POFE", "POHV"])
def test_every_signing_role_type_counts_and_a_missing_description_gets_the_registers_word(code):
    group = "SIGN" if code.startswith("SI") else "PROK"
    roles = {
        "rollegrupper": [
            {
                "type": {"kode": group, "beskrivelse": group.title()},
                "sistEndret": "2026-01-02",
                "roller": [
                    {"type": {"kode": code}, "person": {"navn": {"fornavn": "Per", "etternavn": "Holm"}}},
                    {"type": {"kode": code}, "fratraadt": True, "person": {"navn": "Gone Away"}},
                ],
            }
        ]
    }
    raw = {"enhet": text("enhet.json"), "roller": json.dumps(roles)}
    record = record_of(BrregSource.map_raw, raw, source="no", registry_id=ORGNR)
    (holder,) = record.signing_authority or ()
    assert holder.name == "Per Holm" and holder.role_text.startswith(("Signatur", "Prokura"))


@pytest.mark.parametrize(
    ("fields", "code", "since"),
    [
        ({"konkurs": True, "konkursdato": "2026-03-01"}, CompanyStatus.BANKRUPT, date(2026, 3, 1)),
        (
            {"underAvvikling": True, "underAvviklingDato": "2026-01-15"},
            CompanyStatus.LIQUIDATION,
            date(2026, 1, 15),
        ),
        *(
            (
                {"underTvangsavviklingEllerTvangsopplosning": True, key: "2026-02-10"},
                CompanyStatus.LIQUIDATION,
                date(2026, 2, 10),
            )
            for key in (
                "tvangsavvikletPgaManglendeSlettingDato",
                "tvangsopplostPgaManglendeDagligLederDato",
                "tvangsopplostPgaManglendeRevisorDato",
                "tvangsopplostPgaManglendeRegnskapDato",
                "tvangsopplostPgaMangelfulltStyreDato",
            )
        ),
        # The most severe flag decides the status and its date.
        (
            {
                "konkurs": True,
                "konkursdato": "2026-05-05",
                "underAvvikling": True,
                "underAvviklingDato": "2026-01-01",
            },
            CompanyStatus.BANKRUPT,
            date(2026, 5, 5),
        ),
        (
            {"slettedato": "2026-06-30", "konkurs": True, "konkursdato": "2026-05-05"},
            CompanyStatus.DEREGISTERED,
            date(2026, 6, 30),
        ),
        ({"konkurs": True}, CompanyStatus.BANKRUPT, None),  # a flag without its date is undated
        ({"konkurs": True, "konkursdato": "not a date"}, CompanyStatus.BANKRUPT, None),
        ({"underAvviklingDato": "2026-01-15"}, CompanyStatus.ACTIVE, None),  # a date without its flag
    ],
)
def test_a_status_takes_its_effective_day_from_the_units_own_date(fields, code, since):
    unit = json.loads(text("enhet.json")) | fields
    raw = {"enhet": json.dumps(unit), "roller": text("roller_t0.json")}
    record = record_of(BrregSource.map_raw, raw, source="no", registry_id=ORGNR)
    assert record.status is not None
    assert (record.status.code, record.status.since) == (code, since)


def test_compulsory_dissolution_is_dated_by_its_first_decision():
    record = parse(enhet="enhet_tvangsopplost.json")
    assert record.status is not None and record.status.code is CompanyStatus.LIQUIDATION
    assert record.status.since == date(2026, 2, 10)  # no auditor (Feb) before no accounts (Apr)


@pytest.fixture
def brreg_api():
    with respx.mock(using=TRANSPORT, base_url=BRREG_URL, assert_all_called=True) as mock:
        yield mock


async def test_the_http_answers_map_to_signing_authority_and_a_dated_status(brreg_api):
    brreg_api.get(f"/enheter/{ORGNR}").respond(200, text=text("enhet_konkurs.json"))
    brreg_api.get(f"/enheter/{ORGNR}/roller").respond(200, text=text("roller_signing_t1.json"))
    source = BrregSource("no", BrregOptions(type="brreg", retries=0))
    try:
        fetched = await source.fetch(ORGNR)
    finally:
        await source.aclose()
    record = fetched.record
    assert record.status is not None and record.status.since == date(2026, 3, 1)
    assert "Jonas Lie" in signing(record) and "Kari Nordmann" not in signing(record)
    assert record_from_dict(json.loads(json.dumps(record_as_dict(record)))) == record


def test_the_mapping_fingerprint_maps_answers_of_the_earlier_mapping_again():
    """An upgraded install maps each stored answer once more, so the section gets its baseline
    before the register's next change rather than with it."""
    source = BrregSource("no", BrregOptions(type="brreg"))
    assert source.mapping_fingerprint.endswith("\0signing-authority")


# -- the record: round trip and hashes --------------------------------------------------------------


def test_records_without_the_new_facts_keep_their_shape_and_hash():
    record = as_before_the_upgrade(parse())
    stored = record_as_dict(record)
    assert "signing_authority" not in stored and set(stored["status"]) == {"code", "raw"}
    assert content_hash(record) == content_hash(record_from_dict(stored))
    dated = parse(enhet="enhet_konkurs.json")
    assert record_as_dict(dated)["status"]["since"] == "2026-03-01"
    assert content_hash(dated) != content_hash(replace(dated, status=replace(dated.status, since=None)))


def test_the_terms_of_an_authority_are_part_of_the_content():
    record = parse()
    assert record.signing_authority is not None
    joint, *rest = record.signing_authority
    alone = replace(record, signing_authority=(replace(joint, role_text="Signatur"), *rest))
    assert content_hash(alone) != content_hash(record)


@given(S.registry_records(), st.data())
def test_round_trip_and_noise_keep_the_signing_authority(record, data):
    assert record_from_dict(json.loads(json.dumps(record_as_dict(record)))) == record
    noisy = data.draw(S.formatting_noise(record))
    assert content_hash(noisy) == content_hash(record)
    assert not [c for c in diff(record, noisy) if c.category is Category.SIGNING_AUTHORITY]


# -- diff and rules ---------------------------------------------------------------------------------


def signing_changes(old: RegistryRecord, new: RegistryRecord) -> list[Change]:
    return [change for change in diff(old, new) if change.category is Category.SIGNING_AUTHORITY]


def test_a_replaced_procuration_holder_is_one_removal_and_one_addition_dated_by_sistendret():
    changes = diff(parse(), parse("roller_signing_t1.json"))

    assert [(c.category, c.action, c.subject) for c in changes] == [
        (Category.SIGNING_AUTHORITY, Action.ADDED, "Jonas Lie"),
        (Category.SIGNING_AUTHORITY, Action.REMOVED, "Kari Nordmann"),
    ]  # and no manager seat of the same people besides
    assert all(c.effective_date == MARCH_2 and c.key_person for c in changes)
    assert changes[0].after == "Jonas Lie (Prokura hver for seg)"


def test_signature_and_procuration_changed_in_one_check_keep_their_own_dates():
    """Both groups changed since the last check: each holder's change is dated by its own group's
    ``sistEndret``, not both by the newer one (a user test found them sharing it)."""
    old, new = parse(), parse("roller_signing_t1.json")
    assert new.signing_authority is not None and new.change_log is not None
    sign_day = date(2026, 3, 1)
    newcomer = Person(name="Hanne Haugland", key="nb:hanne haugland|1980-01", roles=frozenset({Role.OTHER}),
                      role_text="Signatur hver for seg")  # fmt: skip
    log = tuple(replace(e, date=sign_day) if e.item == "SIGN sistEndret" else e for e in new.change_log)
    both = replace(new, signing_authority=(*new.signing_authority, newcomer), change_log=log)
    dates = {c.subject: c.effective_date for c in signing_changes(old, both) if c.action is Action.ADDED}
    assert dates == {"Jonas Lie": MARCH_2, "Hanne Haugland": sign_day}


def test_changed_terms_of_authority_are_a_change_of_the_same_person():
    old = parse()
    assert old.signing_authority is not None
    new = replace(
        old,
        signing_authority=tuple(
            replace(p, role_text="Signatur") if p.name == "Ingrid Haugland" else p
            for p in old.signing_authority
        ),
    )
    (change,) = signing_changes(old, new)
    assert (change.action, change.subject, change.before, change.after) == (
        Action.CHANGED,
        "Ingrid Haugland",
        "Signatur i fellesskap",
        "Signatur",
    )


def test_a_director_given_signature_is_only_a_signing_change():
    old = parse("roller_t0.json")
    assert old.people is not None
    ingrid = next(p for p in old.people if p.name == "Ingrid Haugland")
    signatory = Person(name=ingrid.name, key=ingrid.key, roles=frozenset({Role.OTHER}), role_text="Signatur")
    new = replace(old, people=(*old.people, signatory), signing_authority=(signatory,))
    changes = diff(old, new)
    assert [(c.category, c.action, c.subject) for c in changes] == [
        (Category.SIGNING_AUTHORITY, Action.ADDED, "Ingrid Haugland")
    ]


@given(
    st.sets(st.integers(0, 7), max_size=6),
    st.sets(st.integers(0, 7), max_size=6),
    st.sampled_from(S.SIGNING_TITLES),
)
def test_signing_changes_are_the_set_differences_of_the_holders(before, after, title):
    def holder(number: int) -> Person:
        name = f"Holder {number}"
        return Person(name, person_key(name, birth=f"1970-01-0{number + 1}"), frozenset({Role.OTHER}), title)

    base = RegistryRecord(source="no", registry_id=ORGNR)
    old = replace(base, signing_authority=tuple(holder(n) for n in sorted(before)))
    new = replace(base, signing_authority=tuple(holder(n) for n in sorted(after)))
    changes = signing_changes(old, new)
    assert {c.subject for c in changes if c.action is Action.ADDED} == {f"Holder {n}" for n in after - before}
    assert {c.subject for c in changes if c.action is Action.REMOVED} == {
        f"Holder {n}" for n in before - after
    }
    assert all(c.action is not Action.CHANGED and c.key_person for c in changes)
    # A section unknown on either side is never compared.
    assert not signing_changes(replace(old, signing_authority=None), new)
    assert not signing_changes(old, replace(new, signing_authority=None))


def test_signing_authority_is_a_key_person_category():
    assert Category.SIGNING_AUTHORITY in KEY_PERSON_CATEGORIES
    line = ChangeLine(
        Category.SIGNING_AUTHORITY, Action.ADDED, "Jonas Lie", None, "Jonas Lie (Prokura)", None
    )
    assert change_severity(line) is Severity.WARNING


@pytest.mark.parametrize(
    ("on_file", "mismatch"),
    [
        ("Ingrid Haugland", None),  # one of two who sign jointly: enough
        ("  lars erik NYGAARD ", None),
        ("Kari Nordmann", None),  # a procuration holder who signs alone
        ("Magnus Solheim", "BRYGGEN FORVALTNING AS, Ingrid Haugland, Kari Nordmann, Lars Erik Nygaard"),
        (None, None),
    ],
)
def test_the_signatory_on_file_is_compared_with_the_signing_authority(on_file, mismatch):
    assert signatory_mismatch(parse(), on_file) == mismatch


def test_without_signing_authority_daglig_leder_is_the_registrys_signatory():
    for record in (parse("roller_t0.json"), replace(parse(), signing_authority=None)):
        assert signatory_mismatch(record, "Magnus Solheim") is None
        assert signatory_mismatch(record, "Ingrid Haugland") == "Magnus Solheim"


@given(st.lists(S.signatories(), min_size=1, max_size=4, unique_by=lambda p: p.key), st.data())
def test_any_holder_on_file_matches_and_anyone_else_reads_them_all(holders, data):
    record = RegistryRecord(source="no", registry_id=ORGNR, signing_authority=tuple(holders))
    chosen = data.draw(st.sampled_from(holders))
    assert signatory_mismatch(record, chosen.name) is None
    named = signatory_mismatch(record, "Nobody Onfile Ever")
    assert named is not None and all(p.name in named for p in holders)
    shuffled = replace(record, signing_authority=tuple(reversed(holders)))
    assert signatory_mismatch(shuffled, "Nobody Onfile Ever") == named  # order-free: said once


# -- an upgraded database -----------------------------------------------------------------------------


def test_the_first_check_after_the_upgrade_raises_nothing():
    """A snapshot stored before the section existed has it unknown (None): the first record that
    knows it is its baseline, as a Chinese vendor's signal fetched for the first time is."""
    stored = normalize_record(as_before_the_upgrade(parse()))
    fresh = normalize_record(parse())
    state = StoredState(
        baseline_at=datetime(2025, 12, 30, tzinfo=UTC),
        content_hash=content_hash(stored),
        previous=stored,
        legal_rep_on_file="Kari Nordmann",
    )
    result = evaluate(
        state,
        fresh,
        content_hash(fresh),
        now=datetime(2026, 3, 3, tzinfo=UTC),
        settings=RuleSettings(),
        confirm_after=timedelta(hours=1),
    )
    assert result.outcome is Outcome.CHANGED  # the section is stored…
    assert result.changes == () and not result.alerts  # …silently
    assert result.record.signing_authority is not None


def test_an_old_log_row_of_the_section_is_not_news_either():
    """The signature group's log row now names the new category, so it reads as a fresh row; it
    dates signing changes and never stands alone."""
    stored = as_before_the_upgrade(parse())
    fresh = parse()
    fresh_log = tuple(
        replace(entry, date=MARCH_2) if entry.item == "PROK sistEndret" else entry
        for entry in fresh.change_log or ()
    )
    assert diff(stored, replace(fresh, change_log=fresh_log)) == []
    entry = ChangeLogEntry(
        frozenset({Category.SIGNING_AUTHORITY}), "PROK sistEndret", after="Prokura", date=MARCH_2
    )
    assert diff(replace(fresh, change_log=()), replace(fresh, change_log=(entry,))) == []


# -- how it reads -------------------------------------------------------------------------------------


def lines(changes: list[Change], language: Language) -> list[str]:
    stored = [
        ChangeLine(c.category, c.action, c.subject, c.before, c.after, c.effective_date) for c in changes
    ]
    return [line.text for line in display_lines(stored, language)]


def test_signing_changes_read_in_both_languages():
    changes = diff(parse(), parse("roller_signing_t1.json"))
    assert lines(changes, ZH) == [
        "有权签字人 新增 Jonas Lie（单独经理权人〔Prokura hver for seg〕）（生效日期 2026-03-02）",
        "有权签字人 退出 Kari Nordmann（单独经理权人〔Prokura hver for seg〕）（生效日期 2026-03-02）",
    ]
    assert lines(changes, EN) == [
        "Signing authority added: Jonas Lie (sole procuration holder [Prokura hver for seg])"
        " (effective 2026-03-02)",
        "Signing authority removed: Kari Nordmann (sole procuration holder [Prokura hver for seg])"
        " (effective 2026-03-02)",
    ]
    assert CATEGORY_LABEL[ZH][Category.SIGNING_AUTHORITY] == "有权签字人"
    assert CATEGORY_LABEL[EN][Category.SIGNING_AUTHORITY] == "Signing authority"


def test_a_new_daglig_leder_given_procuration_keeps_the_signing_line_of_its_own():
    legal_rep = ChangeLine(
        Category.LEGAL_REPRESENTATIVE,
        Action.CHANGED,
        "legal representative",
        "Magnus Solheim",
        "Hanne Strand",
        MARCH_2,
    )
    manager = ChangeLine(
        Category.MANAGER, Action.ADDED, "Hanne Strand", None, "Hanne Strand (Daglig leder)", MARCH_2
    )
    procuration = ChangeLine(
        Category.SIGNING_AUTHORITY, Action.ADDED, "Hanne Strand", None, "Hanne Strand (Prokura)", MARCH_2
    )
    shown = [line.text for line in display_lines([legal_rep, manager, procuration], ZH)]
    assert shown == [
        "法定代表人 Magnus Solheim → Hanne Strand（兼总经理〔Daglig leder〕）（生效日期 2026-03-02）",
        "有权签字人 新增 Hanne Strand（经理权人〔Prokura〕）（生效日期 2026-03-02）",
    ]


def test_a_status_change_reads_with_its_effective_date():
    (change,) = diff(parse(), parse(enhet="enhet_konkurs.json"))
    assert change.category is Category.STATUS and change.effective_date == date(2026, 3, 1)
    assert lines([change], ZH) == ["登记状态 存续（Aktiv） → 破产（Konkurs）（生效日期 2026-03-01）"]
    assert lines([change], EN) == ["Status active (Aktiv) → bankrupt (Konkurs) (effective 2026-03-01)"]


# -- end to end: `watcher check` against a Brønnøysund stand-in, the officer's robot on 127.0.0.1 ------


@pytest.fixture
def ding(chat_receiver_factory):
    return chat_receiver_factory(dingtalk_secret=DING_SECRET)


class SigningDeployment(Deployment):
    """The trust tests' deployment with an officer (zh-CN) whose DingTalk robot is a loopback one."""

    def __init__(self, root: Path, registry_url: str, robot_url: str) -> None:
        root.mkdir()
        self.config = root / "watcher.toml"
        self.database = root / "watcher.db"
        config = [
            "[watcher]",
            'language = "zh-CN"',
            "[database]",
            'url = "sqlite:///watcher.db"',
            "[schedule]",
            'jitter = "0s"',
            "[sources.brreg]",
            'type = "brreg"',
            f'base_url = "{registry_url}{API}"',
            'rate = "1000/s"',
            'timeout = "5s"',
        ]
        self.config.write_text("\n".join(config) + "\n\n" + officer("张伟", [robot_url]), encoding="utf-8")
        csv = root / "borrowers.csv"
        csv.write_text(
            "id,name,source,registry_id,officer,legal_rep_on_file\n"
            f"no-fjordlys,FJORDLYS SJØMAT AS,brreg,{ORGNR},zhang_wei,Ingrid Haugland\n",
            encoding="utf-8",
        )
        imported = self.cli("borrowers", "import", str(csv))
        assert imported.exit_code == 0, imported.output

    def downgrade_snapshots(self) -> None:
        """Make the stored snapshot what the mapping before issue 16 wrote, with its hashes."""
        store = open_store(f"sqlite:///{self.database}")
        try:
            with store.transaction() as session:
                for snapshot in session.exec(select(Snapshot)):
                    old = as_before_the_upgrade(record_from_dict(json.loads(snapshot.record_json)))
                    snapshot.record_json = json.dumps(record_as_dict(old), ensure_ascii=False)
                    snapshot.content_hash = content_hash(old)
                    session.add(snapshot)
                for borrower in session.exec(select(Borrower)):
                    borrower.last_content_hash = content_hash(old)
                    borrower.last_payload_digest = "0" * 40  # a digest of the earlier mapping
                    session.add(borrower)
        finally:
            store.dispose()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


@pytest.fixture
def registry_with_signing() -> Iterator[Registry]:
    registry = Registry()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            answer = registry.answers.get(urlsplit(self.path).path)
            if answer is None:
                self.send_body(404, b'{"status": 404, "error": "Not Found"}')
            else:
                self.send_body(answer.status, answer.body, answer.content_type, answer.headers)

    registry.answers[UNIT] = Answer(200, (FIXTURES / "enhet.json").read_bytes())
    registry.answers[ROLES] = Answer(200, (FIXTURES / "roller_signing_t0.json").read_bytes())
    with serve(Handler) as url:
        registry.url = url
        yield registry


def _replace_procuration(registry: Registry) -> None:
    registry.answers[ROLES] = Answer(200, (FIXTURES / "roller_signing_t1.json").read_bytes())


def _stored(deployment: Deployment) -> tuple[list[ChangeEvent], list[Alert]]:
    events, alerts, _ = deployment.stored()
    return events, alerts


def test_a_replaced_procuration_holder_reaches_the_officer_as_signing_authority(
    tmp_path, registry_with_signing, ding
):
    deployment = SigningDeployment(
        tmp_path / "d", registry_with_signing.url, ding.dingtalk_url(DING_TOKEN, DING_SECRET)
    )
    deployment.check(expect=0)  # baseline; the signatory on file signs jointly: no mismatch
    assert _stored(deployment) == ([], [])

    _replace_procuration(registry_with_signing)
    deployment.check(expect=0)

    events, alerts = _stored(deployment)
    assert [(e.category, e.action, e.subject) for e in events] == [
        ("signing_authority", "added", "Jonas Lie"),
        ("signing_authority", "removed", "Kari Nordmann"),
    ]
    assert all(e.effective_date == MARCH_2 for e in events)
    assert [alert.severity for alert in alerts] == ["warning"]
    (message,) = ding.texts(DING_TOKEN)
    assert "有权签字人 新增 Jonas Lie" in message and "有权签字人 退出 Kari Nordmann" in message
    assert "生效日期 2026-03-02" in message
    assert "预留签字人" not in message  # Ingrid Haugland still signs


def test_an_upgraded_database_hears_nothing_until_the_register_changes(tmp_path, registry_with_signing, ding):
    deployment = SigningDeployment(
        tmp_path / "d", registry_with_signing.url, ding.dingtalk_url(DING_TOKEN, DING_SECRET)
    )
    deployment.check(expect=0)
    deployment.downgrade_snapshots()

    deployment.check(expect=0)  # the same answer, mapped again by the new mapping
    events, alerts = _stored(deployment)
    assert (events, alerts) == ([], []) and ding.texts() == []
    _, _, snapshots = deployment.stored()
    assert snapshots == 2  # the section's baseline was stored

    _replace_procuration(registry_with_signing)
    deployment.check(expect=0)
    events, alerts = _stored(deployment)
    assert {(e.category, e.action) for e in events} == {
        ("signing_authority", "removed"),
        ("signing_authority", "added"),
    }
    assert len(alerts) == 1 and ding.count("有权签字人") == 1
