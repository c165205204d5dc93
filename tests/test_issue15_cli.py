"""Guarantors and connected parties end to end through the real command line (issue 15, tests):
``watcher borrowers import``, two rounds of ``watcher check`` on Qichacha-shaped replay answers (people
with vendor KeyNo, so every link is strong), delivery to loopback DingTalk robots, then ``watcher
history --format jsonl`` and ``watcher connections --format json``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.test_cli import Workspace
from tests.test_dispatch import DING_SECRET, DING_TOKEN, officer
from tests.test_guarantors import write_csv

if TYPE_CHECKING:
    from tests.receivers import ChatReceiver

pytest_plugins = ["tests.receivers"]

WANG_TOKEN = "0d4e1c7a2b9f3e6d8c5a1f4b7e0d3c6a9f2e5b8d1c4a7f0e3b6d9c2a5f8e1b4d"
EMPTY_LIST = json.dumps(
    {"Status": "200", "Message": "查询无结果", "Result": {"VerifyResult": 0, "Data": []}, "Paging": None}
)
CASE = "(2026)浙0206执1234号"


@dataclass(frozen=True)
class Company:
    """One watched company as Qichacha's card (735) and risk answers describe it."""

    party_id: str
    name: str
    uscc: str
    officer: str = ""
    role: str = ""
    secures: str = ""


@dataclass(frozen=True)
class Someone:
    name: str
    key_no: str


@dataclass
class Answers:
    """What one round's replay folder says about one company."""

    legal_rep: Someone
    controller: Someone | None = None
    controller_dishonest: bool = False
    extra: dict[str, str] = field(default_factory=dict)


LANCHAO = Company("b-lanchao", "杭州澜潮智能装备有限公司", "91330106MA2KH7Q302", officer="zhang_wei")
XINGHE = Company("b-xinghe", "宁波星河港务有限公司", "91330201MA2H8Q0X1L", officer="wang_fang")
GUARANTOR = Company(
    "g-lanqi", "上海临港澜启科技有限公司", "91310115MA1K4QRT94", role="guarantor", secures="b-lanchao"
)
WANG = Someone("王建国", "p5a8ef899114677ea39258ce1d927601")
SUN = Someone("孙浩", "p1d2c3b4a5968778695a4b3c2d1e0f9a")
CHEN = Someone("陈静", "p9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4")
LI = Someone("李娜", "p0b9d4a7c2e5f8a1b4c7d0e3f6a9b2c5")
ZHOU = Someone("周明远", "pc8b0ac35d597a11ef9a13a6beaa249e")


def card(company: Company, legal_rep: Someone) -> str:
    holder = f"{company.name[:2]}控股有限公司"
    result = {
        "KeyNo": f"k{company.uscc.lower()}",
        "Name": company.name,
        "OperId": legal_rep.key_no,
        "OperName": legal_rep.name,
        "Status": "存续（在营、开业、在册）",
        "CreditCode": company.uscc,
        "RegistCapi": "5000万元人民币",
        "Address": "浙江省杭州市西湖区西溪路525号",
        "Partners": [
            {
                "KeyNo": f"h{company.uscc.lower()}",
                "StockName": holder,
                "StockType": "企业法人",
                "StockPercent": "100%",
            }
        ],
        "Employees": [{"KeyNo": legal_rep.key_no, "Name": legal_rep.name, "Job": "执行董事兼总经理"}],
    }
    return json.dumps(
        {"Status": "200", "Message": "【有效请求】查询成功", "Result": result}, ensure_ascii=False
    )


def actual_control(company: Company, controller: Someone) -> str:
    person = {"KeyNo": controller.key_no, "Name": controller.name}
    result = {
        "KeyNo": f"k{company.uscc.lower()}",
        "CompanyName": company.name,
        "ControllerData": {**person, "PercentTotal": "62.2500%", "ControlPercent": "62.2500%"},
        "ActualControl": {"PersonList": [{"Org": 2, **person}], "StockPercent": "62.2500%"},
        "ControllerDataList": [{**person, "IsActual": "1", "ConInfo": {"VotePercent": "62.2500%"}}],
    }
    return json.dumps(
        {"Status": "200", "Message": "【有效请求】查询成功", "Result": result}, ensure_ascii=False
    )


