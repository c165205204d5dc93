"""Borrowers guaranteeing each other (互保, a guarantee circle: issue 15 follow-up): a borrower row's
``secures``, the import's checks (a circle whose member was rejected says so, not "no such borrower"),
``borrowers list`` round trips, a borrower that guarantees others is never deactivated with them, its
alerts reach its own officer and the secured borrowers' officers naming both relations, the console's
scope, and the guarantee circle as one group of ``watcher connections`` — through the real command
line, real SQLite and loopback DingTalk robots.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.deployment import FJORDLYS, HARDANGER, LANCHAO, Deployment
from tests.test_cli import Workspace
from tests.test_dispatch import DING_SECRET, DING_TOKEN, officer
from tests.test_guarantors import CN_A, CN_B, NO_A, NO_B, NO_C, rejections, row, write_csv
from tests.test_issue15_cli import CHEN, LI, SUN, WANG, WANG_TOKEN, ZHOU, Answers, Company, stage
from watcher.importer import BorrowerRow
from watcher.render import AlertView, SecuredBorrower, render_alert
from watcher.vocabulary import Language, PartyRole, Severity

if TYPE_CHECKING:
    from tests.receivers import ChatReceiver

pytest_plugins = ["tests.receivers"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


CIRCLE = [
    row("c-a", CN_A, officer="zhang_wei", secures="c-b"),
    row("c-b", NO_A, officer="kari", secures="c-c"),
    row("c-c", NO_B, secures="c-a"),
]


def unreadable(cells: list[str]) -> list[str]:
    """The row with a registry id its source refuses: rejected before its ``secures`` is looked at."""
    return [*cells[:3], "not-a-uscc", *cells[4:]]


# -- the borrowers file ---------------------------------------------------------------------------


def test_a_guarantee_circle_of_borrowers_imports_and_round_trips_through_borrowers_list(
    ws: Workspace, tmp_path: Path
):
    result = ws.cli("borrowers", "import", str(write_csv(tmp_path / "circle.csv", CIRCLE)))
    assert result.exit_code == 0 and "3 added" in result.stdout, result.output
    assert {b["id"]: (b["role"], b["secures"]) for b in ws.borrowers()} == {
        "c-a": ("borrower", ["c-b"]),
        "c-b": ("borrower", ["c-c"]),
        "c-c": ("borrower", ["c-a"]),
    }
    exported = ws.cli("borrowers", "list", "--format", "csv")
    assert exported.exit_code == 0, exported.output
    written = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["id"], r["role"], r["secures"]) for r in written] == [
        ("c-a", "borrower", "c-b"),
        ("c-b", "borrower", "c-c"),
        ("c-c", "borrower", "c-a"),
    ]
    (tmp_path / "again.csv").write_text(exported.stdout, encoding="utf-8")
    again = ws.cli("borrowers", "import", str(tmp_path / "again.csv"))
    assert again.exit_code == 0 and "3 unchanged" in again.stdout, again.output
    assert "borrower, guarantees c-b" in ws.cli("borrowers", "list").stdout
    # Dropping the secures cell of a borrower row drops its guarantee; other rows' stay.
    cut = [row("c-a", CN_A, officer="zhang_wei"), *CIRCLE[1:]]
    assert ws.cli("borrowers", "import", str(write_csv(tmp_path / "cut.csv", cut))).exit_code == 0
    assert {b["id"]: b["secures"] for b in ws.borrowers()} == {"c-a": [], "c-b": ["c-c"], "c-c": ["c-a"]}


def test_a_circle_member_rejected_earlier_is_named_as_rejected_not_as_missing(ws: Workspace, tmp_path: Path):
    path = write_csv(
        tmp_path / "parties.csv",
        [
            unreadable(row("c-a", CN_A, secures="c-b")),  # 2
            row("c-b", NO_A, secures="c-c"),  # 3: c-c is rejected below, so this row is too
            row("c-c", NO_B, secures="c-a"),  # 4
            row("g-1", NO_C, role="guarantor", secures="b-ok"),  # 5
            row("b-ok", CN_B),  # 6
            row("b-of-g", CN_B, secures="g-1"),  # 7: a guarantor is not a borrower
            row("b-self", CN_B, secures="b-self"),  # 8
            row("b-lost", CN_B, secures="b-nowhere"),  # 9
            row("b-case", CN_B, secures="B-OK"),  # 10: ids are case-sensitive
        ],
    )
    result = ws.cli("borrowers", "import", str(path))
    assert result.exit_code == 1, result.output
    rejected = rejections(result.stderr)
    assert set(rejected) == {2, 3, 4, 7, 8, 9, 10}, result.stderr
    assert "registry_id 'not-a-uscc'" in rejected[2]
    assert rejected[4] == "secures 'c-a': borrower 'c-a' was rejected (line 2)"
    assert rejected[3] == "secures 'c-c': borrower 'c-c' was rejected (line 4)"
    assert rejected[7] == "secures 'g-1', a guarantor: secures names borrowers only"
    assert "a party cannot secure itself" in rejected[8]
    assert rejected[9] == "secures 'b-nowhere': no such borrower in the file or the database"
    assert (
        rejected[10] == "secures 'B-OK': no such borrower in the file or the database (did you mean 'b-ok'?)"
    )
    assert {b["id"]: b["secures"] for b in ws.borrowers()} == {"b-ok": [], "g-1": ["b-ok"]}


def test_a_circle_member_in_the_database_may_be_secured_though_its_row_is_rejected(
    ws: Workspace, tmp_path: Path
):
    assert (
        ws.cli("borrowers", "import", str(write_csv(tmp_path / "a.csv", [row("c-a", CN_A)]))).exit_code == 0
    )
    bad_a = unreadable(row("c-a", CN_A, secures="c-c"))
    result = ws.cli(
        "borrowers", "import", str(write_csv(tmp_path / "b.csv", [bad_a, row("c-c", NO_B, secures="c-a")]))
    )
    assert set(rejections(result.stderr)) == {2}, result.stderr
    assert {b["id"]: b["secures"] for b in ws.borrowers()} == {"c-a": [], "c-c": ["c-a"]}


# -- lifecycle ------------------------------------------------------------------------------------


def test_a_borrower_that_guarantees_others_is_not_deactivated_with_them(ws: Workspace, tmp_path: Path):
    parties = [
        row("b-1", CN_A, secures="b-2"),
        row("b-2", CN_B, secures="b-1"),
        row("g-1", NO_A, role="guarantor", secures="b-2"),
    ]
    assert ws.cli("borrowers", "import", str(write_csv(tmp_path / "in.csv", parties))).exit_code == 0

    def active() -> dict[str, bool]:
        return {b["id"]: b["active"] for b in ws.borrowers()}

    stopped = ws.cli("borrowers", "deactivate", "b-2")
    assert "deactivated guarantor g-1" in stopped.stdout and "b-1" not in stopped.stdout, stopped.output
    assert active() == {"b-1": True, "b-2": False, "g-1": False}
    again = ws.cli("borrowers", "import", str(write_csv(tmp_path / "in.csv", parties)))
    assert "deactivated" not in again.stdout and active()["b-1"] is True, again.output
    back = ws.cli("borrowers", "reactivate", "b-2")
    assert "reactivated guarantor g-1" in back.stdout and active() == {"b-1": True, "b-2": True, "g-1": True}
    ws.cli("borrowers", "deactivate", "b-1")
    ws.cli("borrowers", "deactivate", "b-2")
    assert ws.cli("borrowers", "reactivate", "b-2").exit_code == 0
    assert active() == {"b-1": False, "b-2": True, "g-1": True}, "b-1 was stopped by hand: it stays"


# -- text -----------------------------------------------------------------------------------------


def mutual_view(secures: tuple[SecuredBorrower, ...]) -> AlertView:
    return AlertView(
        alert_id=7,
        borrower_id="b-1",
        borrower_name="杭州澜潮智能装备有限公司",
        severity=Severity.WARNING,
        source="cn",
        detected_at=datetime(2026, 3, 3, 2, 0, tzinfo=UTC),
        changes=(),
        occasions_in_window=0,
        window_days=365,
        recommend_early_repayment=False,
        party_role=PartyRole.BORROWER,
        secures=secures,
    )


def test_a_borrowers_alert_names_whom_it_guarantees_besides_being_a_borrower():
    view = mutual_view((SecuredBorrower("b-2", "宁波星河港务有限公司", "wang_fang"),))
    theirs = render_alert(view.for_officer("wang_fang"), Language.ZH_CN)
    assert "借款人 杭州澜潮智能装备有限公司（同时为借款人 宁波星河港务有限公司 提供担保）" in theirs.title
    assert "借款人编号 b-1；其担保的借款人：宁波星河港务有限公司（b-2）" in theirs.body
    english = render_alert(view.for_officer("wang_fang"), Language.EN)
    assert (
        "Borrower 杭州澜潮智能装备有限公司 (also guarantees borrower 宁波星河港务有限公司)" in english.title
    )
    assert "Borrower ID b-1; guarantees borrower(s): 宁波星河港务有限公司 (b-2)" in english.body
    own = render_alert(view.for_officer("zhang_wei"), Language.ZH_CN)
    assert "借款人 杭州澜潮智能装备有限公司（同时为 1 家借款人提供担保）" in own.title
    assert "宁波星河" not in own.title + own.body
    plain = render_alert(mutual_view(()), Language.ZH_CN).title
    assert "杭州澜潮智能装备有限公司（b-1）" in plain and "担保" not in plain


# -- the console ----------------------------------------------------------------------------------


def test_the_console_shows_a_borrower_to_the_officer_of_a_borrower_it_guarantees(
    tmp_path: Path, sqlite_url: str
):
    from starlette.testclient import TestClient

    from tests.test_console import CHANNELS, PASSWORD, sign_in
    from watcher.console.app import create_app
    from watcher.console.auth import create_user

    world = Deployment(tmp_path, sqlite_url, CHANNELS)
    try:
        world.baseline_then_change(
            replace(LANCHAO, role=PartyRole.BORROWER, secures=("b-fjordlys",)),
            replace(FJORDLYS, officer="li_na"),
            replace(HARDANGER, officer="ola"),
        )
        with world.store.transaction() as session:
            for username, officer_id in (("li", "li_na"), ("ola", "ola")):
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
        inbox = client.get("/alerts?status=all").text
        assert "借款人 杭州澜潮智能装备有限公司（同时为借款人 FJORDLYS SJØMAT AS 提供担保）" in inbox
        assert client.get("/borrower?id=b-lanchao").status_code == 200
        other = TestClient(create_app(world.store, world.config))
        assert sign_in(other, "ola").status_code == 303
        assert "b-lanchao" not in other.get("/").text
        assert other.get("/borrower?id=b-lanchao").status_code == 403
    finally:
        world.close()


# -- end to end through the command line ----------------------------------------------------------

LANCHAO_CO = Company(
    "b-lanchao", "杭州澜潮智能装备有限公司", "91330106MA2KH7Q302", officer="zhang_wei", secures="b-xinghe"
)
XINGHE_CO = Company(
    "b-xinghe", "宁波星河港务有限公司", "91330201MA2H8Q0X1L", officer="wang_fang", secures="b-linqi"
)
LINQI_CO = Company(
    "b-linqi", "上海临港澜启科技有限公司", "91310115MA1K4QRT94", officer="zhang_wei", secures="b-lanchao"
)


def test_a_guarantee_circle_is_one_group_and_each_members_alert_reaches_both_officers_once(
    tmp_path: Path, chat_receiver_factory
):
    """澜潮 guarantees 星河, 星河 guarantees 临港, 临港 guarantees 澜潮. 星河 (王芳's) and 临港 (张伟's)
    change: 张伟 hears of 星河 as the guarantor of his 临港, and of 临港 once although he is both its
    officer and the officer of 澜潮 it guarantees; 王芳 hears of 星河, not whom else it guarantees."""
    ding: ChatReceiver = chat_receiver_factory(dingtalk_secret=DING_SECRET)
    officers = officer("张伟", [ding.dingtalk_url(DING_TOKEN, DING_SECRET)]) + officer(
        "王芳", [ding.dingtalk_url(WANG_TOKEN, DING_SECRET)], officer_id="wang_fang"
    )
    ws = Workspace(tmp_path / "ws", "\n" + officers)
    circle = (LANCHAO_CO, XINGHE_CO, LINQI_CO)
    rows = [[c.party_id, c.name, "cn", c.uscc, c.officer, "", "", "", "", c.secures] for c in circle]
    imported = ws.cli("borrowers", "import", str(write_csv(tmp_path / "circle.csv", rows)))
    assert imported.exit_code == 0 and "3 added" in imported.stdout, imported.output
    first = {LANCHAO_CO: Answers(WANG), XINGHE_CO: Answers(LI), LINQI_CO: Answers(SUN)}
    stage(ws, first)
    assert "(3 baseline)" in ws.cli("check").stdout
    connections = ws.cli("connections", "--format", "json")
    assert connections.exit_code == 0, connections.output
    [group] = json.loads(connections.stdout)["groups"]
    assert {p["id"] for p in group["parties"]} == {"b-lanchao", "b-xinghe", "b-linqi"}
    stage(ws, {**first, XINGHE_CO: Answers(CHEN), LINQI_CO: Answers(ZHOU)})
    assert ws.cli("check").exit_code == 0
    zhang, wang = ding.texts(DING_TOKEN), ding.texts(WANG_TOKEN)
    [xinghe_to_zhang] = [t for t in zhang if t.startswith("【警示】借款人 宁波星河")]
    assert "借款人 宁波星河港务有限公司（同时为借款人 上海临港澜启科技有限公司 提供担保）" in xinghe_to_zhang
    assert "法定代表人 李娜 → 陈静" in xinghe_to_zhang
    [linqi_to_zhang] = [t for t in zhang if t.startswith("【警示】借款人 上海临港")]
    assert (
        "借款人 上海临港澜启科技有限公司（同时为借款人 杭州澜潮智能装备有限公司 提供担保）" in linqi_to_zhang
    )
    assert len(zhang) == 2, zhang
    [xinghe_to_wang] = wang
    assert "借款人 宁波星河港务有限公司（同时为 1 家借款人提供担保）" in xinghe_to_wang
    assert "上海临港" not in xinghe_to_wang


# -- monitoring gaps ------------------------------------------------------------------------------


def test_a_source_gap_reaches_the_officer_of_a_borrower_a_failing_borrower_guarantees(
    tmp_path: Path, sqlite_url: str
):
    """no2 (no officer) guarantees cn1 (张伟's): the Norwegian source's gap alert reaches 张伟, who
    reads no2 as the borrower guaranteeing his, and not the other failing borrowers."""
    from tests.test_monitoring import FAILING_AFTER, _break, _scan
    from tests.test_pipeline import CN1, CN_ID, NO1, NO_ID, T0, World
    from watcher.alerts import alert_view
    from watcher.models import Delivery

    world = World(tmp_path, sqlite_url)
    try:
        others = [
            BorrowerRow(id=f"no{n}", name=f"SELSKAP {n} AS", source="no", registry_id=NO_ID) for n in (2, 3)
        ]
        guaranteeing = replace(others[0], role=PartyRole.BORROWER, secures=("cn1",))
        world.add(replace(NO1, officer=None), guaranteeing, others[1], CN1)
        world.feed_qichacha(CN_ID, "eci_info_verify_getinfo_t0.json")
        _break(world, "no", NO_ID)
        world.check(T0)
        [gap_id] = _scan(world, T0 + FAILING_AFTER * 2).gaps
        assert {d.target for d in world.rows(Delivery)} >= {"officer:zhang_wei"}
        with world.store.session() as session:
            view = alert_view(session, gap_id, window_days=365)
        zhang = render_alert(view.for_officer("zhang_wei"), Language.ZH_CN).body
        assert "no2" in zhang and "no1" not in zhang and "no3" not in zhang, zhang
    finally:
        world.store.dispose()
