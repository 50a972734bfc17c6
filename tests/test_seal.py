"""Tamper evidence that survives a full rewrite (issue 13): ``verify`` compares each case's copy
of its log entries with the chains and checks the register head each issued PDF recorded;
``dealerdocs seal`` writes a line kept outside the store, and ``verify --seal`` finds a chain
that no longer extends it, even after the attacker re-hashed everything consistently.

The attacks edit the store's files the way someone with write access would: the monthly log,
the case files and the head in ``meta.json``. The pure seal logic (format, HMAC, comparison)
is tested first, without a store."""
from __future__ import annotations

import json
import os
import shutil
import stat
from datetime import datetime
from pathlib import Path
from typing import Callable

import pytest

from engine import chain, seal
from engine.services.integrity import copy_difference, head_problem
from engine.errors import ConfigError, InputError, IntegrityError
from engine.seal import Head, SealError

from helpers import CST, run_cli

KEY = b"k" * 32
AT = datetime(2026, 12, 4, 18, 0, tzinfo=CST)
G = chain.GENESIS


def build_chain(n: int, **extra) -> list[dict]:
    entries, prev = [], G
    for i in range(1, n + 1):
        entry = chain.link({"at": f"2026-11-26T10:{i:02d}:00+08:00", "actor": "zhang",
                            "case_id": "Q-1", **extra}, i, prev)
        entries.append(entry)
        prev = entry["hash"]
    return entries


def heads_of(entries: list[dict]) -> Head:
    return Head(len(entries), entries[-1]["hash"] if entries else G)


def seal_of(audit: list[dict], register: list[dict], *, at: datetime = AT, docs: int = 0,
            key: bytes = KEY, store: str = "BJ1023") -> seal.Seal:
    return seal.make(store, at, {"audit": heads_of(audit), "register_log": heads_of(register)},
                     docs, key)


# --- the seal line: format, parse, HMAC ---------------------------------------------------

def test_a_seal_line_round_trips_and_names_everything():
    audit, register = build_chain(3), build_chain(2)
    made = seal_of(audit, register, docs=2)
    line = made.line
    assert line.startswith("dealerdocs-seal v1 BJ1023 2026-12-04T18:00:00+08:00 ")
    assert f" audit=3:{audit[-1]['hash']} register_log=2:{register[-1]['hash']} docs=2 hmac=" in line
    assert "\n" not in line and len(line.split(" ")) == 8
    again = seal.parse(line + "\n")
    assert again == made and seal.authentic(again, KEY)
    assert seal.parse(seal_of([], []).line).head("audit") == Head(0, G)


def test_the_hmac_covers_every_field_and_needs_the_key():
    made = seal_of(build_chain(3), build_chain(2), docs=2)
    assert not seal.authentic(made, b"x" * 32)
    for old, new in ((" docs=2 ", " docs=9 "), ("BJ1023", "BJ1024"), ("audit=3:", "audit=2:"),
                     ("T18:00:00", "T19:00:00")):
        forged = seal.parse(made.line.replace(old, new))   # still well-formed …
        assert not seal.authentic(forged, KEY), old       # … but not made with the key


@pytest.mark.parametrize("old, new, words", [
    (None, "hello", "不是封存行"),
    (None, "dealerdocs-seal v2 BJ1023", "不支持的封存格式 \"v2\""),
    (None, "dealerdocs-seal v1 BJ1023 2026-12-04T18:00:00+08:00 docs=1", "应有 8 个字段"),
    ("T18:00:00+08:00", "T18:00:00", "没有时区"),
    ("T18:00:00+08:00", "T18:00+08:00", "写法不规范"),
    ("2026-12-04T18:00:00+08:00", "yesterday", "不是 ISO 时间"),
    ("audit=3:", "audit=x:", "条数:64 位十六进制哈希"),
    ("audit=3:", "audit=03:", "条数:64 位十六进制哈希"),
    (" docs=2 ", " docs=-2 ", "docs= 应为文件份数"),
    (" docs=2 ", " pages=2 ", "第 7 个字段应为 docs=…"),
    (" hmac=", " hmac=zz", "hmac= 应为 64 位十六进制"),
])
def test_a_malformed_seal_line_is_refused_with_its_reason(old, new, words):
    good = seal_of(build_chain(3), build_chain(2), docs=2).line
    with pytest.raises(SealError) as err:
        seal.parse(new if old is None else good.replace(old, new, 1))
    assert words in str(err.value)