def dishonest_list() -> str:
    row = {
        "Id": "04e8fe67ce2cb9ec9482a1261a0235ff",
        "Liandate": "2026-02-13",
        "Anno": CASE,
        "Executegov": "宁波市北仑区人民法院",
        "Executestatus": "全部未履行",
        "Publicdate": "2026-03-03",
        "Executeno": "(2025)浙0206民初3310号",
        "ActionRemark": "有履行能力而拒不履行生效法律文书确定义务",
        "Amount": "1256800",
    }
    answer = {
        "Status": "200",
        "Message": "【有效请求】查询成功",
        "Paging": {"PageSize": 10, "PageIndex": 1, "TotalRecords": 1},
        "Result": {"VerifyResult": 1, "Data": [row]},
    }
    return json.dumps(answer, ensure_ascii=False)


def stage(ws: Workspace, round_of: dict[Company, Answers]) -> None:
    """Write one round's replay folder: ``feed/cn/<USCC>/<endpoint>.json`` for every company."""
    for company, answers in round_of.items():
        folder = ws.feed / "cn" / company.uscc
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        files = {"getinfo": card(company, answers.legal_rep), **answers.extra}
        if answers.controller is not None:
            files["actual_control"] = actual_control(company, answers.controller)
            for name in ("shixin", "history_shixin", "person_shixin_legal_representative"):
                files[name] = EMPTY_LIST
            files["person_shixin_actual_controller"] = (
                dishonest_list() if answers.controller_dishonest else EMPTY_LIST
            )
        for endpoint, text in files.items():
            (folder / f"{endpoint}.json").write_text(text, encoding="utf-8")


