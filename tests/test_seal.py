"""Tamper evidence that survives a full rewrite (issue 13): ``verify`` compares each case's copy
of its log entries with the chains and checks the register head each issued PDF recorded;
``dealerdocs seal`` writes a line kept outside the store, and ``verify --seal`` finds a chain
that no longer extends it, even after the attacker re-hashed everything consistently.

The attacks edit the store's files the way someone with write access would: the monthly log,
the case files and the head in ``meta.json``. The pure seal logic (format, HMAC, comparison)
is tested first, without a store."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Callable

import pytest

from engine import chain, seal
from engine.control import copy_difference, head_problem
from engine.seal import Head, SealError

from helpers import CST

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
    rewrite_chain(store, "audit", 1, blame_wang, copies="edited")
    edit_case(store, "Q-1", created_by_wang)

    problems = engine.verify()

    assert {(p["number"], p["problem"]) for p in problems} == {("Q-1", "case_copy"),
                                                                ("Q-2", "case_copy")}
    first = problems[0]["detail"]
    assert first.startswith("案件 Q-1 的文件中审计记录第 2 条与链中的不一致") and "hash" in first


def test_a_case_copy_edited_without_the_chain_is_caught(engine, quote_data):
    """What the separation-of-duties rule reads is the case's copy: editing only that must show."""
    issue_quote(engine, quote_data)
    store = engine.config.store_dir
    edit_case(store, "Q-1", lambda d: d["audit"]["1"].update(actor="wang"))

    [problem] = engine.verify()

    assert problem["problem"] == "case_copy" and problem["number"] == "Q-1"
    assert problem["detail"] == "案件 Q-1 的文件中审计记录第 1 条与链中的不一致（不同之处：actor）"
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
    engine.outbox.write(rel, payload)
    doc = {"number": "BJ-2026-000009", "pdf": rel,
           "pdf_sha256": hashlib.sha256(payload).hexdigest()}
    event = {"seq": 1, "event": "issued", "number": doc["number"], "hash": "a" * 64}
    [problem] = engine._verify_pdfs([doc], [event])
    assert problem["problem"] == "register_head" and "无法读取文件 BJ-2026-000009 的 PDF 元数据" \
        in problem["detail"]