def test_an_empty_chain_is_sealed_with_the_genesis_hash_only():
    line = seal_of([], []).line
    with pytest.raises(SealError, match="条数:64"):
        seal.parse(line.replace(f"audit=0:{G}", f"audit=0:{'a' * 64}"))


@pytest.mark.parametrize("store, key, words", [
    ("BJ 1023", KEY, "不能为空或含空白"),
    ("", KEY, "不能为空或含空白"),
    ("BJ1023", b"short", "只有 5 字节，至少需要 32 字节"),
])
def test_make_refuses_what_cannot_be_sealed(store, key, words):
    with pytest.raises(SealError) as err:
        seal_of([], [], store=store, key=key)
    assert words in str(err.value)


def test_read_lines_sorts_ours_others_forged_and_malformed():
    ours = seal_of(build_chain(2), build_chain(1), docs=1).line
    other_key = seal_of(build_chain(2), build_chain(1), docs=1, key=b"o" * 32).line
    other_store = seal_of(build_chain(2), build_chain(1), store="SH2001", key=b"o" * 32).line
    text = "\n".join(["# printed daily", "", ours, other_key,
                      ours.replace(" docs=1 ", " docs=7 "), other_store, "dealerdocs-seal v1 x"])
    lines = seal.read_lines(text, "BJ1023", KEY)
    assert [(line.number, line.status) for line in lines] == [
        (3, "ok"), (4, "forged"), (5, "forged"), (6, "other_store"), (7, "malformed")]
    assert "伪造" in lines[1].detail and "8 个字段" in lines[4].detail


# --- the comparison: a chain must extend every seal ----------------------------------------

def hashes(audit: list[dict], register: list[dict]) -> dict[str, list[str]]:
    return {"audit": seal.recomputed_hashes(audit), "register_log": seal.recomputed_hashes(register)}


def rehashed(entries: list[dict], seq: int, edit: Callable[[dict], None]) -> list[dict]:
    """``entries`` with entry ``seq`` edited and every hash recomputed (a full rewrite)."""
    out, prev = [], G
    for e in entries:
        body = {k: v for k, v in e.items() if k not in ("seq", "prev_hash", "hash")}
        if e["seq"] == seq:
            edit(body)
        out.append(chain.link(body, e["seq"], prev))
        prev = out[-1]["hash"]
    return out


def test_recomputed_hashes_come_from_content_not_from_the_hash_fields():
    entries = build_chain(4)
    assert seal.recomputed_hashes(entries) == [e["hash"] for e in entries]
    edited = [dict(e) for e in entries]
    edited[1]["actor"] = "wang"           # content changed, stale hash fields left in place
    assert seal.recomputed_hashes(edited)[0] == entries[0]["hash"]
    assert seal.recomputed_hashes(edited)[1:] != [e["hash"] for e in entries[1:]]
    assert len(seal.recomputed_hashes(entries[:2] + entries[3:])) == 2   # stops at the gap


def test_a_chain_that_grew_extends_its_seals():
    audit, register = build_chain(5), build_chain(3)
    seals = [seal_of(audit[:2], register[:1]), seal_of(audit[:5], register[:3]), seal_of([], [])]
    assert seal.compare(seals, hashes(audit + build_chain(0), register), docs=3) == []


def test_a_rewrite_is_located_between_the_seals_that_hold_and_the_first_that_breaks():
    audit, register = build_chain(6), build_chain(2)
    early = seal_of(audit[:2], register, at=datetime(2026, 12, 1, 18, 0, tzinfo=CST))
    late = seal_of(audit[:5], register, at=datetime(2026, 12, 2, 18, 0, tzinfo=CST))
    later = seal_of(audit, register, at=datetime(2026, 12, 3, 18, 0, tzinfo=CST))
    rewritten = rehashed(audit, 4, lambda e: e.update(actor="wang"))
    assert chain.check(rewritten, rewritten[-1]["hash"]) is None   # the chain alone looks fine
    [found] = seal.compare([later, early, late], hashes(rewritten, register))
    assert (found.chain, found.seal, found.first, found.last) == ("audit", late, 3, 5)
    assert "审计记录与 2026-12-02T18:00:00+08:00 的封存不符" in found.detail
    assert "第 3–5 条中有记录在封存后被改写" in found.detail and "第 1–2 条与更早的封存一致" in found.detail
    just_before = seal_of(audit[:4], register, at=datetime(2026, 12, 2, 12, 0, tzinfo=CST))
    [exact] = seal.compare([early, just_before, late],
                           hashes(rehashed(audit, 5, lambda e: e.update(x=1)), register))
    assert (exact.first, exact.last) == (5, 5) and "第 5 条在封存后被改写" in exact.detail


