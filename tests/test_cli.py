"""The dealerdocs command line, run as a real process: JSON shapes, one-line errors, exit codes,
and two processes issuing at once. (Processes killed while issuing: test_kill.py.)"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, dealerdocs_bin, pdf_text, store_state

DEALERDOCS = dealerdocs_bin()
EXAMPLE = ROOT / "examples" / "quote.json"



@pytest.fixture
def run(today):
    """``dealerdocs`` as its own process: this module is about the command as one."""
    return functools.partial(today.run, process=True)


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_init_writes_a_working_config(dealer, run):
    text = (dealer / "config.toml").read_text(encoding="utf-8")
    assert 'workflows = ""' in text and 'templates = "templates"' in text
    assert (dealer / "templates").is_dir() and not list((dealer / "templates").iterdir())
    listed = run("workflows", "--json", cwd=dealer)
    listed = {w["key"]: w for w in json.loads(listed.stdout)}
    # every shipped workflow file (each named after its key), the sales chain among them
    assert sorted(listed) == sorted(p.stem for p in (ROOT / "workflows").glob("*.toml"))
    assert {"quote", "contract", "delivery"} <= set(listed)
    assert listed["quote"]["states"]["issued"] == "已出具"
    assert listed["contract"]["states"]["pending_approval"] == "待经理审批"
    assert listed["delivery"]["states"]["followed_up"] == "已回访"
    again = run("init", str(dealer), cwd=dealer, check=False)
    assert again.returncode == 2
    assert again.stderr == f"错误：{dealer / 'config.toml'} 已存在；如要覆盖请加 --force\n"


@pytest.mark.slow
def test_new_fire_show_list_docs_verify(dealer, today, run):
    year = today.date.year
    created = json.loads(run("new", "quote", "--data", str(EXAMPLE), "--as", "zhang", "--json",
                             cwd=dealer).stdout)
    assert created == {"id": "Q-1", "state": "draft", "customer": "K-1"}   # the file it made

    fired = json.loads(run("fire", "Q-1", "issue", "--as", "zhang", "--json", cwd=dealer).stdout)
    assert fired["id"] == "Q-1" and fired["state"] == "issued"
    [doc] = fired["documents"]
    assert doc["number"] == f"BJ-{year}-000001"
    assert Path(doc["pdf"]) == dealer / "outbox" / str(year) / "quote" / f"{doc['number']}.pdf"
    assert Path(doc["docx"]) == Path(doc["pdf"]).with_suffix(".docx")
    assert doc["sha256"] == sha256(doc["pdf"]) and doc["docx_sha256"] == sha256(doc["docx"])
    assert "刘晓明" in pdf_text(Path(doc["pdf"]))

    shown = json.loads(run("show", "Q-1", "--json", "--as", "wang", cwd=dealer).stdout)
    assert shown["total"] == "152669.57" and isinstance(shown["total"], str)
    assert shown["state"] == "issued" and shown["data"]["customer_name"] == "刘晓明"
    assert shown["documents"][0]["number"] == doc["number"]

    human = run("show", "Q-1", "--as", "wang", cwd=dealer).stdout.splitlines()
    assert human[0] == "Q-1  商谈报价单  状态：已出具（issued）"
    assert "  客户姓名：刘晓明" in human and "  购车应付款总额：152669.57" in human
    [row] = run("list", "--workflow", "quote", "--as", "wang", cwd=dealer).stdout.splitlines()[2:]
    assert row.split()[:6] == ["Q-1", "quote", "已出具", "刘晓明", "瑞虎8", "PRO"]
    assert row.split()[6:] == ["152669.57", shown["updated_at"]]
    # the quote made the customer's file, found by the same mobile next time
    [row] = run("list", "--workflow", "customer", "--as", "wang", cwd=dealer).stdout.splitlines()[2:]
    assert row.split()[:5] == ["K-1", "customer", "N", "级（新接触）", "刘晓明"]
    [row] = run("docs", "--as", "zhao", cwd=dealer).stdout.splitlines()[2:]
    assert row.split() == [doc["number"], "商谈报价单", "1", "Q-1", "issued",
                           shown["documents"][0]["issued_at"], "zhang", doc["pdf"]]
    assert shown["documents"][0]["issued_at"].startswith(f"{today.iso}T")  # the pinned day
    ok = run("verify", cwd=dealer)
    assert ok.stdout == ("校验通过：1 份文档的文件与登记的 sha256 一致，"
                         "审计记录与发放登记日志的哈希链完整\n")

    Path(doc["pdf"]).write_bytes(b"%PDF-1.4 forged")
    bad = run("verify", "--json", cwd=dealer, check=False)
    assert bad.returncode == 10
    report = json.loads(bad.stdout)
    assert report["ok"] is False and report["documents"] == 1
    assert [(p["number"], p["problem"], p["path"]) for p in report["problems"]] == [
        (doc["number"], "changed", doc["pdf"])]


def test_options_before_the_command_and_data_from_stdin(dealer, run):
    out = run("--as", "li", "--json", "new", "quote", "--data", "-", cwd=dealer,
              stdin=json.dumps({"customer_name": "王芳", "customer_mobile": "13900139000"}))
    assert json.loads(out.stdout) == {"id": "Q-1", "state": "draft", "customer": "K-1"}
    shown = json.loads(run("show", "Q-1", "--json", "--as", "wang", cwd=dealer).stdout)
    assert shown["data"]["consultant"] == "li"


@pytest.mark.parametrize("args, code, words", [
    (["new", "quote", "--as", "zhao"], 5, ["无权", "文控"]),
    (["fire", "Q-1", "issue", "--as", "zhao"], 4, ["找不到案件", "Q-1"]),  # not theirs to see
    (["fire", "Q-1", "accept", "--as", "zhang"], 6, ["草稿", "accept"]),
    (["fire", "Q-9", "issue", "--as", "zhang"], 4, ["Q-9"]),
    (["fire", "Q-1", "issue"], 2, ["--as"]),
    (["new", "quote", "--data", "missing.json", "--as", "zhang"], 3, ["missing.json"]),
    (["new", "quote", "--data", "broken.json", "--as", "zhang"], 3, ["不是有效 JSON", "第 1 行"]),
    (["new", "quote", "--data", "badmobile.json", "--as", "zhang"], 3, ["客户手机号", "12345"]),
    (["list", "--config", "nowhere.toml"], 2, ["找不到配置文件"]),
])
def test_errors_are_one_line_with_exit_code(dealer, run, args, code, words):
    run("new", "quote", "--data", str(EXAMPLE), "--as", "zhang", cwd=dealer)
    (dealer / "broken.json").write_text("{oops", encoding="utf-8")
    (dealer / "badmobile.json").write_text(json.dumps(
        {"customer_name": "王芳", "customer_mobile": "12345"}), encoding="utf-8")
    before = store_state(dealer / "store")

    proc = run(*args, cwd=dealer, check=False)

    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("错误："), proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0]
    assert store_state(dealer / "store") == before
    assert not list((dealer / "outbox").rglob("*.pdf")) if (dealer / "outbox").exists() else True


def test_json_errors_are_machine_readable(dealer, run):
    proc = run("fire", "Q-1", "issue", "--as", "zhang", "--json", cwd=dealer, check=False)
    assert proc.returncode == 4
    assert json.loads(proc.stdout) == {"error": "NotFoundError", "case": "Q-1",
                                       "message": '找不到案件 "Q-1"（可用 dealerdocs list 查看）'}
    assert proc.stderr == '错误：找不到案件 "Q-1"（可用 dealerdocs list 查看）\n'


@pytest.mark.slow
def test_two_processes_issuing_at_once_get_unique_gap_free_numbers(dealer, today, run):
    for _ in range(6):
        run("new", "quote", "--data", str(EXAMPLE), "--as", "zhang", cwd=dealer)
    script = "for c in {cases}; do {bin} fire $c issue --as {who} --json >/dev/null || exit 1; done"
    env = {**os.environ, "DEALERDOCS_TODAY": today.iso}
    procs = [subprocess.Popen(["bash", "-c", script.format(cases=cases, bin=DEALERDOCS, who=who)],
                              cwd=dealer, env=env)
             for cases, who in (("Q-1 Q-3 Q-5", "zhang"), ("Q-2 Q-4 Q-6", "wang"))]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]

    docs = json.loads(run("docs", "--json", "--as", "zhao", cwd=dealer).stdout)
    numbers = sorted(d["number"] for d in docs)
    assert numbers == [f"BJ-{today.date.year}-{i:06d}" for i in range(1, 7)]
    assert sorted(d["case_id"] for d in docs) == [f"Q-{i}" for i in range(1, 7)]
    cases = json.loads(run("list", "--workflow", "quote", "--json", "--as", "wang",
                           cwd=dealer).stdout)
    assert {c["state"] for c in cases} == {"issued"}
    for i in range(1, 7):
        shown = json.loads(run("show", f"Q-{i}", "--json", "--as", "wang", cwd=dealer).stdout)
        who = "zhang" if i % 2 else "wang"
        assert [(e["trigger"], e["actor"]) for e in shown["history"]] == [
            ("create", "zhang"), ("issue", who)]
        [number] = [d["number"] for d in docs if d["case_id"] == f"Q-{i}"]
        assert shown["history"][1]["documents"] == [number]
    assert run("verify", cwd=dealer).returncode == 0


@pytest.mark.slow
def test_lint_and_diagram_commands(dealer, tmp_path, run):
    ok = run("lint", cwd=dealer).stdout.splitlines()
    assert ok[-1] == "未发现问题"
    used = dict(line.split("用到的 Python 函数：") for line in ok[:-1])
    assert list(used) == ["流程 care_call（新客户回访）", "流程 complaint（客户抱怨）",
                          "流程 contract（购车合同）", "流程 customer（客户档案）", "流程 delivery（交车）",
                          "流程 duty（当班记录）", "流程 quote（商谈报价单）",
                          "流程 reception（展厅来电/店登记）",
                          "流程 rectification（整改项目）", "流程 stock（库存车辆）",
                          "流程 test_drive（试乘试驾）", "流程 vehicle_model（车型库）"]
    # a step's expressions count too: the sampled call a delivery makes
    assert "functions.in_sample" in used["流程 delivery（交车）"]
    assert used["流程 complaint（客户抱怨）"] == ("functions.add_hours、functions.hours_between、"
                                           "functions.rounded、validators.mobile、validators.plate、"
                                           "validators.vin")
    assert used["流程 customer（客户档案）"] == "functions.add_days、validators.mobile"
    assert used["流程 quote（商谈报价单）"] == ("functions.money、functions.sum_of、functions.total、"
                                         "validators.mobile")  # generic only: no quote_totals
    assert used["流程 rectification（整改项目）"] == "functions.date_of"   # in its timer's when

    # the dealership's own copy of the templates, one of them mistyped in Word
    import shutil
    import zipfile

    own = dealer / "tpl"
    shutil.copytree(ROOT / "templates" / "docx", own)
    original, broken = own / "quote.docx", tmp_path / "quote.docx"
    with zipfile.ZipFile(original) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "word/document.xml":
                data = data.replace(b"customer_name", b"custmer_name")
            dst.writestr(item, data)
    shutil.move(broken, original)
    config = dealer / "config.toml"
    text = config.read_text(encoding="utf-8")
    # a folder of full copies, as a store had before templates came in layers: its files win
    assert text.count('templates = "templates"') == 1
    config.write_text(text.replace('templates = "templates"', 'templates = "tpl"'),
                      encoding="utf-8")
    proc = run("lint", "quote.docx", cwd=dealer, check=False)
    assert proc.returncode == 11
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("错误 quote.docx｜表格 1 第 1 行第 2 格："), lines
    assert lines[0].endswith("｜变量 custmer_name 不是流程 quote 的字段，也不是系统提供的名称 → "
                             "是否想写 customer_name？可用名称见 templates/README.md 的变量表（区分大小写）")
    assert lines[1].startswith("错误 quote.docx｜试出具（流程 quote，样例数据）｜"
                               "模板 quote.docx 使用了未提供的变量：'custmer_name' is undefined")
    assert lines[2:] == ["共 2 个错误、0 个警告"]

    svg = tmp_path / "quote.svg"
    run("diagram", "quote", "--out", str(svg), cwd=dealer)
    text = svg.read_text(encoding="utf-8")
    assert "草稿" in text and "出具报价单" in text and "销售顾问" in text


# jinja2 is not among them: a workflow's rules are jinja2 expressions, parsed when it loads
_HEAVY = ("docxtpl", "docx", "pypdf", "openpyxl", "fastapi", "uvicorn", "rich")
_LOADED = """
import sys
sys.argv = ["dealerdocs", *{args!r}]
from engine import cli
try:
    cli.run()
