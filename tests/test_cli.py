"""The dealerdocs command line, run as a real process: JSON shapes, one-line errors, exit codes,
two processes issuing at once, and a process killed in the middle of issuing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from helpers import ROOT, dealerdocs_bin, pdf_text, run_cli, store_state

DEALERDOCS = dealerdocs_bin()
EXAMPLE = ROOT / "examples" / "quote.json"
YEAR = datetime.now(ZoneInfo("Asia/Shanghai")).year  # config.toml timezone


run = run_cli


def test_init_writes_a_working_config(dealer):
    text = (dealer / "config.toml").read_text(encoding="utf-8")
    assert f'workflows = {json.dumps(str(ROOT / "workflows"))}' in text
    listed = run("workflows", "--json", cwd=dealer)
    listed = {w["key"]: w for w in json.loads(listed.stdout)}
    # every shipped workflow file (each named after its key), the sales chain among them
    assert sorted(listed) == sorted(p.stem for p in (ROOT / "workflows").glob("*.toml"))
    assert {"quote", "contract", "delivery"} <= set(listed)
    assert listed["quote"]["states"]["issued"] == "已出具"
    assert listed["contract"]["states"]["pending_approval"] == "待经理审批"
    assert listed["delivery"]["states"]["followed_up"] == "已回访"
    again = run("init", str(dealer), cwd=dealer, check=False)
    assert again.returncode != 0 and "已存在" in again.stderr


def test_new_fire_show_list_docs_verify(dealer):
    created = json.loads(run("new", "quote", "--data", str(EXAMPLE), "--as", "zhang", "--json",
                             cwd=dealer).stdout)
    assert created == {"id": "Q-1", "state": "draft"}

    fired = json.loads(run("fire", "Q-1", "issue", "--as", "zhang", "--json", cwd=dealer).stdout)
    assert fired["id"] == "Q-1" and fired["state"] == "issued"
    [doc] = fired["documents"]
    assert doc["number"] == f"BJ-{YEAR}-000001"
    assert Path(doc["pdf"]).is_absolute() and Path(doc["docx"]).is_absolute()
    assert Path(doc["pdf"]) == dealer / "outbox" / str(YEAR) / "quote" / f"{doc['number']}.pdf"
    assert len(doc["sha256"]) == 64
    assert "刘晓明" in pdf_text(Path(doc["pdf"]))

    shown = json.loads(run("show", "Q-1", "--json", "--as", "wang", cwd=dealer).stdout)
    assert shown["total"] == "152669.57" and isinstance(shown["total"], str)
    assert shown["state"] == "issued" and shown["data"]["customer_name"] == "刘晓明"
    assert shown["documents"][0]["number"] == doc["number"]

    human = run("show", "Q-1", "--as", "wang", cwd=dealer).stdout
    assert "已出具" in human and "刘晓明" in human and doc["number"] in human
    assert "Q-1" in run("list", "--as", "wang", cwd=dealer).stdout
    assert doc["number"] in run("docs", "--as", "zhao", cwd=dealer).stdout
    ok = run("verify", cwd=dealer)
    assert "校验通过" in ok.stdout

    Path(doc["pdf"]).write_bytes(b"%PDF-1.4 forged")
    bad = run("verify", "--json", cwd=dealer, check=False)
    assert bad.returncode != 0
    report = json.loads(bad.stdout)
    assert report["ok"] is False and report["problems"][0]["problem"] == "changed"


def test_options_before_the_command_and_data_from_stdin(dealer):
    out = run("--as", "li", "--json", "new", "quote", "--data", "-", cwd=dealer,
              stdin=json.dumps({"customer_name": "王芳", "customer_mobile": "13900139000"}))
    assert json.loads(out.stdout) == {"id": "Q-1", "state": "draft"}
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
def test_errors_are_one_line_with_exit_code(dealer, args, code, words):
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


def test_json_errors_are_machine_readable(dealer):
    proc = run("fire", "Q-1", "issue", "--as", "zhang", "--json", cwd=dealer, check=False)
    assert proc.returncode == 4
    assert json.loads(proc.stdout)["error"] == "NotFoundError"


def test_two_processes_issuing_at_once_get_unique_gap_free_numbers(dealer):
    for _ in range(6):
        run("new", "quote", "--data", str(EXAMPLE), "--as", "zhang", cwd=dealer)
    script = "for c in {cases}; do {bin} fire $c issue --as {who} --json >/dev/null || exit 1; done"
    procs = [subprocess.Popen(["bash", "-c", script.format(cases=cases, bin=DEALERDOCS, who=who)],
                              cwd=dealer)
             for cases, who in (("Q-1 Q-3 Q-5", "zhang"), ("Q-2 Q-4 Q-6", "wang"))]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]

    docs = json.loads(run("docs", "--json", "--as", "zhao", cwd=dealer).stdout)
    numbers = sorted(d["number"] for d in docs)
    assert numbers == [f"BJ-{YEAR}-{i:06d}" for i in range(1, 7)]
    assert sorted(d["case_id"] for d in docs) == [f"Q-{i}" for i in range(1, 7)]
    cases = json.loads(run("list", "--json", "--as", "wang", cwd=dealer).stdout)
    assert {c["state"] for c in cases} == {"issued"}
    history = [e for i in range(1, 7)
               for e in json.loads(run("show", f"Q-{i}", "--json", "--as", "wang", cwd=dealer).stdout)["history"]]
    assert len(history) == 12
    assert run("verify", cwd=dealer).returncode == 0


def test_process_killed_while_issuing_changes_nothing(dealer):
    run("new", "quote", "--data", str(EXAMPLE), "--as", "zhang", cwd=dealer)
    before = store_state(dealer / "store")

    proc = subprocess.Popen([DEALERDOCS, "fire", "Q-1", "issue", "--as", "zhang"], cwd=dealer,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    time.sleep(0.8)  # rendering done, LibreOffice converting
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    assert store_state(dealer / "store") == before
    assert not list((dealer / "outbox").rglob("*.pdf")) if (dealer / "outbox").exists() else True
    again = json.loads(run("fire", "Q-1", "issue", "--as", "zhang", "--json", cwd=dealer).stdout)
    assert again["documents"][0]["number"] == f"BJ-{YEAR}-000001"  # no gap, lock released


def test_lint_and_diagram_commands(dealer, tmp_path):
    ok = run("lint", cwd=dealer)
    assert "未发现问题" in ok.stdout

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
    config.write_text(text.replace(json.dumps(str(ROOT / "templates" / "docx")), '"tpl"'),
                      encoding="utf-8")
    proc = run("lint", "quote.docx", cwd=dealer, check=False)
    assert proc.returncode == 11
    assert "custmer_name" in proc.stdout and "customer_name" in proc.stdout

    svg = tmp_path / "quote.svg"
    run("diagram", "quote", "--out", str(svg), cwd=dealer)
    text = svg.read_text(encoding="utf-8")
    assert "草稿" in text and "出具报价单" in text and "销售顾问" in text


_HEAVY = ("docxtpl", "docx", "pypdf", "openpyxl", "jinja2", "fastapi", "uvicorn", "rich")
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


@pytest.mark.parametrize("args", [["--help"], ["list", "--as", "wang"], ["show", "Q-1", "--as", "wang"],
                                  ["docs", "--as", "zhao"], ["docs", "--case", "Q-1", "--as", "wang"]])
def test_commands_that_do_not_render_load_no_rendering_stack(dealer, args):
    """Startup cost (issue 7): reading commands never import docxtpl, pypdf, openpyxl or the
    web stack, and never start LibreOffice."""
    run("new", "quote", "--data", str(EXAMPLE), "--as", "zhang", cwd=dealer)
    proc = subprocess.run([sys.executable, "-c", _LOADED.format(args=args, heavy=_HEAVY)],
                          cwd=dealer, capture_output=True, text=True, timeout=60)
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
    assert "Q-1" in proc.stdout or args[0] in ("--help", "docs")
    assert not (dealer / "store" / "converter").exists()
