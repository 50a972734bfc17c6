"""Vehicle reports (issue 19): 车型报价与成交月报 (``[tallies.models_quoted_sold]`` in
contract.toml: per month and per model, the quotes issued by their 出具日期 and the sales,
signed contracts not cancelled since) made end to end — catalogue imported, quotes issued and
contracts signed through the engine on a fixed clock, the PDF opened and its numbers read —
as the manager and a consultant see it, refused to a stock keeper; quotes from before the
出具日期 get the day of their first 报价单; and the stock per model, a snapshot, says 截至 the
day instead of a period (PDF, CLI, web page)."""
from __future__ import annotations

import re
import shutil
from datetime import datetime

import pytest
from openpyxl import load_workbook

from engine import Engine, load_config
from engine.errors import InputError, NotFoundError
from engine.sheets import read_xlsx
from helpers import (CST, ROOT, contract_data, example, make_dealer_dir, pdf_text,
                     point_at_workflows, run_cli, vin_numbered, write_xlsx)
from web_support import client, sign_in

CATALOGUE = [
    ["奇瑞", "瑞虎8 PRO", "2026款 1.6TGDI DCT 卓越版", 139900, "燃油", "否", datetime(2026, 9, 1)],
    ["奇瑞", "瑞虎9", "2026款 2.0TGDI 豪华版", 159900, "燃油", "否", datetime(2026, 9, 1)],
    ["奇瑞", "风云A8", "2026款 PHEV 领航版", 119900, "插电混动", "是", datetime(2026, 9, 1)],
]
R8, R9, A8 = ("奇瑞 瑞虎8 PRO 2026款 1.6TGDI DCT 卓越版", "奇瑞 瑞虎9 2026款 2.0TGDI 豪华版",
              "奇瑞 风云A8 2026款 PHEV 领航版")


def at(clock, day: str) -> None:
    clock.now = datetime.fromisoformat(day + "T10:00").replace(tzinfo=CST)


def catalogue(engine, tmp_path) -> dict[str, str]:
    """The catalogue imported by the sales manager: its ids by 'brand series model'."""
    path = write_xlsx(tmp_path / "价格表.xlsx",
                      ["品牌", "车系", "车型", "厂家指导价", "能源类型", "新能源目录", "指导价生效日期"],
                      CATALOGUE)
    report = engine.import_cases("vehicle_model", read_xlsx(path), "wang")
    assert report.ok, report.problems
    return {" ".join(row[:3]): o["id"] for row, o in zip(CATALOGUE, report.outcomes)}


def quote(engine, model_id: str, who: str = "zhang", mobile: str = "13800138000",
          issue: bool = True) -> str:
    data = {k: v for k, v in example("quote").items()
            if k not in ("brand", "series", "model", "list_price", "nev_listed")}
    data.update(vehicle_model=model_id, consultant=who, customer_mobile=mobile,
                monthly_payment="3500.00")
    case_id = engine.create("quote", data, who).id
    if issue:
        assert engine.fire(case_id, "issue", who).state == "issued"
    return case_id


def sold(engine, model_id: str, serial: int, who: str = "zhang",
         mobile: str = "13800138000") -> str:
    """A contract for the model, submitted, issued and signed today by ``who``."""
    today = engine.clock().date()
    data = {k: v for k, v in contract_data(today, vin=vin_numbered(serial)).items()
            if k not in ("brand", "series", "model", "vehicle_price")}
    data.update(vehicle_model=model_id, consultant=who, customer_mobile=mobile)
    case_id = engine.create("contract", data, who).id
    if engine.fire(case_id, "submit", who).state == "pending_approval":
        engine.fire(case_id, "approve", "wang")
    engine.fire(case_id, "issue", who)
    engine.fire(case_id, "sign", who, {"signed_date": today.isoformat()})
    return case_id


