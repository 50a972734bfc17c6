"""The store's on-disk names and constants, shared by its layers."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .. import chain
from ..errors import StorageError

SCHEMA_VERSION = 5
LEGACY_FILE = "dealerdocs.json"   # schemas 1 and 2: the whole store in one tinydb file
META_FILE = "meta.json"
LOCK_FILE = "dealerdocs.lock"
LOGS = ("audit", "register_log")
NUMBER_BUCKETS = 1024
CASES_PER_FOLDER = 1000

# what the engine keeps in the indexes of a case (so the store stays ignorant of workflows)
Listing = Callable[[Mapping[str, Any]], dict[str, Any]]


def basic_listing(record: Mapping[str, Any]) -> dict[str, Any]:
    """The listing when no engine supplies one: the case's bookkeeping fields only."""
    return {}


def case_listing(record: Mapping[str, Any], listing: Listing
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A case's index entry (its bookkeeping fields and what the engine's ``listing`` adds),
    and apart from it the keyed hashes it is found by (``people``, ``search``)."""
    entry = {"id": record["id"], "workflow": record["workflow"], "state": record["state"],
             "created_at": record["created_at"], "created_by": record["created_by"],
             "updated_at": record["updated_at"], "updated_by": record["updated_by"],
             **({"store": record["store"]} if record.get("store") else {}),
             **listing(record)}
    hashed = {kind: entry.pop(kind, None) or () for kind in ("people", "search")}
    return entry, hashed


def next_entry(name: str, record: Mapping[str, Any], head: str | None, seq: int
               ) -> dict[str, Any]:
    """``record`` as the next entry of the chain ``name`` (one of :data:`LOGS`)."""
    if name not in LOGS:
        raise StorageError(f"没有名为 {name} 的日志")
    return chain.link({**record, "schema_version": SCHEMA_VERSION}, seq, head or chain.GENESIS)


def check_batch(batch: str) -> None:
    """A batch id names a file of the embedded store: letters and digits only."""
    if not batch.isalnum():
        raise StorageError(f"批次编号 \"{batch}\" 只能含字母和数字")


def check_owner(owner: str) -> None:
    """A session owner is 32 hex digits (a hash of the login; it names a file)."""
    if len(owner) != 32 or any(c not in "0123456789abcdef" for c in owner):
        raise StorageError(f"登录会话文件名 \"{owner}\" 应为 32 位十六进制")


def entry_case(record: Mapping[str, Any], case_of: Callable[[str], str | None]) -> str | None:
    """The case a log entry concerns (for that case's history): its own ``case_id``, or the
    case of the document ``number`` it names."""
    if record.get("case_id"):
        return record["case_id"]
    return case_of(record["number"]) if record.get("number") else None


def new_meta() -> dict[str, Any]:
    return {"_meta": {"1": {"schema_version": SCHEMA_VERSION}}}
