"""Hash chains over append-only tables (the audit trail, the register log).

Each entry carries ``seq``, ``prev_hash`` and ``hash`` = sha256(prev_hash + canonical JSON of
the entry without its hash). Editing an entry changes its hash; deleting one breaks the
sequence or the link to the next; deleting the last one no longer matches the head kept in
the ``chains`` table. :func:`check` names the first entry that does not fit. Pure functions.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Mapping

GENESIS = "0" * 64


def canonical(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=str).encode("utf-8")


def entry_hash(prev_hash: str, record: Mapping[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(body)).hexdigest()


def link(record: Mapping[str, Any], seq: int, prev_hash: str) -> dict[str, Any]:
    """``record`` as the next entry of a chain whose head is ``prev_hash``."""
    entry = {**record, "seq": seq, "prev_hash": prev_hash}
    entry["hash"] = entry_hash(prev_hash, entry)
    return entry


def check(entries: Iterable[Mapping[str, Any]], head: str | None) -> str | None:
    """The first problem in a chain (in Chinese, naming the entry), or None if it holds."""
    prev, expected_seq = GENESIS, 1
    for entry in sorted(entries, key=lambda e: e.get("seq", 0)):
        seq = entry.get("seq")
        if seq != expected_seq:
            return f"第 {expected_seq} 条记录缺失（下一条是第 {seq} 条）"
        if entry.get("prev_hash") != prev:
            return f"第 {seq} 条记录与前一条不衔接（前一条被改动或删除）"
        if entry.get("hash") != entry_hash(prev, entry):
            return f"第 {seq} 条记录的内容被改动（哈希不符）"
        prev, expected_seq = entry["hash"], seq + 1
    if (head or GENESIS) != prev:
        return f"最后 {'若干' if head else ''}条记录缺失（链尾哈希与登记的不符）"
    return None
