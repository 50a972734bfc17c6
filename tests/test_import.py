"""Importing customers from Excel (``dealerdocs import customers FILE.xlsx``): real .xlsx files
written with openpyxl, read back and imported into a real store; a file with any problem
imports nothing and the report names each problem by row and column.

The engine tests make their engine without a converter: an import issues no document, and the
engine would only start LibreOffice on first use. The CLI tests run the installed command on a
dealership made by ``dealerdocs init``."""
from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from engine import Engine, load_config
from engine.errors import InputError, NotFoundError, PermissionDenied
from engine.fields import FieldSpec
from engine.services.imports import cell_value, match_columns
from engine.sheets import Sheet, read_xlsx
from helpers import run_cli, store_state, write_xlsx

HEADER = ["客户姓名", "联系电话", "性别", "信息来源", "意向车型", "销售顾问", "同意处理个人信息",
          "同意日期", "地址", "单位名称"]


def xlsx(path: Path, rows: list[list], header: list = HEADER) -> Path:
    return write_xlsx(path, header, rows)


@pytest.fixture
def engine(config_path, clock):
    eng = Engine(load_config(config_path), clock=clock)
    yield eng
    eng.close()


def customers(engine) -> list[dict]:
    return engine.cases("customer", actor="wang")


# --- a good file ---------------------------------------------------------------------------------

def test_a_good_file_makes_one_customer_per_row(engine, tmp_path):
    path = xlsx(tmp_path / "customers.xlsx", [
        # a mobile typed as a number, the consultant by name, an Excel date, 是
        ["王建华", 13800138000, "男", "网络", "瑞虎8 PRO", "张伟", "是", datetime(2026, 11, 20),
         "北京市海淀区西三环北路 1 号", None],
        [],                                                   # a blank row is skipped
        # a mobile with separators, the consultant by login, no consent asked
        ["赵倩", "139-0013-9000", "女", "展会", "艾瑞泽8", "li", None, None, None, "星辰科技"],
    ])
    report = engine.import_cases("customers", read_xlsx(path), "wang")

    assert report.ok and report.problems == [] and report.rows == 2
    assert report.created == [{"row": 2, "id": "K-1"}, {"row": 4, "id": "K-2"}]
    first = engine.case("K-1", actor="wang", reveal=True)
    assert first["data"] == {
        "name": "王建华", "mobile": "13800138000", "gender": "男", "source": "网络",
        "intended_model": "瑞虎8 PRO", "consultant": "zhang", "consent_processing": True,
        "consent_date": "2026-11-20", "address": "北京市海淀区西三环北路 1 号"}
    second = engine.case("K-2", actor="wang", reveal=True)
    assert second["data"]["mobile"] == "13900139000" and second["data"]["consultant"] == "li"
    assert "consent_processing" not in second["data"]
    assert second["data"]["company"] == "星辰科技"
    # each has its creation in the audit trail, saying where it came from
    [event] = [e for e in first["history"] if e["trigger"] == "create"]
    assert event["actor"] == "wang" and event["note"] == "由 customers.xlsx 第 2 行导入"
    # each is its consultant's: zhang sees his, not li's
    assert [c["id"] for c in engine.cases("customer", actor="zhang")] == ["K-1"]
    assert [c["id"] for c in engine.cases("customer", actor="li")] == ["K-2"]
    # and is found by mobile: a walk-in with the number joins the imported file
    visit = engine.create("reception", {"kind": "来店", "arrived_at": "2026-11-26T10:05",
                                        "customer_mobile": "138 0013 8000"}, "xu")
    assert visit.party == "K-1"
    assert engine.case(visit.id, actor="wang")["data"]["consultant"] == "zhang"


def test_a_dry_run_checks_and_writes_nothing(engine, tmp_path):
    engine.create("customer", {"name": "老客户", "mobile": "13700001111"}, "zhang")
    path = xlsx(tmp_path / "customers.xlsx", [["王建华", 13800138000, "男", "网络"]])
    before = store_state(engine.config.store_dir)
    report = engine.import_cases("customer", read_xlsx(path), "wang", dry_run=True)
    assert report.ok and report.dry_run and report.created == [{"row": 2, "id": "K-2"}]
    assert report.to_dict()["imported"] == 0
    assert store_state(engine.config.store_dir) == before
    assert [c["id"] for c in customers(engine)] == ["K-1"]


# --- a file with problems imports nothing --------------------------------------------------------

