"""Every change of the store's layout, in one registry: ``{version: function}`` brings a store
from that version to the next layout (``MIGRATIONS``), run in order under the exclusive lock by
the first process that opens an older store (:func:`upgrade`).

1, 2: one ``dealerdocs.json`` (the single-file layout; 1 → 2, hash chains, happens in memory
on the way) → 3: partitions, rebuilt in a side folder, the old file kept as
``dealerdocs.v2.json``. 3 → 4: the index of open cases. 4 → 5: owners, an audit trail without
personal values, private files (it needs the engine: :class:`Upgrade`). Each step writes its
files first and the new version last, and may run again after a crash half way.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .. import chain, checkpoints
from ..errors import StorageError
from ..files import atomic_write_bytes, fsync_dir, make_private
from .journal import sync_filesystem
from .jsonfiles import dumps, read_json
from .layout import LEGACY_FILE, LOGS, META_FILE, SCHEMA_VERSION
from .repository import Tx

if TYPE_CHECKING:
    from .folder import Store

log = logging.getLogger(__name__)

LEGACY_VERSION = 2


@dataclass(frozen=True)
class Upgrade:
    """What the store needs from the engine to bring a schema-4 store to 5 (it knows nothing
    of workflows): a case's direct owners, an audit entry without personal values, and other
    folders to make private (the outbox)."""

    owners: Callable[[Mapping[str, Any]], list[str]]
    redact: Callable[[dict[str, Any]], dict[str, Any]]
    private: tuple[Path, ...] = ()


def _chain_existing_logs(data: dict) -> dict:
    """1 → 2: the audit trail becomes a hash chain and the register gets its own chained log
    (an "issued" event per document already issued), so older stores verify like new ones."""
    def rechain(rows: list[dict]) -> tuple[dict, str]:
        out, prev = {}, chain.GENESIS
        for i, row in enumerate(rows, start=1):
            body = {k: v for k, v in row.items() if k not in ("seq", "prev_hash", "hash")}
            entry = chain.link({**body, "schema_version": 2}, i, prev)
            out[str(i)] = entry
            prev = entry["hash"]
        return out, prev

    audit = sorted(data.get("audit", {}).values(), key=lambda r: r.get("seq", 0))
    data["audit"], audit_head = rechain(audit)
    docs = sorted(data.get("documents", {}).values(), key=lambda d: d["issued_at"])
    events = [{"at": d["issued_at"], "actor": d["issued_by"], "event": "issued",
               "number": d["number"], "case_id": d["case_id"], "pdf_sha256": d["pdf_sha256"],
               "docx_sha256": d["docx_sha256"]} for d in docs]
    data["register_log"], register_head = rechain(events)
    data["chains"] = {"1": {"key": "audit", "hash": audit_head},
                      "2": {"key": "register_log", "hash": register_head}}
    counters = data.setdefault("counters", {})
    next_id = max((int(k) for k in counters), default=0) + 1
    for key, value in (("chain:audit", len(audit)), ("chain:register_log", len(events))):
        counters[str(next_id)] = {"key": key, "value": value, "schema_version": 2}
        next_id += 1
    return data


def from_single_file(store: "Store", meta: dict | None = None) -> None:
    """Rebuild a single-file store (schemas 1, 2) as partitions, in a side folder first;
    the old file is renamed only when the new layout is complete."""
    legacy = store.directory / LEGACY_FILE
    data = read_json(legacy)
    if data is None:
        legacy.unlink()
        return
    version = (data.get("_meta", {}).get("1") or {}).get("schema_version")
    if not isinstance(version, int):
        raise StorageError(f"数据库 {legacy} 缺少 schema_version，不是 dealerdocs 的数据库",
                           path=str(legacy))
    if version > LEGACY_VERSION:
        raise StorageError(f"数据库版本 {version} 比本程序支持的 {SCHEMA_VERSION} 新；请升级 dealerdocs",
                           path=str(legacy))
    if version == 1:
        log.info("migrating store from schema 1 (hash chains)")
        data = _chain_existing_logs(data)
    log.info("migrating store to schema 3 (partitions)")
    side = store.directory / ".migrating-v3"
    shutil.rmtree(side, ignore_errors=True)
    tx = Tx(side, writable=True, listing=store.listing)
    rows = {name: list(data.get(name, {}).values()) for name in
            ("cases", "documents", "copies", "counters", "chains", *LOGS)}
    for row in rows["counters"]:
        if not row["key"].startswith("copy:"):   # copy numbers now come from the copies
            tx._table(tx._meta, "counters").insert(
                {"key": row["key"], "value": row["value"], "schema_version": SCHEMA_VERSION})
    for row in rows["chains"]:
        tx._table(tx._meta, "chains").insert({"key": row["key"], "hash": row["hash"]})
    for case in rows["cases"]:
        tx.put_case(case)
    for doc in rows["documents"]:
        tx.put_document(doc)
    for copy in rows["copies"]:
        tx.put_copy(copy)
    for name in LOGS:
        for entry in sorted(rows[name], key=lambda e: e["seq"]):
            tx._appends.setdefault(tx._log_path(name, entry["at"]), []).append(
                dumps(entry) + b"\n")
            case_id = entry.get("case_id") or (tx.case_of(entry["number"])
                                               if entry.get("number") else None)
            if case_id:
                tx._table(tx._partition(case_id, create=True), name).insert(entry)
    # the partitioned layout of schema 3; the later steps of _recover take it further
    tx._meta.storage.data["_meta"] = {"1": {"schema_version": 3}}  # type: ignore[attr-defined]
    tx.flush_unjournaled()
    os.sync()
    checkpoints.reached("upgrade 3", "partitions written beside the old file")
    for item in ("cases", "index", "log"):
        shutil.rmtree(store.directory / item, ignore_errors=True)
        if (side / item).exists():
            os.replace(side / item, store.directory / item)
    os.replace(side / META_FILE, store.directory / META_FILE)
    fsync_dir(store.directory)
    os.replace(legacy, store.directory / "dealerdocs.v2.json")
    fsync_dir(store.directory)
    shutil.rmtree(side, ignore_errors=True)
    (store.directory / (LEGACY_FILE + ".lock")).unlink(missing_ok=True)


def add_open_index(store: "Store", meta: dict) -> None:
    """3 → 4: the index of open cases, built from the day indexes (idempotent: the
    version moves on only once every file is written)."""
    log.info("migrating store to schema 4 (index of open cases)")
    tx = Tx(store.directory, writable=True, listing=store.listing)
    shutil.rmtree(store.directory / "index" / "open", ignore_errors=True)
    for listing in tx.find_cases():
        if not listing.get("final"):
            tx._set_index(tx._open_path(listing["workflow"], listing["created_at"]),
                          listing["id"], listing)
    for path in tx._dirty_indexes:
        atomic_write_bytes(path, dumps(tx._indexes[path]), sync=False)
    sync_filesystem(store.directory)
    meta["_meta"] = {"1": {"schema_version": 4}}
    atomic_write_bytes(store.directory / META_FILE, dumps(meta))


def upgrade_to_5(store: "Store", meta: dict) -> None:
    """4 → 5, for issue 13 (personal data): every case gets its ``owners`` (shared by the
    cases linked together) and its listing is made again; the audit trail's personal
    values become keyed hashes and the chain is linked again (the head before is kept in
    ``meta.json`` under ``upgrades``); the store's and the outbox's files become the
    service user's only. The register log is left as it is: issued PDFs carry its head."""
    if store.upgrade is None:
        raise StorageError(f"数据库 {store.directory} 是第 4 版，需要由 dealerdocs 升级（请运行任意 "
                           f"dealerdocs 命令，如 dealerdocs list --as 用户）", path=str(store.directory))
    log.warning("migrating store %s to schema 5 (owners, audit trail without personal "
                "values, private files)", store.directory)
    up = store.upgrade
    # 1. owners: who opened each case and its assignee, shared along the links
    links: dict[str, list[str]] = {}
    direct: dict[str, list[str]] = {}
    reader = Tx(store.directory, writable=False, listing=store.listing)
    ids = [p.stem for p in sorted((store.directory / "cases").glob("*/*/*.json"))]
    for case_id in ids:
        record = reader.case(case_id)
        if record is None:
            continue
        links[case_id] = [i for group in record.get("links", {}).values() for i in group]
        direct[case_id] = up.owners(record)
        reader = Tx(store.directory, writable=False, listing=store.listing)  # bounded memory
    group_of: dict[str, list[str]] = {}
    for case_id in links:
        if case_id in group_of:
            continue
        group, queue = [], [case_id]
        while queue:
            current = queue.pop()
            if current in group_of or current not in links:
                continue
            group_of[current] = group
            group.append(current)
            queue.extend(links[current])
    # 2. the audit trail: personal values become keyed hashes, linked again
    old_head = reader.chain_head("audit")
    new_links: dict[int, tuple[str, str]] = {}
    prev = chain.GENESIS
    rewritten: dict[Path, list[bytes]] = {}
    for entry in reader.log_entries("audit"):
        body = up.redact({k: v for k, v in entry.items()
                          if k not in ("seq", "prev_hash", "hash")})
        new = chain.link(body, entry["seq"], prev)
        new_links[entry["seq"]] = (new["prev_hash"], new["hash"])
        prev = new["hash"]
        rewritten.setdefault(reader._log_path("audit", new["at"]), []).append(
            dumps(new) + b"\n")
    for path, lines in rewritten.items():
        atomic_write_bytes(path, b"".join(lines), sync=False)
    checkpoints.reached("upgrade 5 audit", "the audit trail linked again")
    # 3. each case: owners, its copy of the audit trail, its listing (through put_case)
    for n, case_id in enumerate(links, start=1):
        tx = Tx(store.directory, writable=True, listing=store.listing)
        record = tx.case(case_id)
        owners = list(dict.fromkeys(o for member in group_of[case_id]
                                    for o in direct[member]))
        table = tx._table(tx._partition(case_id, create=True), "audit")
        copies = [dict(e) for e in table.all()]
        table.truncate()
        for entry in sorted(copies, key=lambda e: e["seq"]):
            body = up.redact({k: v for k, v in entry.items()
                              if k not in ("seq", "prev_hash", "hash")})
            prev_hash, digest = new_links.get(entry["seq"], (entry["prev_hash"], entry["hash"]))
            table.insert({**body, "seq": entry["seq"], "prev_hash": prev_hash, "hash": digest})
        tx.put_case({**record, "owners": owners})
        tx.flush_in_place()
        if n == len(links) // 2:
            checkpoints.reached("upgrade 5 cases", f"{n} of {len(links)} cases")
    # 4. the new head, the old one kept; private files; the version last
    if old_head is not None:
        meta.setdefault("chains", {})
        for row in meta["chains"].values():
            if row.get("key") == "audit":
                row["hash"] = prev
    meta.setdefault("upgrades", {})["5"] = {"audit_head_before": old_head,
                                           "audit_head_after": prev if old_head else None}
    sync_filesystem(store.directory)
    for folder in (store.directory, *up.private):
        make_private(folder)
    meta["_meta"] = {"1": {"schema_version": 5}}
    atomic_write_bytes(store.directory / META_FILE, dumps(meta))


