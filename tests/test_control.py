"""Document control through the CLI: dispatch, automatic recall on revision, lost and damaged
copies, stamped PDFs beside untouched originals, the exported register, and verify catching
tampering with files, the audit trail and the register."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import openpyxl
import pytest
from pypdf import PdfReader

from engine.chain import GENESIS
from helpers import (ROOT, Day, cli_json as cli, contract_data, pdf_text, refused, run_cli,
                     store_state)

pytestmark = pytest.mark.slow  # each test issues and stamps documents through the CLI: > 3 s


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def register_log(dealer: Path) -> list[dict]:
    """The register log's entries in chain order, read from the store's files."""
    entries = [json.loads(line) for path in sorted((dealer / "store" / "log" / "register_log")
                                                   .glob("*.jsonl"))
               for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted(entries, key=lambda e: e["seq"])


def register_hash(pdf: Path) -> str:
    return PdfReader(str(pdf)).metadata["/DealerDocsRegisterHash"]


def issued_quote(dealer: Path) -> dict:
    data = json.loads((ROOT / "examples" / "quote.json").read_text(encoding="utf-8"))
    case = cli(dealer, "new", "quote", "--as", "zhang", data=data)["id"]
    return {"case": case, **cli(dealer, "fire", case, "issue", "--as", "zhang")["documents"][0]}


def test_copies_revision_loss_and_the_register(dealer):
    first = issued_quote(dealer)
    number, original = first["number"], Path(first["pdf"])
    before = sha(original)
    # the PDF records the register log's head as it was before its transition: a new store's
    # first document follows the genesis hash, and its own "issued" event is the first entry
    [issued] = register_log(dealer)
    assert (issued["event"], issued["number"], issued["seq"]) == ("issued", number, 1)
    assert register_hash(original) == issued["prev_hash"] == GENESIS
    assert issued["pdf_sha256"] == before

    out = cli(dealer, "dispatch", number, "--to", "王芳", "--dept", "销售部", "--copies", "3",
              "--print", "--as", "zhao")
    assert [c["label"] for c in out["copies"]] == [f"{number}-0{i}" for i in (1, 2, 3)]
    for label, printed in zip([c["label"] for c in out["copies"]], out["printed"]):
        pages = [p.extract_text() for p in PdfReader(printed).pages]
        assert all("受控文件" in t and label in t for t in pages), label

    lost = cli(dealer, "recall", number, "--reason", "丢失", "--copy", "2", "--as", "zhao")
    assert lost["copies"][0]["status"] == "void"
    assert lost["copies"][0]["replaced_by"] == f"{number}-04"
    line = refused(dealer, "recall", number, "--reason", "丢失", "--copy", "2", "--as", "zhao")
    assert "声明作废" in line
    line = refused(dealer, "recall", number, "--reason", "损坏", "--copy", "9", "--as", "zhao")
    assert "09" in line and "没有发放过" in line
    line = refused(dealer, "recall", number, "--reason", "借阅", "--as", "zhao")
    assert "借阅" in line and "换版" in line
    line = refused(dealer, "recall", "BJ-2099-999999", "--reason", "换版", "--as", "zhao")
    assert "BJ-2099-999999" in line
    line = refused(dealer, "dispatch", number, "--to", "王芳", "--dept", "销售部", "--as", "chen")
    assert "无权" in line

    damaged = cli(dealer, "recall", number, "--reason", "损坏", "--copy", "3", "--as", "zhao")
    assert damaged["copies"][0]["disposition"] == "销毁"

    log_before = register_log(dealer)
    revised = cli(dealer, "fire", first["case"], "revise", "--as", "zhang",
                  data={"discount": "9000.00"})["documents"][0]
    # the revision's PDF records the head before the revise wrote anything: the hash of the
    # last entry then, which the revise's first entry (superseding the first) links to
    written = register_log(dealer)[len(log_before):]
    assert [(e["event"], e["number"]) for e in written][0] == ("superseded", number)
    assert [(e["event"], e["number"]) for e in written][-1] == ("issued", revised["number"])
    assert register_hash(Path(revised["pdf"])) == log_before[-1]["hash"] == written[0]["prev_hash"]
    assert written[-1]["pdf_sha256"] == sha(Path(revised["pdf"])) == revised["sha256"]
    life = cli(dealer, "docs", number, "--as", "zhao")
    assert life["status"] == "superseded" and life["superseded_by"] == revised["number"]
    statuses = {(c["label"], c["rev"]): c["status"] for c in life["copies"]}
    assert statuses == {(f"{number}-01", 1): "returned", (f"{number}-02", 1): "void",
                        (f"{number}-03", 1): "returned", (f"{number}-03", 2): "returned",
                        (f"{number}-04", 1): "returned"}
    assert all(c["reason"] == "换版" for c in life["copies"]
               if c["status"] == "returned" and not (c["copy_no"] == 3 and c["rev"] == 1))
    stamped = Path(dealer / "outbox" / life["stamped_pdf"])
    assert stamped.is_file() and stamped != original
    pages = [page.extract_text() for page in PdfReader(str(stamped)).pages]
    assert len(pages) == 2 and all("已收回" in t and "换版" in t for t in pages)  # every page
    assert sha(original) == before  # the original and its registered hash stay untouched
    assert cli(dealer, "docs", revised["number"], "--as", "zhao")["supersedes"] == number
    line = refused(dealer, "dispatch", number, "--to", "王芳", "--dept", "销售部", "--as", "zhao")
    assert "已换版" in line and revised["number"] in line

    xlsx = dealer / "register.xlsx"
    result = cli(dealer, "register", "export", "--format", "xlsx", "--out", str(xlsx), "--as", "zhao")
    rows = list(openpyxl.load_workbook(xlsx).active.iter_rows(values_only=True))
    header, body = rows[2], rows[3:]
    assert result["rows"] == len(body) == 5
    assert list(header) == ["序号", "文件编号", "文件名称", "版本/修改状态", "发放编号", "份数",
                            "发放日期", "发放人", "领用部门", "签收人", "回收日期", "交回人",
                            "回收签收人", "回收原因", "处置", "备注"]
    by_label = {}
    for r in body:
        by_label.setdefault(r[4], []).append(dict(zip(header, r)))
    assert by_label[f"{number}-02"][0]["回收原因"] == "丢失"
    assert by_label[f"{number}-04"][0]["备注"].startswith(f"补发，替代 {number}-02")
    assert by_label[f"{number}-01"][0]["回收原因"] == "换版"
    assert by_label[f"{number}-01"][0]["回收签收人"] == "张伟"
    pdf = dealer / "register.pdf"
    cli(dealer, "register", "export", "--format", "pdf", "--out", str(pdf), "--as", "zhao")
    assert "文件发放回收记录表" in pdf_text(pdf) and f"{number}-04" in pdf_text(pdf)
    assert run_cli("verify", cwd=dealer).returncode == 0


def test_contract_copy_to_the_buyer_and_void_on_cancel(dealer):
    today = Day.now()  # the contract's dates and the day of every command below
    cli = today.cli
    case = cli(dealer, "new", "contract", "--as", "zhang", data=contract_data(today.date))["id"]
    cli(dealer, "fire", case, "submit", "--as", "zhang")
    doc = cli(dealer, "fire", case, "issue", "--as", "zhang")["documents"][0]
    [copy] = cli(dealer, "docs", doc["number"], "--as", "zhao")["copies"]
    assert (copy["recipient"], copy["dept"], copy["status"]) == ("刘晓明", "客户", "out")
    assert copy["label"] == f"{doc['number']}-01"
    cli(dealer, "fire", case, "cancel", "--as", "wang", data={"cancel_reason": "客户放弃"})
    life = cli(dealer, "docs", doc["number"], "--as", "zhao")
    assert life["status"] == "void" and life["copies"][0]["reason"] == "作废"
    pages = PdfReader(str(dealer / "outbox" / life["stamped_pdf"])).pages
    assert all("作废" in page.extract_text() for page in pages)


def test_verify_catches_tampering(dealer):
    doc = issued_quote(dealer)
    case, number = doc["case"], doc["number"]
    assert run_cli("verify", cwd=dealer).returncode == 0
    store = dealer / "store"
    pristine = store_state(store)

    def restore():
        for rel, payload in pristine.items():
            (store / rel).write_bytes(payload)

    [audit_file] = sorted((store / "log" / "audit").glob("*.jsonl"))
    lines = audit_file.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["actor"] = "wang"  # someone rewrites who did it
    audit_file.write_text("\n".join([json.dumps(first, ensure_ascii=False), *lines[1:]]) + "\n",
                          encoding="utf-8")
    bad = run_cli("verify", cwd=dealer, check=False)
    assert bad.returncode == 10
    assert bad.stderr.splitlines() == [
        "审计记录：第 1 条记录的内容被改动（哈希不符）",
        # entry 1 is the customer's file the quote made (K-1)
        "案件 K-1 的文件中审计记录第 1 条与链中的不一致（不同之处：actor）",
        "校验失败：2 处问题（共 1 份文档）；第一处：审计记录：第 1 条记录的内容被改动（哈希不符）"]

    restore()
    [case_file] = (store / "cases").rglob("Q-1.json")
    data = json.loads(case_file.read_text(encoding="utf-8"))
    data["documents"] = {}  # a register entry deleted from the case's file
    case_file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    bad = run_cli("verify", cwd=dealer, check=False)
    assert bad.returncode == 10
    assert bad.stderr.splitlines() == [
        f"文件 {number} 的索引与案件文件中的登记不一致",
        f"登记簿缺少文件 {number}（发放登记日志第 1 条记载其出具）",
        f"校验失败：2 处问题（共 1 份文档）；第一处：文件 {number} 的索引与案件文件中的登记不一致"]

    restore()
    audit_file.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # the last entry removed
    bad = run_cli("verify", cwd=dealer, check=False)
    assert bad.returncode == 10
    assert bad.stderr.splitlines() == [
        "审计记录：最后 若干条记录缺失（链尾哈希与登记的不符）",
        f"案件 {case} 的文件中审计记录第 3 条在链中没有（或链中这一条不属于该案件）",
        "校验失败：2 处问题（共 1 份文档）；第一处：审计记录：最后 若干条记录缺失（链尾哈希与登记的不符）"]

    restore()
    assert run_cli("verify", cwd=dealer).returncode == 0
    Path(doc["docx"]).unlink()
    Path(doc["pdf"]).write_bytes(b"%PDF-1.4 forged")
    report = json.loads(run_cli("verify", "--json", cwd=dealer, check=False).stdout)
    assert report["ok"] is False and report["documents"] == 1
    found = {(p["number"], p["problem"], p["path"]) for p in report["problems"]}
    assert found == {(number, "missing", doc["docx"]), (number, "changed", doc["pdf"])}