def test_every_problem_is_reported_by_row_and_nothing_is_imported(engine, tmp_path):
    engine.create("customer", {"name": "老客户", "mobile": "13700001111"}, "zhang")
    path = xlsx(tmp_path / "customers.xlsx", [
        ["王建华", 13800138000, "男", "网络", None, "张伟"],        # 2: good
        ["李四", "1380013800", "男", "网络", None, "张伟"],         # 3: a mobile of 10 digits
        ["王建华", "138-0013-8000", "男", "网络", None, "li"],     # 4: the same as row 2
        ["刘洋", "13700001111", "女", "网络", None, "li"],         # 5: already in the store
        ["陈晨", "13600002222", "女", "朋友", None, "张三"],       # 6: no such choice, user
        [None, "13500003333", "女", "路过", None, "王强"],         # 7: a manager, no name
    ], header=[*HEADER[:6], "备注"])
    before = store_state(engine.config.store_dir)

    report = engine.import_cases("customer", read_xlsx(path), "wang")

    assert not report.ok and report.created == [] and report.failed_rows == [1, 3, 4, 5, 6, 7]
    by_row = {}
    for p in report.problems:
        by_row.setdefault(p.row, []).append((p.column, p.message))
    assert by_row[1] == [("备注", "G 列「备注」不是客户档案的字段（列名应为字段名称，如 客户姓名、性别、联系电话）")]
    assert by_row[3] == [("联系电话", "联系电话（mobile）\"138***3800\" 无效：应为 11 位数字，以 1 开头，"
                                      "第二位 3–9（收到 \"138***3800\"，10 位）")]
    assert by_row[4] == [("联系电话", "联系电话 138****8000 与第 2 行重复")]
    assert by_row[5] == [("联系电话", "联系电话 137****1111 已有客户档案 K-1（销售顾问：张伟（zhang））")]
    assert [p.text for p in report.problems if p.row == 6] == [   # left to right
        "第 6 行：信息来源（source）\"朋友\" 不是可选值；可选：网络、电视、报纸杂志、广播、展会、亲友、"
        "老客户转介绍、路过、其他",
        "第 6 行：销售顾问「张三」不是本店用户"]
    # as create judges a case: what is wrong with the values first (the missing name is told
    # once they are right, as a new case is told)
    assert by_row[7] == [("销售顾问", "销售顾问（consultant）\"wang\"（王强）不是销售顾问")]
    # no mobile in full anywhere in the report
    text = "\n".join(p.message for p in report.problems)
    for mobile in ("13800138000", "1380013800", "13700001111"):
        assert mobile not in text
    # nothing was written: the store is as it was, one customer
    assert store_state(engine.config.store_dir) == before
    assert [c["id"] for c in customers(engine)] == ["K-1"]


def test_a_failure_while_importing_leaves_nothing_half_imported(engine, tmp_path, monkeypatch):
    """A row failing for a reason no check foresaw (here: the disk) after earlier rows were
    made: the unit of work is not committed."""
    engine.create("customer", {"name": "老客户", "mobile": "13700001111"}, "zhang")
    path = xlsx(tmp_path / "customers.xlsx", [["王建华", 13800138000], ["赵倩", 13900139000]])
    create_in = engine.pipeline.create_in
    made = []

    def failing(tx, wf, data, user, new_files, **kwargs):
        if made:
            raise RuntimeError("a bug in the second row")
        made.append(create_in(tx, wf, data, user, new_files, **kwargs))
        return made[-1]

    monkeypatch.setattr(engine.pipeline, "create_in", failing)
    before = store_state(engine.config.store_dir)
    with pytest.raises(RuntimeError):
        engine.import_cases("customer", read_xlsx(path), "wang")
    assert [m.id for m in made] == ["K-2"]                        # the first row was made …
    assert store_state(engine.config.store_dir) == before          # … and is not in the store
    assert [c["id"] for c in customers(engine)] == ["K-1"]


# --- who may import, and whose customers they become ---------------------------------------------

def test_a_role_that_may_not_create_customers_may_not_import_them(engine, tmp_path):
    path = xlsx(tmp_path / "customers.xlsx", [["王建华", 13800138000]])
    with pytest.raises(PermissionDenied) as refused:
        engine.import_cases("customer", read_xlsx(path), "zhao")
    assert refused.value.message == ("用户 zhao（赵敏，角色：文控）无权导入客户档案；"
                                     "需要角色：销售顾问、销售经理、前台")
    assert customers(engine) == []