# version → the step that brings a store of that version to the next layout
MIGRATIONS: dict[int, Callable[["Store", Any], None]] = {
    1: from_single_file, 2: from_single_file, 3: add_open_index, 4: upgrade_to_5}


def version_of(directory: Path) -> tuple[int | None, dict | None]:
    """The store's schema version and its meta (None, None for a store not made yet); the
    single-file layout's version when its file is still there."""
    legacy = directory / LEGACY_FILE
    if legacy.exists():
        data = read_json(legacy)
        if data is None:
            legacy.unlink()
        else:
            version = (data.get("_meta", {}).get("1") or {}).get("schema_version")
            if not isinstance(version, int):
                raise StorageError(f"数据库 {legacy} 缺少 schema_version，不是 dealerdocs 的数据库",
                                   path=str(legacy))
            if version > LEGACY_VERSION:
                raise StorageError(f"数据库版本 {version} 比本程序支持的 {SCHEMA_VERSION} 新；"
                                   f"请升级 dealerdocs", path=str(legacy))
            return version, None
    meta = read_json(directory / META_FILE)
    if meta is None:
        return None, None
    version = (meta.get("_meta", {}).get("1") or {}).get("schema_version")
    if not isinstance(version, int):
        raise StorageError(f"数据库 {directory / META_FILE} 缺少 schema_version，"
                           f"不是 dealerdocs 的数据库", path=str(directory))
    if version > SCHEMA_VERSION:
        raise StorageError(f"数据库版本 {version} 比本程序支持的 {SCHEMA_VERSION} 新；"
                           f"请升级 dealerdocs", path=str(directory))
    return version, meta


def upgrade(store: "Store") -> None:
    """Bring ``store`` to :data:`SCHEMA_VERSION`, one registered step after another."""
    while True:
        version, meta = version_of(store.directory)
        if version is None or version == SCHEMA_VERSION:
            return
        MIGRATIONS[version](store, meta)
