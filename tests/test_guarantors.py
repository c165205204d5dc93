"""Guarantors and pledgors are watched parties (issue 15, point 1): the borrowers file's ``role`` and
``secures`` columns, their checks against the file and the database, the round trip through
``borrowers list``, the lifecycle of a guarantor with its borrowers, routing to the secured borrowers'
officers, and an alert naming both, end to end through real checks, real SQLite (PostgreSQL for the
migration) and loopback DingTalk robots.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from tests.deployment import CHANGED_AT, FJORDLYS, HARDANGER, LANCHAO, Deployment
from tests.test_cli import Workspace
from tests.test_dispatch import DING_SECRET, DING_TOKEN, officer
from watcher.config import load_config
from watcher.importer import COLUMNS
from watcher.models import Delivery
from watcher.render import AlertView, SecuredBorrower, render_alert, render_digest
from watcher.routing import delivery_targets
from watcher.store import SCHEMA_HEAD, Store, open_store
from watcher.vocabulary import Language, PartyRole, Severity

pytest_plugins = ["tests.receivers"]

CN_A, CN_B = "91330106MA2KH7Q302", "91310115MA1K4QRT94"
NO_A, NO_B, NO_C = "927140004", "974760673", "923609016"
SECOND_TOKEN = "0d4e1c7a2b9f3e6d8c5a1f4b7e0d3c6a9f2e5b8d1c4a7f0e3b6d9c2a5f8e1b4d"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


def write_csv(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header or list(COLUMNS))
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def row(
    party_id: str, registry_id: str, *, officer: str = "", role: str = "", secures: str = ""
) -> list[str]:
    source = "no" if registry_id.isdigit() else "cn"
    return [party_id, f"Company {party_id}", source, registry_id, officer, "", "", "", role, secures]


def rejections(output: str) -> dict[int, str]:
    return {int(m[1]): m[2] for m in re.finditer(r"(?:line|row) (\d+): rejected: (.+)", output)}


# -- the borrowers file ---------------------------------------------------------------------------


def test_bad_secures_are_rejected_with_their_line_and_good_rows_kept(ws: Workspace, tmp_path: Path):
    path = write_csv(
        tmp_path / "parties.csv",
        [
            row("g-later", NO_A, role="guarantor", secures="b-1"),  # line 2: b-1 comes later: fine
            row("b-1", CN_A, officer="zhang_wei"),  # 3
            row("g-unknown", NO_B, role="guarantor", secures="b-1,b-nowhere"),  # 4
            row("g-self", NO_C, role="pledgor", secures="g-self"),  # 5
            row("b-2", CN_B, secures="b-1"),  # 6: a borrower may guarantee another (互保)
            row("g-empty", NO_B, role="guarantor"),  # 7: a guarantor secures someone
            row("g-of-g", NO_C, role="guarantor", secures="g-later"),  # 8: not a guarantor
            row("g-odd", NO_C, role="surety", secures="b-1"),  # 9
        ],
    )
    result = ws.cli("borrowers", "import", str(path))
    assert result.exit_code == 1, result.output
    rejected = rejections(result.stderr)
    assert set(rejected) == {4, 5, 7, 8, 9}, result.stderr
    assert "'b-nowhere'" in rejected[4] and "no such borrower" in rejected[4]
    assert "cannot secure itself" in rejected[5]
    assert "secures is empty" in rejected[7]
    assert "'g-later', a guarantor" in rejected[8]
    assert "expected borrower, guarantor, pledgor" in rejected[9]
    listed = {b["id"]: b for b in ws.borrowers()}
    assert set(listed) == {"g-later", "b-1", "b-2"}
    assert (listed["g-later"]["role"], listed["g-later"]["secures"]) == ("guarantor", ["b-1"])
    assert (listed["b-1"]["role"], listed["b-1"]["secures"]) == ("borrower", [])
    assert (listed["b-2"]["role"], listed["b-2"]["secures"]) == ("borrower", ["b-1"])


def test_secures_may_name_a_borrower_already_in_the_database_and_an_xlsx_row_is_named_by_row(
    ws: Workspace, tmp_path: Path
):
    first = write_csv(tmp_path / "borrowers.csv", [row("b-1", CN_A, officer="zhang_wei")])
    assert ws.cli("borrowers", "import", str(first)).exit_code == 0
    book = Workbook()
    sheet = book.active
    sheet.append(list(COLUMNS))
    sheet.append(row("g-1", NO_A, role="guarantor", secures="b-1"))
    sheet.append(row("g-2", NO_B, role="pledgor", secures="b-missing"))
    xlsx = tmp_path / "guarantors.xlsx"
    book.save(xlsx)
    result = ws.cli("borrowers", "import", str(xlsx))
    assert result.exit_code == 1
    assert re.search(r"guarantors\.xlsx: row 3: rejected: secures 'b-missing'", result.stderr), result.stderr
    assert {b["id"]: b["secures"] for b in ws.borrowers()} == {"b-1": [], "g-1": ["b-1"]}


def test_a_borrower_that_a_guarantor_secures_cannot_become_a_guarantor(ws: Workspace, tmp_path: Path):
    both = [row("b-1", CN_A), row("g-1", NO_A, role="guarantor", secures="b-1")]
    assert ws.cli("borrowers", "import", str(write_csv(tmp_path / "a.csv", both))).exit_code == 0
    turned = write_csv(tmp_path / "b.csv", [row("b-1", CN_A, role="guarantor", secures="x")])
    result = ws.cli("borrowers", "import", str(turned))
    assert result.exit_code == 1
    assert "line 2: rejected:" in result.stderr and "secured by 'g-1'" in result.stderr


def test_an_old_file_without_the_new_columns_keeps_roles_and_links(ws: Workspace, tmp_path: Path):
    both = [row("b-1", CN_A), row("g-1", NO_A, role="guarantor", secures="b-1")]
    assert ws.cli("borrowers", "import", str(write_csv(tmp_path / "a.csv", both))).exit_code == 0
    old_header = list(COLUMNS[:8])
    old = write_csv(tmp_path / "old.csv", [r[:8] for r in both], header=old_header)
    result = ws.cli("borrowers", "import", str(old))
    assert result.exit_code == 0 and "2 unchanged" in result.stdout, result.output
    assert {b["id"]: (b["role"], b["secures"]) for b in ws.borrowers()} == {
        "b-1": ("borrower", []),
        "g-1": ("guarantor", ["b-1"]),
    }
    secures_alone = write_csv(
        tmp_path / "odd.csv", [[*r[:8], ""] for r in both], header=[*old_header, "secures"]
    )
    refused = ws.cli("borrowers", "import", str(secures_alone))
    assert refused.exit_code == 2 and "secures column needs the role column" in refused.output


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_role_and_secures_round_trip_through_borrowers_list(ws: Workspace, tmp_path: Path, file_format: str):
    parties = [
        row("b-1", CN_A, officer="zhang_wei"),
        row("b-2", CN_B, officer="kari"),
        row("g-1", NO_A, role="guarantor", secures="b-2, b-1"),
        row("p-1", NO_B, role="pledgor", secures="b-1"),
    ]
    assert ws.cli("borrowers", "import", str(write_csv(tmp_path / "in.csv", parties))).exit_code == 0
    exported = tmp_path / f"out.{file_format}"
    assert ws.cli("borrowers", "list", "--format", file_format, "--output", str(exported)).exit_code == 0
    if file_format == "csv":
        written = list(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8-sig"))))
        assert {r["id"]: (r["role"], r["secures"]) for r in written} == {
            "b-1": ("borrower", ""),
            "b-2": ("borrower", ""),
            "g-1": ("guarantor", "b-1,b-2"),
            "p-1": ("pledgor", "b-1"),
        }
    again = ws.cli("borrowers", "import", str(exported))
    assert again.exit_code == 0 and "4 unchanged" in again.stdout, again.output
    table = ws.cli("borrowers", "list")
    assert "guarantor of b-1, b-2" in table.stdout and "pledgor of b-1" in table.stdout


# -- lifecycle ------------------------------------------------------------------------------------


def test_a_guarantor_is_watched_while_any_borrower_it_secures_is(ws: Workspace, tmp_path: Path):
    parties = [row("b-1", CN_A), row("b-2", CN_B), row("g-1", NO_A, role="guarantor", secures="b-1,b-2")]
    assert ws.cli("borrowers", "import", str(write_csv(tmp_path / "in.csv", parties))).exit_code == 0

    def active() -> dict[str, bool]:
        return {b["id"]: b["active"] for b in ws.borrowers()}

    first = ws.cli("borrowers", "deactivate", "b-1")
    assert "g-1" not in first.stdout and active() == {"b-1": False, "b-2": True, "g-1": True}
    last = ws.cli("borrowers", "deactivate", "b-2")
    assert "deactivated guarantor g-1 (every borrower it secures is inactive)" in last.stdout
    assert active() == {"b-1": False, "b-2": False, "g-1": False}
    back = ws.cli("borrowers", "reactivate", "b-2")
    assert "reactivated guarantor g-1" in back.stdout and active()["g-1"] is True

    by_hand = ws.cli("borrowers", "deactivate", "g-1")
    assert by_hand.exit_code == 0
    ws.cli("borrowers", "deactivate", "b-2")
    ws.cli("borrowers", "reactivate", "b-2")
    assert active()["g-1"] is False  # stopped by hand: only a person starts it again


def test_a_guarantor_of_only_repaid_loans_is_deactivated_on_import(ws: Workspace, tmp_path: Path):
    assert (
        ws.cli("borrowers", "import", str(write_csv(tmp_path / "a.csv", [row("b-1", CN_A)]))).exit_code == 0
    )
    ws.cli("borrowers", "deactivate", "b-1")
    guarantor = [row("b-1", CN_A), row("g-1", NO_A, role="guarantor", secures="b-1")]
    result = ws.cli("borrowers", "import", str(write_csv(tmp_path / "b.csv", guarantor)))
    assert "deactivated guarantor g-1" in result.stdout
    assert {b["id"]: b["active"] for b in ws.borrowers()} == {"b-1": False, "g-1": False}


# -- routing and text -----------------------------------------------------------------------------


def test_a_guarantors_alert_reaches_each_secured_officer_once_and_its_own(tmp_path: Path):
    toml = tmp_path / "watcher.toml"
    toml.write_text(
        '[database]\nurl = "sqlite:///w.db"\n\n'
        '[officers.a]\nname = "A"\nurls = ["json://127.0.0.1:9/a"]\n\n'
        '[officers.b]\nname = "B"\nurls = ["json://127.0.0.1:9/b"]\n\n'
        '[officers.own]\nname = "Own"\nurls = ["json://127.0.0.1:9/own"]\n\n'
        '[notifiers.zhejiang]\nurls = ["json://127.0.0.1:9/z"]\ntags = ["zhejiang"]\n',
        encoding="utf-8",
    )
    config = load_config(toml)
    secured = ["b", "a", "b"]

    def targets(**options) -> list[str]:
        return delivery_targets(config, source="cn", severity=Severity.WARNING, **options)

    assert targets(officer=None, tags=[], secured_officers=secured) == ["officer:b", "officer:a"]
    assert targets(officer="own", tags=["zhejiang"], secured_officers=secured) == [
        "officer:b",
        "officer:a",
        "officer:own",
        "notifier:zhejiang",
    ]
    assert targets(officer="a", tags=[], secured_officers=secured) == ["officer:b", "officer:a"]
    assert targets(officer="a", tags=[]) == ["officer:a"]  # a borrower's alert as before


def guarantor_view(role: PartyRole = PartyRole.GUARANTOR) -> AlertView:
    return AlertView(
        alert_id=7,
        borrower_id="g-1",
        borrower_name="浙江担保股份有限公司",
        severity=Severity.WARNING,
        source="cn",
        detected_at=datetime(2026, 3, 3, 2, 0, tzinfo=UTC),
        changes=(),
        occasions_in_window=0,
        window_days=365,
        recommend_early_repayment=False,
        signatory_mismatch="李娜",
        legal_rep_on_file="王建国",
        party_role=role,
        secures=(
            SecuredBorrower("b-1", "杭州澜潮智能装备有限公司", "zhang_wei"),
            SecuredBorrower("b-2", "FJORDLYS SJØMAT AS", "kari"),
        ),
    )


def test_the_title_names_the_guarantor_its_role_and_the_readers_borrowers():
    view = guarantor_view()
    whole = render_alert(view, Language.ZH_CN).title
    assert (
        "保证人 浙江担保股份有限公司（为借款人 杭州澜潮智能装备有限公司、FJORDLYS SJØMAT AS 提供担保）"
        in whole
    )
    mine = render_alert(view.for_officer("zhang_wei"), Language.ZH_CN)
    assert "保证人 浙江担保股份有限公司（为借款人 杭州澜潮智能装备有限公司 提供担保）" in mine.title
    assert "FJORDLYS" not in mine.title + mine.body and "g-1" in mine.body
    english = render_alert(view.for_officer("kari"), Language.EN).title
    assert "Guarantor 浙江担保股份有限公司 (guarantees borrower FJORDLYS SJØMAT AS)" in english
    many = replace(view, secures=tuple(SecuredBorrower(f"b-{n}", f"B{n}", None) for n in range(5)))
    assert "(guarantees borrowers B0, B1, B2 and 2 more)" in render_alert(many, Language.EN).title
    nobody = render_alert(view.for_officer("someone"), Language.EN)
    assert "(guarantees 2 borrower(s))" in nobody.title and "杭州" not in nobody.title + nobody.body
    # The guarantor's own officer, who holds none of its borrowers, reads how many, not "borrowers: –".
    assert "Guarantor ID g-1; borrower(s): 2 (other officers')" in nobody.body
    some = render_alert(view.for_officer("kari"), Language.EN).body
    assert "borrower(s): FJORDLYS SJØMAT AS (b-2), and 1 more (other officers')" in some
    zh_nobody = render_alert(view.for_officer("someone"), Language.ZH_CN).body
    assert "借款人：另有 2 家（其他客户经理负责）" in zh_nobody
    pledgor = render_alert(guarantor_view(PartyRole.PLEDGOR), Language.ZH_CN).title
    assert (
        pledgor.startswith("【警示】出质人 浙江担保股份有限公司（为借款人 ") and "提供质押担保）" in pledgor
    )
    english_pledgor = render_alert(
        replace(guarantor_view(PartyRole.PLEDGOR), secures=view.secures[:1]), Language.EN
    )
    assert "Pledgor 浙江担保股份有限公司 (secures borrower 杭州澜潮智能装备有限公司)" in english_pledgor.title
    digest = render_digest([view], Language.ZH_CN, CHANGED_AT.date()).body
    assert (
        "保证人 浙江担保股份有限公司（为借款人 杭州澜潮智能装备有限公司、FJORDLYS SJØMAT AS 提供担保）"
        in digest
    )


# -- end to end -----------------------------------------------------------------------------------


def test_a_guarantors_legal_representative_change_reaches_the_borrowers_officers_naming_both(
    tmp_path: Path, sqlite_url: str, chat_receiver_factory
):
    ding = chat_receiver_factory(dingtalk_secret=DING_SECRET)
    channels = officer("张伟", [ding.dingtalk_url(DING_TOKEN, DING_SECRET)]) + officer(
        "Kari", [ding.dingtalk_url(SECOND_TOKEN, DING_SECRET)], language="en", officer_id="kari"
    )
    world = Deployment(tmp_path, sqlite_url, channels)
    try:
        guarantor = replace(
            LANCHAO, officer=None, role=PartyRole.GUARANTOR, secures=("b-fjordlys", "b-hardanger")
        )
        world.baseline_then_change(
            guarantor, replace(FJORDLYS, officer="zhang_wei"), replace(HARDANGER, officer="kari")
        )
        alert_id = world.alerts()["b-lanchao"].id
        targets = sorted(d.target for d in world.deliveries(Delivery.alert_id == alert_id))
        assert targets == ["officer:kari", "officer:zhang_wei"]
        world.dispatch(CHANGED_AT + timedelta(seconds=1))
    finally:
        world.close()
    [chinese] = [t for t in ding.texts(DING_TOKEN) if "杭州澜潮" in t]
    assert "保证人 杭州澜潮智能装备有限公司（为借款人 FJORDLYS SJØMAT AS 提供担保）" in chinese
    assert "法定代表人 王建国 → 李娜" in chinese and "HARDANGER" not in chinese
    [english] = [t for t in ding.texts(SECOND_TOKEN) if "杭州澜潮" in t]
    assert "Guarantor 杭州澜潮智能装备有限公司 (guarantees borrower HARDANGER BETONG AS)" in english
    assert "Legal representative 王建国 → 李娜" in english and "FJORDLYS" not in english


# -- the migration --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0011_makes_every_stored_borrower_a_borrower(backend: str, request, sqlite_url: str):
    from alembic import command
    from alembic.config import Config

    from watcher.store import MIGRATIONS

    url = sqlite_url if backend == "sqlite" else request.getfixturevalue("postgres_url")
    store = Store(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0010")
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO borrower (id, name, source, registry_id, tags, active, created_at, updated_at, "
                "consecutive_failures) VALUES ('b1', 'A', 'no', '927140004', '', true, CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP, 0)"
            )
        )
    assert store.upgrade() == ("0010", SCHEMA_HEAD)
    with store.engine.begin() as connection:
        stored = connection.execute(text("SELECT role, inactive_with_borrowers FROM borrower")).one()
        assert (stored[0], bool(stored[1])) == ("borrower", False)
        connection.execute(text("INSERT INTO secures_link (party_id, borrower_id) VALUES ('b1', 'b1')"))
        with pytest.raises(Exception, match="(?i)foreign key|violates"), connection.begin_nested():
            connection.execute(text("INSERT INTO secures_link (party_id, borrower_id) VALUES ('b1', 'zz')"))
    store.dispose()
    open_store(url).dispose()


# -- the console ----------------------------------------------------------------------------------


def test_the_console_shows_a_guarantor_to_the_secured_borrowers_officer_naming_only_theirs(
    tmp_path: Path, sqlite_url: str
):
    from starlette.testclient import TestClient

    from tests.test_console import CHANNELS, PASSWORD, sign_in
    from watcher.console.app import create_app
    from watcher.console.auth import create_user

    world = Deployment(tmp_path, sqlite_url, CHANNELS)
    try:
        guarantor = replace(
            LANCHAO, officer=None, role=PartyRole.GUARANTOR, secures=("b-fjordlys", "b-hardanger")
        )
        world.baseline_then_change(
            guarantor, replace(FJORDLYS, officer="li_na"), replace(HARDANGER, officer="ola")
        )
        with world.store.transaction() as session:
            for username, officer_id in (("li", "li_na"), ("stranger", "nobody")):
                create_user(
                    session,
                    username=username,
                    password=PASSWORD,
                    role="officer",
                    officer_id=officer_id,
                    display_name=username,
                    actor="test",
                )
        client = TestClient(create_app(world.store, world.config))
        assert sign_in(client, "li").status_code == 303
        portfolio = client.get("/").text
        assert "b-lanchao" in portfolio and "b-hardanger" not in portfolio
        assert (
            "所担保借款人" in portfolio
            and "FJORDLYS SJØMAT AS</a>、另有 1 家（其他客户经理负责）" in portfolio
        )
        inbox = client.get("/alerts?status=all").text
        assert "保证人 杭州澜潮智能装备有限公司（为借款人 FJORDLYS SJØMAT AS 提供担保）" in inbox
        assert "HARDANGER" not in inbox
        guarantor_page = client.get("/borrower?id=b-lanchao").text
        rows = _connection_rows(guarantor_page)
        today = datetime.now(UTC).date().isoformat()
        recorded = f"本行担保记录 不晚于 {today}（首次记录）"
        assert rows == [
            f"FJORDLYS SJØMAT AS b-fjordlys 杭州澜潮智能装备有限公司 保证人 {recorded}",
            f"另一关联方（无权查看） 杭州澜潮智能装备有限公司 保证人 {recorded}",
        ], "the guarantee drawn both ways, the borrower of another officer without its name"
        # The borrowers it secures: the hidden ones counted after a separator (not glued to a name).
        assert "b-fjordlys</span>、另有 1 家（其他客户经理负责）" in guarantor_page
        assert "HARDANGER" not in guarantor_page and "b-hardanger" not in guarantor_page
        assert "其在本主体的角色" in guarantor_page and "其在关联主体的角色" in guarantor_page
        groups = client.get("/groups").text
        assert "担保：杭州澜潮智能装备有限公司" in groups, "a group held together by the guarantee"
        borrower_rows = _connection_rows(client.get("/borrower?id=b-fjordlys").text)
        assert borrower_rows == [
            f"杭州澜潮智能装备有限公司 b-lanchao 杭州澜潮智能装备有限公司 保证人 {recorded}"
        ]
        stranger = TestClient(create_app(world.store, world.config))
        assert sign_in(stranger, "stranger").status_code == 303
        assert "b-lanchao" not in stranger.get("/").text
        assert stranger.get("/borrower?id=b-lanchao").status_code == 403
    finally:
        world.close()


def _connection_rows(page: str) -> list[str]:
    """The connections table's rows as text (cells joined by spaces)."""
    match = re.search(r'<table class="data" id="connections-table">(.*?)</table>', page, re.S)
    assert match, "the page has no connections table"
    rows = re.findall(r"<tr class=\"connection[^\"]*\">(.*?)</tr>", match[1], re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]