def table_of(path) -> tuple[list, dict[tuple, list]]:
    """The report's .xlsx: its header and (月份, 品牌, 车系, 车型) → the counts."""
    rows = [list(r) for r in load_workbook(path).active.iter_rows(values_only=True)]
    header = next(r for r in rows if r and r[0] == "月份")
    body = {tuple(r[:4]): r[4:] for r in rows[rows.index(header) + 1:] if r and r[0]}
    return header, body


def pdf_rows(path) -> list[str]:
    """The PDF's lines, spaces squeezed and none beside a Chinese character (pdftotext puts
    one between Chinese and Latin text: 2026 年 10 月)."""
    squeezed = (re.sub(r"\s+", " ", line).strip() for line in pdf_text(path).splitlines())
    return [re.sub(r"(?<=[\u3000-\u9fff]) | (?=[\u3000-\u9fff])", "", line) for line in squeezed]


@pytest.fixture
def sales(engine, clock, tmp_path):
    """October: zhang issues three quotes (two 瑞虎8 PRO, one 风云A8) and a draft he never
    issues, li one 瑞虎8 PRO; zhang sells a 瑞虎8 PRO. November: zhang quotes a 瑞虎9 and sells
    a 瑞虎8 PRO, and a 瑞虎9 whose contract is cancelled; li sells a 瑞虎9."""
    ids = catalogue(engine, tmp_path)
    at(clock, "2026-10-15")
    quote(engine, ids[R8])
    quote(engine, ids[R8])
    quote(engine, ids[A8])                    # quoted, never sold
    quote(engine, ids[R8], issue=False)       # a draft is no quote issued
    quote(engine, ids[R8], who="li", mobile="13900139001")
    at(clock, "2026-10-20")
    sold(engine, ids[R8], 901)
    at(clock, "2026-11-10")
    quote(engine, ids[R9])
    at(clock, "2026-11-12")
    sold(engine, ids[R8], 902)
    gone = sold(engine, ids[R9], 903)
    engine.fire(gone, "cancel", "wang", {"cancel_reason": "客户退订"})
    at(clock, "2026-11-20")
    sold(engine, ids[R9], 904, who="li", mobile="13900139001")
    at(clock, "2026-11-26")
    return ids


MANAGER = {
    ("2026年10月", "奇瑞", "瑞虎8 PRO", "2026款 1.6TGDI DCT 卓越版"): [3, 1, "33.3%"],
    ("2026年10月", "奇瑞", "风云A8", "2026款 PHEV 领航版"): [1, 0, "0.0%"],
    ("2026年11月", "奇瑞", "瑞虎8 PRO", "2026款 1.6TGDI DCT 卓越版"): [0, 1, "—"],
    ("2026年11月", "奇瑞", "瑞虎9", "2026款 2.0TGDI 豪华版"): [1, 1, "100.0%"],
    ("合计", None, None, None): [5, 3, "60.0%"],
}


def test_the_manager_gets_quotes_and_sales_per_month_and_model_as_a_pdf(engine, sales, tmp_path):
    made = engine.report("models_quoted_sold", datetime(2026, 10, 1).date(),
                         datetime(2026, 11, 30).date(), ("xlsx", "pdf"), tmp_path / "out",
                         actor="wang")
    assert made["title"] == "车型报价与成交月报"
    header, body = table_of(made["files"]["xlsx"])
    assert header == ["月份", "品牌", "车系", "车型", "报价单数", "成交台数", "成交/报价"]
    assert body == MANAGER
    assert list(body) == list(MANAGER)          # by month, then by model; the total last

    lines = pdf_rows(made["files"]["pdf"])
    assert "车型报价与成交月报" in lines and "统计期间：2026年10月1日至2026年11月30日" in lines
    at = lines.index("月份品牌车系车型报价单数成交台数成交/报价")
    assert lines[at + 1:at + 6] == [
        "2026年10月奇瑞瑞虎8 PRO 2026款1.6TGDI DCT卓越版3 1 33.3%",
        "2026年10月奇瑞风云A8 2026款PHEV领航版1 0 0.0%",
        "2026年11月奇瑞瑞虎8 PRO 2026款1.6TGDI DCT卓越版0 1 —",
        "2026年11月奇瑞瑞虎9 2026款2.0TGDI豪华版1 1 100.0%",
        "合计5 3 60.0%"]


