"""Batch issuing: documents converted a wave ahead, each item its own all-or-nothing fire,
and a batch killed half way issues nothing twice when run again."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter

import pytest
from pypdf import PdfReader

from engine.batch import BatchItem, BatchRunner
from datetime import datetime

from helpers import CST, dealerdocs_bin, example, pdf_text, run_cli

YEAR = 2026  # the engine fixture's clock
NOW_YEAR = datetime.now(CST).year  # the CLI's


def _numbers(engine) -> list[str]:
    return sorted(d["number"] for d in engine.documents(actor="zhao"))


def test_batch_fire_issues_every_case_with_pdfs_converted_ahead(engine, quote_data):
    ids = [engine.create("quote", {**quote_data, "customer_name": name}, "zhang").id
           for name in ("王芳", "李强", "赵敏", "陈杰", "周涛")]
    seen = []
    runner = BatchRunner(engine, "zhang", wave=2, progress=seen.append)
    summary = runner.run("fire", "issue", [BatchItem(i, "issue", case_id=i) for i in ids])

    assert (summary["done"], summary["failed"], summary["skipped"]) == (5, 0, 0)
    assert summary["converted_ahead"] == 5 and summary["converted_late"] == 0
    assert [r.key for r in seen] == ids
    assert _numbers(engine) == [f"BJ-{YEAR}-{n:06d}" for n in range(1, 6)]
    for case_id, name in zip(ids, ("王芳", "李强", "赵敏", "陈杰", "周涛")):
        [doc] = engine.case(case_id, actor="wang")["documents"]
        text = pdf_text(doc["pdf"]).replace(" ", "")
        assert name in text and doc["number"] in text  # the PDF of this case, not a neighbour's
        assert engine.case(case_id, actor="wang")["state"] == "issued"


def test_a_failing_item_is_reported_and_the_rest_are_issued(engine, quote_data):
    good = engine.create("quote", quote_data, "zhang").id
    summary = BatchRunner(engine, "zhang").run("fire", "issue", [
        BatchItem("Q-404", "issue", case_id="Q-404"), BatchItem(good, "issue", case_id=good)])
    results = {r["key"]: r for r in summary["results"]}
    assert results["Q-404"]["status"] == "failed" and "找不到案件" in results["Q-404"]["error"]
    assert results[good]["status"] == "done" and results[good]["documents"]


def test_an_interrupted_batch_resumes_without_issuing_twice(engine, quote_data):
    ids = [engine.create("quote", quote_data, "zhang").id for _ in range(5)]
    items = [BatchItem(i, "issue", case_id=i) for i in ids]

    def stop_after_two(result, done=[]):
        done.append(result)
        if len(done) == 2:
            raise KeyboardInterrupt  # Ctrl-C half way

    with pytest.raises(KeyboardInterrupt):
        BatchRunner(engine, "zhang", wave=2, progress=stop_after_two).run("fire", "issue", items)
    assert len(_numbers(engine)) == 2

    again = BatchRunner(engine, "zhang", wave=2).run("fire", "issue", items)
    assert (again["skipped"], again["done"], again["failed"]) == (2, 3, 0)
    assert _numbers(engine) == [f"BJ-{YEAR}-{n:06d}" for n in range(1, 6)]
    assert all(len(engine.case(i, actor="wang")["documents"]) == 1 for i in ids)


def test_cli_batch_create_killed_and_rerun_issues_each_line_once(tmp_path):
    run_cli("init", str(tmp_path / "store"), cwd=tmp_path)
    dealer = tmp_path / "store"
    lines = [json.dumps({**example("quote"), "customer_name": f"客户{i}"}, ensure_ascii=False)
             for i in range(6)]
    (dealer / "quotes.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["batch", "create", "quote", "--jsonl", "quotes.jsonl", "--issue", "issue",
            "--as", "zhang"]

    proc = subprocess.Popen([dealerdocs_bin(), *args], cwd=dealer, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    # a PDF is in the outbox just before its unit of work commits: 3 there means 2 committed
    while len(list((dealer / "outbox").rglob("BJ-*.pdf"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9 half way, LibreOffice included
    proc.wait()

    rerun = run_cli(*args, "--json", cwd=dealer)
    summary = json.loads(rerun.stdout)
    assert summary["skipped"] >= 2 and summary["skipped"] + summary["done"] == 6
    cases = json.loads(run_cli("list", "--json", "--as", "wang", cwd=dealer).stdout)
    assert len(cases) == 6 and {c["state"] for c in cases} == {"issued"}
    docs = json.loads(run_cli("docs", "--json", "--as", "zhao", cwd=dealer).stdout)
    assert sorted(d["number"] for d in docs) == [f"BJ-{NOW_YEAR}-{n:06d}" for n in range(1, 7)]
    assert Counter(d["case_id"] for d in docs) == Counter({c["id"]: 1 for c in cases})
    assert run_cli("verify", cwd=dealer).returncode == 0


def test_cli_batch_reports_a_bad_line_by_number(tmp_path):
    run_cli("init", str(tmp_path / "store"), cwd=tmp_path)
    dealer = tmp_path / "store"
    (dealer / "bad.jsonl").write_text('{"customer_name": "王芳"}\n{oops\n', encoding="utf-8")
    proc = run_cli("batch", "create", "quote", "--jsonl", "bad.jsonl", "--as", "zhang",
                   cwd=dealer, check=False)
    assert proc.returncode == 3 and "第 2 行" in proc.stderr and "Traceback" not in proc.stderr


def test_batch_cancel_voids_and_stamps_each_case(engine):
    ids = []
    for hour in (9, 11, 14):   # one car, three slots of a day
        data = example("test_drive", slot_start=f"2030-06-15T{hour:02d}:00",
                       slot_end=f"2030-06-15T{hour:02d}:45")
        ids.append(engine.create("test_drive", data, "zhang").id)
        engine.fire(ids[-1], "sign_agreement", "zhang")
    summary = BatchRunner(engine, "zhang").run(
        "fire", "cancel", [BatchItem(i, "cancel", case_id=i, data={"cancel_reason": "车辆临时调配"})
                           for i in ids])
    assert (summary["done"], summary["failed"]) == (3, 0), summary
    for case_id in ids:
        [doc] = engine.case(case_id, actor="wang")["documents"]
        assert doc["status"] == "void" and doc["stamped_pdf"]
        pages = PdfReader(str(engine.outbox.absolute(doc["stamped_pdf"]))).pages
        assert all("作废" in page.extract_text() for page in pages)