def test_deleted_entries_and_lost_documents_break_the_seal():
    audit, register = build_chain(4), build_chain(3)
    sealed = seal_of(audit, register, docs=3)
    found = seal.compare([sealed], hashes(audit[:3], register[:1]), docs=1)
    assert [(b.chain, b.first, b.last) for b in found] == [
        ("audit", 4, 4), ("register_log", 2, 3), ("docs", 0, 0)]
    assert "审计记录现在只有 3 条" in found[0].detail and "已有 4 条" in found[0].detail
    assert "第 2–3 条在封存后被删除" in found[1].detail
    assert "现有 1 份文件，少于" in found[2].detail


# --- what verify checks inside the store: the cases' copies, the PDFs' heads ---------------

@pytest.mark.parametrize("copy, chain_entries, expected", [
    ("1 2", "1 2", None),
    ("1", "1 2", (2, "缺少第 2 条（链中有这一条）")),
    ("1 2 3", "1 2", (3, "第 3 条在链中没有")),
    ("1 2*", "1 2", (2, "第 2 条与链中的不一致（不同之处：actor）")),
    ("1 1 2", "1 2", (1, "第 1 条出现了不止一次")),
    ("", "", None),
])
def test_copy_difference_names_the_first_entry(copy, chain_entries, expected):
    entries = {e["seq"]: e for e in build_chain(3)}

    def pick(spec: str) -> list[dict]:
        out = []
        for token in spec.split():
            e = dict(entries[int(token.rstrip("*"))])
            if token.endswith("*"):
                e["actor"] = "wang"
            out.append(e)
        return out

    found = copy_difference(pick(copy), pick(chain_entries))
    if expected is None:
        assert found is None
    else:
        assert found is not None and found[0] == expected[0] and expected[1] in found[1]


def register_log_of(*events: tuple[str, str]) -> list[dict]:
    """A register log of (event, at) pairs, numbers D1, D2, …"""
    out, prev = [], G
    for i, (event, at) in enumerate(events, start=1):
        entry = chain.link({"at": at, "event": event, "number": f"D{i}", "kind": "quote"}, i, prev)
        out.append(entry)
        prev = entry["hash"]
    return out


@pytest.mark.parametrize("recorded, issued_seq, words", [
    (G, 1, None),                              # the first document: the log was empty
    (G, 2, None),                              # the second of the same transaction
    (G, 3, "之前已有更早的第 1 条"),              # genesis, but an earlier transaction exists
    ("seq1", 3, None),                         # the head before its own issue
    ("seq3", 3, "不在它自己的出具记录（第 3 条）之前"),
    ("f" * 64, 3, "不在现在的日志中"),
    (None, 3, "没有记载"),
])
def test_head_problem(recorded, issued_seq, words):
    log = register_log_of(("issued", "T1"), ("issued", "T1"), ("issued", "T2"))
    seq_of = {e["hash"]: e["seq"] for e in log}
    recorded = log[int(recorded[3:]) - 1]["hash"] if recorded and recorded.startswith("seq") \
        else recorded
    problem = head_problem(f"D{issued_seq}", recorded, log[issued_seq - 1], log, seq_of)
    assert (problem is None) if words is None else (words in problem)


def test_a_pdf_from_before_pdfs_carried_the_head_is_accepted():
    """Issued events the schema-1 migration made have no "kind": their PDFs had no head yet."""
    event = {"seq": 1, "event": "issued", "number": "BJ-2026-000001", "at": "T1"}
    assert head_problem("BJ-2026-000001", None, event, [event], {}) is None


# --- attacks with write access to the store folder ---------------------------------------

def issue_quote(engine, data: dict, actor: str = "zhang"):
    case = engine.create("quote", data, actor)
    return case.id, engine.fire(case.id, "issue", actor).documents[0]