def test_a_consultant_sees_their_own_numbers_and_the_stock_keeper_none(engine, sales, tmp_path):
    made = engine.report("models_quoted_sold", datetime(2026, 10, 1).date(),
                         datetime(2026, 11, 30).date(), ("xlsx",), tmp_path / "zhang",
                         actor="zhang")
    _, body = table_of(made["files"]["xlsx"])
    assert body[("2026年10月", "奇瑞", "瑞虎8 PRO", "2026款 1.6TGDI DCT 卓越版")] == [2, 1, "50.0%"]
    assert body[("2026年11月", "奇瑞", "瑞虎9", "2026款 2.0TGDI 豪华版")] == [1, 0, "0.0%"]
    assert body[("合计", None, None, None)][:2] == [4, 2]

    # the month defaults to the current one (November)
    made = engine.report("models_quoted_sold", formats=("xlsx",), out_dir=tmp_path / "li",
                         actor="li")
    _, body = table_of(made["files"]["xlsx"])
    assert list(body) == [("2026年11月", "奇瑞", "瑞虎9", "2026款 2.0TGDI 豪华版"),
                          ("合计", None, None, None)]
    assert body[("2026年11月", "奇瑞", "瑞虎9", "2026款 2.0TGDI 豪华版")] == [0, 1, "—"]

    with pytest.raises(NotFoundError) as refused:   # sees no quote nor contract
        engine.report("models_quoted_sold", formats=("pdf",), out_dir=tmp_path / "gao",
                      actor="gao")
    assert '没有名为 "models_quoted_sold" 的报表' in refused.value.message
    assert not (tmp_path / "gao").exists()


def test_the_report_is_on_the_managers_reports_page_not_the_stock_keepers(engine, sales):
    from engine.web.app import create_app

    app = create_app(engine)
    wang, gao = client(app), client(app)
    sign_in(wang, "wang")
    sign_in(gao, "gao")
    page = wang.get("/reports").text
    assert "车型报价与成交月报" in page and "/reports/models_quoted_sold.pdf" in page
    r = wang.get("/reports/models_quoted_sold.xlsx?date_from=2026-10-01&date_to=2026-10-31")
    assert r.status_code == 200
    assert "车型报价与成交月报" not in gao.get("/reports").text
    assert gao.get("/reports/models_quoted_sold.pdf").status_code == 404


def old_quote_toml() -> str:
    """quote.toml as it was before the 出具日期: no field, no stamp, no migration for it."""
    text = (ROOT / "workflows" / "quote.toml").read_text(encoding="utf-8")
    start = text.index("# the day the quote first went to the customer")
    text = text[:start] + text[text.index("[fields.remarks]", start):]
    for line in ('stamps = ["issued_on"]\n',
                 'stamps_once = ["issued_on"]   # a revision approved later keeps the day it was first issued\n',
                 "# Quotes issued before issue 19 had no 出具日期: it is the day their first 报价单 was issued.\n",
                 'document_dates = { issued_on = "quote" }\n'):
        assert line in text, line
        text = text.replace(line, "")
    assert "issued_on" not in text
    return text


