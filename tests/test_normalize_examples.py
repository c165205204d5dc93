"""Status wording and holder kinds shared by the Chinese vendors and the configurable feeds."""

from __future__ import annotations

import pytest

from watcher.normalize import looks_like_company, status_from_text
from watcher.record import CompanyStatus


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("存续（在营、开业、在册）", CompanyStatus.ACTIVE),
        ("在业", CompanyStatus.ACTIVE),
        ("迁出", CompanyStatus.OTHER),
        ("吊销，未注销", CompanyStatus.REVOKED),
        ("注销", CompanyStatus.DEREGISTERED),
        ("破产", CompanyStatus.BANKRUPT),
        ("清算中", CompanyStatus.LIQUIDATION),
        ("存续（列入经营异常名录）", CompanyStatus.ABNORMAL),
    ],
)
def test_chinese_status_wording(text: str, code: CompanyStatus):
    status = status_from_text(text)
    assert status is not None and status.code is code
    assert status_from_text("  ") is None


@pytest.mark.parametrize(
    ("name", "company"),
    [
        ("杭州澜川投资管理合伙企业（有限合伙）", True),
        ("上海临港澜启科技有限公司", True),
        ("VESTLAND REVISJON AS", True),
        ("Acme Holdings Ltd.", True),
        ("王建国", False),
        ("Magnus Solheim", False),
    ],
)
def test_company_names_are_told_from_people(name: str, company: bool):
    assert looks_like_company(name) is company