@dataclass
class World:
    ws: Workspace
    ding: ChatReceiver

    def zhang(self) -> list[str]:
        return self.ding.texts(DING_TOKEN)

    def wang(self) -> list[str]:
        return self.ding.texts(WANG_TOKEN)

    def check(self) -> str:
        result = self.ws.cli("check")
        assert result.exit_code == 0, result.output
        return result.stdout

    def connections(self, *args: str) -> dict:
        result = self.ws.cli("connections", "--format", "json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chat_receiver_factory) -> World:
    monkeypatch.delenv("WATCHER_CONFIG", raising=False)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    ding = chat_receiver_factory(dingtalk_secret=DING_SECRET)
    officers = officer("张伟", [ding.dingtalk_url(DING_TOKEN, DING_SECRET)]) + officer(
        "王芳", [ding.dingtalk_url(WANG_TOKEN, DING_SECRET)], officer_id="wang_fang"
    )
    ws = Workspace(tmp_path / "ws", "\n" + officers)
    rows = [
        [c.party_id, c.name, "cn", c.uscc, c.officer, "", "", "", c.role, c.secures]
        for c in (LANCHAO, XINGHE, GUARANTOR)
    ]
    imported = ws.cli("borrowers", "import", str(write_csv(tmp_path / "parties.csv", rows)))
    assert imported.exit_code == 0 and "3 added" in imported.stdout, imported.output
    return World(ws, ding)


def baseline(world: World, round_of: dict[Company, Answers]) -> None:
    stage(world.ws, round_of)
    assert "(3 baseline)" in world.check()
    assert world.zhang() == [] and world.wang() == [], "the first check is a silent baseline"


def test_a_guarantors_legal_representative_change_reaches_the_borrowers_officer_naming_both(world: World):
    first = {LANCHAO: Answers(WANG), XINGHE: Answers(LI), GUARANTOR: Answers(SUN)}
    baseline(world, first)
    stage(world.ws, {**first, GUARANTOR: Answers(CHEN)})
    world.check()
    [message] = world.zhang()
    assert "保证人 上海临港澜启科技有限公司（为借款人 杭州澜潮智能装备有限公司 提供担保）" in message
    assert "法定代表人 孙浩 → 陈静" in message
    assert world.wang() == [], "the guarantor secures nothing of wang_fang's"
    [event] = [
        e for e in world.ws.history("--borrower", "g-lanqi") if e["category"] == "legal_representative"
    ]
    assert (event["before"], event["after"]) == ("孙浩", "陈静") and event["alert_id"] is not None


def test_a_new_legal_representative_who_leads_another_watched_company_raises_connected_party(world: World):
    first = {LANCHAO: Answers(WANG), XINGHE: Answers(LI), GUARANTOR: Answers(SUN)}
    baseline(world, first)
    [guarantee] = world.connections()["connections"]
    pair = (guarantee["party"], guarantee["other"], guarantee["basis"])
    assert pair == ("b-lanchao", "g-lanqi", "loan_record"), "the guarantee links them from the start"
    assert (guarantee["roles_here"], guarantee["roles_there"]) == (["guarantor"], [])
    dot = world.ws.cli("connections", "--format", "dot").stdout
    # A direct edge, no middle node, an arrow from the guarantor to the borrower whose loan it secures.
    assert '"party:g-lanqi" -- "party:b-lanchao" [label="保证人", dir=forward];' in dot
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg"], input=dot.encode(), check=True, capture_output=True)
    stage(world.ws, {**first, XINGHE: Answers(WANG)})
    world.check()
    [message] = world.wang()
    # 澜潮 is zhang_wei's borrower: wang_fang reads who links them, not whom (as in the console).
    assert "关联关系：法定代表人 王建国 同时任 另一关联方（无权查看） 的法定代表人" in message, message
    assert "宁波星河港务有限公司" in message and "杭州澜潮" not in message and "b-lanchao" not in message
    assert world.zhang() == [], "nothing changed at 澜潮: its officer hears nothing"
    [connected] = world.ws.history("--borrower", "b-xinghe", "--category", "connected_party")
    assert connected["subject"] == "王建国" and connected["severity"] == "warning"
    assert connected["alert_id"] is not None
    assert connected["after"].startswith("杭州澜潮智能装备有限公司 [b-lanchao]:"), connected
    [link] = world.connections("--party", "b-xinghe")["connections"]
    assert (link["other"], link["via"]["name"], link["basis"]) == ("b-lanchao", "王建国", "vendor_key")
    # A re-check finding the same ties raises nothing again.
    world.check()
    assert len(world.wang()) == 1


def test_a_dishonest_listing_of_a_shared_controller_reaches_both_officers(world: World):
    """Only 澜潮's answers list the controller (星河's person list not yet updated): its officer hears
    it as 澜潮's own news, 星河's officer as a connected risk one step lower."""
    first = {
        LANCHAO: Answers(WANG, controller=ZHOU),
        XINGHE: Answers(LI, controller=ZHOU),
        GUARANTOR: Answers(SUN),
    }
    baseline(world, first)
    [group] = world.connections()["groups"]
    members = {p["id"] for p in group["parties"]}
    assert members == {"b-lanchao", "b-xinghe", "g-lanqi"}, "by the shared controller and the guarantee"
    stage(world.ws, {**first, LANCHAO: Answers(WANG, controller=ZHOU, controller_dishonest=True)})
    world.check()
    [own] = world.zhang()
    assert (
        own.startswith("【严重】杭州澜潮智能装备有限公司")
        and "失信被执行人 列入（针对实际控制人 周明远）" in own
    )
    [connected] = world.wang()
    # Nothing in 星河's own record changed: the title says what the news is.
    assert (
        connected.startswith("【高风险】宁波星河港务有限公司（b-xinghe）：关联风险提示") and CASE in connected
    )
    assert (
        "关联风险：实际控制人 周明远 同时任 另一关联方（无权查看） 的实际控制人，另一关联方（无权查看） "
        "失信被执行人 列入（针对实际控制人 周明远）" in connected
    )
    assert "杭州澜潮" not in connected and "登记信息变更" not in connected
    [row] = world.ws.history("--borrower", "b-xinghe", "--category", "connected_risk")
    assert (row["subject"], row["severity"], row["party"]) == ("周明远", "high", "actual_controller")
    world.check()
    assert (len(world.zhang()), len(world.wang())) == (1, 1), "the listing is raised once"


def test_a_listing_the_other_party_holds_itself_is_not_repeated_as_a_connected_risk(world: World):
    """星河's person list shows the shared controller first: 星河's officer hears it as 星河's own news,
    澜潮's as a connected risk. When 澜潮's own list shows it too, 澜潮's officer hears it as 澜潮's
    own (critical, after the connected high), but 星河's officer, who knows it already from 星河's own
    record, gets no connected risk back from 澜潮's check."""
    first = {
        LANCHAO: Answers(WANG, controller=ZHOU),
        XINGHE: Answers(LI, controller=ZHOU),
        GUARANTOR: Answers(SUN),
    }
    baseline(world, first)
    xinghe_listed = {**first, XINGHE: Answers(LI, controller=ZHOU, controller_dishonest=True)}
    stage(world.ws, xinghe_listed)
    world.check()
    [own] = world.wang()
    [connected] = world.zhang()
    assert own.startswith("【严重】宁波星河港务有限公司") and connected.startswith(
        "【高风险】杭州澜潮智能装备有限公司"
    )
    stage(world.ws, {**xinghe_listed, LANCHAO: Answers(WANG, controller=ZHOU, controller_dishonest=True)})
    world.check()
    assert len(world.wang()) == 1, "星河 holds the listing itself: no connected risk from 澜潮"
    [_, lanchao_own] = world.zhang()
    assert lanchao_own.startswith("【严重】杭州澜潮智能装备有限公司") and "关联风险" not in lanchao_own
    assert len(world.ws.history("--borrower", "b-xinghe", "--category", "connected_risk")) == 0
