"""Batch issuing: documents converted a wave ahead (by the cold converter and by a warm pool of
two LibreOffice instances), each item its own all-or-nothing fire, and a batch killed half way
issues nothing twice when run again."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pypdf import PdfReader

from engine import Engine, load_config
from engine.batch import BatchItem, BatchRunner
from engine.warm import WarmConverter, find_office_python
from helpers import Day, dealerdocs_bin, example, pdf_text

YEAR = 2026  # the engine fixture's clock
NAMES = ("王芳", "李强", "赵敏", "陈杰", "周涛", "吴昊", "郑爽", "孙丽", "马超", "朱琳")


def _numbers(engine) -> list[str]:
    return sorted(d["number"] for d in engine.documents(actor="zhao"))


def _issues_each_case_its_own_pdf(engine, ids, names) -> None:
    """Each case issued once, its PDF naming its own customer and number (not a neighbour's)."""
    for case_id, name in zip(ids, names, strict=True):
        case = engine.case(case_id, actor="wang")
        assert case["state"] == "issued"
        [doc] = case["documents"]
        text = pdf_text(doc["pdf"]).replace(" ", "")
        assert name in text and doc["number"] in text, (case_id, name)
        assert not [other for other in names if other != name and other in text], (case_id, name)


@pytest.mark.slow
def test_batch_fire_issues_every_case_with_pdfs_converted_ahead(engine, quote_data):
    names = NAMES[:5]
    ids = [engine.create("quote", {**quote_data, "customer_name": name}, "zhang").id
           for name in names]
    seen = []
    runner = BatchRunner(engine, "zhang", wave=2, progress=seen.append)
    summary = runner.run("fire", "issue", [BatchItem(i, "issue", case_id=i) for i in ids])

    assert (summary["done"], summary["failed"], summary["skipped"]) == (5, 0, 0)
    assert summary["converted_ahead"] == 5 and summary["converted_late"] == 0
    assert [r.key for r in seen] == ids
    assert _numbers(engine) == [f"BJ-{YEAR}-{n:06d}" for n in range(1, 6)]
    _issues_each_case_its_own_pdf(engine, ids, names)


@pytest.fixture(scope="module")
def warm_pool(tmp_path_factory):
    """Two warm LibreOffice instances, started for this module and stopped after."""
    if find_office_python() is None:
        pytest.fail("no Python with LibreOffice's uno module: run `make setup` (python3-uno)")
    pool = WarmConverter(tmp_path_factory.mktemp("warm"), instances=2, timeout=120)
    pool.start()
    yield pool
    pool.stop()


class _NoColdConversion:
    """Stands in for the warm pool's cold fallback: this test must convert warm only."""

    def convert(self, data, suffix=".docx"):
        raise AssertionError("a document was converted cold, not by the warm pool")

    convert_many = convert

    def close(self) -> None:
        pass


@pytest.mark.slow
def test_batch_fire_with_a_warm_pool_of_two(config_path, clock, quote_data, warm_pool,
                                            monkeypatch):
    monkeypatch.setattr(warm_pool, "fallback", _NoColdConversion())
    pids = sorted(inst["pid"] for inst in warm_pool.status() if inst["alive"])
    assert len(pids) == 2
    engine = Engine(load_config(config_path), converter=warm_pool, clock=clock)
    try:
        ids = [engine.create("quote", {**quote_data, "customer_name": name}, "zhang").id
               for name in NAMES]
        summary = BatchRunner(engine, "zhang").run(   # a wave is 4 per instance: 8, then 2
            "fire", "issue", [BatchItem(i, "issue", case_id=i) for i in ids])

        assert (summary["done"], summary["failed"], summary["skipped"]) == (10, 0, 0), summary
        assert summary["converted_ahead"] == 10 and summary["converted_late"] == 0
        assert _numbers(engine) == [f"BJ-{YEAR}-{n:06d}" for n in range(1, 11)]
        _issues_each_case_its_own_pdf(engine, ids, NAMES)
    finally:
        engine.close()
    # the same two instances did it all: none failed and was restarted
    assert sorted(inst["pid"] for inst in warm_pool.status() if inst["alive"]) == pids


def test_a_failing_item_is_reported_and_the_rest_are_issued(engine, quote_data):
    good = engine.create("quote", quote_data, "zhang").id
    summary = BatchRunner(engine, "zhang").run("fire", "issue", [
        BatchItem("Q-404", "issue", case_id="Q-404"), BatchItem(good, "issue", case_id=good)])
    results = {r["key"]: r for r in summary["results"]}
    assert results["Q-404"]["status"] == "failed"
    assert results["Q-404"]["error"] == '找不到案件 "Q-404"（可用 dealerdocs list 查看）'
    assert results[good]["status"] == "done"
    assert results[good]["documents"] == [f"BJ-{YEAR}-000001"] == _numbers(engine)


@pytest.mark.slow
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


COMMITTED = b"journal written: committed"  # what the store logs at each commit point


def _run_until_commits(args: list[str], dealer: Path, today: Day, commits: int) -> int:
    """Start ``dealerdocs ARGS`` with DEALERDOCS_LOG=debug and SIGKILL it, with the LibreOffice
    it started in a session of its own, as soon as it has logged its ``commits``-th commit
    point; returns how many commit points it logged. Fails if it ended before that."""
    scratch = dealer.parent / "killed-tmp"  # what the killed run cannot clean up stays here
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "DEALERDOCS_LOG": "debug", "DEALERDOCS_TODAY": today.iso,
           "TMPDIR": str(scratch)}
    proc = subprocess.Popen([dealerdocs_bin(), *args], cwd=dealer, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    seen, deadline = b"", time.monotonic() + 300
    try:
        while seen.count(COMMITTED) < commits:
            if time.monotonic() > deadline:  # a guard against a hung run, not a speed check
                pytest.fail(f"no commit {commits} logged:\n{seen.decode('utf-8', 'replace')}")
            if select.select([proc.stderr], [], [], 0.1)[0]:
                chunk = os.read(proc.stderr.fileno(), 65536)
                assert chunk, f"ended before commit {commits}:\n{seen.decode('utf-8', 'replace')}"
                seen += chunk
    finally:
        _kill_tree(proc)
    return seen.count(COMMITTED)


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the command's process group and the groups its children started (soffice runs
    in a session of its own): stopped first, so nothing new starts in between."""
    groups = {proc.pid}
    try:
        os.killpg(proc.pid, signal.SIGSTOP)
        for task in Path(f"/proc/{proc.pid}/task").iterdir():  # any thread may have started one
            groups |= {os.getpgid(int(pid)) for pid in (task / "children").read_text().split()}
    except (ProcessLookupError, FileNotFoundError):
        pass
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate()


@pytest.mark.slow
def test_cli_batch_create_killed_and_rerun_issues_each_line_once(dealer):
    today = Day.now()  # the numbers' year and the day of every command below
    names = [f"客户{i}" for i in range(6)]
    lines = [json.dumps({**example("quote"), "customer_name": name}, ensure_ascii=False)
             for name in names]
    (dealer / "quotes.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["batch", "create", "quote", "--jsonl", "quotes.jsonl", "--issue", "issue",
            "--as", "zhang"]

    # kill -9 just after the 8th commit: each case is created (one commit each) and then
    # issued (one commit each) once its wave's PDFs are converted ahead
    committed = _run_until_commits(args, dealer, today, commits=8)

    created = today.cli(dealer, "list", "--workflow", "quote", "--as", "wang")
    issued = today.cli(dealer, "docs", "--as", "zhao")
    assert 0 < len(issued) < len(created) <= len(lines), (len(issued), len(created))
    assert len(created) + len(issued) >= committed >= 8  # each logged commit is in the store
    assert {c["state"] for c in created} == {"draft", "issued"}
    assert sorted(d["case_id"] for d in issued) == sorted(
        c["id"] for c in created if c["state"] == "issued")
    assert today.run("verify", cwd=dealer).returncode == 0  # the killed run left a whole store

    summary = today.cli(dealer, *args)
    assert (summary["skipped"], summary["done"], summary["failed"]) == (
        len(issued), len(lines) - len(issued), 0)
    cases = today.cli(dealer, "list", "--workflow", "quote", "--as", "wang")
    docs = today.cli(dealer, "docs", "--as", "zhao")
    assert len(cases) == len(lines) and {c["state"] for c in cases} == {"issued"}
    assert sorted(d["number"] for d in docs) == [
        f"BJ-{today.date.year}-{n:06d}" for n in range(1, len(lines) + 1)]  # no gap, no repeat
    assert sorted(d["case_id"] for d in docs) == sorted(c["id"] for c in cases)  # once each
    # each line made one case, issued once, in its own name
    by_line = {r["key"]: r for r in summary["results"]}
    assert sorted(by_line) == [f"line{n}" for n in range(1, len(lines) + 1)]
    assert len({r["case"] for r in by_line.values()}) == len(lines)
    for n, name in enumerate(names, start=1):
        case_id = by_line[f"line{n}"]["case"]
        shown = today.cli(dealer, "show", case_id, "--as", "wang")
        assert shown["data"]["customer_name"] == name
        [doc] = shown["documents"]
        assert name in pdf_text(Path(doc["pdf"])).replace(" ", "")
    assert today.run("verify", cwd=dealer).returncode == 0


def test_cli_batch_reports_a_bad_line_by_number(dealer):
    today = Day.now()
    (dealer / "bad.jsonl").write_text('{"customer_name": "王芳"}\n{oops\n', encoding="utf-8")
    proc = today.run("batch", "create", "quote", "--jsonl", "bad.jsonl", "--as", "zhang",
                     cwd=dealer, check=False)
    assert proc.returncode == 3
    assert proc.stderr == ("错误：bad.jsonl 第 2 行不是合法的 JSON"
                           "（Expecting property name enclosed in double quotes）\n")
    assert today.cli(dealer, "list", "--as", "wang") == []  # nothing created from a bad file


@pytest.mark.slow
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
        assert doc["status"] == "void" and doc["stamped_pdf"] != doc["pdf"]
        pages = PdfReader(str(engine.archive.absolute(doc["stamped_pdf"]))).pages
        assert all("作废" in page.extract_text() for page in pages)