def test_quotes_issued_before_the_issue_date_field_get_the_day_of_their_first_document(
        tmp_path, converter, clock):
    folder = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", folder)
    (folder / "quote.toml").write_text(old_quote_toml(), encoding="utf-8")
    contract_toml = (folder / "contract.toml").read_text(encoding="utf-8")
    (folder / "contract.toml").write_text(               # and no report counting by it yet
        contract_toml[:contract_toml.index("# 车型报价与成交月报")], encoding="utf-8")
    config = point_at_workflows(make_dealer_dir(tmp_path / "dealer"), str(folder))
    old = Engine(load_config(config), converter=converter, clock=clock)
    ids = catalogue(old, tmp_path)
    at(clock, "2026-10-30")
    first = quote(old, ids[R8])
    at(clock, "2026-11-02")
    old.fire(first, "revise", "zhang", {"remarks": "改了赠品"})   # a second 报价单, same quote
    draft = quote(old, ids[R8], issue=False)
    assert "issued_on" not in old.case(first, actor="wang")["data"]
    old.close()

    for name in ("quote.toml", "contract.toml"):                           # the upgrade
        shutil.copy(ROOT / "workflows" / name, folder / name)
    at(clock, "2026-11-26")
    engine = Engine(load_config(config), converter=converter, clock=clock)
    try:
        assert engine.case(first, actor="wang")["data"]["issued_on"] == "2026-10-30"
        assert engine.case(draft, actor="wang")["data"].get("issued_on") is None
        made = engine.report("models_quoted_sold", datetime(2026, 10, 1).date(),
                             datetime(2026, 11, 30).date(), ("xlsx",), tmp_path / "out",
                             actor="wang")
        _, body = table_of(made["files"]["xlsx"])
        assert body == {("2026年10月", "奇瑞", "瑞虎8 PRO", "2026款 1.6TGDI DCT 卓越版"): [1, 0, "0.0%"],
                        ("合计", None, None, None): [1, 0, "0.0%"]}
        # a quote issued from now on is stamped on the day; a revision keeps it
        issued = quote(engine, ids[R9])
        at(clock, "2026-11-27")
        engine.fire(issued, "revise", "zhang", {"remarks": "再议"})
        assert engine.case(issued, actor="wang")["data"]["issued_on"] == "2026-11-26"
    finally:
        engine.close()


# --- a snapshot says 截至 the day, not a period ----------------------------------------------------

def test_the_stock_per_model_is_as_of_today_not_a_period(engine, tmp_path):
    engine.create("stock", {"vin": vin_numbered(1), "brand": "奇瑞", "series": "瑞虎8 PRO",
                            "model": "2026款 1.6TGDI DCT 卓越版", "colour": "极地白"}, "gao")
    made = engine.report("stock_by_model", formats=("xlsx", "pdf"), out_dir=tmp_path,
                         actor="gao")
    assert made["as_of"] == "2026-11-26" and made["from"] is None and made["to"] is None
    assert made["files"]["pdf"].endswith("stock_by_model_2026-11-26.pdf")
    lines = pdf_rows(made["files"]["pdf"])
    assert "截至2026年11月26日" in lines and not any("统计期间" in line for line in lines)
    assert "2026款1.6TGDI DCT卓越版1 0 0 —" in lines, lines     # 在途 在库 已订 平均库龄
    rows = list(load_workbook(made["files"]["xlsx"]).active.iter_rows(values_only=True))
    assert any("截至 2026年11月26日" in str(c) for r in rows for c in r if c)

    with pytest.raises(InputError) as refused:
        engine.report("stock_by_model", datetime(2026, 11, 1).date(), None, ("xlsx",), tmp_path,
                      actor="gao")
    assert refused.value.message == \
        "库存车型汇总是截至今天的现状，不按期间统计：请不要指定开始或结束日期"


def test_the_stock_per_model_as_of_today_on_the_web_page_and_the_cli(engine, dealer):
    from engine.web.app import create_app

    gao = client(create_app(engine))
    sign_in(gao, "gao")
    page = gao.get("/reports").text
    form = page.index('id="report-stock_by_model"')
    section = page[page.rindex("<section", 0, form):page.index("</section>", form)]
    assert "库存车型汇总" in section and "统计截至今天的现状" in section
    assert 'name="date_from"' not in section            # no period to choose

    proc = run_cli("report", "stock_by_model", "--format", "pdf", "--as", "gao", cwd=dealer,
                   today="2026-11-26")
    assert "库存车型汇总：截至 2026-11-26，共" in proc.stdout, proc.stdout