def test_a_consultant_importing_gets_the_customers_named_as_create_gives_them(engine, tmp_path):
    """As ``create`` does for one customer: no consultant named → the consultant importing;
    a colleague named → the colleague's customer, which the importer opened (and sees)."""
    path = xlsx(tmp_path / "customers.xlsx", [
        ["王建华", 13800138000, None, None, None, None],
        ["赵倩", 13900139000, None, None, None, "李娜"],
    ])
    report = engine.import_cases("customer", read_xlsx(path), "zhang")
    assert report.ok
    direct = engine.create("customer", {"name": "孙丽", "mobile": "13600136000",
                                        "consultant": "li"}, "zhang")
    shown = {c["id"]: c for c in engine.cases("customer", actor="wang")}
    assert shown["K-1"]["fields"]["consultant"] == "zhang" and shown["K-1"]["owners"] == ["zhang"]
    assert shown["K-2"]["fields"]["consultant"] == "li"
    assert shown["K-2"]["owners"] == shown[direct.id]["owners"] == ["zhang", "li"]
    assert [c["id"] for c in engine.cases("customer", actor="li")] == ["K-2", direct.id]


# --- columns and cells ---------------------------------------------------------------------------

def sheet(header: list, *rows: list) -> Sheet:
    return Sheet("t.xlsx", tuple(header), tuple((n, tuple(r)) for n, r in enumerate(rows, 2)))


def test_columns_are_matched_by_label_short_label_or_key(engine):
    wf = engine.workflow("customer")
    columns, problems = match_columns(wf, sheet(["客户姓名", "mobile", "推荐人", "同意处理个人信息"]))
    assert problems == [] and columns == {0: "name", 1: "mobile", 2: "referrer",
                                          3: "consent_processing"}


@pytest.mark.parametrize("header, rows, column, message", [
    (["客户姓名", "手机号码"], [], "手机号码", "B 列「手机号码」不是客户档案的字段"),
    (["客户姓名", "联系电话", "mobile"], [], "mobile", "C 列「mobile」与 B 列都是联系电话；请只留一列"),
    (["客户姓名", "跟进记录"], [], "跟进记录", "B 列「跟进记录」是表格字段，不能从表格导入；请删去这一列"),
    (["客户姓名", None, "联系电话"], [["王", "x", "1"]], "B 列", "有数据但没有列名"),
    (["客户姓名", "客户姓"], [], "客户姓", "B 列「客户姓」不是客户档案的字段，是否想写「客户姓名」？"),
])
def test_a_header_problem_names_the_column(engine, header, rows, column, message):
    _, problems = match_columns(engine.workflow("customer"), sheet(header, *rows))
    [problem] = problems
    assert problem.row == 1 and problem.column == column and problem.message.startswith(message)


def test_a_blank_header_cell_over_an_empty_column_is_no_problem(engine):
    columns, problems = match_columns(engine.workflow("customer"),
                                      sheet(["客户姓名", None, "联系电话"], ["王", None, "1"]))
    assert problems == [] and columns == {0: "name", 2: "mobile"}


TEXT = FieldSpec("mobile", "string", "联系电话")
CHOICE = FieldSpec("gender", "choice", "性别", choices=("男", "女"))
DAY = FieldSpec("consent_date", "date", "同意日期")
WHEN = FieldSpec("arrived_at", "datetime", "进店时间")
YES = FieldSpec("consent", "boolean", "同意")
WHO = FieldSpec("consultant", "user", "销售顾问", roles=("sales",))


@pytest.mark.parametrize("spec, cell, value", [
    (TEXT, 13800138000, "13800138000"),               # a mobile typed as a number
    (TEXT, 13800138000.0, "13800138000"),             # … or saved as a float
    (TEXT, "  138 0013 8000 ", "138 0013 8000"),      # text stripped; the rule cleans the rest
    (TEXT, "   ", None),
    (TEXT, None, None),
    (TEXT, datetime(2026, 11, 20), "2026-11-20"),
    (CHOICE, "男", "男"),
    (DAY, datetime(2026, 11, 20), "2026-11-20"),      # an Excel date
    (DAY, "2026-11-20", "2026-11-20"),
    (WHEN, datetime(2026, 11, 20, 10, 5, 30), "2026-11-20T10:05"),
    (YES, True, True),
    (YES, "是", "是"),                                 # 是/否 as the field's own check reads it
    (WHO, "张伟", "zhang"),
    (WHO, "zhang", "zhang"),
    (WHO, " 李娜 ", "li"),
])
def test_a_cell_becomes_what_the_field_reads(engine, spec, cell, value):
    assert cell_value(spec, cell, engine.config) == value


def test_an_unknown_user_is_named_with_the_column(engine):
    with pytest.raises(InputError) as refused:
        cell_value(WHO, "张三", engine.config)
    assert refused.value.message == "销售顾问「张三」不是本店用户"


