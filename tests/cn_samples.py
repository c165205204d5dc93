"""The Chinese vendors' real-shaped risk samples (tests/fixtures/registries/cn_*/risk), by raw answer
key: one table per vendor for the mapping tests, the end-to-end stand-ins and bench/billed_calls.py.

Each stem names ``<stem>.json`` and ``<stem>_t1.json`` (the same answer plus one item, or with the
controller swapped); see /work/shared/fixtures/registries/PROVENANCE-cn-risk.md for how sure each is.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "registries"
QICHACHA_RISK = FIXTURES / "cn_qichacha" / "risk"
TIANYANCHA_RISK = FIXTURES / "cn_tianyancha" / "risk"
# The company every sample is about.
SAMPLE_USCC = "91320506MA1WQ3K565"

QICHACHA_SAMPLES = {
    "actual_control": "643_ActualControl_SuspectedActualControl",
    "beneficial_owner": "1003_BeneficialOwner_GetInfo",
    "exception": "739_ExceptionCheck_GetList",
    "serious_illegal": "748_SeriousIllegalCheck_GetList",
    "equity_pledged": "751_EquityPledgedCheck_GetList",
    "chattel_mortgage": "747_ChattelMortgageCheck_GetList",
    "zhixing": "741_ZhixingCheck_GetList",
    "shixin": "740_ShixinCheck_GetList",
    "history_shixin": "926_HistoryShiXinCheck_GetList",
    "sumptuary": "742_SumptuaryCheck_GetList",
    "bankruptcy": "761_BankruptcyCheck_GetList",
    "change_log": "734_ECIChange_GetList",
    "history_oper": "922_HistoryOperCheck_GetList",
    "basic_details": "410_ECIV4_GetBasicDetailsByName",
}
# The registry card (735) of the same company: the vendor's samples have none, this one was written
# to match them.
QICHACHA_CARD = "735_getinfo"

TIANYANCHA_SAMPLES = {
    "baseinfo": "ic_baseinfo_normal",
    "changeinfo": "ic_changeinfo_2.0",
    "hi_ic": "hi_ic_2.0",
    "actual_control": "ic_actualControl_3.0",
    "humanholding": "ic_humanholding_2.0",
    "abnormal": "mr_abnormal_2.0",
    "illegal": "mr_illegalinfo_2.0",
    "equity": "mr_equityInfo_2.0",
    "mortgage": "mr_mortgageInfo_2.0",
    "zhixing": "jr_zhixinginfo_2.0",
    "dishonest": "jr_dishonest_2.0",
    "hi_dishonest": "hi_dishonest_2.0",
    "consumption_restriction": "jr_consumptionRestriction_2.0",
    "bankruptcy": "jr_bankruptcy_2.0",
}
