"""Rectification items through the CLI, with the clock moved by DEALERDOCS_TODAY: plan,
closure (one refused first), extension, cancellation, every refusal that keeps approvals
honest, the due list and the closed-loop table."""
from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from helpers import cli_json, refused as _refused, ROOT, docx_text, pdf_text, run_cli

D0 = "2026-11-20"  # inspection day; deadline 2026-12-10
def cli(dealer: Path, *args: str, data: dict | None = None, today: str = "2026-11-21",
        check: bool = True):
    return cli_json(dealer, *args, data=data, today=today, check=check)


def refused(dealer: Path, *args: str, data: dict | None = None, today: str = "2026-11-21") -> str:
    return _refused(dealer, *args, data=data, today=today)


PLAN = {"root_cause": "试驾管理制度未落实到人", "corrective_action": "张贴路线图；协议书每日归档并由经理抽查",
        "verification_method": "现场照片与归档记录"}


def finding(**changes) -> dict:
    data = json.loads((ROOT / "examples" / "rectification.json").read_text(encoding="utf-8"))
    data.update(inspection_date=D0, deadline="2026-12-10")
    data.update(changes)
    return data






def in_progress(dealer: Path, **changes) -> str:
    item = cli(dealer, "new", "rectification", "--as", "sun", data=finding(**changes))["id"]
    cli(dealer, "fire", item, "submit_plan", "--as", "chen", data=PLAN)
    cli(dealer, "fire", item, "approve_plan", "--as", "sun")
    return item


@pytest.fixture
def evidence(dealer) -> Path:
    folder = dealer / "evidence"
    folder.mkdir()
    (folder / "路线图.jpg").write_bytes(b"\xff\xd8 photo of the route map")
    (folder / "归档记录.pdf").write_bytes(b"%PDF-1.4 archive log")
    return folder


def closure(evidence: Path, **changes) -> dict:
    return {"completion_summary": "路线图已张贴；缺失协议书已补签归档", "completion_date": "2026-11-26",
            "evidence": [str(evidence / "路线图.jpg"), str(evidence / "归档记录.pdf")], **changes}


def test_plan_then_closure_refused_once_then_closed(dealer, evidence):
    item = cli(dealer, "new", "rectification", "--as", "sun", data=finding())["id"]
    line = refused(dealer, "fire", item, "submit_plan", "--as", "chen", data={"root_cause": "x"})
    assert "整改措施" in line and "验证方式" in line
    plan = cli(dealer, "fire", item, "submit_plan", "--as", "chen", data=PLAN)["documents"][0]
    text = pdf_text(Path(plan["pdf"])).replace(" ", "")
    for expected in ("销售服务商立项整改计划书", plan["number"], "试驾车未张贴试驾路线图", "李娜",
                     "销售部", "协议书每日归档", "2026年12月10日", "孙立"):
        assert expected in text, expected
    line = refused(dealer, "fire", item, "reject_plan", "--as", "sun")
    assert "审核意见" in line
    cli(dealer, "fire", item, "reject_plan", "--as", "sun", data={"review_opinion": "措施不具体"})
    cli(dealer, "fire", item, "submit_plan", "--as", "chen", data=PLAN)
    cli(dealer, "fire", item, "approve_plan", "--as", "sun", data={"review_opinion": "同意"})

    line = refused(dealer, "fire", item, "request_closure", "--as", "chen",
                   data={**closure(evidence), "evidence": []})
    assert "整改证据" in line
    request = cli(dealer, "fire", item, "request_closure", "--as", "chen",
                  data=closure(evidence), today="2026-11-27")["documents"][0]
    text = docx_text(Path(request["docx"]))
    assert "书面销项申请书" in text and "路线图.jpg" in text and "归档记录.pdf" in text
    cli(dealer, "fire", item, "reject_closure", "--as", "sun",
        data={"review_opinion": "归档记录缺经理签字"}, today="2026-11-28")
    # a data file next to the photos names them relative to itself
    again = evidence / "closure.json"
    again.write_text(json.dumps({**closure(evidence), "evidence": ["路线图.jpg", "归档记录.pdf"]},
                                ensure_ascii=False), encoding="utf-8")
    run_cli("fire", item, "request_closure", "--as", "chen", "--data", str(again), cwd=dealer,
            today="2026-11-29")
    done = cli(dealer, "fire", item, "approve_closure", "--as", "sun", today="2026-11-30")
    assert done["state"] == "closed"
    shown = cli(dealer, "show", item, "--as", "chen")
    assert shown["data"]["closure_reviewer"] == "sun"
    assert [a["name"] for a in shown["data"]["evidence"]] == ["路线图.jpg", "归档记录.pdf"]
    assert shown["deadline"]["overdue"] is False
    assert run_cli("verify", cwd=dealer).returncode == 0
    stored = dealer / "store" / shown["data"]["evidence"][0]["file"]
    stored.write_bytes(b"tampered")
    bad = run_cli("verify", "--json", cwd=dealer, check=False)
    assert bad.returncode != 0 and item in bad.stdout