def rewrite_chain(store: Path, name: str, seq: int, edit: Callable[[dict], None], *,
                  copies: str) -> None:
    """Edit entry ``seq`` of chain ``name`` in its monthly file, re-hash every entry with
    :mod:`engine.chain`, write the new head into meta.json. ``copies="edited"``: the edited
    entry is also written into the case's file; ``"all"``: every case's copy is replaced by the
    re-hashed entries (a rewrite consistent everywhere)."""
    rows = []
    for path in sorted((store / "log" / name).glob("*.jsonl")):
        rows += [(path, json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]
    rows.sort(key=lambda r: r[1]["seq"])
    new, prev = [], G
    for path, entry in rows:
        body = {k: v for k, v in entry.items() if k not in ("seq", "prev_hash", "hash")}
        if entry["seq"] == seq:
            edit(body)
        linked = chain.link(body, entry["seq"], prev)
        new.append((path, linked))
        prev = linked["hash"]
    for path in {p for p, _ in new}:
        path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for p, e in new if p == path),
                        encoding="utf-8")
    set_head(store, name, prev)
    by_seq = {e["seq"]: e for _, e in new}
    for case_file in (store / "cases").rglob("*.json"):
        data = json.loads(case_file.read_text(encoding="utf-8"))
        table = data.get(name, {})
        for doc_id, row in table.items():
            if copies == "all" or row["seq"] == seq:
                table[doc_id] = by_seq[row["seq"]]
        case_file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def set_head(store: Path, name: str, head: str) -> None:
    meta = json.loads((store / "meta.json").read_text(encoding="utf-8"))
    for row in meta["chains"].values():
        if row["key"] == name:
            row["hash"] = head
    (store / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def case_file(store: Path, case_id: str) -> Path:
    [path] = (store / "cases").rglob(f"{case_id}.json")
    return path


def edit_case(store: Path, case_id: str, change: Callable[[dict], None]) -> None:
    path = case_file(store, case_id)
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def blame_wang(entry: dict) -> None:
    entry["actor"] = "wang"   # "it was the manager who created Q-1, not zhang"


def created_by_wang(data: dict) -> None:
    data["case"]["1"]["created_by"] = "wang"


def test_a_rewrite_of_the_audit_trail_shows_in_the_other_cases_copies(engine, quote_data):
    """The finding of issue 13: Q-1's creator rewritten in the log and in Q-1's file, the chain
    re-hashed, the head moved; verify used to report nothing."""
    issue_quote(engine, quote_data)
    issue_quote(engine, quote_data)
    store = engine.config.store_dir
    rewrite_chain(store, "audit", 2, blame_wang, copies="edited")   # entry 1 is K-1's
    edit_case(store, "Q-1", created_by_wang)

    problems = engine.verify()

    # every later entry was re-hashed: the customer's file (Q-2 joined it) shows it too
    assert {(p["number"], p["problem"]) for p in problems} == {
        ("K-1", "case_copy"), ("Q-1", "case_copy"), ("Q-2", "case_copy")}
    first = problems[0]["detail"]
    assert first.startswith("案件 Q-1 的文件中审计记录第 3 条与链中的不一致") and "hash" in first


def test_a_case_copy_edited_without_the_chain_is_caught(engine, quote_data):
    """What the separation-of-duties rule reads is the case's copy: editing only that must show."""
    issue_quote(engine, quote_data)
    store = engine.config.store_dir
    # entry 1 is the customer's file (K-1), made with the quote; entry 2 the quote's creation
    edit_case(store, "Q-1", lambda d: d["audit"]["1"].update(actor="wang"))   # its 1st row

    [problem] = engine.verify()

    assert problem["problem"] == "case_copy" and problem["number"] == "Q-1"
    assert problem["detail"] == "案件 Q-1 的文件中审计记录第 2 条与链中的不一致（不同之处：actor）"
    edit_case(store, "Q-1", lambda d: d["audit"]["1"].update(actor="zhang"))
    edit_case(store, "Q-1", lambda d: d["register_log"].clear())   # the document's events gone
    [problem] = engine.verify()
    assert "发放登记日志缺少第 1 条" in problem["detail"]


def test_the_pdf_heads_catch_a_register_log_rewrite(engine, quote_data):
    issue_quote(engine, quote_data)
    _, second = issue_quote(engine, quote_data)
    store = engine.config.store_dir
    rewrite_chain(store, "register_log", 1, blame_wang, copies="all")

    [problem] = engine.verify()

    assert (problem["problem"], problem["number"]) == ("register_head", second.number)
    assert "不在现在的日志中" in problem["detail"] and "第 2 条" in problem["detail"]


def test_a_missing_or_changed_pdf_is_a_file_problem_only(engine, quote_data):
    _, doc = issue_quote(engine, quote_data)
    pdf = doc.pdf.read_bytes()
    doc.pdf.unlink()
    assert [(p["problem"], p["path"]) for p in engine.verify()] == [("missing", str(doc.pdf))]
    doc.pdf.write_bytes(pdf.replace(b"/DealerDocsRegisterHash", b"/DealerDocsRegisterHasX"))
    assert [(p["problem"], p["path"]) for p in engine.verify()] == [("changed", str(doc.pdf))]


def test_a_registered_pdf_that_does_not_parse_is_reported(engine, tmp_path):
    """The metadata reader's failure, reached directly: a file whose hash matches the register
    yet is no PDF (the register would have to have been rewritten to match it)."""
    import hashlib

    rel = "2026/quote/BJ-2026-000009.pdf"
    payload = b"%PDF-1.4 not really"
    engine.archive.write(rel, payload)
    doc = {"number": "BJ-2026-000009", "pdf": rel,
           "pdf_sha256": hashlib.sha256(payload).hexdigest()}
    event = {"seq": 1, "event": "issued", "number": doc["number"], "hash": "a" * 64}
    [problem] = engine.integrity.pdf_problems([doc], [event])
    assert problem["problem"] == "register_head" and "无法读取文件 BJ-2026-000009 的 PDF 元数据" \
        in problem["detail"]


def test_a_seal_taken_before_catches_a_rewrite_consistent_everywhere(engine, quote_data, clock,
                                                                      config_path):
    """The attacker also rewrote every case's copy and issued nothing after the rewritten entry:
    plain verify cannot see it (the PDFs carry the register log's head, not the audit trail's);
    the seal can."""
    seals = config_path.parent.parent / "usb" / "seals.txt"
    engine.create("quote", quote_data, "zhang")
    engine.seal(out=seals)                                   # audit = 2 (K-1 and Q-1 made)
    clock.advance(hours=1)
    engine.fire("Q-1", "issue", "zhang")
    engine.seal(out=seals)                                   # audit = 3
    store = engine.config.store_dir
    rewrite_chain(store, "audit", 3, blame_wang, copies="all")
    edit_case(store, "Q-1", created_by_wang)
    assert engine.verify() == []                             # the limit of the store alone

    [problem] = engine.verify(seals=seals)

    assert (problem["problem"], problem["number"], problem["first"], problem["last"]) == \
        ("seal_broken", "audit", 3, 3)
    assert problem["detail"].startswith("审计记录与 2026-11-26T11:30:00+08:00 的封存不符：第 3 条")
    assert "第 3 条在封存后被改写" in problem["detail"] and "第 1–2 条与更早的封存一致" in problem["detail"]
    assert f"{seals} 第 2 行" in problem["detail"]
    cli = run_cli("verify", "--seal", str(seals), "--config", str(config_path),
                  cwd=config_path.parent, check=False)
    assert cli.returncode == 10 and "Traceback" not in cli.stderr
    assert "校验失败：1 处问题" in cli.stderr and "审计记录与 2026-11-26T11:30:00+08:00 的封存不符" \
        in cli.stderr


def test_a_seal_catches_the_first_rewrite_of_issue_13_too(engine, quote_data, config_path):
    seals = config_path.parent / "seals.txt"
    issue_quote(engine, quote_data)
    engine.seal(out=seals)
    store = engine.config.store_dir
    rewrite_chain(store, "audit", 1, blame_wang, copies="all")
    kinds = [(p["problem"], p["number"]) for p in engine.verify(seals=seals)]
    assert kinds == [("seal_broken", "audit")]


def test_work_after_a_seal_extends_it(engine, quote_data, clock, config_path):
    seals = config_path.parent / "seals.txt"
    issue_quote(engine, quote_data)
    first = engine.seal(out=seals)
    assert first["chains"]["audit"]["length"] == 3 and first["docs"] == 1   # K-1 made, Q-1 made and issued
    clock.advance(days=1)
    engine.fire("Q-1", "accept", "zhang")
    issue_quote(engine, quote_data)
    second = engine.seal(out=seals)
    # accepted; Q-2 made (and joined to K-1) and issued
    assert second["chains"]["audit"]["length"] == 7 and second["docs"] == 2
    assert seals.read_text(encoding="utf-8") == f"{first['line']}\n{second['line']}\n"

    assert engine.verify(seals=seals) == []
    cli = run_cli("verify", "--seal", str(seals), "--config", str(config_path),
                  cwd=config_path.parent)
    assert f"哈希链延续了 {seals} 中本店的 2 条封存（最近一条 2026-11-27T10:30:00+08:00）" in cli.stdout


def test_a_last_entry_deleted_after_sealing_is_caught(engine, quote_data, config_path):
    seals = config_path.parent / "seals.txt"
    issue_quote(engine, quote_data)
    engine.seal(out=seals)
    store = engine.config.store_dir
    [log] = (store / "log" / "audit").glob("*.jsonl")
    lines = log.read_text(encoding="utf-8").splitlines()
    log.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")  # the issue event removed …
    set_head(store, "audit", json.loads(lines[1])["hash"])   # … the head moved back …
    edit_case(store, "Q-1", lambda d: d["audit"].pop("2"))   # … and the case's copy too
    assert engine.verify() == []

    [problem] = engine.verify(seals=seals)

    assert (problem["problem"], problem["number"], problem["first"]) == ("seal_broken", "audit", 3)
    assert "审计记录现在只有 2 条" in problem["detail"] and "已有 3 条" in problem["detail"]


def test_forged_and_foreign_seal_lines(engine, quote_data, config_path):
    seals = config_path.parent / "seals.txt"
    issue_quote(engine, quote_data)
    line = engine.seal()["line"]
    forged = line.replace(" docs=1 ", " docs=0 ")
    other_key = seal.make("BJ1023", AT, {"audit": Head(0, G), "register_log": Head(0, G)}, 0,
                          b"z" * 32).line
    other_store = seal.make("SH2001", AT, {"audit": Head(0, G), "register_log": Head(0, G)}, 0,
                            b"z" * 32).line
    seals.write_text("\n".join([line, forged, other_key, other_store]) + "\n", encoding="utf-8")

    problems = engine.verify(seals=seals)

    assert [(p["problem"], p["path"]) for p in problems] == [
        ("seal_forged", f"{seals}:2"), ("seal_forged", f"{seals}:3")]
    assert "第 2 行：HMAC 与密钥算出的不符：这一行是伪造的或被改动过" in problems[0]["detail"]
    seals.write_text(other_store + "\n", encoding="utf-8")
    [problem] = engine.verify(seals=seals)
    assert problem["problem"] == "seal_none" and "没有本店（BJ1023）可核对的封存" in problem["detail"]
    cli = run_cli("verify", "--seal", str(seals), "--config", str(config_path),
                  cwd=config_path.parent, check=False)
    assert cli.returncode == 10 and "没有本店" in cli.stderr


# --- the key ---------------------------------------------------------------------------------

def test_the_key_is_made_once_0600_outside_the_store(engine, config_path):
    key = engine.config.seal_key_path
    assert key == config_path.parent / "keys" / "seal.key" and not key.exists()
    first = engine.seal()
    assert first["key_created"] and first["key"] == str(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes().strip()) == 64
    assert not list(key.parent.glob(".*.tmp"))
    second = engine.seal()
    assert not second["key_created"] and seal.authentic(seal.parse(second["line"]),
                                                         key.read_bytes().strip())


def test_the_cli_says_when_it_made_the_key(config_path):
    out = config_path.parent / "usb" / "seals.txt"
    made = run_cli("seal", "--out", str(out), "--config", str(config_path), cwd=config_path.parent)
    assert "已生成封存密钥" in made.stderr and "0600" in made.stderr and "备份" in made.stderr
    assert made.stdout.startswith("dealerdocs-seal v1 BJ1023 ")
    assert out.read_text(encoding="utf-8") == made.stdout
    again = run_cli("seal", "--json", "--config", str(config_path), cwd=config_path.parent)
    assert json.loads(again.stdout)["key_created"] is False and "已生成" not in again.stderr


def test_a_short_or_missing_key_is_refused(engine, config_path):
    seals = config_path.parent / "seals.txt"
    seals.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        engine.verify(seals=seals)                 # verify never makes a key
    assert "找不到封存密钥" in err.value.message and not engine.config.seal_key_path.exists()
    key = engine.config.seal_key_path
    key.parent.mkdir(parents=True)
    key.write_bytes(b"0123456789abcdef\n")
    with pytest.raises(ConfigError) as err:
        engine.seal()
    assert "只有 16 字节，至少需要 32 字节" in err.value.message
    cli = run_cli("seal", "--config", str(config_path), cwd=config_path.parent, check=False)
    assert cli.returncode == 2 and "至少需要 32 字节" in cli.stderr and "Traceback" not in cli.stderr


def test_a_seal_file_inside_the_store_is_refused(engine, config_path):
    with pytest.raises(InputError) as err:
        engine.seal(out=engine.config.store_dir / "seals.txt")
    assert "数据库目录" in err.value.message and "之内" in err.value.message
    assert not engine.config.seal_key_path.exists()


def test_a_missing_seal_file_is_a_clear_error(config_path):
    cli = run_cli("verify", "--seal", str(config_path.parent / "nope.txt"), "--config",
                  str(config_path), cwd=config_path.parent, check=False)
    assert cli.returncode == 4 and "找不到封存文件" in cli.stderr


def test_a_broken_chain_is_not_sealed(engine, quote_data):
    issue_quote(engine, quote_data)
    [log] = (engine.config.store_dir / "log" / "audit").glob("*.jsonl")
    log.write_text(log.read_text(encoding="utf-8").replace('"zhang"', '"wang"', 1),
                   encoding="utf-8")
    with pytest.raises(IntegrityError) as err:
        engine.seal()
    assert err.value.message.startswith("不能封存：审计记录：第 1 条记录的内容被改动")


def test_init_gives_a_new_store_the_seal_table(tmp_path):
    from engine import load_config

    run_cli("init", str(tmp_path / "shop"), cwd=tmp_path)
    text = (tmp_path / "shop" / "config.toml").read_text(encoding="utf-8")
    assert "\n[seal]\n" in text and '\nkey = ""\n' in text
    config = load_config(tmp_path / "shop" / "config.toml")
    assert config.seal_key_path == Path(os.path.expanduser("~/.config/dealerdocs/BJ1023.seal.key"))


def test_unreadable_seal_files_are_clear_errors(engine, tmp_path):
    from engine.errors import StorageError

    engine.seal()
    latin = tmp_path / "seals-latin1.txt"
    latin.write_bytes("封存".encode("gb18030"))
    with pytest.raises(InputError, match="不是 UTF-8 文本"):
        engine.verify(seals=latin)
    with pytest.raises(StorageError, match="无法读取封存文件"):
        engine.verify(seals=tmp_path)          # a folder


def test_an_unwritable_seal_file_or_key_is_a_clear_error(engine, tmp_path, monkeypatch):
    import errno

    from engine.errors import StorageError

    with pytest.raises(StorageError, match="无法写入封存文件"):
        engine.seal(out=tmp_path)              # a folder, not a file
    key = engine.config.seal_key_path
    shutil.rmtree(key.parent)                  # (the key was made before the append failed)
    key.mkdir(parents=True)                    # a folder where the key should be
    with pytest.raises(ConfigError, match="无法读取封存密钥"):
        engine.seal()
    key.rmdir()

    def no_hard_links(src, dst):               # e.g. a file system without them
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_hard_links)
    with pytest.raises(StorageError, match="无法生成封存密钥 .*Operation not permitted"):
        engine.seal()
    assert not key.exists() and not list(key.parent.iterdir())


def test_two_processes_making_the_key_at_once_share_one(engine, monkeypatch):
    """The key appears between our check and our link: the other process's key is used and
    ours is dropped (never two keys, never a half-written one)."""
    key = engine.config.seal_key_path
    real_link = os.link

    def other_process_first(src, dst):
        Path(dst).write_bytes(b"o" * 64 + b"\n")
        return real_link(src, dst)

    monkeypatch.setattr(os, "link", other_process_first)
    made = engine.seal()
    assert seal.authentic(seal.parse(made["line"]), b"o" * 64) and not made["key_created"]
    assert key.read_bytes() == b"o" * 64 + b"\n" and not list(key.parent.glob(".*.tmp"))


def test_a_dealer_code_with_a_space_cannot_be_sealed(engine):
    import dataclasses

    from engine import Engine

    dealer = dataclasses.replace(engine.config.dealer, code="BJ 1023")
    # the services keep the config they were made with: a changed config is a new engine
    with Engine(dataclasses.replace(engine.config, dealer=dealer), clock=engine.clock) as spaced:
        with pytest.raises(ConfigError, match="不能为空或含空白"):
            spaced.seal()