except SystemExit:
    pass
print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize("args, first_lines", [
    (["--help"], ["Usage: dealerdocs [OPTIONS] COMMAND [ARGS]...", "",
                  "  dealerdocs：4S 店的单据与流程引擎。"]),
    (["list", "--workflow", "quote", "--as", "wang"],
     ["案件  工作流  状态  摘要", "----  ------  ----  ----",
      "Q-1   quote   草稿  刘晓明 瑞虎8 PRO  152669.57  {today}T"]),
    (["show", "Q-1", "--as", "wang"], ["Q-1  商谈报价单  状态：草稿（draft）", "创建：{today}T"]),
    (["docs", "--as", "zhao"], ["（没有文档）"]),               # nothing issued yet
    (["docs", "--case", "Q-1", "--as", "wang"], ["（没有文档）"]),
    (["find", "13800138000", "--as", "wang"],
     ["案件  类别      状态            摘要", "----  --------  --------------  ----"]),
    (["timeline", "K-1", "--as", "wang"], ["时间", "----", "{today} "]),
])
def test_commands_that_do_not_render_load_no_rendering_stack(dealer, today, run, args, first_lines):
    """Startup cost (issue 7): reading commands never import docxtpl, python-docx, pypdf,
    openpyxl or the web stack, and never start LibreOffice; and they still print what they
    must."""
    run("new", "quote", "--data", str(EXAMPLE), "--as", "zhang", cwd=dealer)
    proc = subprocess.run([sys.executable, "-c", _LOADED.format(args=args, heavy=_HEAVY)],
                          cwd=dealer, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DEALERDOCS_TODAY": today.iso})
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
    out = proc.stdout.splitlines()
    assert len(out) >= len(first_lines), proc.stdout
    for line, expected in zip(out, first_lines):
        assert line.startswith(expected.format(today=today.iso)), (line, expected)
    if args[0] == "docs":
        assert out == first_lines
    assert not (dealer / "store" / "converter").exists()


def test_help_lists_every_command(run, tmp_path):
    """The top-level help names each command once, in order, with its one-line summary."""
    from engine.cli import main

    out = run("--help", cwd=tmp_path).stdout.splitlines()
    listed = out[out.index("Commands:") + 1:]
    assert [line.split()[0] for line in listed] == sorted(main.commands)
    summaries = dict(line.split(maxsplit=1) for line in listed)
    assert summaries["fire"] == "对案件执行操作：dealerdocs fire Q-1 issue --as zhang"
    assert summaries["new"] == "新建案件：dealerdocs new quote --data examples/quote.json --as zhang"
    assert summaries["verify"].startswith("校验：哈希链、登记簿")