def test_extension_moves_the_deadline_and_is_capped(dealer):
    item = in_progress(dealer)
    ask = {"requested_deadline": "2026-12-31", "extension_reason": "路线图需厂家统一制作，厂家排期至 12 月下旬",
           "interim_measures": "先张贴临时路线图"}
    request = cli(dealer, "fire", item, "request_extension", "--as", "chen", data=ask)
    text = pdf_text(Path(request["documents"][0]["pdf"])).replace(" ", "")
    for expected in ("整改项目延期申请书", "2026年12月10日", "2026年12月31日", "21", "厂家排期"):
        assert expected in text, expected
    line = refused(dealer, "fire", item, "approve_extension", "--as", "sun")
    assert "无权" in line and "区域经理" in line
    cli(dealer, "fire", item, "approve_extension", "--as", "zhou")
    data = cli(dealer, "show", item, "--as", "chen")["data"]
    assert (data["deadline"], data["original_deadline"], data["extension_count"]) == \
        ("2026-12-31", "2026-12-10", 1)

    cli(dealer, "fire", item, "request_extension", "--as", "chen",
        data={**ask, "requested_deadline": "2027-01-15"})
    cli(dealer, "fire", item, "reject_extension", "--as", "zhou",
        data={"review_opinion": "不同意，请按期完成"})
    assert cli(dealer, "show", item, "--as", "chen")["data"]["deadline"] == "2026-12-31"  # kept
    cli(dealer, "fire", item, "request_extension", "--as", "chen",
        data={**ask, "requested_deadline": "2027-01-15"})
    cli(dealer, "fire", item, "approve_extension", "--as", "zhou")
    line = refused(dealer, "fire", item, "request_extension", "--as", "chen",
                   data={**ask, "requested_deadline": "2027-02-01"})
    assert "已延期 2 次" in line and "上限" in line


def test_late_requests_and_overdue_closure(dealer, evidence):
    item = in_progress(dealer)
    ask = {"requested_deadline": "2026-12-31", "extension_reason": "材料未到"}
    line = refused(dealer, "fire", item, "request_extension", "--as", "chen", data=ask,
                   today="2026-12-11")
    assert "已过" in line and "期限前申请" in line
    line = refused(dealer, "fire", item, "request_cancel", "--as", "chen",
                   data={"cancel_ground": "其他", "cancel_reason": "x"}, today="2026-12-11")
    assert "期限前申请" in line
    line = refused(dealer, "fire", item, "request_closure", "--as", "chen",
                   data=closure(evidence), today="2026-12-13")
    assert "逾期原因" in line and "已过 3 天" in line
    done = cli(dealer, "fire", item, "request_closure", "--as", "chen",
               data=closure(evidence, overdue_reason="厂家物料延迟到货"), today="2026-12-13")
    assert "厂家物料延迟到货" in pdf_text(Path(done["documents"][0]["pdf"]))


def test_cancellation_and_separation_of_duties(dealer):
    with (dealer / "config.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[users.lu]\nname = "高总"\nroles = ["ops_manager", "regional_manager", '
                 '"oem_supervisor"]\n')
    item = in_progress(dealer)
    request = cli(dealer, "fire", item, "request_cancel", "--as", "lu",
                  data={"cancel_ground": "重复问题", "cancel_reason": "与 R-0 同一问题重复登记"})
    text = pdf_text(Path(request["documents"][0]["pdf"])).replace(" ", "")
    assert "整改项目取消申请书" in text and "与R-0同一问题重复登记" in text
    line = refused(dealer, "fire", item, "approve_cancel", "--as", "lu")
    assert "职责分离" in line and "申请取消" in line
    cli(dealer, "fire", item, "reject_cancel", "--as", "zhou", data={"review_opinion": "不属重复"})
    cli(dealer, "fire", item, "request_cancel", "--as", "chen",
        data={"cancel_ground": "问题不成立", "cancel_reason": "抽查的 2 份实为借阅中"})
    assert cli(dealer, "fire", item, "approve_cancel", "--as", "lu")["state"] == "cancelled"
    line = refused(dealer, "fire", item, "request_closure", "--as", "chen")
    assert "已取消" in line

    other = cli(dealer, "new", "rectification", "--as", "lu", data=finding())["id"]
    cli(dealer, "fire", other, "submit_plan", "--as", "lu", data=PLAN)
    line = refused(dealer, "fire", other, "approve_plan", "--as", "lu")
    assert "职责分离" in line and "提交整改计划" in line
    line = refused(dealer, "fire", other, "approve_plan", "--as", "chen")
    assert "无权" in line and "厂家督导" in line


def test_due_list_with_a_moved_clock_and_the_table(dealer):
    soon = in_progress(dealer, deadline="2026-12-01")
    later = in_progress(dealer, deadline="2027-01-31")
    assert [r["id"] for r in cli(dealer, "due", "--as", "chen", today="2026-11-21")] == []
    rows = cli(dealer, "due", "--as", "chen", "--within", "10", today="2026-11-21")
    assert [(r["id"], r["days_left"], r["owner"]) for r in rows] == [(soon, 10, "李娜")]
    rows = cli(dealer, "due", "--as", "chen", today="2026-12-04")
    assert [(r["id"], r["overdue_days"], r["state"]) for r in rows] == [(soon, 3, "in_progress")]
    human = run_cli("due", "--as", "chen", cwd=dealer, today="2026-12-04").stdout
    assert "逾期 3 天" in human and later not in human

    result = cli(dealer, "report", "rectification", "--as", "chen", today="2026-12-04")
    assert result["rows"] == 2
    sheet = openpyxl.load_workbook(result["files"]["xlsx"]).active
    rows = list(sheet.iter_rows(values_only=True))
    table = {r[0]: dict(zip(rows[2], r)) for r in rows[3:]}
    assert table[soon]["逾期天数"] == 3 and table[later]["逾期天数"] == 0
    assert table[soon]["计划书编号"].startswith("ZGJH-2026-")
    assert table[soon]["状态"] == "整改中" and table[soon]["责任人"] == "李娜"
    assert "整改问题闭环管理表" in pdf_text(Path(result["files"]["pdf"]))
