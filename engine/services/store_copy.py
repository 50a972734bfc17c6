"""``dealerdocs store copy --to …``: the whole store into a new, empty one on the other backend
(a store outgrowing its folder moves to PostgreSQL; a database goes back to a folder).

Every record is copied as it is: cases (their listings made again by the target, so its
indexes hold), documents, copies handed out, batch marks, sign-in sessions, counters, the
definitions the cases are at, and both hash chains entry by entry, hashes kept, so the copy's
chain heads are the original's and ``verify`` checks the copy as it checked the original. A
folder target also gets the store folder's own files (the personal-data key, attachments,
the web app's secret), which a database keeps beside it in ``[paths] store``.

Issued files go with the records when the target keeps them elsewhere than the source
(:func:`target_archive`): into the target database (``--files database``, a PostgreSQL
target), or into a new, empty outbox folder (``--outbox DIR``; needed when the source keeps
them in its database and the target does not). Each registered file is read from the
source's archive in the same consistent view as the records and written in the target's
unit of work (byte for byte, by the recorded name and sha256); one that is missing or no
longer matches its hash is not copied and is listed (``verify`` reports it on both sides).
Otherwise the files stay where they are (an outbox both configs name)."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..archive import Archive, Outbox, document_files, sha256
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
    files_to: str | None = None     # where the issued files went ("database" or a folder)
    files: int = 0
    files_skipped: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "cases": self.cases, "documents": self.documents,
                "copies": self.copies, "entries": self.entries, "heads": self.heads,
                "files_to": self.files_to, "files": self.files,
                "files_skipped": self.files_skipped}


def open_target(to: str, listing: Listing, base: Path) -> AnyStore:
    """The store ``--to`` names: a postgresql:// URL or a folder (relative to ``base``)."""
    if is_database_url(to):
        check_url(to, key="--to")
    elif "://" in to:
        raise InputError(f"--to 应为 postgresql://用户@主机:端口/库名 或一个目录，收到 \"{to}\"",
                         field="to")
    return store_at(to, base=base, listing=listing)


def target_archive(source_files: str, target: AnyStore, files: str | None,
                   outbox: Path | None, cache: Path) -> tuple[Archive | None, str, str]:
    """Where the target keeps its issued files, if they are to be copied (None: they stay
    in the outbox both configs name), the target's ``files`` setting and, for messages,
    where that is ("database" or the folder). ``source_files``:
    the source's setting; ``files``: ``--files`` (None = as the source, a folder target
    always "outbox"); ``outbox``: ``--outbox DIR``, a new folder for them."""
    database = getattr(target, "kind", "") == "postgresql"
    files = files or (source_files if database else "outbox")
    if files not in ("outbox", "database"):
        raise InputError(f"--files 应为 outbox 或 database，收到 \"{files}\"", field="files")
    if files == "database":
        if not database:
            raise InputError("--files database 只能用于 PostgreSQL 目标（--to postgresql://…）",
                             field="files")
        if outbox is not None:
            raise InputError("文件存入数据库时不需要 --outbox", field="outbox")
        from ..dbarchive import DatabaseArchive

        return DatabaseArchive(target, cache), files, files
    if outbox is None:
        if source_files == "database":
            raise InputError("当前数据库的文件存放在数据库中；复制到不存放文件的目标时，请用 "
                             "--outbox DIR 指定一个新的空目录来存放这些文件", field="outbox")
        return None, files, files
    outbox = Path(outbox).expanduser().resolve()
    if outbox.is_file() or (outbox.is_dir() and any(outbox.iterdir())):
        raise InputError(f"--outbox {outbox} 已有文件；请指定一个新的空目录", field="outbox")
    return Outbox(outbox), files, str(outbox)


def copy_store(source: AnyStore, target: AnyStore, source_folder: Path,
               archive: Archive | None = None, into: Archive | None = None,
               into_label: str | None = None) -> CopyReport:
    """Copy everything in ``source`` into the empty ``target``, in one unit of work on each
    side (a consistent view of the source; all or nothing in the target). With ``into``,
    the issued files too, read from ``archive`` (the source's) and written to ``into``
    (the target's, labelled ``into_label``); the local files written are removed if the
    target does not commit."""
    if target.location == source.location:
        raise InputError("--to 指向的就是当前数据库", field="to")
    if target.exists():
        raise InputError(f"目标数据库 {target.location} 已有数据；请指定一个新的空数据库或目录",
                         field="to")
    report = CopyReport(target=target.location, files_to=into_label if into else None)
    written: list[Path] = []
    committed = False
    try:
        with source.snapshot() as src, target.bulk() as dst:
            _copy_records(src, dst, report)
            if into is not None and archive is not None:
                written += _copy_files(src, dst, archive, into, report)
        committed = True
    finally:
        if not committed:
            for path in written:
                path.unlink(missing_ok=True)
    if isinstance(target, Store):
        _copy_folder_files(source_folder, target.directory)
    return report


def _copy_files(src: Any, dst: Any, archive: Archive, into: Archive, report: CopyReport
                ) -> list[Path]:
    """Every registered file (not erased by a purge) from ``archive`` into ``into``, by its
    recorded name; the local files written."""
    written = []
    for doc in src.find_documents():
        if doc.get("files_purged"):
            continue
        for relative, digest in document_files(doc):
            data = archive.read(relative, digest, src)
            if data is None or sha256(data) != digest:
                report.files_skipped.append({"number": doc["number"], "path": relative,
                                             "problem": "missing" if data is None else "changed"})
                continue
            written.append(into.put(dst, relative, data))
            report.files += 1
    return written


def _copy_records(src: Any, dst: Any, report: CopyReport) -> None:
    """The records, as they are (see the module's docstring)."""
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


def _copy_folder_files(source: Path, target: Path) -> None:
    for name in FOLDER_FILES:
        if (source / name).is_dir() and source.resolve() != target.resolve():
            make_dirs(target / name)
            shutil.copytree(source / name, target / name, dirs_exist_ok=True)