def test_a_file_that_is_not_a_spreadsheet_is_refused(tmp_path):
    with pytest.raises(InputError) as missing:
        read_xlsx(tmp_path / "nope.xlsx")
    assert missing.value.message == f"找不到文件 {tmp_path / 'nope.xlsx'}"
    (tmp_path / "customers.csv").write_text("客户姓名,联系电话\n", encoding="utf-8")
    with pytest.raises(InputError) as wrong:
        read_xlsx(tmp_path / "customers.csv")
    assert wrong.value.message.startswith("customers.csv 不是 .xlsx 文件")
    with pytest.raises(InputError) as empty:
        read_xlsx(xlsx(tmp_path / "empty.xlsx", [], header=[]))
    assert empty.value.message.startswith("empty.xlsx 的第 1 行应为列名")


def test_a_file_with_only_the_header_is_refused(engine, tmp_path):
    with pytest.raises(InputError) as refused:
        engine.import_cases("customer", read_xlsx(xlsx(tmp_path / "c.xlsx", [])), "wang")
    assert refused.value.message == "c.xlsx 除第 1 行的列名外没有数据"


def test_the_workflow_is_named_by_key_plural_or_title(engine, tmp_path):
    path = xlsx(tmp_path / "c.xlsx", [["王建华", 13800138000]])
    for name in ("customer", "customers", "客户档案"):
        assert engine.import_cases(name, read_xlsx(path), "wang", dry_run=True).ok
    with pytest.raises(NotFoundError) as unknown:
        engine.import_cases("customerz", read_xlsx(path), "wang")
    assert "没有名为 \"customerz\" 的工作流；是否想用 \"customer\"？" in unknown.value.message


# --- the command ---------------------------------------------------------------------------------

def test_the_command_prints_the_report_and_exits_non_zero_on_problems(cold_dealer):
    bad = xlsx(cold_dealer / "bad.xlsx", [
        ["王建华", 13800138000, "男", "网络", None, "张伟"],
        ["李四", 13800138000, "男", "网络", None, "张三"],
    ])
    proc = run_cli("import", "customers", str(bad), "--as", "wang", cwd=cold_dealer, check=False)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "客户档案：bad.xlsx，2 行数据"
    assert lines[1].split() == ["行", "列", "问题"]
    assert [re.split(r"\s{2,}", line) for line in lines[3:5]] == [
        ["第 3 行", "联系电话", "联系电话 138****8000 与第 2 行重复"],
        ["第 3 行", "销售顾问", "销售顾问「张三」不是本店用户"]]
    assert lines[-1] == "未导入：1 行有错误（共 2 行，都未导入；改正后重新导入整个文件）"
    assert "13800138000" not in proc.stdout
    listed = run_cli("list", "--workflow", "customer", "--as", "wang", cwd=cold_dealer)
    assert listed.stdout.strip() == "（没有案件）"

    good = xlsx(cold_dealer / "good.xlsx", [["王建华", 13800138000, "男", "网络", None, "张伟"],
                                             ["李四", 13900139000, "男", "网络", None, "li"]])
    checked = run_cli("import", "customer", str(good), "--dry-run", "--as", "wang",
                      cwd=cold_dealer)
    assert checked.stdout.splitlines()[-1] == "检查通过：2 行都可导入（--dry-run，未写入）"
    done = run_cli("import", "customers", str(good), "--as", "wang", cwd=cold_dealer)
    assert done.stdout.splitlines() == ["客户档案：good.xlsx，2 行数据",
                                        "已导入 2 个客户档案（K-1 至 K-2）"]
    again = run_cli("import", "customers", str(good), "--as", "wang", "--json",
                    cwd=cold_dealer, check=False)
    assert again.returncode == 3
    payload = json.loads(again.stdout)
    assert payload["imported"] == 0 and payload["failed_rows"] == [2, 3]
    assert payload["problems"][0] == {"row": 2, "column": "联系电话",
                                      "message": "联系电话 138****8000 已有客户档案 K-1（销售顾问：张伟（zhang））"}


def test_the_command_refuses_a_role_and_a_bad_file_in_one_line(cold_dealer):
    good = xlsx(cold_dealer / "good.xlsx", [["王建华", 13800138000]])
    proc = run_cli("import", "customers", str(good), "--as", "zhao", cwd=cold_dealer, check=False)
    assert proc.returncode == 5
    assert proc.stderr == "错误：用户 zhao（赵敏，角色：文控）无权导入客户档案；需要角色：销售顾问、销售经理、前台\n"
    proc = run_cli("import", "customers", "config.toml", "--as", "wang", cwd=cold_dealer,
                   check=False)
    assert proc.returncode == 3 and proc.stderr.startswith("错误：config.toml 不是 .xlsx 文件")
