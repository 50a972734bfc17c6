"""``dealerdocs store copy --to …``: the whole store into a new, empty one on the other backend
(a store outgrowing its folder moves to PostgreSQL; a database goes back to a folder).

Every record is copied as it is: cases (their listings made again by the target, so its
indexes hold), documents, copies handed out, batch marks, sign-in sessions, counters, the
definitions the cases are at, and both hash chains entry by entry, hashes kept, so the copy's
chain heads are the original's and ``verify`` checks the copy as it checked the original. A
folder target also gets the store folder's own files (the personal-data key, attachments,
the web app's secret), which a database keeps beside it in ``[paths] store``."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import make_dirs
from ..store import LOGS, AnyStore, Store, store_at
from ..store.layout import Listing
from ..store.postgres import check_url, is_database_url

# what a store folder holds beside its records (the converter's pool and caches are not data)
FOLDER_FILES = ("keys", "attachments", "web")


@dataclass
class CopyReport:
    target: str
    cases: int = 0
    documents: int = 0
    copies: int = 0
    entries: dict[str, int] = field(default_factory=dict)
    heads: dict[str, str | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "cases": self.cases, "documents": self.documents,
                "copies": self.copies, "entries": self.entries, "heads": self.heads}


def open_target(to: str, listing: Listing, base: Path) -> AnyStore:
    """The store ``--to`` names: a postgresql:// URL or a folder (relative to ``base``)."""
    if is_database_url(to):
        check_url(to, key="--to")
    elif "://" in to:
        raise InputError(f"--to 应为 postgresql://用户@主机:端口/库名 或一个目录，收到 \"{to}\"",
                         field="to")
    return store_at(to, base=base, listing=listing)


def copy_store(source: AnyStore, target: AnyStore,
               source_folder: Path) -> CopyReport:
    """Copy everything in ``source`` into the empty ``target``, in one unit of work on each
    side (a consistent view of the source; all or nothing in the target)."""
    if target.location == source.location:
        raise InputError("--to 指向的就是当前数据库", field="to")
    if target.exists():
        raise InputError(f"目标数据库 {target.location} 已有数据；请指定一个新的空数据库或目录",
                         field="to")
    report = CopyReport(target=target.location)
    with source.snapshot() as src, target.bulk() as dst:
        # in the order the source lists them (by day, then as they came), so lists read alike
        done = set()
        for row in src.find_cases():
            case = src.case(row["id"])
            if case is not None:
                dst.put_case(case)
                done.add(case["id"])
        for case in src.cases_in_store():   # none should be missing from the listings
            if case["id"] not in done:
                dst.put_case(case)
                done.add(case["id"])
        report.cases = len(done)
        for doc in src.find_documents():
            dst.put_document(doc)
            report.documents += 1
        for copy in src.find_copies():
            dst.put_copy(copy)
            report.copies += 1
        for name in LOGS:
            entries = src.log_entries(name)
            for entry in entries:
                dst.put_entry(name, entry)
            report.entries[name] = len(entries)
            report.heads[name] = src.chain_head(name)
        for key, value in src.counters().items():
            dst.set_counter(key, value)
        for workflow, digest in src.definitions().items():
            dst.set_definition(workflow, digest)
        for batch, marks in src.all_marks().items():
            for item, value in marks.items():
                dst.set_mark(batch, item, value)
        for owner, sessions in src.all_sessions().items():
            for session_id, record in sessions.items():
                dst.set_session(owner, session_id, record)
    if isinstance(target, Store):
        _copy_folder_files(source_folder, target.directory)
    return report


def _copy_folder_files(source: Path, target: Path) -> None:
    for name in FOLDER_FILES:
        if (source / name).is_dir() and source.resolve() != target.resolve():
            make_dirs(target / name)
            shutil.copytree(source / name, target / name, dirs_exist_ok=True)
